"""The sink worker's delivery lanes under faults, with fake sinks, a clock moved by hand and
the embedded log: one destination's trouble never holds another's deliveries, retries keep
their promises, offsets follow stored batches only, memory stays bounded."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from prometheus_client import REGISTRY

from auditstream.pipeline import topics
from auditstream.pipeline.embedded_log import EmbeddedLog
from auditstream.pipeline.log import Log, OutgoingRecord, TopicPartition
from auditstream.sinks.base import WriteResult
from auditstream.sinks.batch import Batch
from auditstream.sinks.destination_signals import DestinationSignals, Undelivered
from auditstream.sinks.errors import PermanentError, TransientError
from auditstream.sinks.health import DestinationHealth, State
from auditstream.sinks.partitions import BACKOFF, MEMORY
from auditstream.sinks.retry import RetryPolicy
from auditstream.sinks.worker import SinkWorker, WorkerOptions
from tests.fake_sinks import (
    FakeClock,
    FlakyLog,
    Outcome,
    Script,
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

FAST = WorkerOptions(
    poll_timeout=0.0,
    retry_policy=RetryPolicy(attempts=3, base=0.5, max_wait=2.0),
    pause_base=10.0,
    pause_cap=60.0,
    suspend_after=3600.0,
    suspended_retry=600.0,
    drain_timeout=5.0,
)


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


def make_worker(log: Log, board: SinkBoard, clock: FakeClock, **options: object) -> SinkWorker:
    chosen = WorkerOptions(**{**_fields(FAST), **options})  # type: ignore[arg-type]
    return SinkWorker(
        log,
        options=chosen,
        sink_factory=board.factory,
        clock=clock,
        wall_clock=clock,
    )


def health_in(worker: SinkWorker, destination_id: str) -> DestinationHealth:
    """The destination's health, or a fresh one before the worker has seen it."""
    return worker.health.get(destination_id) or DestinationHealth()


def state_of(worker: SinkWorker, destination_id: str) -> State:
    return health_in(worker, destination_id).state


def _fields(options: WorkerOptions) -> dict[str, object]:
    return {name: getattr(options, name) for name in options.__dataclass_fields__}


def fail_first(n_failures: int, error: Exception) -> Script:
    def script(n: int, batch: Batch) -> Outcome:
        return error if n <= n_failures else always_ok(n, batch)

    return script


# -- isolation --------------------------------------------------------------------------------


def test_a_hanging_destination_does_not_delay_another_lane(
    log: EmbeddedLog, board: SinkBoard, clock: FakeClock
) -> None:
    publish(log, settings("acme", webhook("a")), settings("globex", webhook("b")))
    gate = board.hang("a")
    send(log, "a", 30)
    b_ids = send(log, "b", 50, account_id="globex")
    worker = make_worker(log, board, clock)
    try:
        step_until(worker, lambda: committed(log, "b") == 50)  # writes applied, not just begun
        assert board.delivered_ids("b") == b_ids
        # A's first batch is still in its only attempt; B's five batches were all stored.
        assert len(board.writes("a")) == 1
        assert worker.health["b"].delivered_events == 50
        assert committed(log, "b") == 50
        assert committed(log, "a") == 0
    finally:
        gate.set()
        worker.close()


def test_lanes_in_trouble_use_at_most_half_the_threads(
    log: EmbeddedLog, board: SinkBoard, clock: FakeClock
) -> None:
    hanging = [f"h{i}" for i in range(4)]
    publish(log, *(settings(f"acct-{d}", webhook(d)) for d in [*hanging, "ok"]))
    gates = [board.hang(d) for d in hanging]
    for d in hanging:
        board.scripts[d] = fail_first(1, TransientError("busy", cause="http_503", retry_after=3.0))
        send(log, d, 10, account_id=f"acct-{d}")
    worker = make_worker(log, board, clock, delivery_threads=4)
    try:
        step_until(worker, lambda: worker.attempts_in_flight == 4)
        for gate in gates:
            gate.set()  # the first attempts fail: every hanging lane is retrying
        step_until(worker, lambda: all(health_in(worker, d).consecutive_failures for d in hanging))
        for gate in gates:
            gate.clear()
        clock.advance(5.0)  # every retry is due
        step_until(worker, lambda: worker.attempts_in_flight == 2)
        for _ in range(20):
            worker.step()
        assert worker.attempts_in_flight == 2  # the other two threads stay free
        ok_ids = send(log, "ok", 10, account_id="acct-ok")
        step_until(worker, lambda: board.delivered_ids("ok") == ok_ids)
    finally:
        for gate in gates:
            gate.set()
        worker.close()


