"""Records read again after a batch of them was sent are batched again to the same boundaries
(ADR 018): a failed commit and a revocation, a reassignment, a rewind never send an event
under a second idempotency key. Fake sinks, a clock moved by hand, the embedded log."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from auditstream.pipeline import topics
from auditstream.pipeline.embedded_log import EmbeddedLog
from auditstream.pipeline.log import TopicPartition
from auditstream.sinks.batch_manifests import BatchManifests
from auditstream.sinks.errors import TransientError
from auditstream.sinks.manifest_log import ManifestLog
from auditstream.sinks.retry import RetryPolicy
from auditstream.sinks.worker import SinkWorker, WorkerOptions
from tests.fake_sinks import (
    FakeClock,
    FlakyCommits,
    FlakyLog,
    SinkBoard,
    Written,
    always_ok,
    committed,
    publish,
    send,
    settings,
    step_until,
    webhook,
)

OPTIONS = WorkerOptions(
    poll_timeout=0.0,
    retry_policy=RetryPolicy(attempts=3, base=0.5, max_wait=2.0),
    pause_base=10.0,
    pause_cap=60.0,
    suspend_after=3600.0,
    suspended_retry=600.0,
    drain_timeout=5.0,
    commit_retry_base=1.0,
    commit_retry_cap=5.0,
)
TP = TopicPartition(topics.destination_topic("a"), 0)
LINGER = {"max_events": 100, "max_age_s": 1.0}


def _worker(log: FlakyLog, board: SinkBoard, clock: FakeClock) -> SinkWorker:
    return SinkWorker(
        log, options=OPTIONS, sink_factory=board.factory, clock=clock, wall_clock=clock
    )


def _rebalance(consumer: FlakyCommits) -> None:
    """The group takes every partition away and gives it back: the worker's revocation
    callback runs (its commit goes through the flaky consumer), and reading starts again at
    the committed offsets, as a new assignment does."""
    inner = consumer._inner
    tps = inner.assignment()
    for callback in inner._revoke_callbacks:  # type: ignore[attr-defined]
        callback(tps)
    at = inner.committed(tps)
    for tp in tps:
        inner.seek(tp, at.get(tp, 0))


def _run_until(worker: SinkWorker, clock: FakeClock, done: Callable[[], bool]) -> None:
    """Step ``worker``, the clock moving 0.5 s a step, until ``done()`` (the guard only stops
    a broken test from hanging)."""
    deadline = time.monotonic() + 20.0
    while not done():
        clock.advance(0.5)
        worker.step()
        assert time.monotonic() < deadline, "condition not reached"


def _one_content_per_key(writes: list[Written]) -> None:
    """Every key carries one set of events, and no event goes out under two keys."""
    by_key: dict[str, set[tuple[str, ...]]] = {}
    keys_of: dict[str, set[str]] = {}
    for w in writes:
        by_key.setdefault(w.key, set()).add(w.event_ids)
        for event_id in w.event_ids:
            keys_of.setdefault(event_id, set()).add(w.key)
    assert {k: v for k, v in by_key.items() if len(v) > 1} == {}
    assert {e: k for e, k in keys_of.items() if len(k) > 1} == {}


@pytest.fixture
def board() -> SinkBoard:
    return SinkBoard()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def inner(tmp_path: Path) -> EmbeddedLog:
    return EmbeddedLog(tmp_path / "log.sqlite")


# -- the bookkeeping ---------------------------------------------------------------------------


def test_manifests_cover_sent_offsets_until_committed_past() -> None:
    book = BatchManifests()
    book.sent(TP, 100, 162)
    book.sent(TP, 163, 170)
    assert book.covering(TP, 100) == (100, 162)
    assert book.covering(TP, 162) == (100, 162)
    assert book.covering(TP, 165) == (163, 170)
    assert book.covering(TP, 171) is None
    assert book.covering(TP, 99) is None
    assert book.starting_at(TP, 163) == (163, 170)
    assert book.starting_at(TP, 164) is None
    book.sent(TP, 150, 155)  # cut otherwise after a rewind: it replaces what it overlaps
    assert book.spans(TP) == [(150, 155), (163, 170)]
    book.committed(TP, 163)
    assert book.spans(TP) == [(163, 170)]
    book.committed(TP, 171)
    assert book.spans(TP) == []
    book.sent(TP, 0, 9)
    book.retain(lambda tp: tp != TP)
    assert book.spans(TP) == []


# -- the worker --------------------------------------------------------------------------------


def test_a_batch_sent_before_a_failed_commit_and_a_rebalance_is_sent_again_as_it_was(
    inner: EmbeddedLog, board: SinkBoard, clock: FakeClock
) -> None:
    """The fault suite's case: 63 events sealed by age and sent, the commit fails, the
    partition is revoked and assigned again, and 137 more events are there when it is read
    again: the first request is repeated as it was, the rest goes under new keys."""
    flaky = FlakyLog(inner)
    publish(inner, settings("acme", webhook("a", batch=LINGER)))
    first = send(inner, "a", 63)
    worker = _worker(flaky, board, clock)
    try:
        consumer = flaky.consumers[0]
        consumer.fail = 1000  # the coordinator is gone
        worker.step()
        clock.advance(1.0)
        step_until(worker, lambda: len(board.writes("a")) == 1)
        assert board.writes("a")[0].key == "a:0:0-62"
        later = send(inner, "a", 137)
        step_until(worker, lambda: worker.health["a"].last_cause == "offset_commit")
        _rebalance(consumer)  # the revocation's commit fails too
        assert committed(inner, "a") == 0
        consumer.fail = 0
        _run_until(worker, clock, lambda: committed(inner, "a") == 200)
        assert committed(inner, "a") == 200
        writes = board.writes("a")
        again = [w for w in writes if w.key == "a:0:0-62"]
        assert len(again) == 2
        assert {w.event_ids for w in again} == {tuple(first)}
        assert [i for w in writes if w.first_offset > 0 for i in w.event_ids] == later
        _one_content_per_key(writes)
    finally:
        worker.close()
        inner.close()


def test_a_batch_revoked_while_its_first_attempt_is_under_way_keeps_its_boundaries(
    inner: EmbeddedLog, board: SinkBoard, clock: FakeClock
) -> None:
    """Sealed by age, its attempt under way (the receiver has it, no answer yet), the
    partition is revoked and assigned again and more records are there: read again, the same
    records go out under the same key."""
    flaky = FlakyLog(inner)
    publish(inner, settings("acme", webhook("a", batch=LINGER)))
    first = send(inner, "a", 5)
    gate = board.hang("a")
    board.scripts["a"] = lambda n, b: (
        TransientError("timeout", cause="timeout") if n == 1 else (always_ok(n, b))
    )
    worker = _worker(flaky, board, clock)
    try:
        worker.step()
        clock.advance(1.0)
        step_until(worker, lambda: len(board.writes("a")) == 1)
        later = send(inner, "a", 40)
        _rebalance(flaky.consumers[0])
        for _ in range(5):
            worker.step()  # read again while the first attempt hangs
        gate.set()
        _run_until(worker, clock, lambda: committed(inner, "a") == 45)
        assert committed(inner, "a") == 45
        writes = board.writes("a")
        assert [w.key for w in writes if w.first_offset == 0] == ["a:0:0-4", "a:0:0-4"]
        assert {w.event_ids for w in writes if w.first_offset == 0} == {tuple(first)}
        assert [i for w in writes if w.first_offset > 0 for i in w.event_ids] == later
        _one_content_per_key(writes)
    finally:
        gate.set()
        worker.close()
        inner.close()


def test_boundaries_of_offsets_committed_elsewhere_are_ignored(
    inner: EmbeddedLog, board: SinkBoard, clock: FakeClock
) -> None:
    """Another worker stored and committed past the batch sent here: assigned here again,
    the partition reads on from the committed offset and its old boundaries are dropped."""
    flaky = FlakyLog(inner)
    publish(inner, settings("acme", webhook("a", batch=LINGER)))
    send(inner, "a", 5)
    worker = _worker(flaky, board, clock)
    try:
        consumer = flaky.consumers[0]
        consumer.fail = 1000
        worker.step()
        clock.advance(1.0)
        step_until(worker, lambda: len(board.writes("a")) == 1)
        assert worker._manifests.spans(TP) == [(0, 4)]
        later = send(inner, "a", 10)
        inner.consumer(topics.SINK_GROUP, [TP.topic]).commit({TP: 3})  # cut 0-2 elsewhere
        _rebalance(consumer)
        consumer.fail = 0
        inner.consumer(topics.SINK_GROUP, [TP.topic]).commit({TP: 5})  # and 3-4
        _rebalance(consumer)
        _run_until(worker, clock, lambda: committed(inner, "a") == 15)
        assert worker._manifests.spans(TP) == []
        assert [i for w in board.writes("a")[1:] for i in w.event_ids] == later
    finally:
        worker.close()
        inner.close()


def test_a_deleted_destinations_boundaries_are_dropped(
    inner: EmbeddedLog, board: SinkBoard, clock: FakeClock
) -> None:
    flaky = FlakyLog(inner)
    publish(inner, settings("acme", webhook("a", batch=LINGER), webhook("b")))
    send(inner, "a", 5)
    worker = _worker(flaky, board, clock)
    try:
        flaky.consumers[0].fail = 1000
        worker.step()
        clock.advance(1.0)
        step_until(worker, lambda: len(board.writes("a")) == 1)
        assert worker._manifests.spans(TP) == [(0, 4)]
        publish(inner, settings("acme", webhook("b")))
        step_until(worker, lambda: "a" not in worker.health)
        assert worker._manifests.spans(TP) == []
    finally:
        worker.close()
        inner.close()


def test_a_memory_pause_or_a_drain_never_cuts_a_sent_batch_short(
    inner: EmbeddedLog, board: SinkBoard, clock: FakeClock
) -> None:
    """Read again only in part when the worker stops: the part is not sent (it would go
    under a new key); the next owner reads it again."""
    flaky = FlakyLog(inner)
    publish(inner, settings("acme", webhook("a", batch=LINGER)))
    send(inner, "a", 8)
    worker = _worker(flaky, board, clock)
    try:
        consumer = flaky.consumers[0]
        consumer.fail = 1000
        worker.step()
        clock.advance(1.0)
        step_until(worker, lambda: len(board.writes("a")) == 1)
        _rebalance(consumer)
        worker._take(consumer._inner.poll(4, 0.0))  # 0..3 read again, not 4..7 yet
        assert worker._awaits_sent_end(worker._partitions[TP])
        clock.advance(5.0)
        worker._seal_aged(clock())
        assert worker._partitions[TP].open is not None  # waits for 4..7
        worker._balance_memory()
        worker.drain(0.2)
        assert len(board.writes("a")) == 1
    finally:
        worker.close()
        inner.close()


def test_a_worker_taking_a_partition_over_cuts_it_as_the_last_owner_sent_it(
    inner: EmbeddedLog, board: SinkBoard, clock: FakeClock
) -> None:
    """The first worker sends a batch and goes before its commit (killed: nothing of it is
    committed); the next one reads the boundaries it stored and sends the same request."""
    flaky = FlakyLog(inner)
    publish(inner, settings("acme", webhook("a", batch=LINGER)))
    first = send(inner, "a", 7)
    gone = _worker(flaky, board, clock)
    try:
        flaky.consumers[0].fail = 1000
        gone.step()
        clock.advance(1.0)
        step_until(gone, lambda: len(board.writes("a")) == 1)
    finally:
        gone.close()  # as if killed: the commit never happened
    assert committed(inner, "a") == 0
    later = send(inner, "a", 50)
    worker = _worker(FlakyLog(inner), board, clock)
    try:
        _run_until(worker, clock, lambda: committed(inner, "a") == 57)
        writes = board.writes("a")
        assert [w.key for w in writes if w.first_offset == 0] == ["a:0:0-6", "a:0:0-6"]
        assert {w.event_ids for w in writes if w.first_offset == 0} == {tuple(first)}
        assert [i for w in writes if w.first_offset > 0 for i in w.event_ids] == later
        _one_content_per_key(writes)
    finally:
        worker.close()
        inner.close()


class _Unstored:
    """A producer whose records never reach the log (the brokers are away)."""

    def __init__(self) -> None:
        self.produced = 0

    def produce(self, _record: object, _on_delivery: object = None) -> None:
        self.produced += 1

    def flush(self, _timeout: float = 30.0) -> int:
        return self.produced

    def close(self) -> None:
        return None


def test_boundaries_not_stored_are_reported_and_not_tried_again_at_once(
    inner: EmbeddedLog,
) -> None:
    """A failed write is logged and skipped for a while: the poll loop does not wait for the
    brokers round after round."""
    boundaries = ManifestLog(inner)
    real = boundaries._producer
    try:
        assert boundaries.write({TP: [(0, 4)]})
        assert boundaries.read({TP}) == {TP: [(0, 4)]}
        unstored = _Unstored()
        boundaries._producer = unstored
        assert not boundaries.write({TP: [(0, 4), (5, 9)]})
        assert not boundaries.write({TP: [(0, 4), (5, 9), (10, 12)]})
        assert unstored.produced == 1  # the second one was not tried
    finally:
        boundaries._producer = real
        boundaries.close()
        inner.close()
