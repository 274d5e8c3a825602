"""Object formats: how a batch of decoded events becomes the bytes of one object."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import zstandard
from fastavro import writer as avro_writer

from auditstream.pipeline.log import Record
from auditstream.schemas import codec
from auditstream.sinks.avro_passthrough import Framed, passthrough
from auditstream.sinks.compression import gzip_bytes
from auditstream.sinks.render import ndjson_of, render_ndjson


class Format(Protocol):
    @property
    def extension(self) -> str: ...

    @property
    def content_type(self) -> str: ...

    @property
    def content_encoding(self) -> str | None: ...

    def serialize(
        self, events: Sequence[Mapping[str, Any]], documents: Sequence[bytes] | None = None
    ) -> bytes:
        """The object's bytes for ``events``; ``documents``, when given, are the events already
        rendered as JSON in the format's shape (a JSON format writes them as they are)."""
        ...


@dataclass(frozen=True)
class NdjsonFormat:
    """NDJSON, compressed as a whole object (gzip by default, zstd, or none)."""

    compression: Literal["gzip", "zstd", "none"] = "gzip"
    level: int = 6
    schema: str = "native"
    """The event shape of each line (``sinks.shapes``)."""

    @property
    def extension(self) -> str:
        return {"gzip": ".ndjson.gz", "zstd": ".ndjson.zst", "none": ".ndjson"}[self.compression]

    content_type = "application/x-ndjson"

    @property
    def content_encoding(self) -> str | None:
        return {"gzip": "gzip", "zstd": "zstd", "none": None}[self.compression]

    def serialize(
        self, events: Sequence[Mapping[str, Any]], documents: Sequence[bytes] | None = None
    ) -> bytes:
        body = render_ndjson(events, self.schema) if documents is None else ndjson_of(documents)
        if self.compression == "gzip":
            return gzip_bytes(body, self.level)
        if self.compression == "zstd":
            return zstandard.ZstdCompressor(level=3).compress(body)
        return body


@dataclass(frozen=True)
class AvroContainerFormat:
    """Avro object container file with the current event schema embedded (for data lakes)."""

    codec_name: Literal["deflate", "snappy", "zstandard", "null"] = "deflate"
    extension = ".avro"
    content_type = "application/avro"
    content_encoding: str | None = None

    def serialize(
        self, events: Sequence[Mapping[str, Any]], documents: Sequence[bytes] | None = None
    ) -> bytes:
        """The Avro container of ``events`` (``documents`` are JSON: not used)."""
        buf = io.BytesIO()
        # A fixed sync marker keeps the bytes of a replayed batch identical.
        avro_writer(
            buf,
            codec.current().parsed,
            list(events),
            codec=self.codec_name,
            sync_marker=b"auditstream-sync"[:16],
        )
        return buf.getvalue()

    def encode_records(self, records: Sequence[Record]) -> Framed | None:
        """The container of ``records`` framed from their Avro bodies without decoding them
        (:mod:`sinks.avro_passthrough`), or None when the batch must be decoded (another
        writer schema, a body the decoder would refuse or rewrite, a codec not framed)."""
        return passthrough([r.value for r in records], self.codec_name)


def format_for(fmt: str, compression: str, schema: str = "native") -> Format:
    """The format a destination's ``format``, ``compression`` and ``schema`` settings name.

    Raises ``ValueError`` for a combination that does not exist (e.g. ndjson + snappy, avro +
    a JSON shape: an Avro object holds the native event)."""
    if fmt == "ndjson":
        if compression not in ("gzip", "zstd", "none"):
            raise ValueError(f"ndjson supports gzip, zstd or none compression, not {compression}")
        return NdjsonFormat(compression, schema=schema)  # type: ignore[arg-type]
    if fmt == "avro":
        if schema != "native":
            raise ValueError(
                f"schema {schema} is a JSON shape: format avro holds the native event; use "
                "format ndjson, or schema native"
            )
        mapping = {
            "deflate": "deflate",
            "snappy": "snappy",
            "zstd": "zstandard",
            "none": "null",
            "gzip": "deflate",
        }
        return AvroContainerFormat(mapping[compression])  # type: ignore[arg-type]
    raise ValueError(f"unknown format {fmt!r}: use ndjson or avro")
