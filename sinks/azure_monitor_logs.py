"""Azure Monitor Logs sink (Logs Ingestion API): a batch POSTed as JSON arrays of rows to
``{endpoint}/dataCollectionRules/{dcr_immutable_id}/streams/{stream_name}?api-version=2023-01-01``.

Each event is one row: ``TimeGenerated`` (``occurred_at``, ISO 8601 UTC) followed by the
top-level fields of the event's document in the destination's shape (the native event, or its
OCSF, ECS or CloudEvents document); the data collection rule's stream declares the columns it
keeps. A request body holds at most :data:`MAX_REQUEST_BYTES` before compression (the API's
1 MB per call, compressed or not), gzip-compressed unless turned off; a batch takes as many
requests as it needs and counts as delivered only when every one was accepted (204), else it
is sent again whole: delivery is at-least-once (dedup on the event id). A row over the limit
on its own is replaced by a marked row (:data:`TRUNCATED_COLUMN`) holding the event id, its
size and the start of its document, and logged.

Requests go through ``sinks.http_batch``: the sink's own client (TLS options, no redirects, no
proxies from the environment, every connection's peer address checked) and the address policy
applied to the endpoint right before each request. Answers map onto the error tree by
:data:`REFUSALS` (400, 401, 403, 404, 413 permanent; 408, 429 with ``Retry-After`` and 5xx
transient).

Tokens come from Microsoft Entra ID by the client credentials grant (``azure-identity``'s
``ClientSecretCredential``, scope ``https://monitor.azure.com/.default`` in the public cloud),
cached and renewed by the credential. The authority is never a tenant's choice: the destination
names one of the Azure clouds (:data:`CLOUDS`) and only the operator may replace the authority
(:data:`AUTHORITY_HOST_ENV`, for tests or an emulator, with :data:`AUTHORITY_CA_FILE_ENV`), as
only an operator may allow a key file's ``token_uri`` elsewhere than Google's (a tenant-chosen
authority would receive the client secret and could point the workers anywhere). Token
requests may go to the authority's host only (:class:`AuthorityTransport`): neither instance
discovery nor a discovery document naming another token endpoint takes the secret elsewhere.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import orjson
from azure.core.exceptions import (
    AzureError,
    ServiceRequestError,
    ServiceRequestTimeoutError,
    ServiceResponseError,
    ServiceResponseTimeoutError,
)
from azure.core.pipeline.transport import RequestsTransport
from azure.identity import ClientSecretCredential

from auditstream.config.address_policy import AddressPolicy
from auditstream.config.destinations import (
    AZURE_CLIENT_ID,
    AZURE_DCR_ID,
    AZURE_STREAM,
    AZURE_TENANT_ID,
    AzureMonitorLogsDestination,
)
from auditstream.config.errors import ConfigError
from auditstream.sinks import vendor_errors as vendor
from auditstream.sinks.base import NOTHING_WRITTEN, CheckResult, WriteResult
from auditstream.sinks.batch import Batch
from auditstream.sinks.errors import DeliveryError, PermanentError, TransientError
from auditstream.sinks.http_batch import (
    HttpExchange,
    Refusal,
    build_client,
    classify_status,
    describe_target,
    gzip_body,
    join_url,
    json_answer,
    split_runs,
)
from auditstream.sinks.render import batch_documents
from auditstream.sinks.retry import is_retryable, parse_retry_after

log = logging.getLogger(__name__)

API_VERSION = "2023-01-01"
MAX_REQUEST_BYTES = 1_000_000
"""Bytes of one request body before compression: under the API's 1 MB per call (1 MiB), which
also bounds the compressed body (JSON never grows under gzip by more than a few bytes)."""
MAX_ROWS_PER_REQUEST = 100_000
"""No count limit is documented; this only bounds one request's row list."""
TRUNCATED_COLUMN = "auditstream_truncated"
"""The (dynamic) column of a row that replaces an event too large for one request: the event
id, its size and the start of its document. Declare it in the stream to keep such rows."""
TRUNCATED_TEXT_BYTES = 32_000
"""The most of a too-large document kept in its marked row (Azure truncates a value at 64 KB)."""
CHECK_COLUMN = "auditstream_check"
"""The (dynamic) column of the destination check's one row."""

