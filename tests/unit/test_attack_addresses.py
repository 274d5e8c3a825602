"""Addresses a tenant may try to slip past the address policy (pure; the resolver is a table).

- IPv6 ranges that are internal without being "private" to Python's ``ipaddress``: site-local
  ``fec0::/10`` (deprecated, still routed inside some networks) and the documentation prefix
  ``3fff::/20``.
- Internationalised host names, which resolvers and HTTP clients read differently: the
  operating system's resolver (``socket.getaddrinfo``) encodes a Unicode name with IDNA 2003
  (``straße`` → ``strasse``) while httpx and urllib3 connect to its IDNA 2008 form
  (``xn--strae-oqa``). A check that resolves one name while the client connects to another
  checks nothing, so the policy resolves the name the clients connect to, and new settings
  must write such a host in its ASCII form.
- Port 0, which no destination listens on.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from urllib3.util import parse_url

from auditstream.config.address_policy import AddressPolicy, UrlRefused, refusal_reason
from auditstream.config.destinations import STORED, WebhookDestination
from auditstream.config.fields import RoleKind, fields_with_role
from auditstream.sinks.errors import DeliveryError
from auditstream.sinks.registry import KINDS
from auditstream.sinks.webhook import WebhookSink

PUBLIC = "93.184.216.34"
# One tenant-owned domain: its IDNA 2003 and IDNA 2008 spellings answer differently.
NAMES = {
    "strasse.example.com": [PUBLIC],
    "xn--strae-oqa.example.com": ["10.0.0.5"],
    "siem.example.com": [PUBLIC],
}


def _os_like_resolver(host: str, _port: int) -> list[str]:
    """Resolves as ``socket.getaddrinfo`` does: a ``str`` host is encoded with Python's IDNA
    2003 codec first."""
    try:
        return list(NAMES[host.encode("idna").decode("ascii").lower()])
    except (KeyError, UnicodeError):
        raise OSError("unknown name") from None


POLICY = AddressPolicy(resolver=_os_like_resolver)


@pytest.mark.parametrize(
    "address",
    ["fec0::1", "fec0:1234::abcd", "feff:ffff::1", "3fff::1", "3fff:fff::1"],
)
def test_internal_ipv6_ranges_outside_pythons_private_list_are_refused(address: str) -> None:
    assert refusal_reason(ipaddress.ip_address(address)) is not None
    with pytest.raises(UrlRefused):
        POLICY.check_url(f"https://[{address}]/in")


@pytest.mark.parametrize("address", ["2606:4700:4700::1111", "2a00:1450:4001::1", "4000::1"])
def test_neighbouring_global_ipv6_addresses_stay_allowed(address: str) -> None:
    reason = refusal_reason(ipaddress.ip_address(address))
    assert reason in (None, "reserved")
    if address != "4000::1":
        assert reason is None


def test_http_clients_connect_to_the_idna_2008_name() -> None:
    """Why: the names below are what the policy must resolve."""
    assert httpx.URL("https://straße.example.com/in").raw_host == b"xn--strae-oqa.example.com"
    assert parse_url("https://straße.example.com/in").host == "xn--strae-oqa.example.com"
    assert "straße.example.com".encode("idna") == b"strasse.example.com"  # getaddrinfo's


@pytest.mark.parametrize("host", ["straße.example.com", "STRAßE.example.com"])
def test_a_unicode_host_is_resolved_as_http_clients_connect_to_it(host: str) -> None:
    with pytest.raises(UrlRefused) as refused:
        POLICY.check_host(host, 443)
    assert refused.value.reason == "private"
    with pytest.raises(UrlRefused):
        POLICY.check_url(f"https://{host}/in")
    POLICY.check_host("siem.example.com", 443)


FULLWIDTH_LOOPBACK = "\uff11\uff12\uff17.\uff10.\uff10.\uff11"  # 127.0.0.1 in fullwidth digits


@pytest.mark.parametrize(
    "host", ["127\u30020\u30020\u30021", FULLWIDTH_LOOPBACK, "xn--.example.com\u3002"]
)
def test_a_unicode_spelling_of_an_address_is_judged_as_that_address(host: str) -> None:
    with pytest.raises(UrlRefused):
        POLICY.check_host(host, 443)


def test_the_webhook_sink_checks_the_host_it_connects_to() -> None:
    """httpx hands the sink the decoded host (``straße``) of an ASCII URL: the check must
    still resolve the name httpx connects to."""
    destination = WebhookDestination.model_validate(
        {"id": "d", "url": "https://xn--strae-oqa.example.com/in", "secret": "s"}
    )
    sink = WebhookSink(destination, address_policy=POLICY)
    try:
        with pytest.raises(DeliveryError) as refused:
            sink.check_address()
    finally:
        sink.close()
    assert refused.value.cause == "address_refused"


def _address_fields() -> list[tuple[str, str]]:
    return [
        (type_key, name)
        for type_key, kind in KINDS.items()
        for name in fields_with_role(kind.model, RoleKind.ADDRESS)
    ]


MINIMAL: dict[str, dict[str, Any]] = {
    "webhook": {"url": "https://siem.example.com/in", "secret": "s"},
    "s3": {"bucket": "acme-audit", "access_key_id": "a", "secret_access_key": "b"},
    "gcs": {"bucket": "acme-audit", "anonymous": True, "endpoint": "https://siem.example.com"},
    "azure_blob": {
        "container": "audit",
        "account_url": "https://acct.blob.core.windows.net",
        "sas_token": "sv=1",
    },
    "splunk_hec": {"url": "https://siem.example.com", "token": "hec-token-1"},
    "datadog_logs": {"api_key": "a" * 32},
    "azure_monitor_logs": {
        "dcr_immutable_id": "dcr-" + "0" * 32,
        "stream_name": "Custom-AuditStream_CL",
        "tenant_id": "contoso.onmicrosoft.com",
        "client_id": "11111111-2222-3333-4444-555555555555",
        "client_secret": "s",
    },
}


@pytest.mark.parametrize(("type_key", "field"), _address_fields())
@pytest.mark.parametrize(
    "url",
    [
        "https://straße.example.com/in",
        "https://siem.example.com:0/in",
        "https://siem.example.com\u3002/in",
        "https://\uff53\uff49\uff45\uff4d.example.com/in",
    ],
)
def test_new_settings_refuse_unicode_hosts_and_port_0_in_every_address(
    type_key: str, field: str, url: str
) -> None:
    model = KINDS[type_key].model
    assert type_key in MINIMAL, f"add a minimal {type_key} destination to MINIMAL"
    data = {"id": "d", "type": type_key, **MINIMAL[type_key], field: url}
    with pytest.raises(ValidationError) as refused:
        model.model_validate(data)
    errors = refused.value.errors(include_input=False)
    assert any(field in str(e["msg"]) or field in e["loc"] for e in errors)
    assert all("straße" not in str(e["msg"]) for e in errors)
    if "\u3002" not in url and "\uff53" not in url:  # stored before the rule: still loads
        model.model_validate(data, context=STORED)


def test_port_0_is_refused_by_the_policy() -> None:
    with pytest.raises(UrlRefused) as refused:
        POLICY.check_url("https://siem.example.com:0/in")
    assert refused.value.reason == "invalid_url"
    POLICY.check_url("https://siem.example.com:8443/in")


@pytest.mark.parametrize(
    "connection_string",
    [
        "BlobEndpoint=https://straße.example.com/acct;SharedAccessSignature=sv=1",
        "BlobEndpoint=https://acct.blob.core.windows.net:0;SharedAccessSignature=sv=1",
    ],
)
def test_a_connection_strings_endpoints_follow_the_same_rules(connection_string: str) -> None:
    """Nested addresses are addresses: a host in ASCII, never port 0."""
    model = KINDS["azure_blob"].model
    with pytest.raises(ValidationError) as refused:
        model.model_validate(
            {"id": "d", "container": "audit", "connection_string": connection_string}
        )
    assert "straße" not in str(refused.value.errors(include_input=False))
