"""``auditstream api --store URL`` as its own process: it serves the activity audit log of the
store it was given, and a SIGKILL in the middle of an export leaves the store whole (its chain
verifies, every event is there) and the export's audit event stored before the first byte."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from auditstream.api.tokens import create_token
from auditstream.config.secrets import ENV_KEYS, SecretBox
from auditstream.pipeline import topics
from auditstream.pipeline.embedded_log import EmbeddedLog
from auditstream.schemas import codec
from auditstream.store.sqlite_store import SqliteStore
from devservices.ports import free_port
from devservices.processes import ProjectProcess
from tests.factories import make_event

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def test_kill_9_during_an_export_leaves_the_store_whole(tmp_path: Path) -> None:
    db, audit = tmp_path / "log.sqlite", tmp_path / "audit.db"
    log = EmbeddedLog(db)
    token, _ = create_token(log, account_id="acme", user_id="u-1", role="admin")
    log.close()
    store = SqliteStore(audit)
    for start in range(0, 20_000, 5_000):
        store.append(
            [make_event(occurred_at=T0 + timedelta(seconds=i)) for i in range(start, start + 5_000)]
        )
    store.close()

    port = free_port()
    api = ProjectProcess(
        ["api", "--db", str(db), "--port", str(port), "--store", f"sqlite:///{audit}"],
        tmp_path / "api.log",
        env={ENV_KEYS: SecretBox.generate_key()},
    )
    url = f"http://127.0.0.1:{port}"
    auth = {"Authorization": f"Bearer {token}"}
    try:
        deadline = time.monotonic() + 60
        while True:
            assert api.alive(), api.output()[-2000:]
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, api.output()[-2000:]
            time.sleep(0.2)
        page = httpx.get(f"{url}/v1/accounts/acme/activity?include_total=true", headers=auth)
        assert page.status_code == 200, page.text
        assert page.json()["total"] == 20_000
        with (
            httpx.Client(headers=auth, timeout=30) as client,
            client.stream("GET", f"{url}/v1/accounts/acme/activity/export?format=csv") as export,
        ):
            assert export.status_code == 200
            received = 0
            for chunk in export.iter_bytes():
                received += len(chunk)
                if received > 8192:
                    api.kill9()
                    break
    finally:
        api.stop()

    store = SqliteStore(audit)
    try:
        result = store.verify("acme")
        assert result.ok, result
        assert result.rows == 20_000
    finally:
        store.close()
    log = EmbeddedLog(db)
    try:
        consumer = log.consumer("test-reader", [topics.ACTIVITY])
        try:
            events = [codec.decode(r.value) for r in consumer.poll(100, 2.0)]
        finally:
            consumer.close()
    finally:
        log.close()
    exported = [e for e in events if e["details"].get("operation") == "exported"]
    assert len(exported) == 1
    assert exported[0]["actor"]["user_id"] == "u-1"
    assert exported[0]["details"]["format"] == "csv"