AUTHORITY_HOST_ENV = "AUDITSTREAM_AZURE_AUTHORITY_HOST"
"""Operator setting of the sink workers: an https origin that replaces every Azure Monitor Logs
destination's Entra ID authority (an emulator in tests). Never a destination setting."""
AUTHORITY_CA_FILE_ENV = "AUDITSTREAM_AZURE_AUTHORITY_CA_FILE"
"""Operator setting: a PEM file of the CAs that the authority's certificate is checked with."""

_AADSTS = re.compile(r"AADSTS\d{4,8}")
_NAMED_IN_LOGS = 10


@dataclass(frozen=True, slots=True)
class Cloud:
    """An Azure cloud: its Entra ID authority host and the Logs Ingestion API's token scope."""

    authority: str
    scope: str


CLOUDS: Mapping[str, Cloud] = {
    "public": Cloud("login.microsoftonline.com", "https://monitor.azure.com/.default"),
    "usgov": Cloud("login.microsoftonline.us", "https://monitor.azure.us/.default"),
    "china": Cloud("login.chinacloudapi.cn", "https://monitor.azure.cn/.default"),
}


@dataclass(frozen=True, slots=True)
class Authority:
    """Where tokens are requested: ``https://{host}`` (``host`` may carry a port), and the CA
    file its certificate is checked with (None: the CAs ``requests`` trusts)."""

    host: str
    ca_file: str | None = None

    @property
    def origin(self) -> str:
        return f"https://{self.host}"


def operator_authority(cloud: str, environ: Mapping[str, str] | None = None) -> Authority:
    """The authority for ``cloud``: the cloud's own unless the operator set
    :data:`AUTHORITY_HOST_ENV` (an https origin, no path). Raises :class:`ConfigError` for an
    override that is not one."""
    env = os.environ if environ is None else environ
    ca_file = env.get(AUTHORITY_CA_FILE_ENV) or None
    override = (env.get(AUTHORITY_HOST_ENV) or "").strip()
    if not override:
        return Authority(CLOUDS[cloud].authority, ca_file)
    problem = (
        f"{AUTHORITY_HOST_ENV} must be an https origin such as https://login.example.com:8443 "
        "(no path, query or credentials)"
    )
    try:
        parts = urlsplit(override if "://" in override else f"https://{override}")
        parts.port  # noqa: B018  (raises ValueError for a port that is not a number)
    except ValueError:
        raise ConfigError(problem) from None
    clean = parts.path in ("", "/") and not (parts.query or parts.fragment or "@" in parts.netloc)
    if parts.scheme != "https" or not parts.hostname or not clean:
        raise ConfigError(problem)
    return Authority(parts.netloc.lower(), ca_file)


# -- the token side --------------------------------------------------------------------------------


class AuthorityTransport(RequestsTransport):  # type: ignore[misc]
    """azure-core's ``requests`` transport for the credential's requests, kept to the
    authority's origin: any other host is refused before a connection (``invalid_config``).
    No proxies or CA bundles from the environment, ``timeout_s`` to connect and per read, and
    transport failures and 429/5xx answers raised as ``sinks.errors`` (azure-identity wraps
    them; :func:`token_error` finds them again)."""

    def __init__(self, authority: Authority, timeout_s: float) -> None:
        super().__init__(
            use_env_settings=False,
            connection_timeout=timeout_s,
            read_timeout=timeout_s,
            connection_verify=authority.ca_file or True,
        )
        self._origin = authority.origin
        self._target = f"Microsoft Entra ID {authority.host}"

    def send(self, request: Any, **kwargs: Any) -> Any:
        parts = urlsplit(str(request.url))
        if f"{parts.scheme}://{parts.netloc}".lower() != self._origin:
            raise PermanentError(
                f"a token request to host {parts.hostname} was refused: tokens are requested "
                f"from {self._target} only",
                cause="invalid_config",
            )
        try:
            response = super().send(request, **kwargs)
        except (ServiceRequestError, ServiceResponseError) as exc:
            raise _transport_error(exc, self._target) from exc
        status = int(response.status_code)
        if status == 429 or status >= 500:
            retry_after = parse_retry_after(
                vendor.header(response.headers, "Retry-After"), time.time()
            )
            raise vendor.retry_later(
                self._target,
                vendor.retry_kind(status),
                vendor.answered("", status),
                retry_after,
                health="Microsoft Entra ID's",
            )
        return response


