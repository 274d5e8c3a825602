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


def _with_reversed_fingerprint(data: bytes) -> bytes:
    """``data`` with the header that earlier releases wrote: fingerprint bytes reversed."""
    return data[:2] + data[2:10][::-1] + data[10:]


def test_round_trip_current_version() -> None:
    event = make_event(details={"activity": "switch_team"})
    data = codec.encode(event)
    assert data[:2] == b"\xc3\x01"
    assert data[2:10] == codec.current().fingerprint_bytes
    assert struct.unpack_from("<Q", data, 2)[0] == codec.current().fingerprint
    decoded = codec.decode(data)
    assert str(decoded["event_id"]) == event["event_id"]
    assert decoded["occurred_at"] == event["occurred_at"]
    assert decoded["details"] == {"activity": "switch_team"}
    assert decoded["actor"] == event["actor"]


# The header bytes Java's BinaryMessageEncoder writes for each published version
# (tests/integration/test_avro_interop.py checks them against the library). A published schema
# file never changes, so neither do these.
@pytest.mark.parametrize(
    ("number", "header_bytes"),
    [(1, "5edef8f3c4c91ca7"), (2, "2178180d7fcbfc16")],
)
def test_published_versions_keep_their_header_bytes(number: int, header_bytes: str) -> None:
    v = codec.version(number)
    assert v.fingerprint_bytes.hex() == header_bytes
    assert codec.encode(make_event(), v)[2:10].hex() == header_bytes


# CRC-64-AVRO of parsing canonical forms, as Java's SchemaNormalization.fingerprint64 gives them.
@pytest.mark.parametrize(
    ("canonical_form", "expected"),
    [
        ('"null"', 0x63DD24E7CC258F8A),
        ('"int"', 0x7275D51A3F395C8F),
        ('"long"', 0xD054E14493F41DB7),
        ('{"name":"md5","type":"fixed","size":16}', 0x481B34E75CD85D8C),
        (
            '{"name":"n.r","type":"record","fields":[{"name":"f","type":["null","string"]}]}',
            0x3988979680D8F283,
        ),
    ],
)
def test_crc64_avro_matches_the_reference(canonical_form: str, expected: int) -> None:
    assert codec.crc64_avro(canonical_form) == expected


@pytest.mark.parametrize(
    ("fingerprint", "reversed_value"),
    [
        (0x0102030405060708, 0x0807060504030201),
        (0xFF, 0xFF00000000000000),
        (0, 0),
        (0x16FCCB7F0D187821, 0x2178180D7FCBFC16),
    ],
)
def test_reversed_header_value(fingerprint: int, reversed_value: int) -> None:
    assert codec.reversed_header_value(fingerprint) == reversed_value
    assert codec.reversed_header_value(reversed_value) == fingerprint


def test_every_version_is_published_with_distinct_fingerprints() -> None:
    versions = codec.published_versions()
    assert [v.version for v in versions] == list(range(1, len(versions) + 1))
    assert len({v.fingerprint for v in versions}) == len(versions)


def test_no_header_value_names_two_published_versions_in_either_byte_order() -> None:
    versions = codec.published_versions()
    accepted = codec.header_values(versions)  # raises on a collision
    for v in versions:
        assert accepted[v.fingerprint] is v
        assert accepted[codec.reversed_header_value(v.fingerprint)] is v
    assert len(accepted) == 2 * len(versions)


def test_colliding_header_values_are_refused() -> None:
    first = codec.SchemaVersion(version=1, fingerprint=0x0102030405060708, parsed=None)
    second = codec.SchemaVersion(version=2, fingerprint=0x0807060504030201, parsed=None)
    with pytest.raises(ValueError, match="names both ActivityEvent v1 and v2"):
        codec.header_values((first, second))


@pytest.mark.parametrize("writer", [v.version for v in codec.published_versions()])
def test_messages_of_earlier_releases_with_reversed_fingerprints_are_read(writer: int) -> None:
    event = _v1_event() if writer == 1 else make_event(details={"k": "v"})
    data = codec.encode(event, codec.version(writer))
    old = _with_reversed_fingerprint(data)
    assert old != data
    assert codec.writer_of(old) is codec.version(writer)
    assert codec.decode(old) == codec.decode(data)


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
        (b"\xc3\x01" + codec.current().fingerprint_bytes[::-1], MalformedMessage),  # no body
        # Neither byte order of a published fingerprint, e.g. its bytes rotated by one.
        (
            b"\xc3\x01"
            + codec.current().fingerprint_bytes[1:]
            + codec.current().fingerprint_bytes[:1]
            + b"body",
            UnknownSchema,
        ),
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
