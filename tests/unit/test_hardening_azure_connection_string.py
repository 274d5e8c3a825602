"""Azure connection strings: read as strictly as the SDK reads them, and every endpoint the SDK
would use is among the ones the address policy checks."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from azure.storage.blob._shared.base_client import parse_connection_str
from hypothesis import given, settings
from hypothesis import strategies as st

from auditstream.config import azure_connection_string as acs

KEY = "a2V5"
MARKER = "zq-marker-71c"


@pytest.mark.parametrize(
    "text",
    [
        # a host and port where an account name belongs
        f"AccountName=127.0.0.1:10000/x#;AccountKey={KEY}",
        f"AccountName=evil.example.com;AccountKey={KEY}",
        f"AccountName=acct@10.0.0.1;AccountKey={KEY}",
        # a key written twice, once with a space before '=' (the SDK reads another key)
        f"BlobEndpoint=https://acct.blob.core.windows.net;BlobEndpoint =http://127.0.0.1;AccountKey={KEY}",
        f"BlobEndpoint=https://acct.blob.core.windows.net;blobendpoint=http://127.0.0.1;AccountKey={KEY}",
        f" BlobEndpoint=http://127.0.0.1;AccountName=acct;AccountKey={KEY}",
        f"BlobEndpoint=http://127.0.0.1;AccountName=acct ;AccountKey={KEY}",
        # keys that upper-case onto a known key in the SDK but not here (or the other way)
        f"AccountName=acct;AccountKey={KEY};BlobEndpo\u0131nt=http://127.0.0.1",
        f"AccountName=acct;AccountKey={KEY};EndpointSuffi\u017f=internal",
        f"AccountName=acct;Account\u212aey={KEY}",
        # values the SDK would read differently
        f"BlobEndpoint= http://127.0.0.1;AccountKey={KEY}",
        f"BlobEndpoint=127.0.0.1:10000;AccountKey={KEY}",  # the SDK prefixes https://
        f"BlobEndpoint=https://user@127.0.0.1;AccountKey={KEY}",
        f"BlobEndpoint=https://acct.blob.core.windows.net?sv=x;AccountKey={KEY}",
        f"BlobEndpoint=https://good.example.com\\@127.0.0.1;AccountKey={KEY}",
        f"BlobEndpoint=ftp://acct.blob.core.windows.net;AccountKey={KEY}",
        f"BlobEndpoint=https://acct.blob.core.windows.net\n;AccountKey={KEY}",
        f"DefaultEndpointsProtocol=http://127.0.0.1:10000/x?;AccountName=acct;EndpointSuffix=core.windows.net;AccountKey={KEY}",
        f"AccountName=acct;EndpointSuffix=127.0.0.1:10000;AccountKey={KEY}",
        f"AccountName=acct;EndpointSuffix=core.windows.net/x;AccountKey={KEY}",
        f"AccountName=acct;EndpointSuffix=localhost;AccountKey={KEY}",
        f"UseDevelopmentStorage=True;AccountName=acct;AccountKey={KEY}",
        "UseDevelopmentStorage=true;DevelopmentStorageProxyUri=https://proxy.example.com",
        # a secondary endpoint alone (the SDK refuses it too)
        f"BlobSecondaryEndpoint=https://acct.blob.core.windows.net;AccountKey={KEY}",
        "",
        ";",
        "AccountName",
        f"{MARKER}=1;AccountName=acct",
        f" AccountName=acct;AccountKey={KEY}",
    ],
)
def test_ambiguous_strings_are_refused_without_echoing_them(text: str) -> None:
    with pytest.raises(ValueError, match=r"\w") as caught:
        acs.parse(text)
    message = str(caught.value)
    for piece in ("127.0.0.1", "evil", MARKER, KEY, "proxy.example.com", "internal"):
        assert piece not in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            f"DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={KEY};"
            "EndpointSuffix=core.windows.net",
            ["https://acct.blob.core.windows.net"],
        ),
        (f"AccountName=acct;AccountKey={KEY}", ["https://acct.blob.core.windows.net"]),
        (
            f"DefaultEndpointsProtocol=http;AccountName=acct;AccountKey={KEY}",
            ["https://acct.blob.core.windows.net"],  # the SDK ignores the protocol without suffix
        ),
        (
            f"AccountName=acct;AccountKey={KEY};EndpointSuffix=core.chinacloudapi.cn",
            ["https://acct.blob.core.chinacloudapi.cn"],
        ),
        (
            f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={KEY};"
            "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;",
            ["http://127.0.0.1:10000/devstoreaccount1"],
        ),
        (
            "BlobEndpoint=https://a.example.com;BlobSecondaryEndpoint=https://b.example.com;"
            "SharedAccessSignature=sv=1",
            ["https://a.example.com", "https://b.example.com"],
        ),
        ("UseDevelopmentStorage=true", [acs.EMULATOR_ENDPOINT]),
        (
            f"UseDevelopmentStorage=false;AccountName=acct;AccountKey={KEY}",
            ["https://acct.blob.core.windows.net"],
        ),
    ],
)
def test_endpoints(text: str, expected: list[str]) -> None:
    assert acs.endpoints(acs.parse(text)) == expected


def _origin(url: str) -> tuple[str, str | None, int | None]:
    parts = urlsplit(url if "://" in url else "https://" + url)
    return parts.scheme.lower(), parts.hostname, parts.port


def _agrees(text: str) -> None:
    """Either we refuse ``text``, or every host the SDK would contact is one we check."""
    try:
        ours = acs.endpoints(acs.parse(text))
    except ValueError:
        return
    primary, secondary, _credential = parse_connection_str(text, None, "blob")
    checked = {_origin(url) for url in ours}
    assert _origin(primary) in checked
    if secondary and "://" in secondary:  # a derived secondary is a bare host name
        assert _origin(secondary) in checked


@pytest.mark.parametrize(
    "text",
    [
        f"DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={KEY};"
        "EndpointSuffix=core.windows.net",
        f"AccountName=acct;AccountKey={KEY}",
        "UseDevelopmentStorage=true",
        f"BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;AccountName=acct;AccountKey={KEY}",
        f"DefaultEndpointsProtocol=HTTPS;AccountName=acct;EndpointSuffix=core.windows.net;"
        f"AccountKey={KEY};",
    ],
)
def test_the_sdk_contacts_only_checked_endpoints(text: str) -> None:
    _agrees(text)


_KEYS = st.sampled_from(
    [
        "AccountName",
        "accountname",
        "AccountKey",
        "BlobEndpoint",
        "BLOBENDPOINT",
        "BlobEndpoint ",
        "BlobSecondaryEndpoint",
        "DefaultEndpointsProtocol",
        "EndpointSuffix",
        "UseDevelopmentStorage",
        "SharedAccessSignature",
        "QueueEndpoint",
    ]
)
_VALUES = st.sampled_from(
    [
        "acct",
        "ACCT",
        "127.0.0.1:10000",
        "https",
        "http",
        "HTTP",
        "true",
        "True",
        "core.windows.net",
        "http://127.0.0.1:10000/devstoreaccount1",
        "https://acct.blob.core.windows.net",
        "10.0.0.1",
        "a.b",
        "",
        " https://x.example.com",
        KEY,
    ]
)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(_KEYS, _VALUES), min_size=1, max_size=5), st.booleans())
def test_fuzzed_strings_never_lead_the_sdk_to_an_unchecked_host(
    items: list[tuple[str, str]], trailing: bool
) -> None:
    text = ";".join(f"{k}={v}" for k, v in items) + (";" if trailing else "")
    try:
        parse_connection_str(text, None, "blob")
    except (ValueError, KeyError):
        return
    _agrees(text)
