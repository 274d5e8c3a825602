"""NDJSON objects compressed with ISA-L: standard gzip that any reader decompresses to the
lines the ordinary path wrote, over every activity of the catalog and both schema versions."""

from __future__ import annotations

import gzip

import orjson
import pytest

from auditstream.schemas import codec
from auditstream.sinks.compression import gzip_bytes, isal_level
from auditstream.sinks.formats import NdjsonFormat
from auditstream.sinks.render import render_ndjson
from tests.unit.fast_path_events import catalog_events


def decoded_events(writer: int) -> list[dict[str, object]]:
    events = catalog_events()
    if writer == 1:
        for e in events:
            del e["details"]
    return [codec.decode(codec.encode(e, codec.version(writer))) for e in events]


@pytest.mark.parametrize("writer", [v.version for v in codec.published_versions()])
@pytest.mark.parametrize("level", [1, 6, 9])
def test_objects_decompress_with_stdlib_gzip_to_the_ordinary_lines(writer: int, level: int) -> None:
    events = decoded_events(writer)
    ordinary = gzip.compress(render_ndjson(events), compresslevel=level, mtime=0)
    fast = NdjsonFormat("gzip", level).serialize(events)
    assert fast[:2] == b"\x1f\x8b"
    old_lines = [orjson.loads(x) for x in gzip.decompress(ordinary).splitlines()]
    new_lines = [orjson.loads(x) for x in gzip.decompress(fast).splitlines()]
    assert new_lines == old_lines
    assert len(new_lines) == len(events) > 50


def test_the_same_body_always_gives_the_same_bytes() -> None:
    body = render_ndjson(decoded_events(2))
    assert gzip_bytes(body) == gzip_bytes(body)
    assert gzip.decompress(gzip_bytes(b"")) == b""


@pytest.mark.parametrize(
    ("zlib_level", "isal"), [(-1, 0), (0, 0), (1, 1), (3, 1), (4, 3), (6, 3), (9, 3)]
)
def test_isal_level_of_a_zlib_level(zlib_level: int, isal: int) -> None:
    assert isal_level(zlib_level) == isal
