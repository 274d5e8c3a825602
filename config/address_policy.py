"""Where may a destination make the platform send requests? (pure, with an injectable resolver)

A tenant chooses webhook URLs and object-store endpoints, and the platform's sink workers then
POST to them: without a policy, a tenant could make the platform reach its own private network
or a cloud metadata service (server-side request forgery). :class:`AddressPolicy` refuses:

- schemes other than ``https`` (and ``http`` when ``allow_http``);
- hosts that resolve to a private (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7),
  loopback (127/8, ::1), link-local (169.254/16, fe80::/10), unspecified, multicast or
  otherwise reserved address, unless the address is inside one of ``allowed_networks``;
- cloud metadata and platform agent addresses (:data:`METADATA_NETWORKS`: the instance
  metadata services of AWS, GCP, Azure, Oracle, Alibaba and others, ECS and EKS credential
  agents, Azure's WireServer), always: an allowed network never opens them, since no
  destination lives there and they hand out the platform's own credentials.

A host is refused if *any* of its addresses is refused (a name may resolve to a public and a
private address). IPv4 addresses embedded in IPv6 (``::ffff:10.0.0.1``, NAT64 ``64:ff9b::/96``,
6to4 ``2002::/16``) are judged by the IPv4 address they carry.

A host name that is not ASCII is resolved in the form HTTP clients (httpx, urllib3) connect to,
IDNA 2008 (``straße`` → ``xn--strae-oqa``), not in the operating system resolver's IDNA 2003
form (``strasse``): checking one name while the client connects to another checks nothing.

The settings API applies the policy when a URL is set; the sinks apply the same policy right
before each request (:meth:`AddressPolicy.check_host`), so a name that later resolves somewhere
else is still refused. The policy never includes a resolved address in its messages.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import idna

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

Resolver = Callable[[str, int], Sequence[str]]
"""``(host, port) -> addresses`` as strings. Raises :class:`OSError` when the name does not
resolve."""

METADATA_NETWORKS: tuple[IPNetwork, ...] = tuple(
    ipaddress.ip_network(cidr)
    for cidr in (
        "169.254.169.254/32",  # AWS, GCP, Azure, Oracle, DigitalOcean, OpenStack, ... IMDS
        "169.254.169.253/32",  # AWS VPC DNS resolver
        "169.254.169.123/32",  # AWS time sync
        "169.254.170.2/32",  # AWS ECS task credentials agent
        "169.254.170.23/32",  # AWS EKS pod identity agent
        "169.254.0.23/32",  # Tencent Cloud metadata
        "100.100.100.200/32",  # Alibaba Cloud metadata
        "168.63.129.16/32",  # Azure WireServer (a public address, so only this list refuses it)
        "192.0.0.192/32",  # Oracle Cloud legacy metadata
        "fd00:ec2::254/128",  # AWS IMDS over IPv6
        "fd00:ec2::253/128",  # AWS VPC DNS resolver over IPv6
        "fd00:ec2::123/128",  # AWS time sync over IPv6
        "fd00:ec2::23/128",  # AWS EKS pod identity agent over IPv6
        "fd20:ce::254/128",  # GCP metadata over IPv6
    )
)
"""Cloud metadata and platform agent addresses: refused even inside an allowed network."""
_IETF_PROTOCOL_ASSIGNMENTS = ipaddress.ip_network("192.0.0.0/24")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_SIXTO4 = ipaddress.ip_network("2002::/16")

# (network, reason), checked in order after the cloud metadata addresses.
_REFUSED: tuple[tuple[IPNetwork, str], ...] = (
    (ipaddress.ip_network("0.0.0.0/8"), "unspecified"),
    (ipaddress.ip_network("127.0.0.0/8"), "loopback"),
    (ipaddress.ip_network("::1/128"), "loopback"),
    (ipaddress.ip_network("::/128"), "unspecified"),
    (ipaddress.ip_network("10.0.0.0/8"), "private"),
    (ipaddress.ip_network("172.16.0.0/12"), "private"),
    (ipaddress.ip_network("192.168.0.0/16"), "private"),
    (ipaddress.ip_network("100.64.0.0/10"), "private"),  # carrier-grade NAT, shared space
    (ipaddress.ip_network("fc00::/7"), "private"),
    (ipaddress.ip_network("169.254.0.0/16"), "link_local"),
    (ipaddress.ip_network("fe80::/10"), "link_local"),
    (ipaddress.ip_network("fec0::/10"), "private"),  # site-local: deprecated, still routed inside
    (ipaddress.ip_network("3fff::/20"), "reserved"),  # documentation (RFC 9637)
    (ipaddress.ip_network("224.0.0.0/4"), "multicast"),
    (ipaddress.ip_network("ff00::/8"), "multicast"),
)

REASON_TEXT = {
    "metadata": "a cloud metadata address",
    "unspecified": "an unspecified address",
    "loopback": "a loopback address",
    "private": "a private address",
    "link_local": "a link-local address",
    "multicast": "a multicast address",
    "reserved": "a reserved address",
}


class UrlRefused(ValueError):
    """The URL or host is not allowed. ``reason`` is a short stable code (``scheme``,
    ``invalid_url``, ``unresolvable``, ``private``, ``loopback``, ...); the message says why
    and never contains a resolved address."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class HostUnresolvable(UrlRefused):
    """The host name does not resolve (now). At delivery time this is worth retrying."""

    def __init__(self, host: str) -> None:
        super().__init__("unresolvable", f"host {host} does not resolve")


