"""A commit that does not return (a consumer waiting for its group coordinator) never holds the
sink worker's poll loop: the destination reports the stall instead of ``active``, its partition
sends nothing new meanwhile, other destinations keep flowing, and once the commit returns the
partition moves on. Fake sinks, a clock moved by hand, the embedded log."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from auditstream.pipeline.embedded_log import EmbeddedLog
from auditstream.pipeline.log import Consumer, TopicPartition
from auditstream.sinks.health import State
from auditstream.sinks.worker import SinkWorker, WorkerOptions
from tests.fake_sinks import (
    FakeClock,
    SinkBoard,
    committed,
    publish,
    send,
    settings,
    step_until,
    webhook,
)

OPTIONS = WorkerOptions(poll_timeout=0.0, commit_wait=0.05, drain_timeout=2.0)


class HangingCommits:
    """Wraps a consumer: while ``hold`` is set, commits wait until it is cleared."""

    def __init__(self, inner: Consumer) -> None:
        self._inner = inner
        self.group = inner.group
        self.released = threading.Event()
        self.released.set()
        self.waiting = threading.Event()

    def hold(self) -> None:
        self.released.clear()

    def release(self) -> None:
        self.released.set()

    def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        if not self.released.is_set():
            self.waiting.set()
            self.released.wait(30.0)
        self._inner.commit(offsets)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class HangingLog:
    def __init__(self, inner: EmbeddedLog) -> None:
        self._inner = inner
        self.consumers: list[HangingCommits] = []

    def consumer(self, group: str, subscription: Any) -> Consumer:
        wrapped = HangingCommits(self._inner.consumer(group, subscription))
        self.consumers.append(wrapped)
        return wrapped

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


@pytest.fixture
def log(tmp_path: Path) -> Iterator[EmbeddedLog]:
    opened = EmbeddedLog(tmp_path / "log.sqlite")
    yield opened
    opened.close()


def test_a_commit_that_does_not_return_is_reported_and_holds_only_its_partition(
    log: EmbeddedLog,
) -> None:
    clock, board = FakeClock(), SinkBoard()
    publish(log, settings("acme", webhook("a")), settings("globex", webhook("b")))
    hanging = HangingLog(log)
    worker = SinkWorker(
        hanging,
        options=OPTIONS,
        sink_factory=board.factory,
        clock=clock,
        wall_clock=clock,
    )
    consumer = hanging.consumers[0]
    try:
        ids = send(log, "a", 10)
        step_until(worker, lambda: committed(log, "a") == 10)
        consumer.hold()
        more = send(log, "a", 30)
        step_until(worker, lambda: consumer.waiting.is_set())
        step_until(worker, lambda: worker.health["a"].state is State.FAILING)
        assert worker.health["a"].last_cause == "offset_commit"
        written = len(board.writes("a"))
        b_ids = send(log, "b", 20, account_id="globex")
        # The loop is not held: another destination gets its first batch stored; as no
        # commit can be made before the stalled one ends, it reports the stall too.
        step_until(worker, lambda: board.delivered_ids("b") == b_ids[:10])
        step_until(worker, lambda: worker.health["b"].state is State.FAILING)
        for _ in range(30):
            clock.advance(1.0)
            worker.step()
        assert worker.health["b"].last_cause == "offset_commit"
        assert len(board.writes("a")) == written  # one stored batch uncommitted at most
        assert len(board.writes("b")) == 1
        assert committed(log, "a") == 10
        consumer.release()
        step_until(worker, lambda: committed(log, "a") == 40 and committed(log, "b") == 20)
        assert board.delivered_ids("a") == ids + more
        assert board.delivered_ids("b") == b_ids
        assert worker.health["a"].state is State.ACTIVE
        assert worker.health["b"].state is State.ACTIVE
    finally:
        consumer.release()
        worker.close()
