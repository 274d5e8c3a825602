"""bench.siem_outputs' bytes table: every registered shape and every output, from bodies the
sinks build (nothing is sent)."""

from __future__ import annotations

from auditstream.sinks.shapes import SHAPES
from bench.siem_outputs import SIZE_OUTPUTS, batches, decoded_events, size_report, wire_sizes


def test_bytes_table_covers_every_shape_and_output() -> None:
    work = batches(decoded_events(40), 20)
    sizes = wire_sizes(work)
    assert {(s.schema, s.output) for s in sizes} == {
        (schema, output) for schema in SHAPES for output in SIZE_OUTPUTS
    }
    for s in sizes:
        assert s.events == 40
        assert 0 < s.gzip_bytes < s.plain_bytes
    lines = size_report(sizes)
    assert all(any(line.startswith(schema) for line in lines) for schema in SHAPES)
