"""Object formats: every format and compression the settings accept serializes and decodes."""

from __future__ import annotations

import gzip
import io

import orjson
import pytest
import zstandard
from fastavro import reader

from auditstream.sinks.formats import format_for
from tests.factories import make_event


@pytest.mark.parametrize("compression", ["deflate", "snappy", "zstd", "none"])
def test_avro_codecs(compression: str) -> None:
    data = format_for("avro", compression).serialize([make_event(), make_event()])
    assert len(list(reader(io.BytesIO(data)))) == 2


@pytest.mark.parametrize(
    ("compression", "extension", "decompress"),
    [
        ("gzip", ".ndjson.gz", gzip.decompress),
        (
            "zstd",
            ".ndjson.zst",
            lambda b: zstandard.ZstdDecompressor().decompressobj().decompress(b),
        ),
        ("none", ".ndjson", lambda b: b),
    ],
)
def test_ndjson(compression: str, extension: str, decompress: object) -> None:
    fmt = format_for("ndjson", compression)
    events = [make_event(), make_event()]
    data = fmt.serialize(events)
    assert fmt.extension == extension
    lines = decompress(data).splitlines()  # type: ignore[operator]
    assert [orjson.loads(x)["event_id"] for x in lines] == [e["event_id"] for e in events]
    assert fmt.serialize(events) == data  # a replayed batch gives the same bytes


def test_ndjson_refuses_avro_only_codecs() -> None:
    with pytest.raises(ValueError, match="ndjson supports"):
        format_for("ndjson", "snappy")
