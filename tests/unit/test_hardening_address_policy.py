"""Cloud metadata and platform agent addresses are refused, and no allowed network opens them."""

from __future__ import annotations

import ipaddress

import pytest

from auditstream.config.address_policy import (
    METADATA_NETWORKS,
    AddressPolicy,
    UrlRefused,
    parse_networks,
    refusal_reason,
)
from tests.fake_resolver import fake_resolver

METADATA = [
    "169.254.169.254",
    "169.254.169.253",
    "169.254.169.123",
    "169.254.170.2",
    "169.254.170.23",
    "169.254.0.23",
    "100.100.100.200",
    "168.63.129.16",
    "192.0.0.192",
    "fd00:ec2::254",
    "fd00:ec2::253",
    "fd00:ec2::123",
    "fd00:ec2::23",
    "fd20:ce::254",
    "::ffff:168.63.129.16",  # the same address, IPv4-mapped
    "::ffff:100.100.100.200",
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
]


@pytest.mark.parametrize("address", METADATA)
def test_metadata_addresses_are_refused_as_metadata(address: str) -> None:
    assert refusal_reason(ipaddress.ip_address(address)) == "metadata"


@pytest.mark.parametrize("address", METADATA)
def test_no_allowed_network_opens_a_metadata_address(address: str) -> None:
    policy = AddressPolicy(
        allowed_networks=parse_networks(["0.0.0.0/0", "::/0", "168.63.129.16/32"]),
        resolver=fake_resolver({"wire.example.com": [address]}),
    )
    with pytest.raises(UrlRefused) as caught:
        policy.check_url("https://wire.example.com/")
    assert caught.value.reason == "metadata"
    assert address not in str(caught.value)


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("168.63.129.17", None),  # its neighbour is an ordinary public address
        ("100.100.100.201", "private"),  # shared address space, still refused
        ("192.0.0.193", "reserved"),  # IETF protocol assignments
        ("169.254.170.3", "link_local"),
    ],
)
def test_neighbours_of_metadata_addresses(address: str, reason: str | None) -> None:
    assert refusal_reason(ipaddress.ip_address(address)) == reason


def test_allowed_networks_still_open_ordinary_private_addresses() -> None:
    policy = AddressPolicy(
        allowed_networks=parse_networks(["127.0.0.1/32", "169.254.0.0/16"]),
        resolver=fake_resolver({}),
    )
    policy.check_host("127.0.0.1", 443)
    policy.check_host("169.254.1.1", 443)
    with pytest.raises(UrlRefused):
        policy.check_host("169.254.169.254", 80)


def test_every_metadata_network_is_a_single_address() -> None:
    assert all(net.num_addresses == 1 for net in METADATA_NETWORKS)
