"""The delivery engine's pure parts, table-driven: committable offsets, the memory plan, the
destination state machine, retry delays, metric causes, lanes, decoding a batch."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from auditstream.config.destinations import WebhookDestination
from auditstream.pipeline.log import Record, TopicPartition
from auditstream.producers.sdk import to_record
from auditstream.sinks import backpressure
from auditstream.sinks.attempts import materialize
from auditstream.sinks.batch import Batch, decoded_size
from auditstream.sinks.delivery_threads import DeliveryThreads
from auditstream.sinks.errors import PermanentError, TransientError
from auditstream.sinks.health import DestinationHealth, State
from auditstream.sinks.lanes import Delivery, Lane
from auditstream.sinks.metrics import bounded_cause
from auditstream.sinks.offsets import OffsetBook, PartitionOffsets
from auditstream.sinks.retry import RetryPolicy, delay_after_failure
from tests.factories import make_event

TP = TopicPartition("auditstream.dest.d", 0)

# -- offsets -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("batches", "stored", "expected"),
    [
        ([(0, 9)], [], None),
        ([(0, 9)], [0], 10),
        ([(0, 9), (10, 19), (20, 29)], [10, 20], None),  # the oldest is not stored
        ([(0, 9), (10, 19), (20, 29)], [20, 0], 10),
        ([(0, 9), (10, 19), (20, 29)], [20, 10, 0], 30),
        ([(0, 9), (12, 19)], [0, 12], 20),  # a gap (transaction markers) is passed over
        ([(5, 9)], [7], None),  # not a batch start: nothing
    ],
)
def test_commit_goes_up_to_the_stored_run(
    batches: list[tuple[int, int]], stored: list[int], expected: int | None
) -> None:
    offsets = PartitionOffsets()
    for first, last in batches:
        offsets.add(first, last)
    for first in stored:
        offsets.stored(first)
    assert offsets.ready == expected


def test_batches_must_follow_each_other() -> None:
    offsets = PartitionOffsets()
    offsets.add(0, 9)
    with pytest.raises(ValueError, match="does not follow"):
        offsets.add(5, 12)


def test_offset_book_commits_once_and_forgets_given_back_batches() -> None:
    book = OffsetBook()
    for first in (0, 10, 20):
        book.add(TP, first, first + 9)
    book.stored(TP, 0)
    assert book.due() == {TP: 10}
    assert book.uncommitted(TP)
    book.committed({TP: 10})
    assert book.due() == {}
    assert not book.uncommitted(TP)
    book.forget_from(TP, 20)  # 20..29 given back: read again later
    assert book.first_pending(TP) == 10
    assert book.pending(TP) == 1
    book.add(TP, 20, 24)  # cut differently the second time
    book.stored(TP, 20)
    book.stored(TP, 10)
    assert book.due() == {TP: 25}
    book.drop(TP)
    assert book.due() == {}
    assert book.first_pending(TP) is None


def test_a_commit_of_an_older_offset_does_not_clear_a_newer_one() -> None:
    book = OffsetBook()
    book.add(TP, 0, 9)
    book.add(TP, 10, 19)
    book.stored(TP, 0)
    due = book.due()
    book.stored(TP, 10)  # while the commit of 10 was under way
    book.committed(due)
    assert book.due() == {TP: 20}


# -- memory ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("held", "paused", "cap", "pause", "resume"),
    [
        ({"a": 10, "b": 10}, set(), 100, [], []),
        ({"a": 90, "b": 5, "c": 5}, set(), 100, ["a"], []),  # the fullest stops reading
        ({"a": 40, "b": 35, "c": 30}, set(), 100, ["a", "b"], []),
        ({"a": 90, "b": 15}, {"a"}, 100, [], []),  # b holds less than half: it reads on
        ({"a": 60, "b": 70}, {"a"}, 100, ["b"], []),
        ({"a": 40, "b": 5}, {"a"}, 100, [], ["a"]),  # under half the cap: everyone reads
        ({"a": 60, "b": 5}, {"a"}, 100, [], []),  # between: as it is
        ({"a": 0, "b": 0}, set(), 0, [], []),
    ],
)
def test_memory_plan(
    held: dict[str, int], paused: set[str], cap: int, pause: list[str], resume: list[str]
) -> None:
    plan = backpressure.plan(held, paused, cap)
    assert (plan.pause, plan.resume) == (pause, resume)


@pytest.mark.parametrize(
    ("held", "cap", "estimate", "max_records", "expected"),
    [
        (0, 1000, 10.0, 50, 50),
        (0, 1000, 100.0, 50, 10),
        (950, 1000, 100.0, 50, 1),
        (2000, 1000, 100.0, 50, 1),  # over: still one, so the consumer is polled
    ],
)
def test_poll_budget(held: int, cap: int, estimate: float, max_records: int, expected: int) -> None:
    assert backpressure.poll_budget(held, cap, estimate, max_records) == expected


# -- the destination state machine --------------------------------------------------------------


def _after(*steps: tuple[str, dict[str, Any]]) -> DestinationHealth:
    health = DestinationHealth(account_id="acme")
    for method, kwargs in steps:
        getattr(health, method)(**kwargs)
    return health


TRANSIENT = {"permanent": False, "message": "503", "cause": "http_503", "now": 100.0}
REFUSED = {"permanent": True, "message": "400", "cause": "http_400", "now": 100.0}
GONE = {"permanent": True, "message": "410", "cause": "http_410", "now": 100.0}


@pytest.mark.parametrize(
    ("steps", "state"),
    [
        ([], State.ACTIVE),
        ([("retrying", {"message": "503", "cause": "http_503", "now": 1.0})], State.ACTIVE),
        ([("failed", TRANSIENT)], State.FAILING),
        ([("failed", REFUSED)], State.ERROR),
        ([("failed", GONE)], State.SUSPENDED),
        ([("failed", {**REFUSED, "cause": "bad_credentials"})], State.SUSPENDED),
        ([("failed", {**REFUSED, "cause": "bucket_missing"})], State.SUSPENDED),
        ([("failed", GONE), ("failed", TRANSIENT)], State.SUSPENDED),  # stays suspended
        ([("failed", GONE), ("succeeded", {"now": 200.0, "events": 5})], State.ACTIVE),
        ([("failed", TRANSIENT), ("hold", {"state": State.PAUSED})], State.PAUSED),
        (
            [("failed", TRANSIENT), ("hold", {"state": State.PAUSED}), ("release", {})],
            State.FAILING,
        ),
        ([("hold", {"state": State.DISABLED}), ("release", {})], State.ACTIVE),
    ],
)
def test_state_machine(steps: list[tuple[str, dict[str, Any]]], state: State) -> None:
    assert _after(*steps).state is state


def test_suspended_after_failing_for_the_configured_time() -> None:
    health = _after(("failed", TRANSIENT), ("failed", {**TRANSIENT, "now": 5000.0}))
    assert health.failing_since == 100.0
    assert not health.suspend_if_due(100.0 + 3599, 3600)
    assert health.suspend_if_due(100.0 + 3600, 3600)
    assert (health.state, health.suspended_at) == (State.SUSPENDED, 3700.0)
    assert not health.suspend_if_due(10_000.0, 3600)  # once
    health.succeeded(20_000.0, 3)
    assert health.failing_since is None
    assert health.suspended_at is None
    assert health.consecutive_failures == 0


def test_only_failures_can_be_suspended() -> None:
    assert not _after().suspend_if_due(1e12, 1)
    assert not _after(("hold", {"state": State.WAITING})).suspend_if_due(1e12, 1)


# -- retry delays ------------------------------------------------------------------------------

POLICY = RetryPolicy(attempts=3, base=1.0, max_wait=4.0, max_retry_after=100.0)


@pytest.mark.parametrize(
    ("failures", "exc", "permanent", "low", "high"),
    [
        (1, TransientError("x"), False, 0.0, 1.0),  # quick: full jitter under base
        (2, TransientError("x"), False, 0.0, 2.0),
        (3, TransientError("x"), False, 5.0, 10.0),  # failing: pause_base, jittered
        (4, TransientError("x"), False, 10.0, 20.0),
        (30, TransientError("x"), False, 30.0, 60.0),  # capped
        (1, PermanentError("x"), True, 5.0, 10.0),  # refusals skip the quick retries
        (1, TransientError("x", retry_after=42.0), False, 42.0, 42.0),
        (3, TransientError("x", retry_after=7.0), False, 7.0, 10.0),  # never earlier
        (1, TransientError("x", retry_after=1e6), False, 100.0, 100.0),  # capped ask
    ],
)
def test_delay_after_failure(
    failures: int, exc: Exception, permanent: bool, low: float, high: float
) -> None:
    for _ in range(50):
        delay = delay_after_failure(
            failures, exc, permanent=permanent, policy=POLICY, pause_base=10.0, pause_cap=60.0
        )
        assert low <= delay <= high


# -- metric causes -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cause", "label"),
    [
        ("timeout", "timeout"),
        ("bucket_missing", "bucket_missing"),
        ("http_429", "http_429"),
        ("http_410", "http_410"),
        ("http_418", "http_4xx"),
        ("http_599", "http_5xx"),
        ("http_999", "http_other"),
        ("http_abc", "other"),
        ("http_٣", "other"),
        ("something new", "other"),
    ],
)
def test_bounded_cause(cause: str, label: str) -> None:
    assert bounded_cause(cause) == label


# -- lanes -------------------------------------------------------------------------------------


def _destination() -> WebhookDestination:
    return WebhookDestination.model_validate(
        {"id": "d", "url": "https://d.example.com", "secret": "s"}
    )


def _delivery(first: int, n: int = 10, partition: int = 0) -> Delivery:
    topic = "auditstream.dest.d"
    records = [Record(topic, partition, first + i, None, b"x") for i in range(n)]
    return Delivery(Batch("d", "acme", topic, partition, records=records), (), 80 * n, 1)


def test_a_lane_sends_in_order_within_its_limit() -> None:
    lane = Lane(("acme", "d"), _destination(), in_flight_limit=1)
    first, second = _delivery(0), _delivery(10)
    lane.queue.extend([first, second])
    assert lane.take(0.0) is first
    assert lane.take(0.0) is None  # one in flight
    lane.succeeded(first)
    assert lane.take(0.0) is second
    assert lane.held_bytes() == 800


def test_a_failed_batch_is_retried_as_is_and_first() -> None:
    lane = Lane(("acme", "d"), _destination(), in_flight_limit=2)
    first, second, third = _delivery(0), _delivery(10), _delivery(20)
    lane.queue.extend([first, second, third])
    assert lane.take(0.0) is first
    assert lane.take(0.0) is second
    lane.failed(second, retry_at=5.0)
    lane.failed(first, retry_at=6.0)
    assert lane.take(5.5) is None  # the lane waits for its retry time, holding nothing
    assert lane.in_flight == []
    assert lane.take(6.0) is first  # oldest first
    assert lane.take(6.0) is second
    assert lane.take(6.0) is None  # in-flight limit
    lane.succeeded(first)
    assert lane.take(6.0) is None  # a retry is still under way: nothing new yet
    lane.succeeded(second)
    assert lane.take(6.0) is third
    assert (first.attempts, second.attempts, third.attempts) == (2, 2, 1)


def test_a_held_or_blocked_lane_sends_nothing() -> None:
    lane = Lane(("acme", "d"), _destination(), in_flight_limit=1)
    lane.queue.append(_delivery(0))
    lane.held = True
    assert lane.take(0.0) is None
    lane.held = False
    assert lane.take(0.0, blocked=lambda tp: tp == TP) is None
    assert lane.take(0.0) is not None


def test_a_lane_gives_back_what_it_never_sent() -> None:
    lane = Lane(("acme", "d"), _destination(), in_flight_limit=1)
    sent, unsent = _delivery(0), _delivery(10)
    lane.queue.extend([sent, unsent])
    lane.take(0.0)
    lane.failed(sent, retry_at=1.0)
    assert lane.release_unsent() == [unsent]
    assert lane.retries == [sent]
    assert lane.drop_partition(TP) == [sent]
    assert lane.idle()
    assert lane.retry_at is None


# -- decoding a batch --------------------------------------------------------------------------


def test_materialize_decodes_redacts_and_rejects() -> None:
    topic = "auditstream.dest.d"
    good = [to_record(make_event(), topic) for _ in range(3)]
    records = [Record(topic, 0, i, None, r.value) for i, r in enumerate([good[0], good[1]])] + [
        Record(topic, 0, 2, None, b"not avro"),
        Record(topic, 0, 3, None, good[2].value),
    ]
    batch = Batch("d", "acme", topic, 0, records=records)

    decoded, rejects = materialize(batch, ["actor_email"])
    again, _ = materialize(batch, ["actor_email"])

    assert len(decoded.events) == 3
    assert all(e["actor"]["email"] is None for e in decoded.events)
    assert [r.record.offset for r in rejects] == [2]
    assert decoded.events == again.events  # the same batch always renders the same
    assert batch.events == []  # the held batch stays records only
    assert decoded_size(records[0]) == 8 * len(records[0].value)


# -- delivery threads --------------------------------------------------------------------------


def test_delivery_threads_start_on_demand_up_to_the_limit() -> None:
    threads = DeliveryThreads(2)
    release = threading.Event()
    done = threading.Semaphore(0)

    def task() -> None:
        release.wait()
        done.release()

    for _ in range(3):
        threads.submit(task)
    assert threads.started == 2
    release.set()
    for _ in range(3):
        assert done.acquire(timeout=10)
    threads.close()
    with pytest.raises(RuntimeError):
        threads.submit(task)
    with pytest.raises(ValueError, match="at least 1"):
        DeliveryThreads(0)
