"""Routing one record (pure): copies, filtering, dead letters."""

from __future__ import annotations

import struct

import pytest

from auditstream.config.stream import AccountSettings
from auditstream.pipeline import topics
from auditstream.pipeline.inclusion import Decision
from auditstream.pipeline.log import Record
from auditstream.pipeline.routing import route
from auditstream.schemas import codec
from tests.factories import make_event

SETTINGS = {
    "acme": AccountSettings.model_validate(
        {
            "account_id": "acme",
            "include_categories": ["account"],
            "destinations": [
                {"id": "a1", "type": "local", "path": "a"},
                {"id": "a2", "type": "local", "path": "b"},
                {"id": "a3", "type": "local", "path": "c", "enabled": False},
            ],
        }
    )
}
VALID = codec.encode(make_event())


def rec(
    value: bytes = VALID,
    key: bytes | None = b"acme",
    headers: tuple[tuple[str, bytes], ...] | None = None,
) -> Record:
    if headers is None:
        headers = (("category", b"account"), ("activity", b"user_login"))
    return Record(topics.ACTIVITY, 0, 42, key, value, headers)


def test_included_event_is_copied_unchanged_to_each_enabled_destination() -> None:
    result = route(rec(), SETTINGS.get)
    assert result.decision is Decision.INCLUDED
    assert [o.topic for o in result.out] == ["auditstream.dest.a1", "auditstream.dest.a2"]
    assert all(o.value == VALID and o.key == b"acme" for o in result.out)


def test_filtered_event_produces_nothing() -> None:
    headers = (("category", b"recipe"), ("activity", b"recipe_started"))
    result = route(rec(headers=headers), SETTINGS.get)
    assert result.out == ()
    assert result.decision is Decision.CATEGORY_NOT_INCLUDED


def test_unknown_account_is_filtered_not_dead_lettered() -> None:
    result = route(rec(key=b"other"), SETTINGS.get)
    assert result.out == ()
    assert result.decision is Decision.NO_SETTINGS


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (rec(key=None), "missing_key"),
        (rec(headers=()), "missing_header"),
        (rec(headers=(("category", b"account"),)), "missing_header"),
        (rec(headers=(("category", b"account"), ("activity", b"\xff"))), "malformed_header"),
        (
            rec(headers=(("category", b"account"), ("activity", b"recipe_started"))),
            "unknown_activity",
        ),
        (rec(headers=(("category", b"nope"), ("activity", b"user_login"))), "unknown_activity"),
        (rec(value=b"garbage, not avro"), "malformed"),
        (rec(value=b""), "malformed"),
        (rec(value=b"\xc3\x01" + struct.pack("<Q", 99) + b"body"), "unknown_schema"),
    ],
)
def test_unroutable_records_are_dead_lettered_with_reason(record: Record, reason: str) -> None:
    result = route(record, SETTINGS.get)
    assert result.dead_letter_reason == reason
    (dlq,) = result.out
    assert dlq.topic == topics.DEAD_LETTERS
    assert dlq.value == record.value
    headers = dict(dlq.headers)
    assert headers["dlq.reason"] == reason.encode()
    assert headers["dlq.source.offset"] == b"42"
    assert headers["dlq.stage"] == b"router"
    assert headers["dlq.detail"]


def test_disabling_streaming_is_announced_to_the_destinations_that_streamed_before() -> None:
    before = SETTINGS["acme"]
    after = before.model_copy(update={"streaming_enabled": False})
    headers = (("category", b"account"), ("activity", b"audit_log_streaming"))
    result = route(rec(headers=headers), {"acme": after}.get, {"acme": before}.get)
    assert [o.topic for o in result.out] == ["auditstream.dest.a1", "auditstream.dest.a2"]
    # Any other activity follows the new settings only.
    other = route(rec(), {"acme": after}.get, {"acme": before}.get)
    assert other.out == ()
    assert other.decision is Decision.STREAMING_DISABLED