# -- retries -----------------------------------------------------------------------------------


def test_retry_after_is_the_earliest_next_attempt(
    log: EmbeddedLog, board: SinkBoard, clock: FakeClock
) -> None:
    publish(log, settings("acme", webhook("a")))
    board.scripts["a"] = fail_first(
        1, TransientError("429 Too Many Requests", cause="http_429", retry_after=5.0)
    )
    ids = send(log, "a", 10)
    worker = make_worker(log, board, clock)
    try:
        step_until(worker, lambda: health_in(worker, "a").consecutive_failures == 1)
        for _ in range(20):
            worker.step()
        clock.advance(4.9)
        for _ in range(20):
            worker.step()
        assert len(board.writes("a")) == 1  # nothing before the 5 s the receiver asked for
        assert worker.attempts_in_flight == 0  # and no thread held while waiting
        clock.advance(0.2)
        step_until(worker, lambda: worker.health["a"].delivered_events == len(ids))
        assert len(board.writes("a")) == 2  # the failed write, then its retry
        assert worker.health["a"].state is State.ACTIVE
        assert worker.health["a"].last_cause == "http_429"
    finally:
        worker.close()


def test_a_retried_batch_is_the_batch_first_sent(
    log: EmbeddedLog, board: SinkBoard, clock: FakeClock
) -> None:
    publish(log, settings("acme", webhook("a", batch={"max_events": 200, "max_age_s": 1.0})))
    board.scripts["a"] = fail_first(4, TransientError("503", cause="http_503"))
    first = send(log, "a", 63)
    worker = make_worker(log, board, clock)
    try:
        worker.step()
        clock.advance(1.0)  # the 63 events are sealed by age
        step_until(worker, lambda: len(board.writes("a")) == 1)
        later = send(log, "a", 137)  # they arrive while the first batch is failing
        for _ in range(20):
            if board.delivered_ids("a")[-137:] == later:
                break
            clock.advance(120.0)
            worker.step()
            step_until(worker, lambda: worker.attempts_in_flight == 0)
        writes = board.writes("a")
        at_first = [w for w in writes if w.first_offset == 0]
        assert len(at_first) == 5  # four failures, then stored
        assert {w.key for w in at_first} == {"a:0:0-62"}
        assert {w.event_ids for w in at_first} == {tuple(first)}
        assert [i for w in writes if w.first_offset > 0 for i in w.event_ids] == later
        for key in {w.key for w in writes}:  # one key, one content
            assert len({w.event_ids for w in writes if w.key == key}) == 1
    finally:
        worker.close()


def test_a_permanent_cause_suspends_at_once_and_names_it(
    log: EmbeddedLog, board: SinkBoard, clock: FakeClock
) -> None:
    publish(log, settings("acme", store("bucket")))
    board.scripts["bucket"] = fail_first(
        1, PermanentError("the bucket was deleted", cause="bucket_missing")
    )
    send(log, "bucket", 10)
    worker = make_worker(log, board, clock)
    try:
        step_until(worker, lambda: health_in(worker, "bucket").consecutive_failures == 1)
        health = worker.health["bucket"]
        assert health.state is State.SUSPENDED
        assert health.last_cause == "bucket_missing"
        assert BACKOFF in worker.paused_partitions()[TopicPartition("auditstream.dest.bucket", 0)]
        clock.advance(FAST.suspended_retry - 1)
        for _ in range(10):
            worker.step()
        assert len(board.writes("bucket")) == 1  # suspended: tried again only seldom
        clock.advance(2)
        step_until(worker, lambda: health_in(worker, "bucket").state is State.ACTIVE)
        assert committed(log, "bucket") == 10
    finally:
        worker.close()
    assert _last_status(log, "bucket")["state"] == "active"


