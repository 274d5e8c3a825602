"""A destination that is down or refuses is paused and retried; the others keep flowing; no
event is lost or acknowledged early."""

from __future__ import annotations

import time
from pathlib import Path

from auditstream.config.stream import AccountSettings
from auditstream.pipeline.embedded_log import EmbeddedLog
from auditstream.pipeline.router import Router
from auditstream.pipeline.settings_writer import publish_settings
from auditstream.producers.sdk import ActivityProducer
from auditstream.sinks.health import State
from auditstream.sinks.retry import RetryPolicy
from auditstream.sinks.worker import SinkWorker, WorkerOptions
from devservices.webhook_receiver import WebhookReceiver
from tests.e2e.harness import local_event_ids
from tests.factories import make_event

SECRET = b"failure-secret"
FAST = WorkerOptions(
    retry_policy=RetryPolicy(attempts=2, base=0.01, max_wait=0.05),
    pause_base=0.2,
    pause_cap=1.0,
)


def _setup(tmp_path: Path, url: str) -> tuple[EmbeddedLog, Router, SinkWorker]:
    log = EmbeddedLog(tmp_path / "log.sqlite")
    settings = AccountSettings.model_validate(
        {
            "account_id": "acme",
            "destinations": [
                {
                    "id": "hook",
                    "type": "webhook",
                    "url": url,
                    "secret": SECRET.decode(),
                    "batch": {"max_events": 50, "max_age_s": 0.1},
                },
                {
                    "id": "files",
                    "type": "local",
                    "path": "files",
                    "batch": {"max_events": 50, "max_age_s": 0.1},
                },
            ],
        }
    )
    publish_settings(log, [settings])
    return log, Router(log), SinkWorker(log, local_root=tmp_path / "out", options=FAST)


def _send(log: EmbeddedLog, n: int) -> set[str]:
    events = [make_event(account_id="acme") for _ in range(n)]
    with ActivityProducer(log) as producer:
        for e in events:
            producer.send(e)
    return {e["event_id"] for e in events}


def _run(router: Router, worker: SinkWorker, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        router.step()
        worker.step()


def test_outage_pauses_only_that_destination_and_recovers(tmp_path: Path) -> None:
    with WebhookReceiver(SECRET) as receiver:
        log, router, worker = _setup(tmp_path, receiver.url)
        receiver.set_status(503)
        want = _send(log, 300)
        _run(router, worker, 3.0)
        # The healthy destination got everything while the webhook was down.
        assert set(local_event_ids(tmp_path / "out" / "files")) == want
        assert worker.health["hook"].state is State.FAILING
        assert worker.health["hook"].last_cause == "http_503"
        assert receiver.unique_event_ids() == set()

        receiver.set_status(None)
        deadline = time.monotonic() + 30
        while receiver.unique_event_ids() != want and time.monotonic() < deadline:
            _run(router, worker, 0.5)
        assert receiver.unique_event_ids() == want
        assert worker.health["hook"].state.value == "active"
        assert receiver.bad_signatures == 0
        worker.close()
        router.close()


def test_refusal_puts_destination_in_error_and_keeps_its_events(tmp_path: Path) -> None:
    with WebhookReceiver(SECRET) as receiver:
        log, router, worker = _setup(tmp_path, receiver.url)
        receiver.set_status(401)
        want = _send(log, 120)
        _run(router, worker, 2.0)
        health = worker.health["hook"]
        assert health.state is State.ERROR
        assert health.last_cause == "http_401"
        assert "401" in (health.last_error or "")
        assert receiver.unique_event_ids() == set()
        assert set(local_event_ids(tmp_path / "out" / "files")) == want

        # The receiver's credentials are fixed: the waiting events are delivered, none lost.
        receiver.set_status(None)
        deadline = time.monotonic() + 30
        while receiver.unique_event_ids() != want and time.monotonic() < deadline:
            _run(router, worker, 0.5)
        assert receiver.unique_event_ids() == want
        worker.close()
        router.close()
