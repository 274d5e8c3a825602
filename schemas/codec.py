"""Avro single-object encoding of ``ActivityEvent``.

Wire format (Avro specification, "Single object encoding"): ``C3 01`` marker, the writer
schema's CRC-64-AVRO fingerprint as 8 little-endian bytes, then the Avro binary body. The
fingerprint lets any reader find the writer schema without a registry: every published version
is kept in ``schemas/avro/`` and data written with any of them is read with the current one.
"""

from __future__ import annotations

import io
import json
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from fastavro import parse_schema, schemaless_reader, schemaless_writer
from fastavro.schema import fingerprint, to_parsing_canonical_form

from auditstream.schemas.errors import MalformedMessage, UnknownSchema

MARKER = b"\xc3\x01"
HEADER_SIZE = len(MARKER) + 8
SCHEMA_NAME = "ActivityEvent"


@dataclass(frozen=True)
class SchemaVersion:
    """One published version of the event schema."""

    version: int
    fingerprint: int
    parsed: Any

    @property
    def fingerprint_bytes(self) -> bytes:
        return struct.pack("<Q", self.fingerprint)


def _load(version: int, text: str) -> SchemaVersion:
    raw = json.loads(text)
    parsed = parse_schema(raw)
    canonical = to_parsing_canonical_form(parsed)
    fp = int(fingerprint(canonical, "CRC-64-AVRO"), 16)
    return SchemaVersion(version=version, fingerprint=fp, parsed=parsed)


@cache
def published_versions() -> tuple[SchemaVersion, ...]:
    """Every published version, oldest first (files ``ActivityEvent.vN.avsc``)."""
    found: list[SchemaVersion] = []
    for entry in resources.files("auditstream.schemas").joinpath("avro").iterdir():
        name = entry.name
        if name.startswith(f"{SCHEMA_NAME}.v") and name.endswith(".avsc"):
            version = int(name[len(SCHEMA_NAME) + 2 : -len(".avsc")])
            found.append(_load(version, entry.read_text(encoding="utf-8")))
    found.sort(key=lambda v: v.version)
    if not found:
        raise RuntimeError("no ActivityEvent schema found in schemas/avro")
    return tuple(found)


def current() -> SchemaVersion:
    """The version producers write and readers resolve to."""
    return published_versions()[-1]


@cache
def _by_fingerprint() -> Mapping[int, SchemaVersion]:
    return {v.fingerprint: v for v in published_versions()}


def version(number: int) -> SchemaVersion:
    """The published version ``number``; raises ``KeyError`` if it was never published."""
    for v in published_versions():
        if v.version == number:
            return v
    raise KeyError(f"ActivityEvent v{number} is not published")


def encode(event: Mapping[str, Any], writer: SchemaVersion | None = None) -> bytes:
    """Encode ``event`` with ``writer`` (default: current). Raises ``ValueError`` from fastavro
    if the event does not match the schema; callers validate first (``producers.validation``)."""
    w = writer or current()
    buf = io.BytesIO()
    buf.write(MARKER)
    buf.write(w.fingerprint_bytes)
    schemaless_writer(buf, w.parsed, dict(event))
    return buf.getvalue()


def read_fingerprint(data: bytes) -> int:
    """The writer fingerprint of ``data``. Raises :class:`MalformedMessage` on a bad header."""
    if len(data) < HEADER_SIZE:
        raise MalformedMessage(f"message of {len(data)} bytes is shorter than the 10-byte header")
    if data[:2] != MARKER:
        raise MalformedMessage(
            f"bad marker {data[:2].hex()}: not Avro single-object encoding (expected c301)"
        )
    value: int = struct.unpack_from("<Q", data, 2)[0]
    return value


def writer_of(data: bytes) -> SchemaVersion:
    """The published writer schema of ``data``.

    Raises :class:`MalformedMessage` (bad header) or :class:`UnknownSchema`.
    """
    fp = read_fingerprint(data)
    found = _by_fingerprint().get(fp)
    if found is None:
        raise UnknownSchema(fp)
    return found


def decode(data: bytes, reader: SchemaVersion | None = None) -> dict[str, Any]:
    """Decode ``data`` into a dict shaped by ``reader`` (default: current version).

    Raises :class:`MalformedMessage` for a bad marker, a truncated or corrupt body, or trailing
    bytes; :class:`UnknownSchema` for an unpublished fingerprint. Never anything else.
    """
    writer = writer_of(data)
    r = reader or current()
    buf = io.BytesIO(data)
    buf.seek(HEADER_SIZE)
    try:
        # Same writer and reader: skip schema resolution (the common, hot case).
        record = schemaless_reader(buf, writer.parsed, None if writer is r else r.parsed)
    except (EOFError, ValueError, IndexError, KeyError, UnicodeDecodeError, TypeError) as exc:
        raise MalformedMessage(f"corrupt or truncated Avro body: {exc!r}") from exc
    if buf.tell() != len(data):
        raise MalformedMessage(f"{len(data) - buf.tell()} trailing bytes after the Avro body")
    if not isinstance(record, dict):
        raise MalformedMessage("Avro body did not decode to a record")
    return record