def test_an_error_that_is_not_fatal_is_error_then_suspended_after_the_configured_time(
    log: EmbeddedLog, board: SinkBoard, clock: FakeClock
) -> None:
    publish(log, settings("acme", webhook("a")))
    board.scripts["a"] = lambda _n, _b: TransientError("connection refused", cause="unreachable")
    send(log, "a", 10)
    worker = make_worker(log, board, clock)
    try:
        step_until(worker, lambda: health_in(worker, "a").consecutive_failures == 1)
        while worker.health["a"].state is State.ACTIVE:  # the quick retries
            clock.advance(2.0)
            step_until(worker, lambda: worker.attempts_in_flight == 0)
            worker.step()
        health = worker.health["a"]
        assert health.state is State.FAILING
        assert health.failing_since == pytest.approx(clock.now, abs=10)
        clock.advance(FAST.suspend_after - 100)
        worker.step()
        assert state_of(worker, "a") is State.FAILING
        clock.advance(200)
        worker.step()
        assert state_of(worker, "a") is State.SUSPENDED
        assert worker.health["a"].last_cause == "unreachable"
        worker.drain(0.5)
    finally:
        worker.close()
    reported = _last_status(log, "a")
    assert reported["state"] == "suspended"
    assert reported["account_id"] == "acme"


# -- offsets -----------------------------------------------------------------------------------


def test_offsets_never_pass_an_unstored_batch_when_later_ones_finish_first(
    log: EmbeddedLog, board: SinkBoard, clock: FakeClock
) -> None:
    publish(log, settings("acme", store("s3")))
    first_call = threading.Event()
    release = threading.Event()

    def script(n: int, batch: Batch) -> Outcome:
        # The batch at offset 0 is held, whichever delivery thread writes it first.
        if batch.first_offset == 0:
            first_call.set()
            release.wait()
        return always_ok(n, batch)

    board.scripts["s3"] = script
    send(log, "s3", 30)
    worker = make_worker(log, board, clock, object_store_in_flight=3, max_queued_batches=5)
    try:
        step_until(worker, lambda: len(board.writes("s3")) == 3 and worker.attempts_in_flight == 1)
        for _ in range(10):
            worker.step()
        assert first_call.is_set()
        assert committed(log, "s3") == 0  # batches 10..29 are stored, 0..9 is not
        release.set()
        step_until(worker, lambda: committed(log, "s3") == 30)
    finally:
        release.set()
        worker.close()


def test_a_failed_commit_is_retried_and_reported(
    tmp_path: Path, board: SinkBoard, clock: FakeClock
) -> None:
    inner = EmbeddedLog(tmp_path / "log.sqlite")
    flaky = FlakyLog(inner)
    publish(inner, settings("acme", webhook("a")))
    send(inner, "a", 20)
    worker = make_worker(flaky, board, clock)
    try:
        flaky.consumers[0].fail = 3
        step_until(worker, lambda: len(board.writes("a")) == 1)
        step_until(worker, lambda: health_in(worker, "a").last_cause == "offset_commit")
        assert worker.health["a"].state is State.FAILING  # not moving: not reported active
        for _ in range(10):
            worker.step()
        assert len(board.writes("a")) == 1  # nothing new while the stored batch is uncommitted
        for _ in range(3):
            clock.advance(15.0)
            worker.step()
        step_until(worker, lambda: committed(inner, "a") == 20)
        assert state_of(worker, "a") is State.ACTIVE
    finally:
        worker.close()
        inner.close()


