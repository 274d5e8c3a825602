"""Webhook sink: one signed HTTP POST per batch (JSON array or NDJSON body).

Delivery is at-least-once. Every attempt at a batch carries the same ``Idempotency-Key``
(destination, partition, first and last offset; a requested replay adds its id) and a fresh
HMAC-SHA256 signature over the timestamp and the body (see :mod:`sinks.signature`), so
receivers can verify the sender and drop replays. A destination's ``signing`` chooses the
signature headers: ``auditstream`` (``X-Auditstream-Signature``, the default) or
``standard_webhooks`` (``webhook-id``, which is the ``Idempotency-Key``, ``webhook-timestamp``
and ``webhook-signature``); with a ``next_secret`` every request is signed with both secrets.

The request building is pure; :meth:`WebhookSink.write` does the I/O and maps every outcome
onto the project's error tree at this boundary (:func:`classify_response`,
:func:`classify_exception`). Messages name the receiver by host only: URLs of some SIEM
collectors carry a token in their path, and configured headers may carry credentials.
"""

from __future__ import annotations

import ssl
import time
import uuid
from collections.abc import Callable, Mapping
from http import HTTPStatus

import httpx

import auditstream
from auditstream.config.address_policy import AddressPolicy
from auditstream.config.destinations import WebhookDestination
from auditstream.config.errors import ConfigError
from auditstream.pipeline.log import Record
from auditstream.sinks import address_guard
from auditstream.sinks import vendor_errors as vendor
from auditstream.sinks.base import NOTHING_WRITTEN, CheckResult, WriteResult
from auditstream.sinks.batch import Batch
from auditstream.sinks.errors import DeliveryError, PermanentError, TransientError
from auditstream.sinks.peer_check import PeerCheckingBackend
from auditstream.sinks.render import batch_documents, json_array_of, ndjson_of
from auditstream.sinks.retry import is_retryable, is_retryable_status, parse_retry_after
from auditstream.sinks.shapes import shape
from auditstream.sinks.signature import (
    IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
    STANDARD_ID_HEADER,
    STANDARD_SIGNATURE_HEADER,
    STANDARD_TIMESTAMP_HEADER,
    TIMESTAMP_HEADER,
    idempotency_key,
    sign,
    standard_key,
    standard_sign,
)

DESTINATION_HEADER = "X-Auditstream-Destination"
CHECK_HEADER = "X-Auditstream-Check"
"""Marks the destination check's signed empty batch (value ``1``)."""
USER_AGENT = f"auditstream/{auditstream.__version__}"

CONTENT_TYPES: Mapping[str, str] = {
    "json_array": "application/json",
    "ndjson": "application/x-ndjson",
}

RESERVED_HEADERS = frozenset(
    name.lower()
    for name in (
        "Content-Type",
        "Content-Length",
        "Content-Encoding",
        "Transfer-Encoding",
        "Host",
        TIMESTAMP_HEADER,
        SIGNATURE_HEADER,
        IDEMPOTENCY_HEADER,
        DESTINATION_HEADER,
        STANDARD_ID_HEADER,
        STANDARD_TIMESTAMP_HEADER,
        STANDARD_SIGNATURE_HEADER,
    )
)
"""Headers the sink sets itself; a destination's ``headers`` may not override them."""


_PERMANENT_HINTS: Mapping[int, str] = {
    400: "the request was found malformed; check that the endpoint accepts the destination's "
    "body format (json_array or ndjson)",
    401: "check the receiver's credentials: the destination's signing secret and any "
    "authorization header configured for it",
    403: "check the receiver's credentials: the destination's signing secret and any "
    "authorization header configured for it, and that they may post to this endpoint",
    404: "check the destination URL",
    405: "check that the destination URL is an endpoint that accepts POST",
    410: "the endpoint no longer exists; check the destination URL",
    411: "the receiver requires a Content-Length; check any proxy in between",
    413: "the batch is larger than the receiver accepts; lower the destination's batch.max_bytes",
    414: "the URL is too long for the receiver; check the destination URL",
    415: "the receiver does not accept this content type; check the destination's body format",
    422: "the receiver could not process the events; check the receiver's logs",
}
_DEFAULT_HINT = "check the receiver's logs and the destination settings"

# A check names a refused signature or authorization header as the credential problem it is.
_CHECK_CAUSES: Mapping[str, str] = {"http_401": "bad_credentials", "http_403": "access_denied"}


