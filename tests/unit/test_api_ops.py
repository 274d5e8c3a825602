"""Settings changes as pure functions: limits, id conflicts, key collisions, merges, policy."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import SecretStr

from auditstream.api import ops
from auditstream.api.errors import Conflict, Invalid, NotFound
from auditstream.api.models import MASK, StreamSettingsIn
from auditstream.api.options import ApiOptions
from auditstream.config.address_policy import parse_networks
from auditstream.config.destinations import Destination
from auditstream.config.stream import AccountSettings
from tests.fake_resolver import fake_resolver

OPTIONS = ApiOptions(
    resolver=fake_resolver(
        {
            "siem.example.com": ["93.184.216.34"],
            "internal.example.com": ["10.1.2.3"],
            "acct.blob.core.windows.net": ["20.60.1.1"],
        }
    )
)


def _d(**kw: Any) -> Destination:
    return ops.parse_destination(kw)


def _local(id_: str, path: str = "p", prefix: str = "auditstream") -> Destination:
    return _d(id=id_, type="local", path=path, prefix=prefix)


def _s3(id_: str, bucket: str = "bkt", prefix: str = "auditstream", **kw: Any) -> Destination:
    return _d(
        id=id_,
        type="s3",
        bucket=bucket,
        prefix=prefix,
        access_key_id="AKIA",
        secret_access_key="sk",
        **kw,
    )


def _settings(*destinations: Destination, **kw: Any) -> AccountSettings:
    return AccountSettings(account_id="acme", destinations=list(destinations), **kw)


def _field(exc: Invalid) -> str:
    return str(exc.errors[0][0][-1])


# -- stream ------------------------------------------------------------------------------------


def test_a_new_account_starts_with_streaming_off() -> None:
    assert ops.stream_view(None, "acme")["streaming_enabled"] is False
    assert ops.blank_settings("acme").streaming_enabled is False


def test_with_stream_replaces_and_dedupes() -> None:
    before = _settings(_local("a"), include_activities=["user_login"])
    after = ops.with_stream(
        before,
        "acme",
        StreamSettingsIn(streaming_enabled=True, include_categories=["team", "team", "account"]),
    )
    assert after.include_categories == ["team", "account"]
    assert after.include_activities == []  # PUT replaces: omitted lists are reset
    assert [d.id for d in after.destinations] == ["a"]


def test_redaction_is_stored_once_per_field() -> None:
    update = StreamSettingsIn(streaming_enabled=True, redact=["actor_email", "actor_email"])
    assert ops.with_stream(None, "acme", update).redact == ["actor_email"]


# -- destinations ------------------------------------------------------------------------------


def test_add_refuses_a_taken_id_without_saying_where() -> None:
    with pytest.raises(Conflict) as caught:
        ops.with_destination_added(None, "acme", _local("x"), max_destinations=10, id_in_use=True)
    assert "already in use" in str(caught.value)
    assert "account" not in str(caught.value)


def test_add_refuses_past_the_limit_but_not_counting_deleting_ones() -> None:
    full = _settings(_local("a", "pa"), _local("b", "pb"))
    with pytest.raises(Conflict, match="most allowed"):
        ops.with_destination_added(
            full, "acme", _local("c", "pc"), max_destinations=2, id_in_use=False
        )
    draining = full.model_copy(
        update={
            "destinations": [
                full.destinations[0].model_copy(update={"deleting": True}),
                full.destinations[1],
            ]
        }
    )
    after = ops.with_destination_added(
        draining, "acme", _local("c", "pc"), max_destinations=2, id_in_use=False
    )
    assert [d.id for d in after.destinations] == ["a", "b", "c"]


@pytest.mark.parametrize(
    ("existing", "candidate", "collides"),
    [
        (_s3("a"), _s3("b"), True),
        (_s3("a"), _s3("b", prefix="/auditstream/"), True),  # prefixes are normalised
        (_s3("a"), _s3("b", prefix="other"), False),
        (_s3("a"), _s3("b", bucket="bkt2"), False),
        (_s3("a"), _s3("b", endpoint_url="https://s3.other.example.com"), False),
        (_local("a", "out"), _local("b", "out/"), True),
        (_local("a", "out"), _local("b", "out2"), False),
        (_local("a", "bkt"), _s3("b"), False),  # different stores
        (
            _d(
                id="a",
                type="azure_blob",
                container="cont",
                account_url="https://acc.blob.core.windows.net",
                sas_token="sv=x",
            ),
            _d(
                id="b",
                type="azure_blob",
                container="cont",
                account_url="https://acc.blob.core.windows.net",
                sas_token="sv=y",
            ),
            True,
        ),
        (
            _d(
                id="a", type="gcs", bucket="bkt", service_account_json='{"type": "service_account"}'
            ),
            _d(
                id="b",
                type="gcs",
                bucket="bkt",
                prefix="two",
                service_account_json='{"type": "service_account"}',
            ),
            False,
        ),
        (
            _d(id="a", type="webhook", url="https://siem.example.com", secret="s"),
            _d(id="b", type="webhook", url="https://siem.example.com", secret="s"),
            False,  # webhooks have no object keys
        ),
    ],
)
def test_object_key_collisions(
    existing: Destination, candidate: Destination, collides: bool
) -> None:
    if collides:
        with pytest.raises(Conflict, match="overwrite"):
            ops.with_destination_added(
                _settings(existing), "acme", candidate, max_destinations=10, id_in_use=False
            )
    else:
        ops.with_destination_added(
            _settings(existing), "acme", candidate, max_destinations=10, id_in_use=False
        )


def test_find_is_per_account() -> None:
    with pytest.raises(NotFound):
        ops.find(_settings(_local("a")), "b")
    with pytest.raises(NotFound):
        ops.find(None, "a")


def test_merge_patch_keeps_masked_and_omitted_secrets() -> None:
    stored = _d(
        id="h",
        type="webhook",
        url="https://siem.example.com",
        secret="old-secret",
        headers={"Authorization": "Splunk t", "X-A": "1"},
        batch={"max_events": 10, "max_age_s": 2},
    )
    merged = ops.merge_patch(
        stored,
        {
            "type": "webhook",
            "secret": SecretStr(MASK),
            "headers": {"Authorization": MASK, "X-B": "2"},
            "batch": {"max_events": 20},
        },
    )
    updated = ops.parse_destination(merged)
    assert updated.secret.get_secret_value() == "old-secret"  # type: ignore[union-attr]
    headers = updated.headers  # type: ignore[union-attr]
    assert {k: getattr(v, "get_secret_value", lambda v=v: v)() for k, v in headers.items()} == {
        "Authorization": "Splunk t",
        "X-B": "2",
    }
    assert updated.batch.max_events == 20
    assert updated.batch.max_age_s == 2
    rotated = ops.parse_destination(ops.merge_patch(stored, {"secret": SecretStr("new")}))
    assert rotated.secret.get_secret_value() == "new"  # type: ignore[union-attr]
    assert ops.changed_fields(stored, rotated) == {"secret"}


def test_new_destinations_may_not_use_the_mask() -> None:
    from auditstream.api.models import CREATE_MODELS

    with pytest.raises(Invalid) as caught:
        ops.refuse_masks({"secret": SecretStr(MASK)}, CREATE_MODELS["webhook"])
    assert _field(caught.value) == "secret"


# -- policy ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("destination", "field"),
    [
        (dict(type="local", path="/etc"), "path"),
        (dict(type="local", path="../up"), "path"),
        (dict(type="local", path="a/../../up"), "path"),
        (dict(type="local", path="~/x"), "path"),
        (dict(type="local", path="C:/x"), "path"),
        (dict(type="webhook", url="https://internal.example.com", secret="s"), "url"),
        (dict(type="webhook", url="https://10.0.0.1/x", secret="s"), "url"),
        (dict(type="webhook", url="http://siem.example.com", secret="s"), "url"),
        (dict(type="webhook", url="https://nxdomain.example.com", secret="s"), "url"),
        (
            dict(type="webhook", url="https://siem.example.com", secret="s", ca_file="/etc/x"),
            "ca_file",
        ),
        (
            dict(type="webhook", url="https://siem.example.com", secret="s", headers={"Host": "x"}),
            "Host",
        ),
        (
            dict(
                type="webhook",
                url="https://siem.example.com",
                secret="s",
                headers={"X": "a\r\nB: c"},
            ),
            "X",
        ),
        (
            dict(
                type="webhook",
                url="https://siem.example.com",
                secret="s",
                headers={"Bad Name": "v"},
            ),
            "0",  # its position: a malformed header name is not echoed
        ),
        (dict(type="s3", bucket="bkt"), "access_key_id"),  # the workers' own credentials
        (
            dict(
                type="s3",
                bucket="bkt",
                access_key_id="a",
                secret_access_key="b",
                endpoint_url="https://169.254.169.254",
            ),
            "endpoint_url",
        ),
        (dict(type="gcs", bucket="bkt"), "service_account_json"),
        (
            dict(
                type="azure_blob",
                container="cont",
                sas_token="sv=1",
                account_url="https://10.0.0.7/acct",
            ),
            "account_url",
        ),
        (
            dict(
                type="azure_blob",
                container="cont",
                connection_string="DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=k;"
                "BlobEndpoint=https://internal.example.com/a",
            ),
            "connection_string",
        ),
        (
            dict(
                type="azure_blob", container="cont", connection_string="UseDevelopmentStorage=true"
            ),
            "connection_string",
        ),
    ],
)
def test_policy_refusals(destination: dict[str, Any], field: str) -> None:
    def parse_and_check() -> None:  # refused by the settings model or by the policy
        parsed = ops.parse_destination({"id": "x", **destination})
        ops.check_policy(parsed, OPTIONS, ops.changed_fields(None, parsed))

    with pytest.raises(Invalid) as caught:
        parse_and_check()
    assert _field(caught.value) == field
    message = caught.value.errors[0][1]
    assert "10.1.2.3" not in message  # resolved addresses are never shown
    assert "AccountKey" not in message
    assert "k;" not in message


@pytest.mark.parametrize(
    "destination",
    [
        dict(type="local", path="acme/out"),
        dict(type="webhook", url="https://siem.example.com/in", secret="s", headers={"X-A": "1"}),
        dict(type="s3", bucket="bkt", access_key_id="a", secret_access_key="b"),
        dict(
            type="s3",
            bucket="bkt",
            role_arn="arn:aws:iam::123456789012:role/r",
            external_id="auditstream-0123456789abcdef",  # the platform's, set by the API
        ),
        dict(type="gcs", bucket="bkt", service_account_json='{"type": "service_account"}'),
        dict(
            type="azure_blob",
            container="cont",
            sas_token="sv=1",
            account_url="https://acct.blob.core.windows.net",
        ),
    ],
)
def test_policy_accepts(destination: dict[str, Any]) -> None:
    parsed = ops.parse_destination({"id": "x", **destination})
    ops.check_policy(parsed, OPTIONS, ops.changed_fields(None, parsed))


def test_allowed_networks_and_http_open_the_policy() -> None:
    options = ApiOptions(
        allow_http=True,
        allowed_networks=parse_networks(["10.0.0.0/8"]),
        allow_ambient_credentials=True,
        resolver=OPTIONS.resolver,
    )
    for destination in (
        dict(type="webhook", url="http://internal.example.com", secret="s"),
        dict(type="s3", bucket="bkt"),
    ):
        parsed = ops.parse_destination({"id": "x", **destination})
        ops.check_policy(parsed, options, ops.changed_fields(None, parsed))


def test_unchanged_urls_are_not_resolved_again() -> None:
    stored = ops.parse_destination(
        {"id": "x", "type": "webhook", "url": "https://nxdomain.example.com", "secret": "s"}
    )
    paused = stored.model_copy(update={"paused": True})
    ops.check_policy(paused, OPTIONS, ops.changed_fields(stored, paused))


def test_disallowed_types() -> None:
    options = ApiOptions(allowed_types=("webhook",), resolver=OPTIONS.resolver)
    parsed = _local("x")
    with pytest.raises(Invalid) as caught:
        ops.check_policy(parsed, options, set())
    assert _field(caught.value) == "type"
