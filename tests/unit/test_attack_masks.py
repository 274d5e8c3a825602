"""The mask GET shows (``********``) sent back where nothing is stored under it: a PATCH that
added a header with the mask as its value stored the mask itself, and the receiver got
``********`` as the header's value. It is refused as it is when a destination is created."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import SecretStr

from auditstream.api import ops
from auditstream.api.errors import Invalid
from auditstream.api.models import MASK

STORED: dict[str, Any] = {
    "id": "hook",
    "type": "webhook",
    "url": "https://siem.example.com/in",
    "secret": "signing-Secret-31",
    "headers": {"Authorization": "Splunk stored-Token"},
}


def test_a_masked_value_for_a_new_header_is_refused() -> None:
    stored = ops.parse_destination(STORED)
    patch = {"type": "webhook", "headers": {"Authorization": MASK, "X-New": MASK}}
    with pytest.raises(Invalid) as refused:
        ops.merge_patch(stored, patch)
    (loc, msg, _kind), *_ = refused.value.errors
    assert loc == ["body", "headers", "X-New"]
    assert MASK in msg


def test_a_masked_value_for_a_stored_header_keeps_it() -> None:
    stored = ops.parse_destination(STORED)
    merged = ops.merge_patch(stored, {"type": "webhook", "headers": {"Authorization": MASK}})
    value = merged["headers"]["Authorization"]
    assert isinstance(value, SecretStr)
    assert value.get_secret_value() == "Splunk stored-Token"


def test_a_header_name_that_is_not_a_name_is_not_echoed() -> None:
    stored = ops.parse_destination(STORED)
    with pytest.raises(Invalid) as refused:
        ops.merge_patch(stored, {"type": "webhook", "headers": {"Bearer pasted-Token": MASK}})
    assert "pasted-Token" not in str(refused.value.errors)
