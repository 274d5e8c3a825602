"""A body no sink can decode is dead-lettered by the sink of every destination it was copied
to; ``dlq replay`` sends one fixed copy back through the router, and every destination gets
it once."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from auditstream import cli
from auditstream.config.stream import AccountSettings
from auditstream.pipeline import topics
from auditstream.pipeline.embedded_log import EmbeddedLog
from auditstream.pipeline.log import OutgoingRecord
from auditstream.pipeline.produce_all import produce_all
from auditstream.pipeline.router import Router
from auditstream.pipeline.settings_writer import publish_settings
from auditstream.producers.sdk import to_record
from auditstream.schemas import codec
from auditstream.sinks.worker import SinkWorker
from tests.e2e.harness import local_event_ids
from tests.factories import make_event

HEADERS = (("category", b"account"), ("activity", b"user_login"))


def _dlq(db: Path, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = cli.main(["dlq", *argv, "--db", str(db)])
    out, err = capsys.readouterr()
    return code, out, err


def test_sink_stage_dead_letters_replayed_fixed_reach_every_destination(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "log.sqlite"
    out = tmp_path / "out"
    log = EmbeddedLog(db)
    settings = AccountSettings.model_validate(
        {
            "account_id": "acme",
            "destinations": [
                {"id": d, "type": "local", "path": d, "batch": {"max_events": 1, "max_age_s": 0.1}}
                for d in ("acme-a", "acme-b")
            ],
        }
    )
    publish_settings(log, [settings])
    router = Router(log)
    worker = SinkWorker(log, local_root=out)
    try:
        good = make_event(account_id="acme")
        corrupt = b"\xc3\x01" + codec.current().fingerprint_bytes + b"\xff\xff\xff\xff"
        produce_all(
            log, [to_record(good), OutgoingRecord(topics.ACTIVITY, corrupt, b"acme", HEADERS)]
        )

        def run_until(done: Any) -> None:
            deadline = time.monotonic() + 60
            while not done():
                assert time.monotonic() < deadline, "pipeline did not get there"
                router.step()
                worker.step()

        def dead() -> list[dict[str, Any]]:
            rows: list[dict[str, Any]] = json.loads(_dlq(db, capsys, "list", "--json")[1])
            return rows

        run_until(lambda: len(dead()) == 2)
        rows = dead()
        assert {(r["stage"], r["reason"]) for r in rows} == {("sink", "malformed")}
        assert sorted(r["source"].split("@")[0] for r in rows) == [
            "auditstream.dest.acme-a",
            "auditstream.dest.acme-b",
        ]

        code, sent, err = _dlq(db, capsys, "replay", "--stage", "sink", "--dry-run")
        assert code == 0
        assert len(sent.splitlines()) == 1
        assert "the same event as" in err

        fixed = make_event(account_id="acme", activity="user_logout")
        fix = tmp_path / "fixed.avro"
        fix.write_bytes(codec.encode(fixed))
        code, sent, err = _dlq(
            db, capsys, "replay", "--offset", rows[0]["dlq"], "--value-file", str(fix), "--yes"
        )
        assert code == 0, err
        assert "-> auditstream.activity" in sent

        want = sorted([good["event_id"], fixed["event_id"]])
        run_until(
            lambda: all(sorted(local_event_ids(out / d)) == want for d in ("acme-a", "acme-b"))
        )
        worker.drain()
        assert len(dead()) == 2  # nothing new dead-lettered
    finally:
        worker.close()
        router.close()
        log.close()