def _transport_error(exc: AzureError, target: str) -> DeliveryError:
    failure = vendor.tls_failure(exc, by_name=True)
    if failure is not None:
        return vendor.tls_error(target, failure, endpoint=f"{AUTHORITY_HOST_ENV} (if set)")
    if isinstance(exc, ServiceRequestTimeoutError | ServiceResponseTimeoutError):
        return TransientError(
            f"{target} did not answer a token request in time; if this persists, check the "
            "route from the sink workers to it",
            cause="timeout",
        )
    if isinstance(exc, ServiceRequestError):
        return TransientError(
            f"could not connect to {target} to request a token; if this persists, check that "
            "the sink workers can reach it",
            cause="unreachable",
        )
    return TransientError(
        f"the token request to {target} broke off; if this persists, check any proxy in between",
        cause="transport",
    )


def token_error(exc: BaseException, refused: str) -> DeliveryError:
    """The error behind a failed token request: the transport's own (unreachable, TLS,
    timeout, throttled, another host), else Entra ID's refusal, ``bad_credentials`` with
    ``refused`` and the AADSTS code it gave (never its text: it may echo inputs)."""
    for cause in vendor.causes(exc):
        if isinstance(cause, DeliveryError):
            return cause
    code = _AADSTS.search(str(exc))
    said = f" ({code.group(0)})" if code else ""
    return PermanentError(f"{refused}{said}", cause="bad_credentials")


# -- rows ------------------------------------------------------------------------------------------

_OPTS = orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC


def time_generated(event: Mapping[str, Any], now: float) -> bytes:
    """``TimeGenerated`` of ``event`` as a JSON string: its ``occurred_at``, else its
    ``recorded_at``, else ``now`` (epoch s)."""
    for name in ("occurred_at", "recorded_at"):
        value = event.get(name)
        if hasattr(value, "isoformat"):
            return orjson.dumps(value, option=_OPTS)
    return orjson.dumps(time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)))


def _fitting_text(text: str, budget: int) -> str:
    """The longest prefix of ``text`` whose JSON string takes at most ``budget`` bytes."""
    fits, over = 0, len(text) + 1
    while over - fits > 1:
        middle = (fits + over) // 2
        if len(orjson.dumps(text[:middle])) <= budget:
            fits = middle
        else:
            over = middle
    return text[:fits]


@dataclass(frozen=True, slots=True)
class Row:
    body: bytes
    event_id: str
    truncated: bool = False


