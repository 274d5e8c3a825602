"""Destination settings refuse, when saved, the values that would move a request or a file
somewhere else: traversing paths, URLs that parsers read differently, foreign key-file URLs,
names outside the vendors' rules, an empty signing secret."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from auditstream.config.destinations import (
    AzureBlobDestination,
    Destination,
    GcsDestination,
    LocalDestination,
)

ADAPTER: TypeAdapter[Destination] = TypeAdapter(Destination)
MARKER = "zq-marker-71c"
KEY_FILE = {
    "type": "service_account",
    "project_id": "my-project",
    "private_key_id": "k1",
    "private_key": "-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n",
    "client_email": "w@my-project.iam.gserviceaccount.com",
    "client_id": "1",
    "auth_uri": "https://accounts.google.com/o/oauth2/auth",
    "token_uri": "https://oauth2.googleapis.com/token",
    "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
    "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/w%40my-project.iam.gserviceaccount.com",
    "universe_domain": "googleapis.com",
}


def _refused(data: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as caught:
        ADAPTER.validate_python({"id": "d1", **data})
    text = str(caught.value.errors(include_input=False, include_url=False))
    assert MARKER not in text
    return text


@pytest.mark.parametrize(
    ("path", "ok"),
    [
        ("files", True),
        ("acme/files", True),
        ("acme/files/", True),
        ("/var/lib/auditstream/acme", True),  # an operator's settings file may name one
        ("../../x", False),
        ("a/../../x", False),
        ("a/..", False),
        ("./x", False),
        (".", False),
        ("..", False),
        ("a//b", False),
        ("/", False),
        ("a\0b", False),
        ("a\nb", False),
        ("a\\..\\b", False),
        ("~/x", False),
        (f"{MARKER}/\0", False),
    ],
)
def test_local_path(path: str, ok: bool) -> None:
    data = {"type": "local", "path": path}
    if ok:
        assert isinstance(ADAPTER.validate_python({"id": "d1", **data}), LocalDestination)
    else:
        assert "path" in _refused(data)


@pytest.mark.parametrize(
    ("prefix", "ok", "stored"),
    [
        ("audit", True, "audit"),
        ("/audit/", True, "audit"),
        ("a/b", True, "a/b"),
        ("", True, ""),
        ("../../x", False, None),
        ("/../x", False, None),
        ("a/./b", False, None),
        ("a//b", False, None),
        ("a\0b", False, None),
        ("a\tb", False, None),
        ("a\\b", False, None),
        (f"{MARKER}/..", False, None),
    ],
)
def test_prefix_of_every_object_store(prefix: str, ok: bool, stored: str | None) -> None:
    bodies: list[dict[str, Any]] = [
        {"type": "local", "path": "files"},
        {"type": "s3", "bucket": "acme-audit", "access_key_id": "a", "secret_access_key": "b"},
        {"type": "gcs", "bucket": "acme-audit", "service_account_json": json.dumps(KEY_FILE)},
        {
            "type": "azure_blob",
            "container": "audit",
            "account_url": "https://acct.blob.core.windows.net",
            "sas_token": "sv=1",
        },
    ]
    for body in bodies:
        data = {**body, "prefix": prefix}
        if ok:
            parsed = ADAPTER.validate_python({"id": "d1", **data})
            assert parsed.prefix == stored  # type: ignore[union-attr]
        else:
            assert "prefix" in _refused(data)


@pytest.mark.parametrize("secret", ["", " ", "\t\n"])
def test_an_empty_webhook_secret_is_refused(secret: str) -> None:
    assert "secret" in _refused(
        {"type": "webhook", "url": "https://siem.example.com/in", "secret": secret}
    )


@pytest.mark.parametrize(
    "url",
    [
        "https://user:pw@siem.example.com/in",
        "https://siem.example.com\\@127.0.0.1/in",
        "https://siem.example.com /in",
        "https://siem.exa\nmple.com/in",
        "https://siem.exa\tmple.com/in",
        "https://siem.example.com\x00/in",
        f"https://{MARKER}@siem.example.com/in",
    ],
)
def test_urls_that_parsers_read_differently_are_refused(url: str) -> None:
    _refused({"type": "webhook", "url": url, "secret": "s"})
    _refused(
        {
            "type": "s3",
            "bucket": "acme-audit",
            "endpoint_url": url,
            "access_key_id": "a",
            "secret_access_key": "b",
        }
    )


def _gcs(**key_file: Any) -> dict[str, Any]:
    return {
        "type": "gcs",
        "bucket": "acme-audit",
        "service_account_json": json.dumps({**KEY_FILE, **key_file}),
    }


def test_a_google_key_file_has_no_unofficial_address() -> None:
    destination = ADAPTER.validate_python({"id": "g", **_gcs()})
    assert isinstance(destination, GcsDestination)
    assert destination.unofficial_addresses() == []
    assert ("service_account_json", KEY_FILE["token_uri"]) in destination.nested_addresses()
    older = ADAPTER.validate_python(
        {"id": "g", **_gcs(token_uri="https://accounts.google.com/o/oauth2/token")}
    )
    assert older.unofficial_addresses() == []


@pytest.mark.parametrize(
    ("key", "url"),
    [
        ("token_uri", "http://127.0.0.1:8080/token"),
        ("token_uri", "http://169.254.169.254/computeMetadata/v1/token"),
        ("token_uri", "https://oauth2.googleapis.com.evil.example.com/token"),
        ("token_uri", "https://oauth2.googleapis.com/token?x=1"),
        ("auth_uri", "https://evil.example.com/auth"),
        ("auth_provider_x509_cert_url", "https://evil.example.com/certs"),
        ("client_x509_cert_url", "https://evil.example.com/robot/v1/metadata/x509/w"),
        ("client_x509_cert_url", "https://www.googleapis.com/other"),
    ],
)
def test_key_file_urls_elsewhere_than_google_are_unofficial(key: str, url: str) -> None:
    destination = ADAPTER.validate_python({"id": "g", **_gcs(**{key: url})})
    assert ("service_account_json", url) in destination.unofficial_addresses()
    assert ("service_account_json", url) in destination.nested_addresses()


@pytest.mark.parametrize(
    "key_file",
    [
        {"token_uri": 5},
        {"token_uri": "ftp://oauth2.googleapis.com/token"},
        {"token_uri": "https://user@oauth2.googleapis.com/token"},
        {"token_uri": f"https://{MARKER}\\@127.0.0.1/"},
        {"universe_domain": "evil.example.com"},
        {"universe_domain": MARKER},
    ],
)
def test_key_files_that_cannot_be_checked_are_refused(key_file: dict[str, Any]) -> None:
    text = _refused(_gcs(**key_file))
    assert "service_account_json" in text
    assert "127.0.0.1" not in text


def test_a_connection_string_is_stored_trimmed() -> None:
    text = "AccountName=acct;AccountKey=a2V5;EndpointSuffix=core.windows.net\n"
    destination = ADAPTER.validate_python(
        {"id": "a", "type": "azure_blob", "container": "audit", "connection_string": text}
    )
    assert isinstance(destination, AzureBlobDestination)
    assert destination.connection_string is not None
    assert destination.connection_string.get_secret_value() == text.strip()


@pytest.mark.parametrize(
    "connection_string",
    [
        "AccountName=127.0.0.1:10000;AccountKey=a2V5",
        "BlobEndpoint=https://acct.blob.core.windows.net;BlobEndpoint =http://127.0.0.1;"
        "AccountKey=a2V5",
        f"AccountName=acct;AccountKey=a2V5;{MARKER}=1",
        f"AccountName=acct;AccountKey=a2V5;EndpointSuffix={MARKER}:1",
    ],
)
def test_ambiguous_connection_strings_are_refused(connection_string: str) -> None:
    text = _refused(
        {"type": "azure_blob", "container": "audit", "connection_string": connection_string}
    )
    assert "connection_string" in text
    assert "a2V5" not in text


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"type": "s3", "bucket": "Invalid_Bucket..Name"}, "bucket"),
        ({"type": "s3", "bucket": "../../etc"}, "bucket"),
        ({"type": "s3", "bucket": "ok-bucket", "region": "eu/../x@host"}, "region"),
        ({"type": "s3", "bucket": "ok-bucket", "region": "auto"}, "region"),  # not on AWS
        ({"type": "s3", "bucket": "ok-bucket", "role_arn": "admin"}, "role_arn"),
        ({"type": "gcs", "bucket": "Invalid_Bucket..Name", "anonymous": False}, "bucket"),
        ({"type": "gcs", "bucket": "ok-bucket", "project": "eu/../x@host"}, "project"),
        ({"type": "azure_blob", "container": "../../etc", "sas_token": "s"}, "container"),
        ({"type": "azure_blob", "container": "Audit", "sas_token": "s"}, "container"),
        (
            {"type": "azure_blob", "container": "audit", "sas_token": "s", "account_name": "A-1"},
            "account_name",
        ),
    ],
)
def test_vendor_names_are_checked_when_saved(data: dict[str, Any], field: str) -> None:
    text = _refused(data)
    assert field in text


def test_a_region_for_an_s3_compatible_store_follows_its_own_rules() -> None:
    ADAPTER.validate_python(
        {
            "id": "r2",
            "type": "s3",
            "bucket": "acme-audit",
            "region": "auto",
            "endpoint_url": "https://acct.r2.example.com",
            "access_key_id": "a",
            "secret_access_key": "b",
        }
    )