def _status_text(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


def _location_host(location: str | None) -> str | None:
    if not location:
        return None
    try:
        host = httpx.URL(location).host
    except (httpx.InvalidURL, TypeError, ValueError):
        return None
    return host or None


def classify_response(
    status: int, headers: Mapping[str, str], now: float, *, target: str = "the receiver"
) -> DeliveryError | None:
    """Map a receiver's answer to ``None`` (delivered) or the error to raise.

    2xx is success; 408, 429 and 5xx are transient (with the ``Retry-After`` the receiver
    asked for, in seconds from ``now``); 3xx is permanent (redirects are not followed, a
    signed request is not replayed elsewhere); any other status is permanent with a hint of
    what to check. ``target`` names the receiver in messages (a host, never a full URL).
    """
    if 200 <= status < 300:
        return None
    answered = f"{target} answered {_status_text(status)}"
    cause = f"http_{status}"
    if 300 <= status < 400:
        host = _location_host(vendor.header(headers, "Location"))
        where = f" to host {host}" if host else ""
        return PermanentError(
            f"{answered}, a redirect{where}; redirects are not followed: set the destination "
            "URL to the final endpoint",
            cause="redirect",
        )
    if is_retryable_status(status):
        retry_after = parse_retry_after(vendor.header(headers, "Retry-After"), now)
        asked = f", asking to retry after {retry_after:g} s" if retry_after is not None else ""
        return TransientError(
            f"{answered}{asked} (temporary: overloaded or unavailable)",
            cause=cause,
            retry_after=retry_after,
        )
    if 400 <= status < 500:
        hint = _PERMANENT_HINTS.get(status, _DEFAULT_HINT)
        return PermanentError(f"{answered}: {hint}", cause=cause)
    return PermanentError(f"{answered}, an unexpected status: {_DEFAULT_HINT}", cause=cause)


def _tls_failure(exc: BaseException) -> ssl.SSLError | None:
    """The TLS error behind ``exc``, unless it is the peer closing the connection mid-handshake
    (which a retry may well get past)."""
    for cause in vendor.causes(exc):
        if isinstance(cause, ssl.SSLError) and not isinstance(
            cause, ssl.SSLEOFError | ssl.SSLZeroReturnError
        ):
            return cause
    return None


def _tls_reason(exc: ssl.SSLError) -> str:
    """OpenSSL's short reason, e.g. ``self-signed certificate`` or ``WRONG_VERSION_NUMBER``."""
    for attribute in ("verify_message", "reason"):
        value = getattr(exc, attribute, None)
        if isinstance(value, str) and value:
            return value
    return str(exc.strerror) if exc.strerror else type(exc).__name__


def _os_reason(exc: BaseException) -> str:
    """The operating system's words for a connection failure, e.g. ``Connection refused``."""
    for cause in vendor.causes(exc):
        if isinstance(cause, OSError) and cause.strerror:
            return str(cause.strerror)
    return type(exc).__name__


def classify_exception(exc: httpx.HTTPError, *, target: str = "the receiver") -> DeliveryError:
    """Map an httpx exception to the error to raise.

    Timeouts, refused or failed connections and other transport failures are transient, except
    TLS failures (certificate verification, protocol mismatch) and URLs httpx cannot use, which
    no retry fixes.
    """
    if isinstance(exc, httpx.TimeoutException):
        return TransientError(
            f"{target} did not answer in time ({type(exc).__name__}); if this persists, check "
            "the receiver's health or raise the destination's timeout_s",
            cause="timeout",
        )
    if isinstance(exc, httpx.ConnectError):
        tls = _tls_failure(exc)
        if tls is not None:
            if isinstance(tls, ssl.SSLCertVerificationError):
                detail = f"certificate verification failed ({_tls_reason(tls)})"
                fix = (
                    "check the receiver's certificate, or set the destination's ca_file to "
                    "the CA that signed it"
                )
            else:
                detail = f"TLS handshake failed ({_tls_reason(tls)})"
                fix = "check that the destination URL's scheme and port serve HTTPS"
            return PermanentError(f"{target}: {detail}: {fix}", cause="tls_failure")
        return TransientError(
            f"could not connect to {target} ({_os_reason(exc)}); if this persists, check that "
            "the receiver is up and reachable from the sink workers",
            cause="unreachable",
        )
    if isinstance(exc, httpx.UnsupportedProtocol):
        return PermanentError(
            f"{target} cannot be reached with this URL ({type(exc).__name__}): check the "
            "destination URL",
            cause="invalid_url",
        )
    if isinstance(exc, httpx.HTTPStatusError):
        error = classify_response(
            exc.response.status_code, exc.response.headers, time.time(), target=target
        )
        if error is not None:
            return error
    return TransientError(
        f"the exchange with {target} broke off ({type(exc).__name__}); if this persists, check "
        "the receiver and any proxy in between",
        cause="transport",
    )


def _build_client(
    destination: WebhookDestination, address_policy: AddressPolicy | None = None
) -> httpx.Client:
    """The sink's own client: the destination's TLS settings and timeout, no redirects, no
    proxies from the environment, and with an ``address_policy`` every new connection's peer
    address checked (:class:`PeerCheckingBackend`)."""
    verify: ssl.SSLContext | bool
    if destination.ca_file:
        try:
            verify = ssl.create_default_context(cafile=destination.ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"destination {destination.id}: ca_file {destination.ca_file!r} cannot be "
                f"loaded ({exc.strerror or type(exc).__name__}): point it to a PEM file of "
                "CA certificates"
            ) from exc
    else:
        verify = destination.verify_tls
    transport = httpx.HTTPTransport(verify=verify, http1=True, http2=False, trust_env=False)
    if address_policy is not None:
        # httpx takes no network backend; its connection pool does (httpcore's own option).
        pool = transport._pool
        pool._network_backend = PeerCheckingBackend(
            pool._network_backend, address_policy, _describe_target(destination)
        )
    return httpx.Client(
        transport=transport,
        timeout=httpx.Timeout(destination.timeout_s),
        follow_redirects=False,
        trust_env=False,
    )


def _signing_keys(destination: WebhookDestination) -> tuple[bytes, ...]:
    """The HMAC keys of the destination's secret and, while it rotates, its next secret.
    Raises :class:`ConfigError` (never naming the secret) when a Standard Webhooks
    destination's secret is not a ``whsec_`` secret."""
    secrets = [destination.secret.get_secret_value()]
    if destination.next_secret is not None:
        secrets.append(destination.next_secret.get_secret_value())
    if destination.signing != "standard_webhooks":
        return tuple(secret.encode("utf-8") for secret in secrets)
    try:
        return tuple(standard_key(secret) for secret in secrets)
    except ValueError as exc:
        raise ConfigError(f"destination {destination.id}: {exc}") from None


class WebhookSink:
    """Delivers a destination's batches as signed POSTs to its URL.

    ``client`` is used as given (and left open by :meth:`close`); without one the sink builds
    its own with the destination's TLS settings and timeout. ``clock`` gives the signing time.
    """

    type: str = "webhook"

    def __init__(
        self,
        destination: WebhookDestination,
        client: httpx.Client | None = None,
        clock: Callable[[], float] = time.time,
        address_policy: AddressPolicy | None = None,
    ) -> None:
        self._target = _describe_target(destination)
        self._address_policy = address_policy
        reserved = sorted(name for name in destination.headers if name.lower() in RESERVED_HEADERS)
        if reserved:
            raise ConfigError(
                f"destination {destination.id}: headers {', '.join(reserved)} are set by the "
                "webhook sink itself; remove them from the destination's headers"
            )
        self._destination = destination
        self._keys = _signing_keys(destination)
        self._clock = clock
        self._owns_client = client is None
        self._client = client if client is not None else _build_client(destination, address_policy)
        self._content_type = CONTENT_TYPES[destination.body]
        if destination.body == "json_array":  # a JSON array of the shape's documents
            self._content_type = shape(destination.schema).batch_media_type

    def __repr__(self) -> str:
        return (
            f"WebhookSink(id={self._destination.id!r}, target={self._target!r}, "
            f"body={self._destination.body!r})"
        )

    def render(self, batch: Batch) -> bytes:
        """The request body for ``batch`` in the destination's body format."""
        documents = batch_documents(batch, self._destination.schema)
        if self._destination.body == "ndjson":
            return ndjson_of(documents)
        return json_array_of(documents)

    def build_headers(self, batch: Batch, body: bytes, timestamp: int) -> dict[str, str]:
        """The request headers for ``body`` signed at ``timestamp``."""
        headers = {"User-Agent": USER_AGENT}
        headers.update({k: v.get_secret_value() for k, v in self._destination.headers.items()})
        key = idempotency_key(
            self._destination.id,
            batch.partition,
            batch.first_offset,
            batch.last_offset,
            batch.replay_id,
        )
        headers.update(
            {
                "Content-Type": self._content_type,
                IDEMPOTENCY_HEADER: key,
                DESTINATION_HEADER: self._destination.id,
            }
        )
        if self._destination.signing == "standard_webhooks":
            # The delivery id is the idempotency key: the same for every attempt at a batch,
            # new for a requested replay.
            headers[STANDARD_ID_HEADER] = key
            headers[STANDARD_TIMESTAMP_HEADER] = str(timestamp)
            headers[STANDARD_SIGNATURE_HEADER] = standard_sign(self._keys, key, timestamp, body)
        else:
            headers[TIMESTAMP_HEADER] = str(timestamp)
            headers[SIGNATURE_HEADER] = ",".join(sign(k, timestamp, body) for k in self._keys)
        return headers

    def write(self, batch: Batch) -> WriteResult:
        """POST ``batch`` once. A batch without events (all its records were dead-lettered)
        sends nothing and counts as delivered. Raises :class:`DeliveryError`: see
        :func:`classify_response`, :func:`classify_exception` and :meth:`check_address`."""
        if not batch.events:
            return NOTHING_WRITTEN
        self.check_address()
        body = self.render(batch)
        headers = self.build_headers(batch, body, int(self._clock()))
        self._post(body, headers)
        return WriteResult(bytes_written=len(body), deliveries=1)

    def _post(self, body: bytes, headers: Mapping[str, str]) -> int:
        """POST ``body`` to the destination URL once; the receiver's 2xx status, or raises
        :class:`DeliveryError`."""
        try:
            response = self._client.post(self._destination.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise classify_exception(exc, target=self._target) from exc
        except httpx.InvalidURL as exc:
            raise PermanentError(
                f"destination {self._destination.id}: the URL is not valid: check it",
                cause="invalid_url",
            ) from exc
        error = classify_response(
            response.status_code, response.headers, self._clock(), target=self._target
        )
        if error is not None:
            raise error
        return response.status_code

    def probe(self) -> CheckResult:
        """POST a signed empty batch (``[]``, or an empty body for NDJSON) marked with
        :data:`CHECK_HEADER` and a check-only ``Idempotency-Key``, once. Never raises a
        ``DeliveryError``: a refusal is the result's cause (401 and 403 named
        ``bad_credentials`` and ``access_denied``)."""
        destination = self._destination
        steps: list[str] = []
        body = b"[]" if destination.body == "json_array" else b""
        empty = Batch(
            destination_id=destination.id,
            account_id="",
            topic="",
            partition=0,
            records=[Record("", 0, 0, None, b"")],
        )
        headers = self.build_headers(empty, body, int(self._clock()))
        # Its own key: a receiver that drops replays must not take the first real batch
        # (partition 0, offset 0) for a replay of the check.
        headers[IDEMPOTENCY_HEADER] = f"{destination.id}:check:{uuid.uuid4()}"
        headers[CHECK_HEADER] = "1"
        doing = f"posting a signed empty batch to {self._target}"
        try:
            self.check_address()
            status = self._post(body, headers)
        except DeliveryError as exc:
            cause = _CHECK_CAUSES.get(exc.cause, exc.cause)
            return CheckResult.failure(exc, doing, steps, cause=cause)
        steps.append(f"{doing}: answered {status}")
        return CheckResult(
            True,
            None,
            f"destination {destination.id} works: {self._target} accepted a signed empty "
            f"batch ({status})",
            steps,
        )

    def check_address(self) -> None:
        """With an address policy, resolve the URL's host now and refuse it if any of its
        addresses is not allowed (a name may resolve elsewhere than when it was configured).
        Raises :class:`PermanentError` (cause ``address_refused``) or, when the name does not
        resolve, :class:`TransientError` (cause ``unreachable``)."""
        if self._address_policy is None:
            return
        # httpx's own reading of the URL: the host checked is the host it connects to.
        parsed = httpx.URL(self._destination.url)
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        address_guard.check_host(self._address_policy, parsed.host, port, target=self._target)

    def is_retryable(self, exc: BaseException) -> bool:
        """Whether ``exc`` is worth another attempt (a ``TransientError``). Never raises."""
        return is_retryable(exc)

    def close(self) -> None:
        """Close the client the sink built (a given client is left open). Does not raise."""
        if self._owns_client:
            self._client.close()


def _describe_target(destination: WebhookDestination) -> str:
    """``receiver <host>`` (with the port when one is given), nothing else of the URL.
    Raises :class:`ConfigError` when the URL has no host."""
    problem = f"destination {destination.id}: the url is not a valid http(s) URL with a host"
    try:
        parsed = httpx.URL(destination.url)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise ConfigError(f"{problem}: check it") from exc
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ConfigError(f"{problem}: check it")
    port = f":{parsed.port}" if parsed.port is not None else ""
    return f"receiver {parsed.host}{port}"