def make_row(
    event: Mapping[str, Any], document: bytes, now: float, *, limit: int = MAX_REQUEST_BYTES
) -> Row:
    """The row of ``event`` (``document``: its JSON in the destination's shape, an object):
    ``TimeGenerated`` then the document's fields; a row over ``limit`` bytes (with the array's
    brackets) is replaced by a marked row (see :data:`TRUNCATED_COLUMN`)."""
    stamp = time_generated(event, now)
    head = b'{"TimeGenerated":' + stamp
    body = head + b"}" if document == b"{}" else head + b"," + document[1:]
    event_id = str(event.get("event_id", ""))
    if len(body) + 2 <= limit:
        return Row(body, event_id)
    text = _fitting_text(document.decode("utf-8", "replace"), min(TRUNCATED_TEXT_BYTES, limit // 2))
    marker = {"event_id": event_id, "original_bytes": len(body), "document": text}
    return Row(head + b"," + orjson.dumps({TRUNCATED_COLUMN: marker})[1:], event_id, True)


def request_bodies(rows: Sequence[Row], *, max_bytes: int = MAX_REQUEST_BYTES) -> list[bytes]:
    """The rows, in order, as JSON arrays of at most ``max_bytes`` bytes each."""
    runs = split_runs(
        [len(r.body) for r in rows],
        max_items=MAX_ROWS_PER_REQUEST,
        max_bytes=max_bytes,
        separator=1,
        framing=2,
    )
    return [b"[" + b",".join(r.body for r in rows[run.start : run.stop]) + b"]" for run in runs]


def check_row(destination_id: str, now: float) -> bytes:
    """The destination check's one row, as a request body."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
    marker = {"destination": destination_id, "check_id": str(uuid.uuid4())}
    return orjson.dumps([{"TimeGenerated": stamp, CHECK_COLUMN: marker}])


# -- answers ---------------------------------------------------------------------------------------

_CREDENTIALS_HINT = (
    "check tenant_id (the rule's directory), client_id and client_secret (a client secret "
    "expires: make a new one under the app registration's Certificates & secrets)"
)

REFUSALS: Mapping[int, Refusal] = {
    400: Refusal(
        "invalid_request",
        "the rule refused the rows: check that the stream's columns match what is sent "
        "(TimeGenerated and the event's top-level fields, see docs/adr/015-azure-monitor-logs.md)",
    ),
    401: Refusal("bad_credentials", f"the token was refused: {_CREDENTIALS_HINT}"),
    403: Refusal(
        "access_denied",
        "the application may not send to this rule: assign it the Monitoring Metrics "
        "Publisher role on the data collection rule (a new role assignment takes up to 30 "
        "minutes to apply)",
    ),
    404: Refusal(
        "dcr_missing",
        "no such data collection rule or stream here: check dcr_immutable_id (the rule's "
        "immutableId), stream_name (a stream the rule declares) and that endpoint is the "
        "rule's ingestion endpoint or a data collection endpoint in the rule's region",
    ),
    413: Refusal(
        "request_too_large",
        "a request was over the API's 1 MB: report this (the sink splits below it)",
    ),
}


def classify_answer(
    status: int, headers: Mapping[str, str], content: bytes, now: float, *, target: str
) -> DeliveryError | None:
    """The API's answer as ``None`` (2xx, normally 204) or the error to raise (see
    :data:`REFUSALS`); the error code of the API's JSON answer is added to the message."""
    error = json_answer(content).get("error")
    code = error.get("code") if isinstance(error, dict) else None
    detail = code if isinstance(code, str) and code.isascii() and len(code) <= 80 else ""
    return classify_status(
        status, headers, now, target=target, refusals=REFUSALS, detail=detail.strip()
    )


def _named(ids: Sequence[str]) -> str:
    shown = ", ".join(ids[:_NAMED_IN_LOGS])
    more = len(ids) - _NAMED_IN_LOGS
    return f"{shown} and {more} more" if more > 0 else shown


# -- the sink --------------------------------------------------------------------------------------


def _checked_names(destination: AzureMonitorLogsDestination) -> None:
    """The names that become URL path segments (the rule, the stream, the tenant in the
    authority's URL) and the client id, checked for every destination, stored ones included.
    Raises :class:`ConfigError`."""
    checks = (
        ("dcr_immutable_id", destination.dcr_immutable_id, AZURE_DCR_ID),
        ("stream_name", destination.stream_name, AZURE_STREAM),
        ("tenant_id", destination.tenant_id, AZURE_TENANT_ID),
        ("client_id", destination.client_id, AZURE_CLIENT_ID),
    )
    for name, value, rule in checks:
        if not rule.fullmatch(value):
            raise ConfigError(
                f"destination {destination.id}: {name} is not valid: set it again as Azure shows it"
            )


class AzureMonitorLogsSink:
    """Delivers a destination's batches to Azure Monitor Logs.

    ``client`` is used as given (and left open by :meth:`close`); without one the sink builds
    its own. ``authority`` replaces the operator's (:func:`operator_authority`); ``credential``
    replaces the ``ClientSecretCredential`` (tests); ``clock`` gives the time answers are read
    at.
    """

    type: str = "azure_monitor_logs"

    def __init__(
        self,
        destination: AzureMonitorLogsDestination,
        client: httpx.Client | None = None,
        *,
        address_policy: AddressPolicy | None = None,
        authority: Authority | None = None,
        credential: Any | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        _checked_names(destination)
        self._destination = destination
        self._clock = clock
        self._target = describe_target(
            "Azure Monitor Logs", destination.endpoint, destination.id, "endpoint"
        )
        path = (
            f"/dataCollectionRules/{quote(destination.dcr_immutable_id, safe='')}"
            f"/streams/{quote(destination.stream_name, safe='')}"
        )
        self._url = join_url(destination.endpoint, path) + f"?api-version={API_VERSION}"
        self._authority = authority or operator_authority(destination.cloud)
        self._scope = CLOUDS[destination.cloud].scope
        self._credential = credential or ClientSecretCredential(
            destination.tenant_id,
            destination.client_id,
            destination.client_secret.get_secret_value(),
            authority=self._authority.origin,
            disable_instance_discovery=True,
            transport=AuthorityTransport(self._authority, destination.timeout_s),
            retry_total=0,
        )
        owns = client is None
        if client is None:
            client = build_client(
                destination_id=destination.id,
                timeout_s=destination.timeout_s,
                verify_tls=destination.verify_tls,
                ca_file=destination.ca_file,
                address_policy=address_policy,
                target=self._target,
            )
        self._http = HttpExchange(
            client, target=self._target, address_policy=address_policy, owns_client=owns
        )

    def __repr__(self) -> str:
        return (
            f"AzureMonitorLogsSink(id={self._destination.id!r}, target={self._target!r}, "
            f"stream={self._destination.stream_name!r}, authority={self._authority.host!r})"
        )

    def token(self) -> str:
        """An access token for the Logs Ingestion API (cached by the credential until close to
        its expiry). Raises :class:`DeliveryError` (see :func:`token_error`)."""
        d = self._destination
        try:
            return str(self._credential.get_token(self._scope).token)
        except (AzureError, ValueError, DeliveryError) as exc:
            refused = (
                f"Microsoft Entra ID {self._authority.host} refused a token for application "
                f"{d.client_id} in tenant {d.tenant_id}: {_CREDENTIALS_HINT}"
            )
            raise token_error(exc, refused) from exc

    def rows(self, batch: Batch) -> list[Row]:
        """The rows of ``batch``, in order."""
        now = self._clock()
        documents = batch_documents(batch, self._destination.schema)
        return [
            make_row(event, document, now)
            for event, document in zip(batch.events, documents, strict=True)
        ]

    def write(self, batch: Batch) -> WriteResult:
        """POST ``batch`` once, as as many requests as the 1 MB limit needs. A batch without
        events sends nothing. Raises :class:`DeliveryError` when the token or any request
        fails: nothing then counts as delivered, and the batch is sent again whole."""
        if not batch.events:
            return NOTHING_WRITTEN
        rows = self.rows(batch)
        bodies = request_bodies(rows)
        token = self.token()
        sent = 0
        for body in bodies:
            wire = gzip_body(body) if self._destination.gzip else body
            self._post(wire, token)
            sent += len(wire)
        truncated = [r.event_id for r in rows if r.truncated]
        if truncated:
            log.warning(
                "destination %s: %d events over the Logs Ingestion API's 1 MB per request were "
                "sent as marked rows (column %s): %s",
                self._destination.id,
                len(truncated),
                TRUNCATED_COLUMN,
                _named(truncated),
            )
        return WriteResult(bytes_written=sent, deliveries=len(bodies))

    def _post(self, wire: bytes, token: str) -> int:
        """POST one request body; the API's 2xx status, else raises."""
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        if self._destination.gzip:
            headers["Content-Encoding"] = "gzip"
        response = self._http.send("POST", self._url, headers=headers, content=wire)
        error = classify_answer(
            response.status_code,
            response.headers,
            response.content,
            self._clock(),
            target=self._target,
        )
        if error is not None:
            raise error
        return response.status_code

    def probe(self) -> CheckResult:
        """Check the destination, each call once: a token from Entra ID (a refusal is
        ``bad_credentials``), then one row marked in :data:`CHECK_COLUMN` POSTed to the stream
        as deliveries are (``dcr_missing``, ``access_denied``, ``unreachable``,
        ``tls_failure``, ...). Never raises for a destination problem."""
        steps: list[str] = []
        d = self._destination
        doing = (
            f"requesting a token from Microsoft Entra ID {self._authority.host} for "
            f"application {d.client_id} in tenant {d.tenant_id}"
        )
        try:
            token = self.token()
        except DeliveryError as exc:
            return CheckResult.failure(exc, doing, steps)
        steps.append(f"{doing}: granted")
        doing = f"sending one check row to stream {d.stream_name} at {self._target}"
        body = check_row(d.id, self._clock())
        try:
            status = self._post(gzip_body(body) if d.gzip else body, token)
        except DeliveryError as exc:
            return CheckResult.failure(exc, doing, steps)
        steps.append(f"{doing}: answered {status}")
        return CheckResult(
            True,
            None,
            f"destination {d.id} works: Entra ID granted a token and {self._target} accepted "
            f"a check row for stream {d.stream_name} ({status})",
            steps,
        )

    def is_retryable(self, exc: BaseException) -> bool:
        """Whether ``exc`` is worth another attempt (a ``TransientError``). Never raises."""
        return is_retryable(exc)

    def close(self) -> None:
        """Close the client the sink built and the credential's session. Does not raise."""
        self._http.close()
        close = getattr(self._credential, "close", None)
        if callable(close):
            with contextlib.suppress(Exception):  # closing must not raise
                close()