def test_a_refused_seek_holds_the_partition_until_a_seek_succeeds(
    tmp_path: Path, board: SinkBoard, clock: FakeClock
) -> None:
    inner = EmbeddedLog(tmp_path / "log.sqlite")
    flaky = FlakyLog(inner)
    publish(inner, settings("acme", webhook("a", paused=True)))
    ids = send(inner, "a", 20)
    worker = make_worker(flaky, board, clock)
    try:
        for _ in range(3):
            worker.step()  # read, dropped: the destination is paused by its owner
        flaky.consumers[0].fail_seeks = 2
        publish(inner, settings("acme", webhook("a")))
        step_until(worker, lambda: committed(inner, "a") == 20)
        assert board.delivered_ids("a") == ids  # each once, in order
        assert flaky.consumers[0].fail_seeks == 0
    finally:
        worker.close()
        inner.close()


def test_drain_on_stop_stores_what_it_can_and_commits_nothing_else(
    log: EmbeddedLog, board: SinkBoard, clock: FakeClock
) -> None:
    publish(log, settings("acme", webhook("a")), settings("globex", webhook("b")))
    gate = board.hang("a")
    send(log, "a", 10)
    b_ids = send(log, "b", 15, account_id="globex")
    worker = make_worker(log, board, clock, drain_timeout=0.3)
    stop = threading.Event()
    try:
        step_until(worker, lambda: len(board.writes("a")) == 1 and bool(board.writes("b")))
        stop.set()
        worker.run(stop)  # seals B's open batch of 5, stores it, gives up waiting on A
        assert board.delivered_ids("b") == b_ids
        assert committed(log, "b") == 15
        assert committed(log, "a") == 0
    finally:
        gate.set()
        worker.close()


# -- memory ------------------------------------------------------------------------------------


def test_backpressure_pauses_the_fullest_lane(
    log: EmbeddedLog, board: SinkBoard, clock: FakeClock
) -> None:
    big = webhook("big", batch={"max_events": 1000, "max_age_s": 60.0})
    publish(log, settings("acme", big), settings("globex", webhook("small")))
    big_ids = send(log, "big", 1000)
    gate = board.hang("big")
    cap = 600_000
    worker = make_worker(log, board, clock, max_buffered_bytes=cap, poll_records=100)
    big_tp = TopicPartition("auditstream.dest.big", 0)
    try:
        step_until(worker, lambda: worker.held_bytes >= cap)
        worker.step()
        # The fullest lane stops reading; what it holds is sealed and sent (it gets no more).
        assert MEMORY in worker.paused_partitions()[big_tp]
        step_until(worker, lambda: len(board.writes("big")) == 1)
        held = worker.held_bytes
        assert held <= cap + 100 * 8 * 2000  # at most one poll past the cap
        small_ids = send(log, "small", 10, account_id="globex")
        step_until(worker, lambda: board.delivered_ids("small") == small_ids)
        assert TopicPartition("auditstream.dest.small", 0) not in worker.paused_partitions()
        for _ in range(20):
            worker.step()
        assert worker.held_bytes <= held  # nothing more read while the big batch is held
        gate.set()
        for _ in range(20):  # the rest, each batch sealed by memory or by age
            if board.delivered_ids("big") == big_ids:
                break
            clock.advance(60.0)
            worker.step()
            step_until(worker, lambda: worker.attempts_in_flight == 0)
        assert board.delivered_ids("big") == big_ids
        assert big_tp not in worker.paused_partitions()
    finally:
        gate.set()
        worker.close()


# -- state by account and destination ---------------------------------------------------------


def test_a_destination_id_reused_by_another_account_starts_clean(
    log: EmbeddedLog, board: SinkBoard, clock: FakeClock
) -> None:
    publish(log, settings("acme", webhook("hook")))
    board.scripts["hook"] = fail_first(1, PermanentError("401", cause="http_401"))
    send(log, "hook", 10)
    worker = make_worker(log, board, clock)
    try:
        step_until(worker, lambda: health_in(worker, "hook").state is State.ERROR)
        assert worker.health_of("acme", "hook") is not None
        publish(log, settings("acme"), settings("initech", webhook("hook")))
        step_until(worker, lambda: worker.health_of("acme", "hook") is None)
        clock.advance(100.0)
        step_until(worker, lambda: worker.health_of("initech", "hook") is not None)
        fresh = worker.health_of("initech", "hook")
        assert fresh is not None
        assert fresh.last_error is None
        assert fresh.account_id == "initech"
    finally:
        worker.close()


