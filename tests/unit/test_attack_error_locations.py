"""A refused value is named by its field, not only in prose.

Rules that models check after their fields (a URL's spelling, credentials given in pairs) are
reported by pydantic at the model, so the API answered ``loc: ["body"]`` for a bad ``url``, and
the CLI printed ``body: Value error, url must be ...``. Such an error names its field in its
``loc`` when its message starts with the field, and loses pydantic's ``Value error,`` prefix.
"""

from __future__ import annotations

from typing import Any

import pytest

from auditstream.api import ops
from auditstream.api.errors import Invalid
from auditstream.config.fields import RoleKind, fields_with_role
from auditstream.sinks.registry import KINDS

SAMPLES: dict[str, dict[str, Any]] = {
    "webhook": {"url": "https://siem.example.com/in", "secret": "s"},
    "s3": {"bucket": "acme-audit", "access_key_id": "a", "secret_access_key": "b"},
    "gcs": {"bucket": "acme-audit", "anonymous": True, "endpoint": "https://store.example.com"},
    "azure_blob": {
        "container": "audit",
        "account_url": "https://acct.blob.core.windows.net",
        "sas_token": "sv=1",
    },
    "splunk_hec": {"url": "https://siem.example.com", "token": "hec-token-1"},
    "datadog_logs": {"api_key": "a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4"},
    "azure_monitor_logs": {
        "dcr_immutable_id": "dcr-0123456789abcdef0123456789abcdef",
        "stream_name": "Custom-AuditStream_CL",
        "tenant_id": "contoso.onmicrosoft.com",
        "client_id": "11111111-2222-3333-4444-555555555555",
        "client_secret": "s3cret",
    },
}


def _address_fields() -> list[tuple[str, str]]:
    return sorted(
        (kind, name)
        for kind, k in KINDS.items()
        for name in fields_with_role(k.model, RoleKind.ADDRESS)
    )


@pytest.mark.parametrize(("kind", "field"), _address_fields())
@pytest.mark.parametrize(
    "url",
    ["https://user:pw@siem.example.com/in", "https://siem.example.com\\@h/in", "https:///in"],
)
def test_a_bad_address_is_located_at_its_field(kind: str, field: str, url: str) -> None:
    assert kind in SAMPLES, f"add a {kind} destination to SAMPLES"
    with pytest.raises(Invalid) as refused:
        ops.parse_destination({"id": "d", "type": kind, **SAMPLES[kind], field: url})
    locs = [loc for loc, _msg, _kind in refused.value.errors]
    assert ["body", field] in locs, refused.value.errors
    for _loc, msg, _kind in refused.value.errors:
        assert not msg.startswith("Value error")
        assert "pw@" not in msg


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"type": "s3", "bucket": "acme-audit", "kms_key_id": "alias/k"}, "kms_key_id"),
        (
            {"type": "s3", "bucket": "acme-audit", "external_id": "ab", "access_key_id": "a"},
            None,  # "set both ...": no single field to blame; stays at the body
        ),
        ({"type": "gcs", "bucket": "acme-audit", "anonymous": True}, "anonymous"),
    ],
)
def test_cross_field_rules_name_the_field_they_start_with(
    data: dict[str, Any], field: str | None
) -> None:
    with pytest.raises(Invalid) as refused:
        ops.parse_destination({"id": "d", **data})
    (loc, msg, _kind), *_ = refused.value.errors
    assert loc == (["body", field] if field else ["body"])
    assert not msg.startswith("Value error")
    # The message used to be withheld as "invalid value": it names fields, which are keys of
    # the input, and was taken for an echo of the input.
    assert "invalid value" not in msg
    assert "access_key_id" in msg or (field is not None and field in msg)
