"""On a real broker: a destination whose endpoint is gone (410) is suspended, and the audit
event of its suspension arrives in the activity topic and is routed like any other event: the
account's other destination stores it. A worker restarted on the same broker does not announce
the suspension again."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from auditstream.config.stream import AccountSettings
from auditstream.pipeline import topics
from auditstream.pipeline.compacted_view import CompactedTopicView
from auditstream.pipeline.kafka_log import KafkaLog
from auditstream.pipeline.log import Log
from auditstream.pipeline.router import Router
from auditstream.pipeline.settings_writer import publish_settings
from auditstream.producers.sdk import ActivityProducer
from auditstream.schemas import codec
from auditstream.sinks.health import State
from auditstream.sinks.retry import RetryPolicy
from auditstream.sinks.worker import SinkWorker, WorkerOptions
from devservices.kafka import KafkaBroker
from devservices.webhook_receiver import WebhookReceiver
from tests.e2e.harness import local_event_ids
from tests.factories import make_event

pytestmark = pytest.mark.kafka

SECRET = b"suspension-secret"
OPTIONS = WorkerOptions(
    retry_policy=RetryPolicy(attempts=2, base=0.01, max_wait=0.05),
    pause_base=0.2,
    pause_cap=1.0,
)


def _settings(url: str) -> AccountSettings:
    return AccountSettings.model_validate(
        {
            "account_id": "acme",
            "destinations": [
                {
                    "id": "hook",
                    "type": "webhook",
                    "url": url,
                    "secret": SECRET.decode(),
                    "batch": {"max_events": 50, "max_age_s": 0.2},
                },
                {
                    "id": "files",
                    "type": "local",
                    "path": "files",
                    "batch": {"max_events": 50, "max_age_s": 0.2},
                },
            ],
        }
    )


def _activity(log: Log) -> list[dict[str, Any]]:
    """Every event in the activity topic, read to its end offsets as they are now."""
    found: list[dict[str, Any]] = []
    view = CompactedTopicView(log, topics.ACTIVITY, lambda r: found.append(codec.decode(r.value)))
    try:
        view.catch_up(60.0)
    finally:
        view.close()
    return found


def _suspension_events(log: Log) -> list[dict[str, Any]]:
    return [e for e in _activity(log) if e["details"].get("operation") == "suspended"]


def _run_until(done: Callable[[], bool], *steps: Callable[[], object], guard_s: float) -> None:
    deadline = time.monotonic() + guard_s
    while not done():
        for step in steps:
            step()
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")


def test_a_suspension_event_is_routed_like_any_other_event(
    kafka_broker: KafkaBroker, tmp_path: Path
) -> None:
    log = KafkaLog(kafka_broker.bootstrap)
    out = tmp_path / "out"
    try:
        with WebhookReceiver(SECRET) as receiver:
            receiver.set_status(410)
            publish_settings(log, [_settings(receiver.url)])
            router = Router(log)
            worker = SinkWorker(log, local_root=out, options=OPTIONS)
            try:
                events = [make_event(account_id="acme") for _ in range(20)]
                with ActivityProducer(log) as producer:
                    for e in events:
                        producer.send(e)
                sent = {str(e["event_id"]) for e in events}

                def hook_state() -> State | None:
                    health = worker.health_of("acme", "hook")
                    return None if health is None else health.state

                _run_until(
                    lambda: hook_state() is State.SUSPENDED,
                    router.step,
                    worker.step,
                    guard_s=90,
                )
                _run_until(lambda: bool(_suspension_events(log)), worker.step, guard_s=30)
                (event,) = _suspension_events(log)
                assert event["account_id"] == "acme"
                assert event["resource"]["id"] == "hook"
                assert event["details"]["cause"] == "http_410"
                audit_id = str(event["event_id"])
                # Routed to the account's destinations like the events that caused it.
                _run_until(
                    lambda: audit_id in local_event_ids(out / "files"),
                    router.step,
                    worker.step,
                    guard_s=90,
                )
                stored = local_event_ids(out / "files")
                assert set(stored) == sent | {audit_id}
                assert len(stored) == len(sent) + 1
                assert worker.drain(5.0) is False  # the suspended hook's batch stays unstored
            finally:
                router.close()
                worker.close()
            # Restarted: the status topic says suspended; the endpoint is still gone.
            restarted = SinkWorker(log, local_root=out, options=OPTIONS)
            try:

                def tried_again() -> bool:
                    health = restarted.health_of("acme", "hook")
                    return health is not None and health.consecutive_failures > 1

                _run_until(tried_again, restarted.step, guard_s=60)
                again = restarted.health_of("acme", "hook")
                assert again is not None
                assert again.state is State.SUSPENDED
                for _ in range(20):
                    restarted.step()
                restarted.drain(2.0)
            finally:
                restarted.close()
            assert len(_suspension_events(log)) == 1
    finally:
        log.close()


def _state_operations(log: Log) -> list[str]:
    operations = (e["details"].get("operation") for e in _activity(log))
    return [str(o) for o in operations if o in ("suspended", "reactivated")]


def test_a_broker_restart_during_a_suspension_announces_nothing_twice(
    kafka_broker: KafkaBroker, tmp_path: Path
) -> None:
    log = KafkaLog(kafka_broker.bootstrap)
    out = tmp_path / "out"
    options = replace(OPTIONS, suspended_retry=2.0)
    try:
        with WebhookReceiver(SECRET) as receiver:
            receiver.set_status(410)
            publish_settings(log, [_settings(receiver.url)])
            router = Router(log)
            worker = SinkWorker(log, local_root=out, options=options)
            try:
                with ActivityProducer(log) as producer:
                    for _ in range(10):
                        producer.send(make_event(account_id="acme"))

                def hook_state() -> State | None:
                    health = worker.health_of("acme", "hook")
                    return None if health is None else health.state

                _run_until(
                    lambda: _state_operations(log) == ["suspended"],
                    router.step,
                    worker.step,
                    guard_s=90,
                )
                kafka_broker.stop()
                deadline = time.monotonic() + 5.0
                while time.monotonic() < deadline:  # retried while the broker is down
                    worker.step()
                kafka_broker.restart()
                # Only the worker from here: the router's recovery is tested elsewhere.
                _run_until(lambda: receiver.requests >= 3, worker.step, guard_s=90)
                assert hook_state() is State.SUSPENDED
                assert _state_operations(log) == ["suspended"]
                receiver.set_status(None)
                _run_until(
                    lambda: _state_operations(log) == ["suspended", "reactivated"],
                    worker.step,
                    guard_s=90,
                )
                assert hook_state() is State.ACTIVE
                for _ in range(20):
                    worker.step()
                assert _state_operations(log) == ["suspended", "reactivated"]
            finally:
                router.close()
                worker.close()
    finally:
        log.close()
