"""API bodies derived from the destination settings: every field accounted for, secrets masked."""

from __future__ import annotations

import pytest

from auditstream.api.app import present
from auditstream.api.models import (
    CREATE_MODELS,
    MASK,
    OUT_MODELS,
    PATCH_MODELS,
    READ_ONLY_FIELDS,
    SOURCES,
)
from auditstream.api.ops import parse_destination
from auditstream.config.fields import secret_fields


@pytest.mark.parametrize("kind", sorted(SOURCES))
def test_every_settings_field_is_in_the_api(kind: str) -> None:
    source = set(SOURCES[kind].model_fields)
    assert set(CREATE_MODELS[kind].model_fields) == source - READ_ONLY_FIELDS
    assert set(PATCH_MODELS[kind].model_fields) == source - READ_ONLY_FIELDS - {"id"}
    assert set(OUT_MODELS[kind].model_fields) == source


@pytest.mark.parametrize("kind", sorted(SOURCES))
def test_create_models_keep_the_settings_constraints(kind: str) -> None:
    for name, info in CREATE_MODELS[kind].model_fields.items():
        original = SOURCES[kind].model_fields[name]
        if name != "type":
            assert info.metadata == original.metadata, name
            assert info.is_required() == original.is_required(), name


def test_secret_fields() -> None:
    assert secret_fields(SOURCES["webhook"]) == {"secret", "next_secret"}
    assert secret_fields(SOURCES["s3"]) == {
        "access_key_id",
        "secret_access_key",
        "session_token",
    }  # external_id is the platform's, shown to the tenant for its role's trust policy
    assert secret_fields(SOURCES["azure_blob"]) == {"connection_string", "account_key", "sas_token"}
    assert secret_fields(SOURCES["gcs"]) == {"service_account_json"}
    assert secret_fields(SOURCES["local"]) == frozenset()


def test_present_masks_secrets_and_header_values() -> None:
    shown = present(
        parse_destination(
            {
                "id": "s",
                "type": "s3",
                "bucket": "bkt",
                "access_key_id": "AKIAEXAMPLE",
                "secret_access_key": "very-secret",
            }
        )
    )
    assert shown["access_key_id"] == MASK
    assert shown["secret_access_key"] == MASK
    assert shown["session_token"] is None
    hook = present(
        parse_destination(
            {
                "id": "h",
                "type": "webhook",
                "url": "https://x.example.com",
                "secret": "sig",
                "headers": {"Authorization": "Bearer t0ken"},
            }
        )
    )
    assert hook["secret"] == MASK
    assert hook["headers"] == {"Authorization": MASK}
    OUT_MODELS["webhook"].model_validate(hook)
