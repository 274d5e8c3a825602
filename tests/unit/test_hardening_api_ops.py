"""The API's policy on what a tenant sends: secrets do not follow a destination to a new address,
external ids are the platform's, nested addresses pass the address policy, key-file URLs are
Google's unless an operator allows others, and refusals never echo the value."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import SecretStr

from auditstream.api import ops
from auditstream.api.errors import Invalid
from auditstream.api.models import MASK
from auditstream.api.options import ApiOptions
from auditstream.config.address_policy import parse_networks
from auditstream.config.destinations import Destination
from auditstream.config.external_id import external_id_for
from tests.fake_resolver import fake_resolver

KEY = b"k" * 32
NAMES = {
    "siem.example.com": ["93.184.216.34"],
    "other.example.com": ["93.184.216.35"],
    "acct.blob.core.windows.net": ["20.60.1.1"],
    "acct.blob.internal.example.com": ["10.9.8.7"],
    "acct.blob.meta.example.com": ["169.254.169.254"],
    "store.example.com": ["93.184.216.36"],
    "oauth2.googleapis.com": ["142.250.1.1"],
    "token.example.com": ["127.0.0.1"],
}
OPTIONS = ApiOptions(resolver=fake_resolver(NAMES), external_id_key=KEY)
MARKER = "zq-marker-71c"
ROLE = "arn:aws:iam::123456789012:role/auditstream-writer"
KEY_FILE = {
    "type": "service_account",
    "client_email": "w@my-project.iam.gserviceaccount.com",
    "private_key": "x",
    "token_uri": "https://oauth2.googleapis.com/token",
}


def _d(**kw: Any) -> Destination:
    return ops.parse_destination({"id": "d1", **kw})


def _fields(exc: Invalid) -> set[str]:
    return {".".join(str(p) for p in loc[1:]) for loc, _msg, _kind in exc.errors}


WEBHOOK = dict(
    type="webhook",
    url="https://siem.example.com/in",
    secret="signing-secret",
    headers={"Authorization": "Splunk tok", "X-Env": "prod"},
)
S3 = dict(
    type="s3",
    bucket="acme-audit",
    endpoint_url="https://store.example.com",
    access_key_id="AKIA",
    secret_access_key="sk",
    session_token="st",
)
AZURE_KEY = dict(
    type="azure_blob",
    container="audit",
    account_url="https://acct.blob.core.windows.net",
    account_key="a2V5",
)
GCS = dict(
    type="gcs",
    bucket="acme-audit",
    endpoint="https://store.example.com",
    service_account_json=json.dumps(KEY_FILE),
)


# -- secrets do not follow a destination to a new address -----------------------------------


@pytest.mark.parametrize(
    ("stored", "patch", "fields"),
    [
        (
            WEBHOOK,
            {"url": "https://other.example.com/in"},
            {"secret", "headers.Authorization", "headers.X-Env"},
        ),
        (
            WEBHOOK,
            {"url": "https://other.example.com/in", "secret": SecretStr(MASK)},
            {"secret", "headers.Authorization", "headers.X-Env"},
        ),
        (
            WEBHOOK,
            {
                "url": "https://other.example.com/in",
                "secret": SecretStr("new"),
                "headers": {"Authorization": SecretStr(MASK), "X-Env": SecretStr("prod")},
            },
            {"headers.Authorization"},
        ),
        (
            WEBHOOK,
            {"url": "https://siem.example.com/other-path"},
            {"secret", "headers.Authorization", "headers.X-Env"},
        ),
        (
            S3,
            {"endpoint_url": "https://other.example.com"},
            {"access_key_id", "secret_access_key", "session_token"},
        ),
        (
            S3,
            {"endpoint_url": None},  # back to Amazon itself: still another place
            {"access_key_id", "secret_access_key", "session_token"},
        ),
        (AZURE_KEY, {"account_url": "https://other.example.com/acct"}, {"account_key"}),
        (GCS, {"endpoint": "https://other.example.com"}, {"service_account_json"}),
    ],
)
def test_a_new_address_needs_the_secrets_again(
    stored: dict[str, Any], patch: dict[str, Any], fields: set[str]
) -> None:
    with pytest.raises(Invalid) as caught:
        ops.merge_patch(_d(**stored), patch)
    assert _fields(caught.value) == fields
    assert {kind for _loc, _msg, kind in caught.value.errors} == {"secret_required"}
    text = str(caught.value)
    for value in ("other.example.com", "signing-secret", "Splunk tok", "sk", "a2V5"):
        assert value not in text


@pytest.mark.parametrize(
    ("stored", "patch"),
    [
        (WEBHOOK, {"timeout_s": 3}),  # not an address: secrets stay
        (WEBHOOK, {"url": "https://siem.example.com/in"}),  # the same address
        (
            WEBHOOK,
            {
                "url": "https://other.example.com/in",
                "secret": SecretStr("new"),
                "headers": {"Authorization": SecretStr("Splunk new")},  # X-Env dropped
            },
        ),
        (S3, {"prefix": "other", "secret_access_key": SecretStr(MASK)}),
        (
            S3,
            {
                "endpoint_url": "https://other.example.com",
                "access_key_id": SecretStr("A2"),
                "secret_access_key": SecretStr("S2"),
                "session_token": None,
            },
        ),
        (
            dict(
                type="azure_blob",
                container="audit",
                connection_string="AccountName=acct;AccountKey=a2V5",
            ),
            # the address comes with the secret itself: nothing is kept
            {"connection_string": SecretStr("AccountName=other;AccountKey=a2V5")},
        ),
        (
            dict(
                type="gcs",
                bucket="acme-audit",
                endpoint="https://store.example.com",
                anonymous=True,
            ),
            {"endpoint": "https://other.example.com"},
        ),
    ],
)
def test_changes_that_keep_no_secret_at_a_new_address_are_accepted(
    stored: dict[str, Any], patch: dict[str, Any]
) -> None:
    ops.parse_destination(ops.merge_patch(_d(**stored), patch))


def test_secrets_are_found_by_type_not_by_name() -> None:
    destination = _d(**AZURE_KEY)
    assert ops.kept_secrets(destination, {}) == ["account_key"]
    assert ops.kept_secrets(_d(**WEBHOOK), {"headers": {"X-Env": SecretStr(MASK)}}) == [
        "secret",
        "headers.X-Env",
    ]


def test_a_nested_address_counts_as_an_address() -> None:
    destination = _d(
        type="azure_blob", container="audit", connection_string="AccountName=acct;AccountKey=a2V5"
    )
    assert ("connection_string", "https://acct.blob.core.windows.net") in ops.addresses(destination)
    assert ("url", "https://siem.example.com/in") in ops.addresses(_d(**WEBHOOK))


# -- nested addresses and key files ------------------------------------------------------------


def _policy(destination: Destination, options: ApiOptions = OPTIONS) -> None:
    ops.check_policy(destination, options, ops.changed_fields(None, destination))


@pytest.mark.parametrize(
    "connection_string",
    [
        "AccountName=acct;AccountKey=a2V5;EndpointSuffix=internal.example.com",
        "AccountName=acct;AccountKey=a2V5;EndpointSuffix=meta.example.com",
        "AccountName=acct;AccountKey=a2V5;EndpointSuffix=unknown.example.com",
        "BlobEndpoint=https://10.0.0.1/acct;SharedAccessSignature=sv=1",
        "UseDevelopmentStorage=true",
    ],
)
def test_connection_string_endpoints_pass_the_address_policy(connection_string: str) -> None:
    destination = _d(type="azure_blob", container="audit", connection_string=connection_string)
    with pytest.raises(Invalid) as caught:
        _policy(destination)
    assert _fields(caught.value) == {"connection_string"}
    for hidden in ("internal.example.com", "10.9.8.7", "10.0.0.1", "169.254", "a2V5", "127.0.0.1"):
        assert hidden not in str(caught.value)


@pytest.mark.parametrize(
    "token_uri",
    [
        "http://127.0.0.1:8080/token",
        "http://169.254.169.254/computeMetadata/v1/instance/service-accounts/default/token",
        "https://token.example.com/token",
        "https://evil.example.com/token",
    ],
)
def test_a_token_uri_elsewhere_than_google_is_refused(token_uri: str) -> None:
    destination = _d(
        **{**GCS, "service_account_json": json.dumps({**KEY_FILE, "token_uri": token_uri})}
    )
    with pytest.raises(Invalid) as caught:
        _policy(destination)
    assert _fields(caught.value) == {"service_account_json"}
    for hidden in ("127.0.0.1", "169.254", "evil", "token.example.com"):
        assert hidden not in str(caught.value)


def test_an_operator_may_allow_a_token_uri_which_still_passes_the_address_policy() -> None:
    emulator = "https://token.example.com/token"  # resolves to loopback
    destination = _d(
        **{**GCS, "service_account_json": json.dumps({**KEY_FILE, "token_uri": emulator})}
    )
    allowed = ApiOptions(resolver=OPTIONS.resolver, allowed_key_file_urls=(emulator,))
    with pytest.raises(Invalid) as caught:
        _policy(destination, allowed)
    assert caught.value.errors[0][2] == "url_refused"
    on_loopback = ApiOptions(
        resolver=OPTIONS.resolver,
        allowed_key_file_urls=(emulator,),
        allowed_networks=parse_networks(["127.0.0.1/32"]),
    )
    _policy(destination, on_loopback)


def test_googles_own_key_file_passes() -> None:
    _policy(_d(**{**GCS, "endpoint": None}))


# -- external ids ------------------------------------------------------------------------------

PLATFORM = external_id_for("acme", KEY)


def _s3_role(**kw: Any) -> dict[str, Any]:
    body = {"id": "r1", "type": "s3", "bucket": "acme-audit", "role_arn": ROLE, "external_id": None}
    return {**body, **kw}


def test_the_external_id_is_the_platforms_per_account() -> None:
    assert PLATFORM is not None
    assert PLATFORM.startswith("auditstream-")
    assert external_id_for("acme", KEY) == PLATFORM
    assert external_id_for("acme2", KEY) != PLATFORM
    assert external_id_for("acme", b"x" * 32) != PLATFORM
    assert external_id_for("acme", None) is None


def test_a_role_gets_the_platforms_external_id() -> None:
    data = ops.with_external_id("acme", _s3_role(), None, OPTIONS)
    assert data["external_id"] == PLATFORM
    destination = ops.parse_destination(data)
    _policy(destination)
    assert ops.with_external_id("acme", _s3_role(external_id=PLATFORM), None, OPTIONS) == data


@pytest.mark.parametrize("chosen", ["victims-external-id", external_id_for("victim", KEY), MARKER])
def test_a_tenant_chosen_external_id_is_refused(chosen: str) -> None:
    with pytest.raises(Invalid) as caught:
        ops.with_external_id("acme", _s3_role(external_id=chosen), None, OPTIONS)
    assert _fields(caught.value) == {"external_id"}
    assert chosen not in str(caught.value)


def test_without_an_external_id_key_no_role_is_assumed() -> None:
    options = ApiOptions(resolver=OPTIONS.resolver)
    with pytest.raises(Invalid) as caught:
        ops.with_external_id("acme", _s3_role(), None, options)
    assert _fields(caught.value) == {"role_arn"}


def test_a_role_without_the_external_id_is_refused_by_the_policy() -> None:
    with pytest.raises(Invalid) as caught:
        _policy(ops.parse_destination(_s3_role()))
    assert _fields(caught.value) == {"external_id"}


def test_patches_set_keep_and_clear_the_external_id() -> None:
    keys = _d(**{**S3, "endpoint_url": None})
    added = ops.with_external_id("acme", {"type": "s3", "role_arn": ROLE}, keys, OPTIONS)
    assert added["external_id"] == PLATFORM
    with_role = ops.parse_destination(ops.merge_patch(keys, added))
    legacy = with_role.model_copy(update={"external_id": "tenant-chosen"})
    fixed = ops.with_external_id("acme", {"type": "s3", "prefix": "x"}, legacy, OPTIONS)
    assert fixed["external_id"] == PLATFORM
    dropped = ops.with_external_id("acme", {"type": "s3", "role_arn": None}, with_role, OPTIONS)
    assert dropped["external_id"] is None
    assert ops.parse_destination(ops.merge_patch(with_role, dropped)).external_id is None  # type: ignore[union-attr]
    with pytest.raises(Invalid):
        ops.with_external_id("acme", {"type": "s3", "external_id": "mine1"}, with_role, OPTIONS)


def test_other_kinds_are_left_alone() -> None:
    body = {"id": "w", **WEBHOOK}
    assert ops.with_external_id("acme", body, None, OPTIONS) == body


# -- refusals never echo -------------------------------------------------------------------------


def test_parse_errors_do_not_echo_a_bad_type_tag() -> None:
    with pytest.raises(Invalid) as caught:
        ops.parse_destination({"id": "x", "type": MARKER})
    assert MARKER not in str(caught.value)


def test_conflicts_and_not_found_do_not_echo() -> None:
    from auditstream.config.stream import AccountSettings

    s = AccountSettings(account_id="acme", destinations=[_d(type="local", path="p", prefix=MARKER)])
    with pytest.raises(Exception) as caught:  # noqa: PT011
        ops.check_collisions(s.destinations, _d(id="d2", type="local", path="p", prefix=MARKER))
    assert MARKER not in str(caught.value)
    with pytest.raises(Exception) as caught:  # noqa: PT011
        ops.find(s, MARKER)
    assert MARKER not in str(caught.value)