def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (A and AAAA), via the operating system."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    return None


def refusal_reason(address: IPAddress) -> str | None:
    """Why ``address`` may not be reached (``metadata``, ``loopback``, ``private``,
    ``link_local``, ``unspecified``, ``multicast``, ``reserved``), or None if it may."""
    inner = _embedded_ipv4(address)
    if inner is not None:
        return refusal_reason(inner)
    if any(address.version == net.version and address in net for net in METADATA_NETWORKS):
        return "metadata"
    for net, reason in _REFUSED:
        if address.version == net.version and address in net:
            return reason
    if address.is_unspecified:
        return "unspecified"
    if address.is_multicast:
        return "multicast"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link_local"
    if address.is_reserved:
        return "reserved"
    if address.is_private:  # documentation, benchmarking and other special ranges
        return "private"
    if address in _IETF_PROTOCOL_ASSIGNMENTS or not address.is_global:
        return "reserved"  # special-purpose ranges no destination is reached through
    return None


def parse_networks(cidrs: Iterable[str]) -> tuple[IPNetwork, ...]:
    """Parse CIDRs (``127.0.0.1/32``, ``10.1.0.0/16``, ``::1/128``). Raises ``ValueError``
    naming the bad one."""
    out: list[IPNetwork] = []
    for cidr in cidrs:
        try:
            out.append(ipaddress.ip_network(cidr.strip(), strict=False))
        except ValueError as exc:
            raise ValueError(f"{cidr!r} is not a network in CIDR notation: {exc}") from None
    return tuple(out)


@dataclass(frozen=True)
class AddressPolicy:
    """Which URLs and hosts the platform may send requests to (see the module docstring)."""

    allow_http: bool = False
    allowed_networks: tuple[IPNetwork, ...] = ()
    resolver: Resolver = field(default=system_resolver, compare=False)

    def address_allowed(self, address: IPAddress) -> str | None:
        """None if ``address`` may be reached, else the refusal reason. A metadata address is
        refused even inside an allowed network."""
        reason = refusal_reason(address)
        if reason == "metadata":
            return reason
        if any(address.version == net.version and address in net for net in self.allowed_networks):
            return None
        return reason

    def check_host(self, host: str, port: int) -> None:
        """Resolve ``host`` and check every address. Raises :class:`HostUnresolvable` or
        :class:`UrlRefused`. A host that is not ASCII is resolved in its IDNA 2008 form, the
        name HTTP clients connect to (see the module docstring)."""
        host = connection_host(host)
        literal = _ip_literal(host)
        if literal is not None:
            addresses: list[IPAddress] = [literal]
        else:
            try:
                resolved = self.resolver(host, port)
            except (OSError, UnicodeError):
                raise HostUnresolvable(host) from None
            addresses = []
            for text in resolved:
                try:
                    # A scoped IPv6 address ("fe80::1%eth0") is judged without its scope.
                    addresses.append(ipaddress.ip_address(text.split("%", 1)[0]))
                except ValueError:
                    continue
            if not addresses:
                raise HostUnresolvable(host)
        for address in addresses:
            reason = self.address_allowed(address)
            if reason is not None:
                what = f"{host} is" if literal is not None else f"host {host} resolves to"
                raise UrlRefused(
                    reason,
                    f"{what} {REASON_TEXT[reason]}; destinations must be reachable on a public "
                    "address",
                )

    def check_url(self, url: str, *, resolve: bool = True) -> None:
        """Check the scheme and (when ``resolve``) the host of ``url``. Raises
        :class:`UrlRefused` (or :class:`HostUnresolvable`)."""
        host, port = self.split_url(url)
        if resolve:
            self.check_host(host, port)

    def split_url(self, url: str) -> tuple[str, int]:
        """(host, port) of an allowed-scheme URL. Raises :class:`UrlRefused`."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise UrlRefused("invalid_url", "not a valid URL") from None
        scheme = parts.scheme.lower()
        allowed = ("https", "http") if self.allow_http else ("https",)
        if scheme not in allowed:
            need = "https or http" if self.allow_http else "https"
            raise UrlRefused("scheme", f"the URL must use {need}, not {scheme or 'no scheme'}")
        host = parts.hostname
        if not host:
            raise UrlRefused("invalid_url", "the URL has no host")
        if port == 0:
            raise UrlRefused("invalid_url", "the URL's port must be 1-65535")
        return host, port if port is not None else (443 if scheme == "https" else 80)


def connection_host(host: str) -> str:
    """``host`` as HTTP clients connect to it: unchanged when ASCII, else its IDNA 2008 form,
    as httpx and urllib3 encode it. Raises :class:`UrlRefused` for a name they cannot encode."""
    if host.isascii():
        return host
    try:
        return idna.encode(host.lower()).decode("ascii")
    except (idna.IDNAError, UnicodeError):
        raise UrlRefused("invalid_url", "the host is not a valid host name") from None


def _ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None
