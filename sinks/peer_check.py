"""The check of the address each new HTTP connection reached (DNS rebinding), shared by the
webhook sink and the collector sinks."""

from __future__ import annotations

import ipaddress
import typing

import httpcore

from auditstream.config.address_policy import REASON_TEXT, AddressPolicy
from auditstream.sinks.errors import PermanentError


class PeerCheckingBackend(httpcore.NetworkBackend):
    """Checks the address each new connection reached against the address policy: the host is
    checked before each request, but the connection resolves the name again, so a name that
    answered a public address to the check and a private one to the connection (DNS
    rebinding) is closed here, before a byte is sent."""

    def __init__(self, inner: httpcore.NetworkBackend, policy: AddressPolicy, target: str) -> None:
        self._inner = inner
        self._policy = policy
        self._target = target

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        stream = self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        reason: str | None = "unspecified"
        try:
            peer = stream.get_extra_info("socket").getpeername()[0]
            reason = self._policy.address_allowed(ipaddress.ip_address(peer.split("%", 1)[0]))
        except (OSError, ValueError, AttributeError, IndexError):
            pass  # an address that cannot be read is refused
        if reason is not None:
            stream.close()
            raise PermanentError(
                f"{self._target} refused after connecting: the connection reached "
                f"{REASON_TEXT.get(reason, 'a refused address')}; destinations must be "
                "reachable on a public address",
                cause="address_refused",
            )
        return stream

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        raise PermanentError(f"{self._target}: not a network address", cause="address_refused")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)
