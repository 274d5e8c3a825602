"""The destination registry is complete, and the checks that find fields by type see them all."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from pydantic import BaseModel, SecretStr

from auditstream.api.audit import address_paths, destination_changes
from auditstream.api.models import CREATE_MODELS, OUT_MODELS, PATCH_MODELS, SOURCES
from auditstream.api.ops import check_policy, parse_destination
from auditstream.api.options import ApiOptions
from auditstream.config.address_policy import AddressPolicy
from auditstream.config.destinations import _DestinationBase
from auditstream.config.fields import (
    Address,
    RoleKind,
    Text,
    fields_with_role,
    secret_fields,
    unclassified_fields,
)
from auditstream.sinks.registry import KINDS, DestinationKind, SinkContext, _register, union_models

KIND_NAMES = sorted(KINDS)


def test_the_registry_and_the_settings_union_hold_the_same_models() -> None:
    assert union_models() == {k.model for k in KINDS.values()}
    assert set(SOURCES) == set(KINDS) == set(CREATE_MODELS) == set(PATCH_MODELS) == set(OUT_MODELS)


@pytest.mark.parametrize("type_key", KIND_NAMES)
def test_every_kind_has_every_facet(type_key: str) -> None:
    kind = KINDS[type_key]
    assert kind.type == type_key
    assert kind.title.strip(), "a title for people (CLI help, API docs)"
    assert issubclass(kind.model, _DestinationBase)
    assert kind.model.__doc__, "the model's docstring is the API's description of the kind"
    assert callable(kind.build)
    assert len(inspect.signature(kind.build).parameters) == 2
    assert unclassified_fields(kind.model) == []
    for method in ("nested_addresses", "store_identity", "ambient_credentials_field", "location"):
        assert callable(getattr(kind.model, method))
    # ``location`` has no safe default: each kind says where it delivers.
    assert kind.model.location is not _DestinationBase.location


class _Sneaky(_DestinationBase):
    """A kind whose author forgot to say what ``callback`` is."""

    type: str = "sneaky"
    callback: str | None = None


def test_a_model_with_an_untyped_text_field_is_refused_at_registration() -> None:
    with pytest.raises(TypeError, match="callback"):
        _register(DestinationKind(_Sneaky, "Sneaky", lambda d, c: None))  # type: ignore[arg-type,return-value]


class _Nested(BaseModel):
    hook: str


class _NestedSneaky(_DestinationBase):
    """Untyped text inside a nested model or a container is found too."""

    type: Text = "nested"
    inner: _Nested
    tags: list[str] = []


def test_untyped_text_is_found_in_nested_models_and_containers() -> None:
    assert sorted(unclassified_fields(_NestedSneaky)) == ["inner.hook", "tags"]


class _Typed(_DestinationBase):
    """Every text field declares its role."""

    type: Text = "typed"
    relay: Address
    extra: Address | None = None
    token: SecretStr


def test_roles_are_found_by_type_whatever_the_field_is_called() -> None:
    assert fields_with_role(_Typed, RoleKind.ADDRESS) == ("relay", "extra")
    assert secret_fields(_Typed) == {"token"}
    assert {"relay", "extra"} <= address_paths(_Typed)


# One valid destination per kind, each with a public address wherever the kind can take one.
SAMPLES: dict[str, dict[str, Any]] = {
    "local": {"type": "local", "id": "l1", "path": "out"},
    "webhook": {
        "type": "webhook",
        "id": "w1",
        "url": "https://siem.example.com/in?token=t0p",
        "secret": "s",
    },
    "s3": {
        "type": "s3",
        "id": "s1",
        "bucket": "logs",
        "endpoint_url": "https://s3.example.com/x?token=t0p",
        "access_key_id": "AKIA",
        "secret_access_key": "sk",
    },
    "gcs": {
        "type": "gcs",
        "id": "g1",
        "bucket": "logs",
        "endpoint": "https://gcs.example.com/x?token=t0p",
        "service_account_json": '{"type": "service_account", "token_uri": "https://oauth2.googleapis.com/token"}',
    },
    "azure_blob": {
        "type": "azure_blob",
        "id": "a1",
        "container": "logs",
        "account_url": "https://acct.blob.core.windows.net/t0p",
        "sas_token": "sv=1&sig=x",
    },
    "splunk_hec": {
        "type": "splunk_hec",
        "id": "h1",
        "url": "https://splunk.example.com:8088/t0p",
        "token": "11111111-2222-3333-4444-555555555555",
        "index": "audit",
    },
    "datadog_logs": {
        "type": "datadog_logs",
        "id": "d1",
        "site": "datadoghq.eu",
        "endpoint": "https://dd-proxy.example.com/t0p",
        "api_key": "0123456789abcdef0123456789abcdef",
    },
    "azure_monitor_logs": {
        "type": "azure_monitor_logs",
        "id": "m1",
        "endpoint": "https://dce-1.westeurope-1.ingest.monitor.azure.com/t0p",
        "dcr_immutable_id": "dcr-0123456789abcdef0123456789abcdef",
        "stream_name": "Custom-AuditStream_CL",
        "tenant_id": "72f988bf-86f1-41af-91ab-2d7cd011db47",
        "client_id": "11111111-2222-3333-4444-555555555555",
        "client_secret": "s3cret",
    },
}


def test_every_kind_has_a_sample() -> None:
    assert set(SAMPLES) == set(KINDS)


def _resolver(answers: dict[str, str]) -> Any:
    def resolve(host: str, port: int) -> list[str]:
        return [answers.get(host, "93.184.216.34")]

    return resolve


@pytest.mark.parametrize("type_key", KIND_NAMES)
def test_the_address_policy_covers_every_address_field_of_every_kind(type_key: str) -> None:
    model = KINDS[type_key].model
    for name in fields_with_role(model, RoleKind.ADDRESS):
        data = {**SAMPLES[type_key], name: "https://internal.example.com/"}
        destination = parse_destination(dict(data))
        options = ApiOptions(
            resolver=_resolver({"internal.example.com": "10.0.0.7"}),
            allow_ambient_credentials=True,
        )
        with pytest.raises(Exception, match="private") as info:
            check_policy(destination, options, changed=set(model.model_fields))
        assert name in str(getattr(info.value, "errors", info.value))


@pytest.mark.parametrize("type_key", KIND_NAMES)
def test_audit_events_show_only_the_origin_of_every_address_field(type_key: str) -> None:
    destination = parse_destination(dict(SAMPLES[type_key]))
    rendered = " ".join(f"{c.field}={c.new_value}" for c in destination_changes(None, destination))
    assert "t0p" not in rendered
    for name in fields_with_role(KINDS[type_key].model, RoleKind.ADDRESS):
        assert f"{name}=" in rendered


@pytest.mark.parametrize("type_key", KIND_NAMES)
def test_every_kind_builds_its_sink_through_the_registry(type_key: str, tmp_path: Any) -> None:
    # GCS without a real key: the emulator form (a service-account key needs a private key).
    overrides = {"service_account_json": None, "anonymous": True} if type_key == "gcs" else {}
    destination = parse_destination({**SAMPLES[type_key], **overrides})
    sink = KINDS[type_key].build(
        destination, SinkContext(local_root=tmp_path, address_policy=AddressPolicy())
    )
    try:
        for member in ("type", "write", "probe", "close", "is_retryable"):
            assert hasattr(sink, member), f"{type_key} sink lacks {member}"
    finally:
        sink.close()
