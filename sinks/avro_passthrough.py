"""Avro container files framed from the records' own Avro bodies, without decoding them into
events and encoding them again (pure).

A record's value is Avro single-object encoding: a 10-byte header naming the writer schema,
then the Avro binary body. When every record of a batch was written with the current schema,
the bodies are what an Avro container block of that schema holds, byte for byte, so the
object is the container header, then the bodies in blocks.

Each body is still read once, with the current schema stripped of its logical types (no
datetimes, no UUID objects, no dicts kept): a body that does not read to its exact end, an
event id that is not a canonical UUID, or a timestamp outside Python's datetime range makes
the batch not eligible, and the caller takes the ordinary path, which decodes every record,
dead-letters the ones it cannot read and writes the rest. So an object written here holds
exactly the events the ordinary path would have written, with the same values.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from fastavro import parse_schema, schemaless_reader
from isal import isal_zlib

from auditstream.schemas import codec
from auditstream.sinks.compression import isal_level

SYNC_MARKER = b"auditstream-sync"
"""The container's sync marker: fixed, so a replayed batch gives the same bytes."""

BLOCK_BYTES = 1024 * 1024
"""Bodies a block holds at most (uncompressed); a reader holds one block at a time."""

CODECS = ("null", "deflate")
"""The container codecs framed here; others take the ordinary path."""

_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MIN_MICROS = (datetime(1, 1, 1, tzinfo=UTC) - _EPOCH) // timedelta(microseconds=1)
_MAX_MICROS = (datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC) - _EPOCH) // timedelta(
    microseconds=1
)
_READ_ERRORS = (EOFError, ValueError, IndexError, KeyError, UnicodeDecodeError, TypeError)


@dataclass(frozen=True, slots=True)
class Framed:
    """The container's bytes and the first event's ``recorded_at`` (the object key's date)."""

    data: bytes
    first_recorded_at: datetime


def _without_logical_types(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {k: _without_logical_types(v) for k, v in schema.items() if k != "logicalType"}
    if isinstance(schema, list):
        return [_without_logical_types(v) for v in schema]
    return schema


@cache
def _plain_schema() -> Any:
    """The current schema with its logical types removed: the same binary layout, read into
    plain strings and longs."""
    return parse_schema(_without_logical_types(_schema_json()))


@cache
def _schema_json() -> Any:
    from importlib import resources

    name = f"{codec.SCHEMA_NAME}.v{codec.current().version}.avsc"
    text = resources.files("auditstream.schemas").joinpath("avro", name).read_text("utf-8")
    return json.loads(text)


@cache
def _current_header() -> bytes:
    return codec.MARKER + codec.current().fingerprint_bytes


def _zigzag(n: int) -> bytes:
    """An Avro ``long``: zig-zag, then base-128 varint."""
    n = (n << 1) ^ (n >> 63)
    out = bytearray()
    while n & ~0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _avro_bytes(data: bytes) -> bytes:
    return _zigzag(len(data)) + data


def container_header(codec_name: str) -> bytes:
    """``Obj\\x01``, the metadata map (schema and codec) and the sync marker."""
    schema = json.dumps(_schema_json(), separators=(",", ":")).encode()
    meta = {b"avro.schema": schema, b"avro.codec": codec_name.encode()}
    entries = b"".join(_avro_bytes(k) + _avro_bytes(v) for k, v in meta.items())
    return b"Obj\x01" + _zigzag(len(meta)) + entries + b"\x00" + SYNC_MARKER


def checked_bodies(values: Sequence[bytes]) -> tuple[list[bytes], datetime] | None:
    """The Avro bodies of ``values`` and the first one's ``recorded_at``, if every value is
    of the current writer schema and reads to a record the ordinary decoder returns
    unchanged once encoded again; None otherwise (the caller decodes the batch instead)."""
    if not values:
        return None
    header, size = _current_header(), codec.HEADER_SIZE
    schema = _plain_schema()
    bodies: list[bytes] = []
    first: int | None = None
    for value in values:
        if value[:size] != header:
            return None  # another schema version, or the older header byte order
        buf = io.BytesIO(value)
        buf.seek(size)
        try:
            event = schemaless_reader(buf, schema, None)
        except _READ_ERRORS:
            return None
        if buf.tell() != len(value) or not isinstance(event, dict):
            return None
        event_id, occurred, recorded = (
            event.get("event_id"),
            event.get("occurred_at"),
            event.get("recorded_at"),
        )
        if not isinstance(event_id, str) or not _CANONICAL_UUID.fullmatch(event_id):
            return None  # decoding rewrites it (or refuses it): the ordinary path decides
        for micros in (occurred, recorded):
            if not isinstance(micros, int) or not _MIN_MICROS <= micros <= _MAX_MICROS:
                return None
        if first is None:
            first = recorded
        bodies.append(value[size:])
    assert first is not None
    return bodies, _EPOCH + timedelta(microseconds=first)


def frame(bodies: Sequence[bytes], codec_name: str, level: int = 6) -> bytes:
    """An Avro container of the current schema holding ``bodies`` (Avro binary records) in
    blocks of at most :data:`BLOCK_BYTES`. Raises ``ValueError`` for a codec not in
    :data:`CODECS`."""
    if codec_name not in CODECS:
        raise ValueError(f"Avro codec {codec_name!r} is not framed here: use one of {CODECS}")
    parts = [container_header(codec_name)]
    start = 0
    while start < len(bodies):
        size, end = 0, start
        while end < len(bodies) and (end == start or size + len(bodies[end]) <= BLOCK_BYTES):
            size += len(bodies[end])
            end += 1
        data = b"".join(bodies[start:end])
        if codec_name == "deflate":
            # Raw deflate (no zlib wrapper), as the Avro specification's deflate codec is.
            data = isal_zlib.compress(data, isal_level(level), wbits=-15)
        parts += [_zigzag(end - start), _zigzag(len(data)), data, SYNC_MARKER]
        start = end
    return b"".join(parts)


def passthrough(values: Sequence[bytes], codec_name: str) -> Framed | None:
    """The container of ``values`` framed from their bodies, or None when the batch must take
    the ordinary path (see the module documentation)."""
    if codec_name not in CODECS:
        return None
    checked = checked_bodies(values)
    if checked is None:
        return None
    bodies, first_recorded_at = checked
    return Framed(frame(bodies, codec_name), first_recorded_at)
