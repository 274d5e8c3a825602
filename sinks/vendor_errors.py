"""Reading vendor exceptions: the pure helpers the object-store sinks share.

boto3, google-cloud-storage and azure-storage-blob each wrap the exception that really
happened (a refused connection, a TLS failure) in one or more of their own. The first half
finds what is behind a vendor exception (:func:`causes`, :func:`tls_failure`, headers); the
second builds the errors the three stores raise alike (TLS, timeouts, a retryable answer),
so each sink's ``classify_*_error`` keeps only its vendor's rules. No vendor library is
imported here. Messages name the target and what to check, never a secret or the vendor's
own text.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from auditstream.sinks.errors import DeliveryError, PermanentError, TransientError

# -- what is behind a vendor exception -------------------------------------------------------------


def causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and every exception behind it, nearest first, each once.

    Follows ``raise ... from`` (``__cause__``), ``except`` blocks (``__context__``),
    azure-core's ``inner_exception``, urllib3's ``reason``, botocore's ``kwargs['error']``
    and exceptions passed as arguments (requests and urllib3 wrap that way). Cycles are
    safe.
    """
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        kwargs = getattr(current, "kwargs", None)
        wrapped = [
            current.__cause__,
            current.__context__,
            getattr(current, "inner_exception", None),
            getattr(current, "reason", None),
            kwargs.get("error") if isinstance(kwargs, dict) else None,
            *current.args,
        ]
        pending.extend(w for w in wrapped if isinstance(w, BaseException))


class TlsFailure(NamedTuple):
    """A TLS failure found behind an exception."""

    reason: str
    """OpenSSL's short reason (``certificate has expired``, ...), or a generic phrase."""
    hung_up: bool
    """Only the peer closing the connection mid-handshake: a retry may well get past it."""


HANDSHAKE_FAILED = TlsFailure("TLS handshake failed", hung_up=False)
"""A TLS failure whose reason is not known."""

_HUNG_UP = TlsFailure("the connection was closed during the TLS handshake", hung_up=True)


def tls_failure(exc: BaseException, *, by_name: bool = False) -> TlsFailure | None:
    """The first TLS failure behind ``exc`` (see :func:`causes`), or ``None``.

    An ``ssl.SSLEOFError`` or ``ssl.SSLZeroReturnError`` is the peer hanging up; any other
    ``ssl.SSLError`` is permanent, with OpenSSL's ``verify_message`` or ``reason`` (else its
    class name). With ``by_name``, when no ``ssl`` error is in the chain, an exception merely
    named ``SSLError`` (requests', urllib3's or botocore's wrapper) counts as
    :data:`HANDSHAKE_FAILED`: the real ``ssl`` error, when present, always wins, so its reason
    is reported and a hang-up stays transient.
    """
    chain = list(causes(exc))
    for cause in chain:
        if isinstance(cause, ssl.SSLEOFError | ssl.SSLZeroReturnError):
            return _HUNG_UP
        if isinstance(cause, ssl.SSLError):
            for attribute in ("verify_message", "reason"):
                value = getattr(cause, attribute, None)
                if isinstance(value, str) and value:
                    return TlsFailure(value, hung_up=False)
            return TlsFailure(type(cause).__name__, hung_up=False)
    if by_name and any(type(cause).__name__ == "SSLError" for cause in chain):
        return HANDSHAKE_FAILED
    return None


def header(headers: Mapping[Any, Any], name: str) -> str | None:
    """The value of header ``name``, whatever the case of its key; ``None`` when absent or
    not text."""
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        value = next((v for k, v in headers.items() if str(k).lower() == lowered), None)
    return value if isinstance(value, str) else None


def response_header(exc: BaseException, name: str) -> str | None:
    """Header ``name`` of the response ``exc`` carries as ``response.headers`` (requests,
    google-api-core, azure-core), as :func:`header` reads it; ``None`` without one."""
    headers = getattr(getattr(exc, "response", None), "headers", None)
    return header(headers, name) if isinstance(headers, Mapping) else None


