"""Avro single-object encoding of ``ActivityEvent``.

Wire format (Avro specification, "Single object encoding"): ``C3 01`` marker, the writer
schema's CRC-64-AVRO fingerprint of its Parsing Canonical Form as 8 little-endian bytes, then the
Avro binary body; byte for byte what Java's ``BinaryMessageEncoder`` writes. The fingerprint lets
any reader find the writer schema without a registry: every published version is kept in
``schemas/avro/`` and data written with any of them is read with the current one.

Earlier releases wrote the 8 fingerprint bytes in reverse order. Such messages remain in topics
and dead-letter topics, so the reader also accepts the reversed bytes of every published version
(docs/adr/008-avro-fingerprint-bytes.md); nothing writes them any more.
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


def crc64_avro(canonical_form: str) -> int:
    """The CRC-64-AVRO fingerprint of ``canonical_form`` as an unsigned 64-bit integer: the
    value of Java's ``SchemaNormalization.fingerprint64``, which the header stores little-endian.
    """
    # fastavro's digest is the hex of the header bytes (little-endian), not of the number.
    digest = fingerprint(canonical_form, "CRC-64-AVRO")
    return int.from_bytes(bytes.fromhex(digest), "little")


def reversed_header_value(fp: int) -> int:
    """The number that the header of an earlier release reads as: ``fp`` with its 8 bytes in
    reverse order (those releases wrote the fingerprint bytes reversed)."""
    return int.from_bytes(struct.pack("<Q", fp), "big")


@dataclass(frozen=True)
class SchemaVersion:
    """One published version of the event schema."""

    version: int
    fingerprint: int
    """CRC-64-AVRO of the Parsing Canonical Form (unsigned; Java's ``parsingFingerprint64``)."""
    parsed: Any

    @property
    def fingerprint_bytes(self) -> bytes:
        """The 8 header bytes that follow the marker, as the specification lays them out."""
        return struct.pack("<Q", self.fingerprint)


def _load(version: int, text: str) -> SchemaVersion:
    raw = json.loads(text)
    parsed = parse_schema(raw)
    fp = crc64_avro(to_parsing_canonical_form(parsed))
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


def header_values(versions: tuple[SchemaVersion, ...]) -> Mapping[int, SchemaVersion]:
    """Every header value a reader accepts (see :func:`read_fingerprint`), with its version:
    each version's fingerprint and, for messages of earlier releases, its reversed bytes.

    Raises ``ValueError`` if one value would name two versions, in either byte order.
    """
    found: dict[int, SchemaVersion] = {}
    for v in versions:
        for value in (v.fingerprint, reversed_header_value(v.fingerprint)):
            other = found.setdefault(value, v)
            if other.version != v.version:
                raise ValueError(
                    f"header value {value:#018x} names both ActivityEvent v{other.version} "
                    f"and v{v.version}"
                )
    return found


@cache
def _by_header_value() -> Mapping[int, SchemaVersion]:
    return header_values(published_versions())


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
    """The 8 fingerprint bytes of ``data`` read little-endian: the writer's fingerprint for
    spec-exact messages, its byte-reversed value for those of earlier releases.

    Raises :class:`MalformedMessage` on a bad header.
    """
    if len(data) < HEADER_SIZE:
        raise MalformedMessage(f"message of {len(data)} bytes is shorter than the 10-byte header")
    if data[:2] != MARKER:
        raise MalformedMessage(
            f"bad marker {data[:2].hex()}: not Avro single-object encoding (expected c301)"
        )
    value: int = struct.unpack_from("<Q", data, 2)[0]
    return value


def writer_of(data: bytes) -> SchemaVersion:
    """The published writer schema of ``data``, whichever byte order its fingerprint has.

    Raises :class:`MalformedMessage` (bad header) or :class:`UnknownSchema`.
    """
    fp = read_fingerprint(data)
    found = _by_header_value().get(fp)
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
    except (
        EOFError,
        ValueError,
        IndexError,
        KeyError,
        UnicodeDecodeError,
        TypeError,
        OverflowError,  # a timestamp outside datetime's years 1-9999
    ) as exc:
        raise MalformedMessage(f"corrupt or truncated Avro body: {exc!r}") from exc
    if buf.tell() != len(data):
        raise MalformedMessage(f"{len(data) - buf.tell()} trailing bytes after the Avro body")
    if not isinstance(record, dict):
        raise MalformedMessage("Avro body did not decode to a record")
    return record
