"""HTTP delivery shared by the collector sinks (Splunk HEC, Datadog Logs, Azure Monitor Logs).

- :func:`build_client`: the sink's own ``httpx`` client: the destination's TLS settings
  (verification on unless turned off, an operator's CA bundle), its timeout, no redirects, no
  proxies from the environment, and with an address policy every new connection's peer address
  checked (:class:`PeerCheckingBackend`: a name that resolves elsewhere at connect time than
  when it was checked, DNS rebinding, gets no byte).
- :class:`HttpExchange`: one request at a time, the request's host checked against the address
  policy right before it is sent, httpx exceptions mapped onto ``sinks.errors``
  (:func:`sinks.webhook.classify_exception`).
- :func:`classify_status`: a collector's HTTP answer as ``None`` (accepted) or the error to
  raise, a collector's own refusals first (:class:`Refusal`), the webhook's rules for the rest
  (:func:`sinks.webhook.classify_response`: redirects are not followed; 408, 429 and 5xx are
  transient with the ``Retry-After`` asked for).
- Pure helpers: :func:`event_documents` renders each event of a batch as our JSON (a
  collector wraps each one), :func:`split_runs` cuts a batch into requests within a
  collector's limits, :func:`gzip_body` compresses a body the same way every attempt.

Messages name the collector by host (and port) only, never a URL path, a query or a header.
"""

from __future__ import annotations

import gzip
import json
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from auditstream.config.address_policy import AddressPolicy
from auditstream.config.errors import ConfigError
from auditstream.sinks import address_guard
from auditstream.sinks.errors import DeliveryError, PermanentError
from auditstream.sinks.peer_check import PeerCheckingBackend
from auditstream.sinks.render import render_ndjson
from auditstream.sinks.retry import is_retryable_status
from auditstream.sinks.webhook import USER_AGENT, classify_exception, classify_response

GZIP_LEVEL = 6
"""zlib's default: most of the ratio of level 9 at a fraction of its time on JSON."""

_MAX_ANSWER_BYTES = 64 * 1024


# -- pure helpers ----------------------------------------------------------------------------------


def gzip_body(body: bytes, level: int = GZIP_LEVEL) -> bytes:
    """``body`` gzip-compressed with no timestamp in the header, so every attempt at a batch
    sends the same bytes."""
    return gzip.compress(body, compresslevel=level, mtime=0)


def split_runs(
    sizes: Sequence[int],
    *,
    max_items: int,
    max_bytes: int,
    separator: int = 0,
    framing: int = 0,
) -> list[range]:
    """Cut items of ``sizes`` bytes, in order, into consecutive runs, one request each.

    A run of items ``i..j`` costs ``framing + sum(sizes[i..j]) + separator * (j - i)`` bytes
    (a JSON array: framing 2 for the brackets, separator 1 for the commas) and holds at most
    ``max_items`` items and ``max_bytes`` bytes, except that an item over ``max_bytes`` on its
    own is a run of its own (callers shrink such items first when the collector refuses
    them). No run is empty; no items give no runs. Raises ``ValueError`` for a limit below 1.
    """
    if max_items < 1 or max_bytes < 1:
        raise ValueError("max_items and max_bytes must be at least 1")
    runs: list[range] = []
    start = 0
    cost = framing
    for index, size in enumerate(sizes):
        count = index - start
        added = size + (separator if count else 0)
        if count and (count >= max_items or cost + added > max_bytes):
            runs.append(range(start, index))
            start, cost, added = index, framing, size
        cost += added
    if start < len(sizes):
        runs.append(range(start, len(sizes)))
    return runs


def event_documents(events: Sequence[Mapping[str, Any]], schema: str = "native") -> list[bytes]:
    """Each event as our JSON rendering in the event shape ``schema``
    (:func:`sinks.render.render_ndjson`, one line per event: JSON strings never hold a raw
    line break)."""
    if not events:
        return []
    return render_ndjson(events, schema).split(b"\n")[:-1]


def json_answer(content: bytes) -> dict[str, Any]:
    """A collector's JSON answer as a dict; ``{}`` when it is not a JSON object (an HTML error
    page of a proxy, an empty body)."""
    if not content or len(content) > _MAX_ANSWER_BYTES:
        return {}
    try:
        parsed = json.loads(content)
    except (ValueError, UnicodeDecodeError):
        return {}
    return parsed if isinstance(parsed, dict) else {}


def describe_target(kind: str, url: str, destination_id: str, field: str = "url") -> str:
    """``<kind> <host>[:<port>]`` for messages, nothing else of ``url``. Raises
    :class:`ConfigError` when ``url`` is not an http(s) URL with a host."""
    problem = f"destination {destination_id}: {field} is not a valid http(s) URL with a host"
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise ConfigError(f"{problem}: check it") from exc
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ConfigError(f"{problem}: check it")
    port = f":{parsed.port}" if parsed.port is not None else ""
    return f"{kind} {parsed.host}{port}"


