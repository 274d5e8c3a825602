"""The events in one object a destination stored, decoded by its name's extension: what the
end-to-end tests and the benchmarks read back from the stores to check every event arrived."""

from __future__ import annotations

import gzip
import io
from typing import Any

import orjson
import zstandard
from fastavro import reader as avro_reader


def decode_object(name: str, data: bytes) -> list[dict[str, Any]]:
    """The events in one object, by its name's extension (.avro, .ndjson[.gz|.zst])."""
    if name.endswith(".avro"):
        return list(avro_reader(io.BytesIO(data)))  # type: ignore[arg-type]
    if name.endswith(".gz"):
        data = gzip.decompress(data)
    elif name.endswith(".zst"):
        data = zstandard.ZstdDecompressor().decompressobj().decompress(data)
    return [orjson.loads(line) for line in data.splitlines() if line]