# -- replays -----------------------------------------------------------------------------------


def test_a_requested_replay_is_a_new_delivery(
    log: EmbeddedLog, board: SinkBoard, clock: FakeClock
) -> None:
    publish(log, settings("acme", webhook("a")))
    ids = send(log, "a", 20)
    worker = make_worker(log, board, clock)
    try:
        step_until(worker, lambda: committed(log, "a") == 20)
        replay = {"id": "r-1", "from_time": "2000-01-01T00:00:00Z"}
        publish(log, settings("acme", webhook("a", replay=replay)))
        step_until(worker, lambda: len(board.writes("a")) == 4)
        writes = board.writes("a")
        assert [w.key for w in writes] == [
            "a:0:0-9",
            "a:0:10-19",
            "a:0:0-9:replay:r-1",
            "a:0:10-19:replay:r-1",
        ]
        assert board.delivered_ids("a") == ids + ids
        more = send(log, "a", 10)
        step_until(worker, lambda: board.delivered_ids("a")[-10:] == more)
        assert board.writes("a")[-1].key == "a:0:20-29"
    finally:
        worker.close()
    assert _last_status(log, "a")["applied_replay_id"] == "r-1"


# -- retention ---------------------------------------------------------------------------------


def test_events_removed_by_retention_before_delivery_are_counted(
    log: EmbeddedLog, board: SinkBoard, clock: FakeClock
) -> None:
    publish(log, settings("acme", webhook("a")))
    ids = send(log, "a", 32)
    with log.connection() as conn:  # retention removed the 12 oldest records
        conn.execute(
            "DELETE FROM records WHERE topic = ? AND off < 12", (topics.destination_topic("a"),)
        )
    worker = make_worker(log, board, clock)
    try:
        step_until(worker, lambda: board.delivered_ids("a") == ids[12:])
        assert worker.health["a"].expired_events == 12
        worker.drain(0.5)
    finally:
        worker.close()
    assert _last_status(log, "a")["expired_events"] == 12


# -- dead letters ------------------------------------------------------------------------------


def test_undecodable_records_are_dead_lettered_once_their_batch_is_stored(
    log: EmbeddedLog, board: SinkBoard, clock: FakeClock
) -> None:
    publish(log, settings("acme", webhook("a")))
    ids = send(log, "a", 4)
    producer = log.producer()
    producer.produce(OutgoingRecord(topics.destination_topic("a"), b"not avro", key=b"acme"))
    producer.close()
    ids += send(log, "a", 5)
    worker = make_worker(log, board, clock)
    try:
        step_until(worker, lambda: committed(log, "a") == 10)
        assert board.delivered_ids("a") == ids
    finally:
        worker.close()
    reader = log.reader(topics.DEAD_LETTERS)
    dead = reader.poll(10, 1.0)
    reader.close()
    assert len(dead) == 1


def _last_status(log: EmbeddedLog, destination_id: str) -> dict[str, object]:
    reader = log.reader(topics.STATUS)
    latest: dict[str, object] = {}
    while batch := reader.poll(1000, 0.1):
        for record in batch:
            if record.key == destination_id.encode() and record.value:
                latest = orjson.loads(record.value)
    reader.close()
    return latest


def test_webhook_bytes_are_counted(log: EmbeddedLog, board: SinkBoard, clock: FakeClock) -> None:
    def written() -> float:
        labels = {"sink_type": "webhook"}
        return REGISTRY.get_sample_value("auditstream_sink_bytes_written_total", labels) or 0.0

    publish(log, settings("acme", webhook("a")))
    board.scripts["a"] = lambda _n, _b: WriteResult(bytes_written=1234, deliveries=1)
    before = written()
    send(log, "a", 10)
    worker = make_worker(log, board, clock)
    try:
        step_until(worker, lambda: committed(log, "a") == 10)
    finally:
        worker.close()
    assert written() - before == 1234


# -- settings ----------------------------------------------------------------------------------


