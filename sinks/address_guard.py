"""The address policy at connection time: every sink that connects to a tenant-chosen host checks
the host right before each request, as the HTTP library will reach it.

A name that was public when the destination was saved may resolve to loopback or a metadata
address later (DNS rebinding), and a store may redirect a request or hand out an upload URL on
another host. So the check runs on the final URL of every request, inside each vendor SDK's own
request path (an httpx call, a botocore ``before-send`` hook, a requests transport adapter, an
azure-core transport), and a refused host gets no connection at all.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from urllib3.exceptions import LocationParseError
from urllib3.util import parse_url

from auditstream.config.address_policy import AddressPolicy, HostUnresolvable, UrlRefused
from auditstream.sinks.errors import PermanentError, TransientError


def check_host(policy: AddressPolicy | None, host: str, port: int, *, target: str) -> None:
    """Resolve ``host`` and refuse it if any of its addresses is not allowed (nothing to do
    without a ``policy``). ``target`` names the destination in messages (never an address).

    Raises :class:`PermanentError` (cause ``address_refused``) for a refused host, or
    :class:`TransientError` (cause ``unreachable``) when the name does not resolve now.
    """
    if policy is None:
        return
    try:
        policy.check_host(host, port)
    except HostUnresolvable as exc:
        raise TransientError(
            f"{target}: the host does not resolve; if this persists, check the destination's "
            "address and DNS",
            cause="unreachable",
        ) from exc
    except UrlRefused as exc:
        raise PermanentError(
            f"{target} refused before connecting: {exc}", cause="address_refused"
        ) from exc


def request_host(url: str) -> tuple[str, int] | None:
    """``(host, port)`` of an absolute http(s) URL as urllib3 (the connection layer of requests,
    botocore and azure-core) reads it, or None when it has no host or when Python's own URL
    parser reads another host or port (parsers disagree on backslashes, for one: the host
    checked must be the host connected to)."""
    try:
        theirs = parse_url(url)
        ours = urlsplit(url)
        our_port = ours.port
    except (LocationParseError, ValueError):
        return None
    scheme = (theirs.scheme or "").lower()
    host = (theirs.host or "").strip("[]").lower()
    if not host or scheme not in ("http", "https"):
        return None
    if host != (ours.hostname or "").lower() or theirs.port != our_port:
        return None
    return host, theirs.port or (443 if scheme == "https" else 80)


def check_url(policy: AddressPolicy | None, url: str, *, target: str) -> None:
    """:func:`check_host` for the host and port of ``url`` (an absolute http(s) URL a client is
    about to request, read by :func:`request_host`). Raises as :func:`check_host` does; a URL
    without a host, or one URL parsers read differently, is refused."""
    if policy is None:
        return
    where = request_host(url)
    if where is None:
        raise PermanentError(
            f"{target} refused before connecting: the request URL has no host, or URL parsers "
            "read different hosts in it; check the destination's address",
            cause="address_refused",
        )
    check_host(policy, where[0], where[1], target=target)