def join_url(base: str, path: str) -> str:
    """``base`` (a URL without query) with ``path`` appended to its own path."""
    return base.rstrip("/") + path


# -- answers ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Refusal:
    """How a collector's refusal is reported: the error's ``cause`` and what to check."""

    cause: str
    hint: str


def classify_status(
    status: int,
    headers: Mapping[str, str],
    now: float,
    *,
    target: str,
    refusals: Mapping[int, Refusal],
    detail: str = "",
) -> DeliveryError | None:
    """A collector's HTTP answer as ``None`` (2xx: accepted) or the error to raise.

    A status in ``refusals`` that is not worth a retry is a :class:`PermanentError` with the
    refusal's cause and hint; every other status follows
    :func:`sinks.webhook.classify_response` (3xx permanent, 408, 429 and 5xx transient with the
    ``Retry-After`` asked for, other 4xx permanent). ``detail`` (the collector's own words,
    e.g. ``"Incorrect index"``) is added to the message.
    """
    if 200 <= status < 300:
        return None
    refusal = refusals.get(status)
    said = f" ({detail})" if detail else ""
    if refusal is not None and not is_retryable_status(status):
        return PermanentError(
            f"{target} answered {status}{said}: {refusal.hint}", cause=refusal.cause
        )
    error = classify_response(status, headers, now, target=f"{target}{said}")
    assert error is not None  # not 2xx
    return error


# -- the client ------------------------------------------------------------------------------------


def tls_verification(
    destination_id: str, verify_tls: bool, ca_file: str | None
) -> ssl.SSLContext | bool:
    """What the client verifies servers with: a context trusting ``ca_file`` when set, else
    ``verify_tls``. Raises :class:`ConfigError` when ``ca_file`` does not load."""
    if not ca_file:
        return verify_tls
    try:
        return ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"destination {destination_id}: ca_file {ca_file!r} cannot be loaded "
            f"({exc.strerror or type(exc).__name__}): point it to a PEM file of CA certificates"
        ) from exc


def build_client(
    *,
    destination_id: str,
    timeout_s: float,
    verify_tls: bool,
    ca_file: str | None,
    address_policy: AddressPolicy | None,
    target: str,
) -> httpx.Client:
    """The sink's own client (see the module docstring). Raises :class:`ConfigError` for a CA
    file that does not load."""
    verify = tls_verification(destination_id, verify_tls, ca_file)
    transport = httpx.HTTPTransport(verify=verify, http1=True, http2=False, trust_env=False)
    if address_policy is not None:
        # httpx takes no network backend; its connection pool does (httpcore's own option).
        pool = transport._pool
        pool._network_backend = PeerCheckingBackend(pool._network_backend, address_policy, target)
    return httpx.Client(
        transport=transport,
        timeout=httpx.Timeout(timeout_s),
        follow_redirects=False,
        trust_env=False,
        headers={"User-Agent": USER_AGENT},
    )


class HttpExchange:
    """Sends a sink's requests, one at a time, to a collector named ``target`` in messages.

    ``client`` is closed by :meth:`close` only when ``owns_client``. With an
    ``address_policy``, each request's host is resolved and checked right before it is sent.
    """

    def __init__(
        self,
        client: httpx.Client,
        *,
        target: str,
        address_policy: AddressPolicy | None = None,
        owns_client: bool = True,
    ) -> None:
        self.target = target
        self._client = client
        self._policy = address_policy
        self._owns_client = owns_client

    def send(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        content: bytes | None = None,
        timeout: float | None = None,
    ) -> httpx.Response:
        """The collector's answer to one request, whatever its status. Raises
        :class:`DeliveryError` when no answer came (see :func:`sinks.webhook.classify_exception`),
        the host is refused (``address_refused``) or does not resolve now (``unreachable``), or
        the URL is not usable (``invalid_url``)."""
        address_guard.check_url(self._policy, url, target=self.target)
        extra: dict[str, Any] = {} if timeout is None else {"timeout": httpx.Timeout(timeout)}
        try:
            return self._client.request(method, url, content=content, headers=headers, **extra)
        except httpx.HTTPError as exc:
            raise classify_exception(exc, target=self.target) from exc
        except httpx.InvalidURL as exc:
            raise PermanentError(
                f"{self.target}: the URL is not valid: check the destination's address",
                cause="invalid_url",
            ) from exc

    def close(self) -> None:
        """Close the client when the exchange owns it. Does not raise."""
        if self._owns_client:
            self._client.close()