def test_events_read_before_their_settings_are_delivered_once_the_settings_come(
    log: EmbeddedLog, board: SinkBoard, clock: FakeClock
) -> None:
    ids = send(log, "late", 10)
    worker = make_worker(log, board, clock)
    try:
        for _ in range(5):
            worker.step()
        assert health_in(worker, "late").state is State.WAITING
        assert board.writes("late") == []
        publish(log, settings("acme", webhook("late")))
        # A write is recorded when it starts: step on until its result is applied.
        step_until(worker, lambda: committed(log, "late") == 10)
        assert board.delivered_ids("late") == ids
    finally:
        worker.close()


def test_a_paused_destination_keeps_its_events_until_resumed(
    log: EmbeddedLog, board: SinkBoard, clock: FakeClock
) -> None:
    publish(log, settings("acme", webhook("a", paused=True)))
    ids = send(log, "a", 10)
    worker = make_worker(log, board, clock)
    try:
        for _ in range(5):
            worker.step()
        assert health_in(worker, "a").state is State.PAUSED
        assert board.writes("a") == []
        publish(log, settings("acme", webhook("a")))
        step_until(worker, lambda: board.delivered_ids("a") == ids)
        assert health_in(worker, "a").state is State.ACTIVE
    finally:
        worker.close()


def test_a_replay_reaches_a_quiet_destination_and_survives_a_restart(
    log: EmbeddedLog, board: SinkBoard, clock: FakeClock
) -> None:
    publish(log, settings("acme", webhook("a")))
    ids = send(log, "a", 30)
    first = make_worker(log, board, clock)
    try:
        step_until(first, lambda: committed(log, "a") == 30)
    finally:
        first.close()

    release = threading.Event()

    def hang_on_second_replay_batch(n: int, batch: Batch) -> Outcome:
        if n == 5:  # 3 batches, then the replay's first two
            release.wait()
        return always_ok(n, batch)

    board.scripts["a"] = hang_on_second_replay_batch
    second = make_worker(log, board, clock, drain_timeout=0.2)
    try:
        for _ in range(5):
            second.step()  # nothing new to read: the partition is quiet
        replay = {"id": "r-1", "from_time": "2000-01-01T00:00:00Z"}
        publish(log, settings("acme", webhook("a", replay=replay)))
        step_until(second, lambda: len(board.writes("a")) == 5)
        assert committed(log, "a") == 10  # the replay's first batch is stored
    finally:
        second.drain(0.2)
        second.close()
        release.set()

    third = make_worker(log, board, clock)  # resumes the replay where it stood
    try:
        step_until(third, lambda: committed(log, "a") == 30)
    finally:
        third.close()
    keys = [w.key for w in board.writes("a")]
    assert keys[:4] == ["a:0:0-9", "a:0:10-19", "a:0:20-29", "a:0:0-9:replay:r-1"]
    assert keys[-2:] == ["a:0:10-19:replay:r-1", "a:0:20-29:replay:r-1"]
    assert board.delivered_ids("a")[-20:] == ids[10:]


# -- operator signals --------------------------------------------------------------------------


def test_lag_and_oldest_undelivered_age_per_destination(log: EmbeddedLog) -> None:
    def gauge(name: str) -> float | None:
        return REGISTRY.get_sample_value(
            f"auditstream_sink_destination_{name}", {"destination": "a"}
        )

    send(log, "a", 10)
    tp = TopicPartition(topics.destination_topic("a"), 0)
    stamp = log.timestamp_at(tp, 4)
    assert stamp is not None
    signals = DestinationSignals(log, interval=3600.0, wall_clock=lambda: stamp / 1000 + 30)
    try:
        signals.update({"a": [(tp, Undelivered(4, None))]})
        signals.sample_once()
        assert gauge("lag_events") == 6
        assert gauge("oldest_undelivered_age_seconds") == pytest.approx(30.0)
        signals.update({"a": [(tp, Undelivered(10, None))]})
        signals.sample_once()
        assert (gauge("lag_events"), gauge("oldest_undelivered_age_seconds")) == (0, 0)
        signals.forget("a")
        assert gauge("lag_events") is None
    finally:
        signals.close()
