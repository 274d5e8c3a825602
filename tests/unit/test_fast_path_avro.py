"""Avro containers framed from the records' bodies hold the events the ordinary path (decode,
then fastavro's writer) holds, over every activity of the catalog; anything the ordinary
decoder would refuse or rewrite takes the ordinary path."""

from __future__ import annotations

import io
import struct
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import fastavro
import pytest

from auditstream.config.destinations import LocalDestination
from auditstream.pipeline.log import Record
from auditstream.schemas import codec
from auditstream.sinks import avro_passthrough
from auditstream.sinks.batch import Batch
from auditstream.sinks.formats import AvroContainerFormat
from auditstream.sinks.local_dir import LocalDirectorySink
from tests.factories import make_event
from tests.unit.fast_path_events import catalog_events


def records_of(values: list[bytes]) -> list[Record]:
    return [Record("auditstream.dest.d", 0, i, b"acme", v) for i, v in enumerate(values)]


def ordinary(values: list[bytes], codec_name: str) -> list[Any]:
    """What the ordinary path writes: every value decoded, then fastavro's writer."""
    data = AvroContainerFormat(codec_name).serialize([codec.decode(v) for v in values])  # type: ignore[arg-type]
    return list(fastavro.reader(io.BytesIO(data)))


def framed(values: list[bytes], codec_name: str) -> list[Any] | None:
    result = AvroContainerFormat(codec_name).encode_records(records_of(values))  # type: ignore[arg-type]
    return None if result is None else list(fastavro.reader(io.BytesIO(result.data)))


@pytest.mark.parametrize("codec_name", ["deflate", "null"])
def test_every_catalog_activity_reads_back_as_the_ordinary_path(codec_name: str) -> None:
    values = [codec.encode(e) for e in catalog_events()]
    assert len(values) > 50
    assert framed(values, codec_name) == ordinary(values, codec_name)


def test_first_recorded_at_is_the_first_events() -> None:
    values = [codec.encode(e) for e in catalog_events()[:3]]
    result = avro_passthrough.passthrough(values, "deflate")
    assert result is not None
    assert result.first_recorded_at == codec.decode(values[0])["recorded_at"]


