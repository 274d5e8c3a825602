"""URL safety of destination endpoints (pure; the resolver is a table, no DNS)."""

from __future__ import annotations

import ipaddress

import pytest

from auditstream.config.address_policy import (
    AddressPolicy,
    HostUnresolvable,
    UrlRefused,
    parse_networks,
    refusal_reason,
)
from tests.fake_resolver import fake_resolver

NAMES = {
    "siem.example.com": ["93.184.216.34"],
    "v6.example.com": ["2606:2800:220:1:248:1893:25c8:1946"],
    "loop.example.com": ["127.0.0.1"],
    "ten.example.com": ["10.0.0.1"],
    "meta.example.com": ["169.254.169.254"],
    "v6loop.example.com": ["::1"],
    "mixed.example.com": ["93.184.216.34", "192.168.1.20"],
    "mapped.example.com": ["::ffff:10.1.2.3"],
    "ula.example.com": ["fd12:3456::1"],
    "ec2v6.example.com": ["fd00:ec2::254"],
}
POLICY = AddressPolicy(resolver=fake_resolver(NAMES))


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("93.184.216.34", None),
        ("8.8.8.8", None),
        ("2606:4700:4700::1111", None),
        ("127.0.0.1", "loopback"),
        ("127.9.9.9", "loopback"),
        ("::1", "loopback"),
        ("10.0.0.1", "private"),
        ("10.255.255.255", "private"),
        ("172.16.0.1", "private"),
        ("172.31.255.254", "private"),
        ("172.32.0.1", None),
        ("192.168.0.1", "private"),
        ("100.64.0.1", "private"),
        ("fc00::1", "private"),
        ("fd12:3456::1", "private"),
        ("169.254.1.1", "link_local"),
        ("fe80::1", "link_local"),
        ("169.254.169.254", "metadata"),
        ("fd00:ec2::254", "metadata"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:169.254.169.254", "metadata"),
        ("64:ff9b::a00:1", "private"),  # NAT64 of 10.0.0.1
        ("2002:a00:1::1", "private"),  # 6to4 of 10.0.0.1
        ("240.0.0.1", "reserved"),
    ],
)
def test_refusal_reason(address: str, reason: str | None) -> None:
    assert refusal_reason(ipaddress.ip_address(address)) == reason


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://siem.example.com/ingest", None),
        ("https://v6.example.com/", None),
        ("https://siem.example.com:8443/x?y=1", None),
        ("http://siem.example.com/ingest", "scheme"),
        ("ftp://siem.example.com/", "scheme"),
        ("siem.example.com/ingest", "scheme"),
        ("https:///nohost", "invalid_url"),
        ("https://siem.example.com:99999/", "invalid_url"),
        ("https://127.0.0.1/", "loopback"),
        ("https://10.0.0.1/", "private"),
        ("https://169.254.169.254/latest/meta-data/", "metadata"),
        ("https://[::1]/", "loopback"),
        ("https://[::ffff:10.0.0.1]/", "private"),
        ("https://loop.example.com/", "loopback"),
        ("https://ten.example.com/", "private"),
        ("https://meta.example.com/", "metadata"),
        ("https://v6loop.example.com/", "loopback"),
        ("https://mixed.example.com/", "private"),  # any refused address refuses the host
        ("https://mapped.example.com/", "private"),
        ("https://ula.example.com/", "private"),
        ("https://ec2v6.example.com/", "metadata"),
        ("https://user:pw@10.0.0.1/", "private"),
        ("https://nowhere.example.com/", "unresolvable"),
    ],
)
def test_check_url(url: str, reason: str | None) -> None:
    if reason is None:
        POLICY.check_url(url)
        return
    with pytest.raises(UrlRefused) as caught:
        POLICY.check_url(url)
    assert caught.value.reason == reason


def test_messages_never_show_a_resolved_address() -> None:
    with pytest.raises(UrlRefused) as caught:
        POLICY.check_url("https://ten.example.com/")
    assert "10.0.0.1" not in str(caught.value)
    assert "ten.example.com" in str(caught.value)


def test_unresolvable_is_its_own_error() -> None:
    with pytest.raises(HostUnresolvable):
        POLICY.check_url("https://nowhere.example.com/")


def test_http_only_when_allowed() -> None:
    policy = AddressPolicy(allow_http=True, resolver=fake_resolver(NAMES))
    policy.check_url("http://siem.example.com/")
    with pytest.raises(UrlRefused):
        policy.check_url("ftp://siem.example.com/")


@pytest.mark.parametrize(
    ("networks", "url", "allowed"),
    [
        (["127.0.0.1/32"], "https://127.0.0.1:8080/", True),
        (["127.0.0.1/32"], "https://loop.example.com/", True),
        (["127.0.0.1/32"], "https://127.0.0.2/", False),
        (["127.0.0.1/32"], "https://[::1]/", False),
        (["10.0.0.0/8"], "https://ten.example.com/", True),
        (["10.0.0.0/8"], "https://meta.example.com/", False),
        (["::1/128"], "https://[::1]/", True),
        (["192.168.0.0/16"], "https://mixed.example.com/", True),
    ],
)
def test_allowed_networks(networks: list[str], url: str, allowed: bool) -> None:
    policy = AddressPolicy(allowed_networks=parse_networks(networks), resolver=fake_resolver(NAMES))
    if allowed:
        policy.check_url(url)
    else:
        with pytest.raises(UrlRefused):
            policy.check_url(url)


def test_parse_networks_names_the_bad_one() -> None:
    with pytest.raises(ValueError, match="not-a-net"):
        parse_networks(["10.0.0.0/8", "not-a-net"])


def test_without_resolving_only_the_scheme_is_checked() -> None:
    POLICY.check_url("https://nowhere.example.com/", resolve=False)
    with pytest.raises(UrlRefused):
        POLICY.check_url("http://nowhere.example.com/", resolve=False)
