"""Names and text fields against a trailing line break and other control characters.

Python's ``$`` also matches before a final ``\\n``, so ``re.match(r"^[a-z0-9.-]+$", name)``
accepted ``"acme-audit\\n"``: a bucket, a region (part of the S3 host name), an account name or
a role ARN with a line break was saved and then sent to the vendor. Every vendor rule must read
the whole value, and no text field of any kind (found by its role, iterating the registry) may
hold control characters in new settings.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pydantic import ValidationError

from auditstream.api import ops
from auditstream.api.errors import Invalid
from auditstream.config import vendor_names
from auditstream.config.destinations import STORED
from auditstream.config.fields import RoleKind, fields_with_role
from auditstream.sinks.registry import KINDS

VALID: list[tuple[Callable[[str], str | None], str]] = [
    (vendor_names.s3_bucket, "acme-audit"),
    (lambda v: vendor_names.aws_region(v, custom_endpoint=False), "eu-west-1"),
    (lambda v: vendor_names.aws_region(v, custom_endpoint=True), "auto"),
    (vendor_names.role_arn, "arn:aws:iam::123456789012:role/auditstream-writer"),
    (
        lambda v: vendor_names.kms_key_id(v, custom_endpoint=False),
        "arn:aws:kms:eu-west-1:123456789012:alias/audit",
    ),
    (lambda v: vendor_names.kms_key_id(v, custom_endpoint=True), "key-1"),
    (vendor_names.external_id, "auditstream-0123456789abcdef"),
    (vendor_names.gcs_bucket, "acme-audit"),
    (vendor_names.gcs_project, "my-project-123"),
    (lambda v: vendor_names.gcs_project(v, custom_endpoint=True), "test"),
    (
        vendor_names.gcs_kms_key_name,
        "projects/my-project/locations/europe/keyRings/ring/cryptoKeys/key",
    ),
    (vendor_names.azure_container, "audit"),
    (vendor_names.azure_account, "acct"),
    (vendor_names.azure_encryption_scope, "scope1"),
]
ENDINGS = ["\n", "\r\n", "\x00", "\t"]


@pytest.mark.parametrize(("rule", "valid"), VALID)
@pytest.mark.parametrize("ending", ENDINGS)
def test_every_vendor_rule_reads_the_whole_value(
    rule: Callable[[str], str | None], valid: str, ending: str
) -> None:
    assert rule(valid) is None
    assert rule(valid + ending) is not None


SAMPLES: dict[str, dict[str, Any]] = {
    "local": {"type": "local", "path": "files"},
    "webhook": {"type": "webhook", "url": "https://siem.example.com/in", "secret": "s"},
    "s3": {
        "type": "s3",
        "bucket": "acme-audit",
        "region": "eu-west-1",
        "role_arn": "arn:aws:iam::123456789012:role/w",
        "external_id": "auditstream-0123456789abcdef",
        "sse": "aws:kms",
        "kms_key_id": "alias/audit",
    },
    "gcs": {
        "type": "gcs",
        "bucket": "acme-audit",
        "project": "my-project-123",
        "kms_key_name": "projects/my-project/locations/europe/keyRings/r/cryptoKeys/k",
    },
    "azure_blob": {
        "type": "azure_blob",
        "container": "audit",
        "account_url": "https://acct.blob.core.windows.net",
        "account_name": "acct",
        "account_key": "a2V5",
        "encryption_scope": "scope1",
    },
    "splunk_hec": {
        "type": "splunk_hec",
        "url": "https://siem.example.com",
        "token": "hec-token-1",
        "index": "main",
        "host": "platform",
    },
    "datadog_logs": {
        "type": "datadog_logs",
        "api_key": "a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4",
        "hostname": "platform",
        "tags": "env:prod",
    },
    "azure_monitor_logs": {
        "type": "azure_monitor_logs",
        "endpoint": "https://dce-1.westeurope-1.ingest.monitor.azure.com",
        "dcr_immutable_id": "dcr-0123456789abcdef0123456789abcdef",
        "stream_name": "Custom-AuditStream_CL",
        "tenant_id": "contoso.onmicrosoft.com",
        "client_id": "11111111-2222-3333-4444-555555555555",
        "client_secret": "s3cret",
        "ca_file": "/etc/ssl/ca.pem",
    },
}
TEXT_ROLES = (RoleKind.TEXT, RoleKind.RELATIVE_PATH, RoleKind.WORKER_FILE)


def _text_fields() -> list[tuple[str, str]]:
    return sorted(
        (kind, name)
        for kind, k in KINDS.items()
        for role in TEXT_ROLES
        for name in fields_with_role(k.model, role)
        if name not in ("id",)
    )


@pytest.mark.parametrize(("kind", "field"), _text_fields())
@pytest.mark.parametrize("bad", ["\n", "\x00", "\x1b", "\x85", "\u2028"])
def test_no_text_field_of_any_kind_takes_control_characters(
    kind: str, field: str, bad: str
) -> None:
    assert kind in SAMPLES, f"add a {kind} destination to SAMPLES"
    model = KINDS[kind].model
    base = {"id": "d", **SAMPLES[kind]}
    model.model_validate(base)  # the sample is valid
    value = f"{base.get(field) or 'value'}{bad}"
    with pytest.raises(ValidationError) as refused:
        model.model_validate({**base, field: value})
    errors = refused.value.errors(include_input=False)
    assert any(field in e["loc"] or field in str(e["msg"]) for e in errors), errors
    assert all(bad not in str(e["msg"]) for e in errors)


def test_settings_stored_with_such_a_name_still_load() -> None:
    data = {"id": "d", **SAMPLES["s3"], "bucket": "acme-audit\n"}
    KINDS["s3"].model.model_validate(data, context=STORED)


@pytest.mark.parametrize("name", ["X-Token\n", "X-Token\r\n", "\nX-Token"])
def test_a_header_name_with_a_line_break_is_refused(name: str) -> None:
    destination = ops.parse_destination(
        {
            "id": "d",
            "type": "webhook",
            "url": "https://siem.example.com/in",
            "secret": "s",
            "headers": {name: "v"},
        }
    )
    with pytest.raises(Invalid) as refused:
        ops.check_policy(destination, _OPTIONS, set())
    assert refused.value.errors[0][0] == ["body", "headers", 0]


@pytest.mark.parametrize("value", ["v\n", "v\r\n"])
def test_a_header_value_ending_with_a_line_break_is_refused(value: str) -> None:
    destination = ops.parse_destination(
        {
            "id": "d",
            "type": "webhook",
            "url": "https://siem.example.com/in",
            "secret": "s",
            "headers": {"X-Token": value},
        }
    )
    with pytest.raises(Invalid) as refused:
        ops.check_policy(destination, _OPTIONS, set())
    assert refused.value.errors[0][0] == ["body", "headers", "X-Token"]


def _options() -> Any:
    from auditstream.api.options import ApiOptions

    return ApiOptions()


_OPTIONS = _options()
