"""Router and sink worker as separate processes on one embedded log file, each serving
/metrics; and the CLI's catalog and settings commands."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx

from auditstream.pipeline.embedded_log import EmbeddedLog
from auditstream.producers.sdk import ActivityProducer
from auditstream.producers.simulator import Simulator, SimulatorConfig
from auditstream.schemas import catalog
from devservices.ports import free_port
from devservices.processes import ProjectProcess
from tests.e2e.harness import local_event_ids

SETTINGS = """
accounts:
  - account_id: acme
    exclude_activities: [user_logout]
    destinations:
      - {id: acme-files, type: local, path: acme, batch: {max_events: 100, max_age_s: 0.3}}
"""


def _metric(text: str, name: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and not line.startswith("#"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "auditstream", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_processes_serve_metrics(tmp_path: Path) -> None:
    db = tmp_path / "log.sqlite"
    settings = tmp_path / "settings.yaml"
    settings.write_text(SETTINGS)
    applied = _cli("settings", "apply", "-f", str(settings), "--db", str(db))
    assert applied.returncode == 0, applied.stderr
    assert "1 accounts" in applied.stdout

    events = list(Simulator(SimulatorConfig(accounts=["acme"], seed=3)).events(2000))
    log = EmbeddedLog(db)
    with ActivityProducer(log) as producer:
        for e in events:
            producer.send(e)
    want = {e["event_id"] for e in events if e["activity"] != "user_logout"}

    rport, wport = free_port(), free_port()
    backend = ["--backend", "embedded", "--db", str(db)]
    with (
        ProjectProcess(
            ["router", *backend, "--metrics-port", str(rport)], tmp_path / "router.log"
        ) as router,
        ProjectProcess(
            [
                "sink-worker",
                *backend,
                "--metrics-port",
                str(wport),
                "--local-root",
                str(tmp_path / "out"),
            ],
            tmp_path / "worker.log",
        ) as worker,
    ):
        deadline = time.monotonic() + 90
        while set(local_event_ids(tmp_path / "out" / "acme")) != want:
            assert time.monotonic() < deadline, worker.output()[-2000:]
            assert router.alive(), router.output()[-2000:]
            assert worker.alive(), worker.output()[-2000:]
            time.sleep(0.5)
        time.sleep(1.0)
        rtext = httpx.get(f"http://127.0.0.1:{rport}/metrics").text
        wtext = httpx.get(f"http://127.0.0.1:{wport}/metrics").text
    assert _metric(rtext, "auditstream_router_events_routed_total") == len(want)
    assert _metric(rtext, "auditstream_router_events_filtered_total") == len(events) - len(want)
    assert _metric(rtext, "auditstream_router_events_consumed_total") == len(events)
    assert _metric(wtext, "auditstream_sink_events_delivered_total") == len(want)
    assert _metric(wtext, 'auditstream_sink_batches_total{outcome="written"') > 0
    assert "auditstream_sink_batch_write_duration_seconds_bucket" in wtext
    assert sorted(local_event_ids(tmp_path / "out" / "acme")) == sorted(want)
    log.close()


def test_catalog_json_lists_every_activity() -> None:
    result = _cli("catalog", "--json")
    assert result.returncode == 0, result.stderr
    records = json.loads(result.stdout)
    assert len(records) == len(catalog.ACTIVITIES)
    assert {"category", "name", "key", "description"} <= set(records[0])
    assert {r["key"] for r in records} == {a.key for a in catalog.ACTIVITIES}


def test_bad_settings_file_is_named_with_the_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("accounts:\n  - account_id: a\n    include_categories: [recipes]\n")
    result = _cli("settings", "apply", "-f", str(bad), "--db", str(tmp_path / "x.sqlite"))
    assert result.returncode == 2
    assert "include_categories" in result.stderr
    assert "positions 0" in result.stderr  # where, not the value: errors never echo input