def answered(code: str, status: int | None) -> str:
    """What the service answered, for a message: ``" (NoSuchBucket, HTTP 404)"``,
    ``" (HTTP 503)"``, or ``""`` when neither is known."""
    parts = [p for p in (code, f"HTTP {status}" if status is not None else "") if p]
    return f" ({', '.join(parts)})" if parts else ""


def host_of(url: str | None) -> str | None:
    """``host[:port]`` of ``url``, nothing else (no user info, path or query, where a SAS
    token or a key may be); ``None`` when ``url`` has no host."""
    if not url:
        return None
    try:
        parts = urlsplit(url)
        host = parts.hostname
        port = parts.port
    except ValueError:
        return None
    if not host:
        return None
    return f"{host}:{port}" if port is not None else host


# -- errors every object store raises alike -------------------------------------------------------

RETRY_WHAT = {
    "throttled": "asked to slow down",
    "timeout": "timed out waiting for the request",
    "unavailable": "is temporarily unavailable",
}
"""What the service did, by the ``cause`` of the transient error, for a message."""


def retry_kind(status: int) -> str:
    """The ``cause`` of a retryable HTTP status: ``throttled`` (429), ``timeout`` (408) or
    ``unavailable`` (5xx and the rest)."""
    return {429: "throttled", 408: "timeout"}.get(status, "unavailable")


def retry_later(
    who: str,
    kind: str,
    answer: str,
    retry_after: float | None,
    *,
    what: str | None = None,
    health: str = "the service's",
) -> TransientError:
    """The error for an answer worth a retry: ``who`` did ``what`` (default: by ``kind``,
    see :data:`RETRY_WHAT`), ``answer`` (see :func:`answered`) and the wait it asked for."""
    asked = f", asking to retry after {retry_after:g} s" if retry_after is not None else ""
    return TransientError(
        f"{who} {what or RETRY_WHAT[kind]}{answer}{asked}; if this persists, check {health} health",
        cause=kind,
        retry_after=retry_after,
    )


def rejected(who: str, answer: str, *, settings: str) -> PermanentError:
    """The error for a refusal no rule knows: check the destination's ``settings``."""
    return PermanentError(
        f"{who} rejected the request{answer}: check the destination settings ({settings})",
        cause="rejected",
    )


def tls_error(target: str, failure: TlsFailure | None, *, endpoint: str) -> DeliveryError:
    """The error for a TLS failure talking to ``target`` (``None``: reason unknown).

    A hang-up is transient (``unreachable``); anything else is permanent (``tls_failure``)
    and tells to check that ``endpoint`` (the setting, e.g. ``endpoint_url``) serves HTTPS.
    """
    reason, hung_up = failure or HANDSHAKE_FAILED
    if hung_up:
        return TransientError(
            f"could not connect to {target}: {reason}; if this persists, check the endpoint "
            "and any proxy in between",
            cause="unreachable",
        )
    return PermanentError(
        f"{target}: TLS failed ({reason}): check that {endpoint} serves HTTPS with a "
        "certificate the sink workers trust",
        cause="tls_failure",
    )


def connect_timed_out(target: str, *, reachable: str = "the endpoint") -> TransientError:
    """Connecting to ``target`` timed out; ``reachable`` is what to check the route to."""
    return TransientError(
        f"connecting to {target} timed out; if this persists, check that {reachable} is "
        "reachable from the sink workers",
        cause="timeout",
    )


def read_timed_out(target: str, *, health: str = "the service's") -> TransientError:
    """``target`` took the request but did not answer in time."""
    return TransientError(
        f"{target} did not answer in time; if this persists, check {health} health",
        cause="timeout",
    )


def exchange_failed(target: str, exc: BaseException) -> TransientError:
    """Some other failure of the vendor's transport, named by class only."""
    return TransientError(
        f"the exchange with {target} failed ({type(exc).__name__})", cause="transport"
    )


def unexpected(target: str, exc: BaseException) -> TransientError:
    """An exception the sink did not expect from its vendor library, named by class only."""
    return TransientError(
        f"unexpected error talking to {target} ({type(exc).__name__})", cause="unexpected"
    )
