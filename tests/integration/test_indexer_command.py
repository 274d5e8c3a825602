"""``auditstream indexer`` as a process on the embedded log: health and metrics on its port, a
clean stop on SIGTERM, and a kill -9 mid-stream after which a new process stores each event
exactly once with every hash chain intact."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path

from auditstream.pipeline import topics
from auditstream.pipeline.embedded_log import EmbeddedLog
from auditstream.producers.sdk import to_record
from auditstream.store.query import ActivityFilter
from auditstream.store.sqlite_store import SqliteStore
from devservices.ports import free_port
from devservices.processes import ProjectProcess
from tests.factories import make_event

ACCOUNTS = ("acme", "globex")


def _get(port: int, path: str) -> tuple[int, str] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return None


def _produce(db: Path, count: int) -> list[str]:
    log = EmbeddedLog(db)
    try:
        log.create_topic(topics.ACTIVITY)
        producer = log.producer()
        ids = []
        for i in range(count):
            event = make_event(account_id=ACCOUNTS[i % 2])
            ids.append(str(event["event_id"]))
            producer.produce(to_record(event))
        assert producer.flush(60) == 0
        producer.close()
    finally:
        log.close()
    return ids


def _stored(store_path: Path) -> int:
    if not store_path.exists():
        return 0
    with SqliteStore(store_path) as store:
        return sum(store.count(ActivityFilter(a)) for a in ACCOUNTS)


def _args(tmp_path: Path, *more: str) -> list[str]:
    return [
        "--log-format", "json", "indexer", "--backend", "embedded",
        "--db", str(tmp_path / "log.sqlite"), "--store", f"sqlite:///{tmp_path / 'audit.db'}",
        *more,
    ]  # fmt: skip


def _wait(condition: object, process: ProjectProcess, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert process.alive(), process.output()
        assert time.monotonic() < deadline, f"{what}: {process.output()}"
        time.sleep(0.1)


def test_health_metrics_and_a_clean_stop(tmp_path: Path) -> None:
    ids = _produce(tmp_path / "log.sqlite", 200)
    port = free_port()
    with ProjectProcess(_args(tmp_path, "--metrics-port", str(port)), tmp_path / "i.log") as p:
        _wait(lambda: _stored(tmp_path / "audit.db") == len(ids), p, "events not stored")
        assert _get(port, "/healthz") == (200, "ok\n")
        ready = _get(port, "/readyz")
        assert ready is not None
        assert json.loads(ready[1])["connected"] is True
        metrics = _get(port, "/metrics")
        assert metrics is not None
        assert "auditstream_indexer_events_indexed_total 200.0" in metrics[1]
        code = p.stop(timeout=60)
    assert code == 0, p.output()
    logged = [json.loads(line) for line in p.output().splitlines() if line.strip()]
    assert any("indexer running: embedded into sqlite:///" in x["message"] for x in logged)


def test_killed_mid_stream_then_restarted_stores_each_event_once(tmp_path: Path) -> None:
    ids = _produce(tmp_path / "log.sqlite", 10_000)
    args = _args(tmp_path, "--batch-size", "20")
    with ProjectProcess(args, tmp_path / "first.log") as first:
        _wait(lambda: _stored(tmp_path / "audit.db") >= 100, first, "nothing stored")
        first.kill9()
    assert _stored(tmp_path / "audit.db") < len(ids), "the kill came too late to mean anything"
    with ProjectProcess(args, tmp_path / "second.log") as second:
        _wait(lambda: _stored(tmp_path / "audit.db") >= len(ids), second, "events missing", 300)
        assert second.stop(timeout=60) == 0, second.output()
    with SqliteStore(tmp_path / "audit.db") as store:
        stored = [e.event_id for a in ACCOUNTS for e in store.export(ActivityFilter(a))]
        assert sorted(stored) == sorted(ids)
        for account in ACCOUNTS:
            assert store.verify(account).ok