def test_bodies_over_a_block_are_split_into_blocks() -> None:
    big = make_event(details={"blob": "x" * (avro_passthrough.BLOCK_BYTES // 2)})
    values = [codec.encode(big), codec.encode(make_event()), codec.encode(big)]
    result = avro_passthrough.passthrough(values, "deflate")
    assert result is not None
    blocks = list(fastavro.block_reader(io.BytesIO(result.data)))
    assert [b.num_records for b in blocks] == [2, 1]
    assert framed(values, "deflate") == ordinary(values, "deflate")


def v1_value() -> bytes:
    event = make_event()
    del event["details"]
    return codec.encode(event, codec.version(1))


def reversed_header(value: bytes) -> bytes:
    return value[:2] + value[2:10][::-1] + value[10:]


def plain_encoded(**fields: Any) -> bytes:
    """A value of the current schema written without logical types: any event id text, any
    timestamp number."""
    event = make_event()
    event.update({"occurred_at": 1_800_000_000_000_000, "recorded_at": 1_800_000_000_000_000})
    event.update(fields)
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, avro_passthrough._plain_schema(), event)
    return codec.MARKER + codec.current().fingerprint_bytes + buf.getvalue()


good = codec.encode(make_event())


@pytest.mark.parametrize(
    ("why", "value"),
    [
        ("written with schema v1 (decoding resolves it)", v1_value()),
        ("the older header byte order", reversed_header(good)),
        ("truncated body", good[:-3]),
        ("trailing bytes", good + b"\x00"),
        ("header only", good[:10]),
        ("empty", b""),
        ("upper-case event id", plain_encoded(event_id=str(uuid.uuid4()).upper())),
        ("event id in braces", plain_encoded(event_id="{" + str(uuid.uuid4()) + "}")),
        ("event id not a UUID", plain_encoded(event_id="'; DROP TABLE x;--")),
        ("timestamp past year 9999", plain_encoded(occurred_at=2**62)),
        ("timestamp before year 1", plain_encoded(recorded_at=-(2**62))),
        ("bad UTF-8 in a string", good.replace(b"Ada", b"\xff\xfe\xfd")),
    ],
)
def test_what_decoding_refuses_or_rewrites_takes_the_ordinary_path(why: str, value: bytes) -> None:
    assert avro_passthrough.passthrough([good, value, good], "deflate") is None, why


def test_canonical_event_ids_and_extreme_valid_timestamps_pass_through() -> None:
    low = datetime(1, 1, 1, tzinfo=UTC)
    high = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    near = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
    values = [
        codec.encode(make_event(occurred_at=low, recorded_at=low)),
        codec.encode(make_event(occurred_at=near, recorded_at=high)),
    ]
    assert framed(values, "null") == ordinary(values, "null")


@pytest.mark.parametrize("codec_name", ["snappy", "zstandard"])
def test_codecs_not_framed_take_the_ordinary_path(codec_name: str) -> None:
    assert avro_passthrough.passthrough([good], codec_name) is None
    with pytest.raises(ValueError, match="not framed here"):
        avro_passthrough.frame([good[10:]], codec_name)


def test_zigzag_matches_avro_longs() -> None:
    for n in (0, -1, 1, 63, -64, 64, 2**31, -(2**63), 2**63 - 1):
        buf = io.BytesIO()
        fastavro.schemaless_writer(buf, "long", n)
        assert avro_passthrough._zigzag(n) == buf.getvalue(), n


def test_the_object_store_sink_writes_the_framed_container(tmp_path: Path) -> None:
    destination = LocalDestination.model_validate(
        {"id": "d1", "type": "local", "path": "out", "format": "avro", "compression": "deflate"}
    )
    sink = LocalDirectorySink(destination, root=tmp_path)
    values = [codec.encode(e) for e in catalog_events()[:10]]
    batch = Batch("d1", "acme", "auditstream.dest.d1", 0, records=records_of(values))
    written = sink.write_encoded(batch)
    assert written is not None
    (path,) = [p for p in tmp_path.rglob("*.avro")]
    decoded = Batch("d1", "acme", "auditstream.dest.d1", 0, records=batch.records)
    decoded.events = [codec.decode(v) for v in values]
    assert str(path.relative_to(tmp_path / "out")) == sink.key_for(decoded)
    assert list(fastavro.reader(io.BytesIO(path.read_bytes()))) == ordinary(values, "deflate")


def test_an_ndjson_sink_has_nothing_to_frame(tmp_path: Path) -> None:
    destination = LocalDestination.model_validate({"id": "d1", "type": "local", "path": "out"})
    sink = LocalDirectorySink(destination, root=tmp_path)
    batch = Batch("d1", "acme", "auditstream.dest.d1", 0, records=records_of([good]))
    assert sink.write_encoded(batch) is None
    assert not list(tmp_path.rglob("*.*"))


def test_header_struct_is_the_fingerprint() -> None:
    assert good[2:10] == struct.pack("<Q", codec.current().fingerprint)


def test_the_apache_avro_library_reads_the_framed_container() -> None:
    """A second, independent reader of the container format (the Apache Avro library)."""
    import avro.datafile
    import avro.io

    values = [codec.encode(e) for e in catalog_events()]
    result = avro_passthrough.passthrough(values, "deflate")
    assert result is not None
    with avro.datafile.DataFileReader(io.BytesIO(result.data), avro.io.DatumReader()) as reader:
        read: list[Any] = list(reader)
    expected = ordinary(values, "deflate")
    assert [str(r["event_id"]) for r in read] == [str(e["event_id"]) for e in expected]
    assert [r["details"] for r in read] == [e["details"] for e in expected]
    assert [r["changes"] for r in read] == [e["changes"] for e in expected]
