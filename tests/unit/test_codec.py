"""Single-object encoding, schema evolution and codec errors."""

from __future__ import annotations

import struct
from typing import Any

import pytest

from auditstream.schemas import codec
from auditstream.schemas.errors import MalformedMessage, UnknownSchema
from tests.factories import make_event


def _v1_event() -> dict[str, Any]:
    event = make_event()
    del event["details"]
    return event


def test_round_trip_current_version() -> None:
    event = make_event(details={"activity": "switch_team"})
    data = codec.encode(event)
    assert data[:2] == b"\xc3\x01"
    assert struct.unpack_from("<Q", data, 2)[0] == codec.current().fingerprint
    decoded = codec.decode(data)
    assert str(decoded["event_id"]) == event["event_id"]
    assert decoded["occurred_at"] == event["occurred_at"]
    assert decoded["details"] == {"activity": "switch_team"}
    assert decoded["actor"] == event["actor"]


def test_every_version_is_published_with_distinct_fingerprints() -> None:
    versions = codec.published_versions()
    assert [v.version for v in versions] == list(range(1, len(versions) + 1))
    assert len({v.fingerprint for v in versions}) == len(versions)


@pytest.mark.parametrize("writer", [v.version for v in codec.published_versions()])
def test_data_of_every_version_is_read_by_the_current_reader(writer: int) -> None:
    event = _v1_event() if writer == 1 else make_event(details={"k": "v"})
    data = codec.encode(event, codec.version(writer))
    decoded = codec.decode(data)
    assert str(decoded["event_id"]) == event["event_id"]
    assert decoded["details"] == event.get("details", {})  # v1 data: the default


@pytest.mark.parametrize("reader", [v.version for v in codec.published_versions()])
def test_current_data_is_read_by_every_older_reader(reader: int) -> None:
    event = make_event(details={"k": "v"})
    decoded = codec.decode(codec.encode(event), codec.version(reader))
    assert str(decoded["event_id"]) == event["event_id"]
    assert decoded["actor"]["email"] == event["actor"]["email"]
    if reader == 1:
        assert "details" not in decoded


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"", MalformedMessage),
        (b"\xc3", MalformedMessage),
        (b"not avro at all, just text", MalformedMessage),
        (b"\xc3\x01" + b"\x00" * 8 + b"body", UnknownSchema),
        (b"\xc3\x01" + codec.current().fingerprint_bytes, MalformedMessage),  # no body
        (b"\xc3\x01" + codec.current().fingerprint_bytes + b"\xff\xff\xff", MalformedMessage),
    ],
)
def test_bad_messages_raise_named_errors(data: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        codec.decode(data)


def test_truncated_body_is_malformed() -> None:
    data = codec.encode(make_event())
    for cut in (11, len(data) // 2, len(data) - 1):
        with pytest.raises(MalformedMessage):
            codec.decode(data[:cut])


def test_trailing_bytes_are_malformed() -> None:
    with pytest.raises(MalformedMessage, match="trailing"):
        codec.decode(codec.encode(make_event()) + b"\x00")


def test_unknown_schema_names_the_fingerprint() -> None:
    with pytest.raises(UnknownSchema) as info:
        codec.decode(b"\xc3\x01" + struct.pack("<Q", 0x1234) + b"x")
    assert info.value.fingerprint == 0x1234
    assert "0x0000000000001234" in str(info.value)
