"""Settings stored before the stricter input rules still load (their account keeps streaming and
can be changed), every change is validated as new input, and the checks that run where the
settings are used still refuse what the new rules would."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from auditstream.api import ops
from auditstream.api.errors import Invalid
from auditstream.api.options import ApiOptions
from auditstream.config.destinations import STORED, AzureBlobDestination
from auditstream.config.stream import AccountSettings
from auditstream.config.wire import decode_settings
from tests.fake_resolver import fake_resolver

OPTIONS = ApiOptions(resolver=fake_resolver({"siem.example.com": ["93.184.216.34"]}))
LEGACY: list[dict[str, Any]] = [
    {
        "id": "s3-old",
        "type": "s3",
        "bucket": "Legacy_Bucket",
        "access_key_id": "a",
        "secret_access_key": "b",
        "region": "auto",
    },
    {
        "id": "gcs-old",
        "type": "gcs",
        "bucket": "legacy..bucket",
        "project": "x",
        "service_account_json": '{"type": "service_account", "universe_domain": "elsewhere"}',
    },
    {
        "id": "az-old",
        "type": "azure_blob",
        "container": "Legacy_Container",
        "connection_string": "AccountName=acct;AccountKey=k;DevelopmentStorageProxyUri=x",
    },
    {
        "id": "hook-old",
        "type": "webhook",
        "url": "https://user@siem.example.com/in",
        "secret": "",
    },
    {"id": "local-old", "type": "local", "path": "./files", "prefix": "a//b"},
]


def _record(*destinations: dict[str, Any]) -> bytes:
    return orjson.dumps({"account_id": "acme", "destinations": list(destinations)})


@pytest.mark.parametrize("destination", LEGACY, ids=[d["id"] for d in LEGACY])
def test_stored_settings_load_but_new_input_is_refused(destination: dict[str, Any]) -> None:
    settings = decode_settings(_record(destination))
    assert [d.id for d in settings.destinations] == [destination["id"]]
    with pytest.raises(Invalid):
        ops.parse_destination(destination)


def test_changing_one_destination_is_not_blocked_by_another_stored_one() -> None:
    settings = decode_settings(_record(*LEGACY))
    fresh = ops.parse_destination({"id": "new", "type": "local", "path": "files-2"})
    after = ops.with_destination_added(
        settings, "acme", fresh, max_destinations=10, id_in_use=False
    )
    assert len(after.destinations) == len(LEGACY) + 1


def test_a_change_to_a_stored_destination_is_validated_as_new_input() -> None:
    settings = decode_settings(_record(*LEGACY))
    stored = ops.find(settings, "s3-old")
    with pytest.raises(Invalid) as caught:
        ops.parse_destination(ops.merge_patch(stored, {"prefix": "other"}))
    assert "bucket" in str(caught.value)
    fixed = ops.parse_destination(
        ops.merge_patch(stored, {"bucket": "legacy-bucket", "region": None})
    )
    assert fixed.bucket == "legacy-bucket"  # type: ignore[union-attr]


@pytest.mark.parametrize("destination_id", ["az-old", "gcs-old"])
def test_an_unreadable_nested_address_is_refused_by_the_check(destination_id: str) -> None:
    settings = decode_settings(_record(*LEGACY))
    stored = ops.find(settings, destination_id)
    with pytest.raises(Invalid) as caught:
        ops.check_policy(stored, OPTIONS, set(type(stored).model_fields))
    assert "send it again" in str(caught.value)


def test_the_stored_context_is_only_for_stored_settings() -> None:
    raw = {"account_id": "acme", "destinations": [LEGACY[2]]}
    AccountSettings.model_validate(raw, context=STORED)
    with pytest.raises(ValueError, match="container"):
        AccountSettings.model_validate(raw)
    stored = AccountSettings.model_validate(raw, context=STORED).destinations[0]
    assert isinstance(stored, AzureBlobDestination)
    assert stored.store_identity() is not None  # never raises for an old string
