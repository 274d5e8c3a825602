"""Process reports: what a router or worker could not apply, read back by the settings API."""

from __future__ import annotations

from pathlib import Path

import pytest

from auditstream.pipeline import topics
from auditstream.pipeline.embedded_log import EmbeddedLog
from auditstream.pipeline.process_reports import (
    ProcessReport,
    ProcessReporter,
    decode_report,
    encode_report,
    is_report_key,
    report_key,
    unapplied_for,
)
from auditstream.pipeline.settings_table import Unapplied

NOW = 1_000_000.0


def test_reports_round_trip_and_their_keys_are_not_destination_ids() -> None:
    report = ProcessReport("router", "r-1", NOW, {"acme": "no key"})
    assert decode_report(encode_report(report)) == report
    key = report_key("router", "r-1")
    assert is_report_key(key)
    assert not is_report_key(b"acme-hook")
    assert not is_report_key(None)
    with pytest.raises(ValueError, match="not a process report"):
        decode_report(b'{"state": "active"}')


@pytest.mark.parametrize(
    ("reports", "expected"),
    [
        ({}, []),
        ({b"a": ProcessReport("router", "r", NOW - 5, {"acme": "no key"})}, ["router r: no key"]),
        ({b"a": ProcessReport("router", "r", NOW - 500, {"acme": "no key"})}, []),  # stopped
        ({b"a": ProcessReport("router", "r", NOW, {"globex": "bad"})}, []),
        (
            {
                b"a": ProcessReport("router", "r", NOW, {"acme": "no key"}),
                b"b": ProcessReport("sink-worker", "w", NOW, {"acme": "invalid"}),
            },
            ["router r: no key", "sink-worker w: invalid"],
        ),
    ],
)
def test_unapplied_for(reports: dict[bytes, ProcessReport], expected: list[str]) -> None:
    assert unapplied_for(reports, "acme", now=NOW, max_age=60.0) == expected


def test_the_reporter_publishes_changes_at_once_and_repeats_as_a_heartbeat(tmp_path: Path) -> None:
    log = EmbeddedLog(tmp_path / "log.sqlite")
    log.create_topic(topics.STATUS, compacted=True)
    reporter = ProcessReporter(log, "router", "r-1", interval=3600.0)
    reporter.maybe_publish({})
    reporter.maybe_publish({})  # unchanged and recent: not published again
    reporter.maybe_publish({"acme": Unapplied("no key", key_problem=True)})
    reporter.close()
    reader = log.reader(topics.STATUS)
    records = reader.poll(100, 1.0)
    reader.close()
    log.close()
    assert [decode_report(r.value).unapplied for r in records] == [{}, {"acme": "no key"}]
