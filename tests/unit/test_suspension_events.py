"""A destination the sink worker suspends is an audited streaming activity: one event in the
activity topic when it enters ``suspended``, one when it is active again; never twice for one
transition (restarts, an owner's pause, a worker killed right after the suspension), none for a
destination deleted while suspended. Fake sinks, a clock moved by hand, the embedded log."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from auditstream.pipeline import topics
from auditstream.pipeline.embedded_log import EmbeddedLog
from auditstream.pipeline.log import Log, OutgoingRecord
from auditstream.schemas import catalog, codec
from auditstream.sinks.batch import Batch
from auditstream.sinks.errors import PermanentError, TransientError
from auditstream.sinks.health import DestinationHealth, State
from auditstream.sinks.retry import RetryPolicy
from auditstream.sinks.state_events import SUSPENDED, StateAnnouncer, event_id
from auditstream.sinks.worker import SinkWorker, WorkerOptions
from tests.fake_sinks import (
    FakeClock,
    Outcome,
    SinkBoard,
    always_ok,
    committed,
    publish,
    send,
    settings,
    step_until,
    store,
    webhook,
)

OPTIONS = WorkerOptions(
    poll_timeout=0.0,
    retry_policy=RetryPolicy(attempts=2, base=0.5, max_wait=1.0),
    pause_base=10.0,
    pause_cap=60.0,
    suspend_after=3600.0,
    suspended_retry=600.0,
    drain_timeout=2.0,
)
GONE = PermanentError("the endpoint is gone", cause="http_410")
DOWN = TransientError("connection refused", cause="unreachable")


@pytest.fixture
def log(tmp_path: Path) -> Iterator[EmbeddedLog]:
    opened = EmbeddedLog(tmp_path / "log.sqlite")
    yield opened
    opened.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def board() -> SinkBoard:
    return SinkBoard()


def make_worker(log: Log, board: SinkBoard, clock: FakeClock) -> SinkWorker:
    return SinkWorker(
        log, options=OPTIONS, sink_factory=board.factory, clock=clock, wall_clock=clock
    )


class Switch:
    """A script: every write fails with ``error`` until it is set to None."""

    def __init__(self, error: Exception | None) -> None:
        self.error = error

    def __call__(self, n: int, batch: Batch) -> Outcome:
        return self.error if self.error is not None else always_ok(n, batch)


def state_events(log: Log) -> list[dict[str, Any]]:
    """The destination-state events in the activity topic, oldest first."""
    reader = log.reader(topics.ACTIVITY)
    found: list[dict[str, Any]] = []
    while batch := reader.poll(1000, 0.1):
        for record in batch:
            event = codec.decode(record.value)
            if event["details"].get("operation") in ("suspended", "reactivated"):
                found.append(event)
    reader.close()
    return found


def operations(log: Log) -> list[tuple[str, str]]:
    return [(e["resource"]["id"], e["details"]["operation"]) for e in state_events(log)]


def failed(worker: SinkWorker, destination_id: str) -> bool:
    health = worker.health.get(destination_id)
    return health is not None and health.failing_since is not None


def settle(worker: SinkWorker, clock: FakeClock, steps: int = 5) -> None:
    """A few steps, each a second later (reports are made at most once a second)."""
    for _ in range(steps):
        clock.advance(1.0)
        worker.step()
    step_until(worker, lambda: worker.attempts_in_flight == 0)
    clock.advance(1.0)
    worker.step()


def suspend_at_once(
    log: EmbeddedLog, board: SinkBoard, clock: FakeClock, switch: Switch
) -> SinkWorker:
    board.scripts["a"] = switch
    worker = make_worker(log, board, clock)
    step_until(worker, lambda: failed(worker, "a"))
    assert worker.health["a"].state is State.SUSPENDED
    settle(worker, clock)
    return worker


def test_a_suspension_is_one_audit_event_of_the_catalog_and_so_is_the_return(
    log: EmbeddedLog, board: SinkBoard, clock: FakeClock
) -> None:
    publish(log, settings("acme", webhook("a")))
    send(log, "a", 10)
    switch = Switch(GONE)
    worker = suspend_at_once(log, board, clock, switch)
    try:
        (event,) = state_events(log)
        assert catalog.is_known(event["category"], event["activity"])
        assert event["activity"] == "audit_log_streaming_destination_updated"
        assert event["account_id"] == "acme"
        assert event["resource"]["type"] == "audit_log_destination"
        assert event["resource"]["id"] == "a"
        assert event["actor"]["auth_method"] == "system"
        assert event["request"] is None
        assert event["details"]["operation"] == "suspended"
        assert event["details"]["cause"] == "http_410"
        assert event["details"]["destination_type"] == "webhook"
        assert event["changes"] == [
            {"field": "state", "old_value": "active", "new_value": "suspended"}
        ]
        settle(worker, clock)  # still suspended: nothing more
        assert operations(log) == [("a", "suspended")]
        switch.error = None
        clock.advance(OPTIONS.suspended_retry + 1)
        step_until(worker, lambda: worker.health["a"].state is State.ACTIVE)
        settle(worker, clock)
        assert operations(log) == [("a", "suspended"), ("a", "reactivated")]
        assert committed(log, "a") == 10
        settle(worker, clock)
        assert len(state_events(log)) == 2
    finally:
        worker.close()


def test_suspended_after_the_configured_time_and_the_clock_runs_on_across_a_restart(
    log: EmbeddedLog, board: SinkBoard, clock: FakeClock
) -> None:
    publish(log, settings("acme", webhook("a")))
    send(log, "a", 10)
    board.scripts["a"] = Switch(DOWN)
    worker = make_worker(log, board, clock)
    try:
        step_until(worker, lambda: failed(worker, "a"))
        while worker.health["a"].state is State.ACTIVE:  # the quick retries
            settle(worker, clock)
        assert worker.health["a"].state is State.FAILING
        since = worker.health["a"].failing_since
        clock.advance(OPTIONS.suspend_after - 600)
        settle(worker, clock)
        assert worker.health["a"].state is State.FAILING
    finally:
        worker.close()
    assert operations(log) == []
    restarted = make_worker(log, board, clock)
    try:
        clock.advance(700)
        settle(restarted, clock)
        health = restarted.health["a"]
        assert health.state is State.SUSPENDED  # 72 h from the first failure, not the restart
        assert health.failing_since == since
        (event,) = state_events(log)
        assert event["details"]["cause"] == "unreachable"
    finally:
        restarted.close()


def test_a_restarted_worker_does_not_announce_a_suspension_again(
    log: EmbeddedLog, board: SinkBoard, clock: FakeClock
) -> None:
    publish(log, settings("acme", webhook("a")))
    send(log, "a", 10)
    switch = Switch(GONE)
    suspend_at_once(log, board, clock, switch).close()
    assert operations(log) == [("a", "suspended")]
    restarted = make_worker(log, board, clock)
    try:
        settle(restarted, clock)  # tried at once after a restart: still gone
        assert restarted.health["a"].state is State.SUSPENDED
        assert len(board.writes("a")) == 2
        assert operations(log) == [("a", "suspended")]
        switch.error = None
        clock.advance(OPTIONS.suspended_retry + 1)
        step_until(restarted, lambda: restarted.health["a"].state is State.ACTIVE)
        settle(restarted, clock)
        assert operations(log) == [("a", "suspended"), ("a", "reactivated")]
        assert committed(log, "a") == 10
    finally:
        restarted.close()


def test_a_worker_killed_right_after_the_suspension_is_not_announced_twice(
    log: EmbeddedLog, board: SinkBoard, clock: FakeClock
) -> None:
    publish(log, settings("acme", webhook("a")))
    send(log, "a", 10)
    killed = suspend_at_once(log, board, clock, Switch(GONE))  # not closed until the end
    assert operations(log) == [("a", "suspended")]
    restarted = make_worker(log, board, clock)
    try:
        settle(restarted, clock)
        assert restarted.health["a"].state is State.SUSPENDED
        assert operations(log) == [("a", "suspended")]
    finally:
        restarted.close()
        killed.close()


def test_one_transition_announced_twice_carries_one_event_id() -> None:
    """If a crash falls between the event and the status record, the repeat is recognisable."""
    first = event_id("acme", "a", SUSPENDED, 1_900_000_000.5)
    assert event_id("acme", "a", SUSPENDED, 1_900_000_000.5) == first
    assert event_id("acme", "a", SUSPENDED, 1_900_000_100.5) != first
    assert event_id("acme", "a", "reactivated", 1_900_000_000.5) != first


def test_no_second_suspension_event_after_an_owner_pauses_and_resumes_it(
    log: EmbeddedLog, board: SinkBoard, clock: FakeClock
) -> None:
    publish(log, settings("acme", webhook("a")))
    send(log, "a", 10)
    worker = suspend_at_once(log, board, clock, Switch(GONE))
    try:
        publish(log, settings("acme", webhook("a", paused=True)))
        step_until(worker, lambda: worker.health["a"].state is State.PAUSED)
        publish(log, settings("acme", webhook("a")))
        step_until(worker, lambda: worker.health["a"].state is not State.PAUSED)
        clock.advance(OPTIONS.suspended_retry + 1)
        settle(worker, clock)
        assert worker.health["a"].state is State.SUSPENDED
        assert operations(log) == [("a", "suspended")]
    finally:
        worker.close()


def test_a_destination_deleted_while_suspended_is_not_announced_active(
    log: EmbeddedLog, board: SinkBoard, clock: FakeClock
) -> None:
    publish(log, settings("acme", webhook("a"), store("files")))
    send(log, "a", 10)
    switch = Switch(GONE)
    worker = suspend_at_once(log, board, clock, switch)
    try:
        publish(log, settings("acme", store("files")))
        step_until(worker, lambda: worker.health_of("acme", "a") is None)
        settle(worker, clock)
        assert operations(log) == [("a", "suspended")]
        # Created again and gone again: a new destination, a new suspension.
        publish(log, settings("acme", webhook("a"), store("files")))
        step_until(worker, lambda: failed(worker, "a"))
        assert worker.health["a"].state is State.SUSPENDED
        settle(worker, clock)
        assert operations(log) == [("a", "suspended"), ("a", "suspended")]
    finally:
        worker.close()


class RefusingProducer:
    """Refuses every record until ``accept`` is set."""

    def __init__(self, inner_log: Log) -> None:
        self._inner = inner_log.producer()
        self.accept = False

    def produce(self, record: OutgoingRecord, on_delivery: Any = None) -> None:
        if self.accept:
            self._inner.produce(record, on_delivery)
        elif on_delivery is not None:
            on_delivery(RuntimeError("broker unreachable"), record)

    def flush(self, timeout: float = 30.0) -> int:
        return self._inner.flush(timeout)

    def close(self) -> None:
        self._inner.close()


def test_an_announcement_the_log_refuses_is_pending_and_sent_again(
    log: EmbeddedLog, clock: FakeClock
) -> None:
    log.create_topic(topics.ACTIVITY)
    producer = RefusingProducer(log)
    announcer = StateAnnouncer(producer, clock)
    health = DestinationHealth(account_id="acme")
    health.failed(permanent=True, message="gone", cause="http_410", now=clock.now)
    destination = settings("acme", webhook("a")).destinations[0]
    announcer.follow(("acme", "a"), destination, health)
    announcer.follow(("acme", "a"), destination, health)
    announcer.deliver(1.0)
    assert announcer.pending(("acme", "a"))
    assert operations(log) == []
    producer.accept = True
    announcer.deliver(1.0)
    assert not announcer.pending(("acme", "a"))
    assert operations(log) == [("a", "suspended")]
    producer.close()
