"""Fakes for driving a sink worker in unit tests: a clock moved by hand, sinks whose every
write is scripted (succeed, fail, hang until released), and a log whose commits can fail."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from auditstream.config.destinations import Destination
from auditstream.config.stream import AccountSettings
from auditstream.pipeline import topics
from auditstream.pipeline.embedded_log import EmbeddedLog
from auditstream.pipeline.errors import LogError
from auditstream.pipeline.log import Consumer, Log, TopicPartition
from auditstream.pipeline.settings_writer import publish_settings
from auditstream.producers.sdk import to_record
from auditstream.sinks.base import CheckResult, Sink, WriteResult
from auditstream.sinks.batch import Batch
from auditstream.sinks.retry import is_retryable
from auditstream.sinks.signature import idempotency_key
from auditstream.sinks.worker import SinkWorker
from tests.factories import make_event


class FakeClock:
    """Monotonic and wall time that move only when the test says so."""

    def __init__(self, start: float = 1_900_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass(frozen=True, slots=True)
class Written:
    """What one ``write`` call was given."""

    destination_id: str
    first_offset: int
    last_offset: int
    event_ids: tuple[str, ...]
    key: str


Outcome = WriteResult | Exception
Script = Callable[[int, Batch], Outcome]
"""(call number from 1, batch) -> what the write returns or raises."""


def always_ok(_n: int, batch: Batch) -> Outcome:
    return WriteResult(bytes_written=10 * len(batch.events), deliveries=1)


@dataclass
class SinkBoard:
    """Builds a fake sink per destination and records every write, per destination id."""

    scripts: dict[str, Script] = field(default_factory=dict)
    gates: dict[str, threading.Event] = field(default_factory=dict)
    calls: dict[str, list[Written]] = field(default_factory=dict)
    built: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def factory(self, destination: Destination) -> Sink:
        with self.lock:
            self.built.append(destination.id)
        return FakeSink(self, destination)

    def hang(self, destination_id: str) -> threading.Event:
        """Every write of ``destination_id`` waits until the returned event is set."""
        gate = threading.Event()
        self.gates[destination_id] = gate
        return gate

    def writes(self, destination_id: str) -> list[Written]:
        with self.lock:
            return list(self.calls.get(destination_id, []))

    def delivered_ids(self, destination_id: str) -> list[str]:
        return [i for w in self.writes(destination_id) for i in w.event_ids]


class FakeSink:
    def __init__(self, board: SinkBoard, destination: Destination) -> None:
        self._board = board
        self._destination = destination
        self.type: str = destination.type
        self.closed = False

    def write(self, batch: Batch) -> WriteResult:
        board, dest_id = self._board, self._destination.id
        key = idempotency_key(
            dest_id, batch.partition, batch.first_offset, batch.last_offset, batch.replay_id
        )
        seen = Written(
            dest_id,
            batch.first_offset,
            batch.last_offset,
            tuple(str(e["event_id"]) for e in batch.events),
            key,
        )
        with board.lock:
            board.calls.setdefault(dest_id, []).append(seen)
            n = len(board.calls[dest_id])
        gate = board.gates.get(dest_id)
        if gate is not None:
            gate.wait()
        outcome = board.scripts.get(dest_id, always_ok)(n, batch)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def probe(self) -> CheckResult:
        return CheckResult(True, None, "fake", [])

    def is_retryable(self, exc: BaseException) -> bool:
        return is_retryable(exc)

    def close(self) -> None:
        self.closed = True


class FlakyCommits:
    """Wraps a consumer: the next ``fail`` commits and the next ``fail_seeks`` seeks raise
    :class:`LogError`."""

    def __init__(self, inner: Consumer) -> None:
        self._inner = inner
        self.fail = 0
        self.fail_seeks = 0
        self.group = inner.group

    def seek(self, tp: TopicPartition, offset: int) -> None:
        if self.fail_seeks > 0:
            self.fail_seeks -= 1
            raise LogError("kafka: seek: Local: Erroneous state")
        self._inner.seek(tp, offset)

    def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        if self.fail > 0:
            self.fail -= 1
            raise LogError("kafka: commit offsets: Waiting for coordinator")
        self._inner.commit(offsets)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class FlakyLog:
    """An embedded log whose sink consumers commit through :class:`FlakyCommits`."""

    def __init__(self, inner: EmbeddedLog) -> None:
        self._inner = inner
        self.consumers: list[FlakyCommits] = []

    def consumer(self, group: str, subscription: Any) -> Consumer:
        wrapped = FlakyCommits(self._inner.consumer(group, subscription))
        self.consumers.append(wrapped)
        return wrapped

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def settings(account_id: str, *destinations: dict[str, Any]) -> AccountSettings:
    return AccountSettings.model_validate(
        {"account_id": account_id, "destinations": list(destinations)}
    )


def webhook(dest_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": dest_id,
        "type": "webhook",
        "url": f"https://{dest_id}.example.com/in",
        "secret": "s3cret",
        "batch": {"max_events": 10, "max_age_s": 1.0},
        **extra,
    }


def store(dest_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": dest_id,
        "type": "local",
        "path": dest_id,
        "batch": {"max_events": 10, "max_age_s": 1.0},
        **extra,
    }


def publish(log: Log, *accounts: AccountSettings) -> None:
    publish_settings(log, list(accounts))


def send(log: Log, destination_id: str, n: int, account_id: str = "acme") -> list[str]:
    """``n`` events written straight into the destination's topic; their ids in order."""
    topic = topics.destination_topic(destination_id)
    log.create_topic(topic)
    events = [make_event(account_id=account_id) for _ in range(n)]
    producer = log.producer()
    for e in events:
        producer.produce(to_record(e, topic))
    producer.flush()
    producer.close()
    return [str(e["event_id"]) for e in events]


def step_until(worker: SinkWorker, done: Callable[[], bool], guard_s: float = 20.0) -> None:
    """Step ``worker`` until ``done()``. The guard only stops a broken test from hanging: no
    assertion is made on how long it took."""
    deadline = time.monotonic() + guard_s
    while not done():
        worker.step()
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")


def committed(log: Log, destination_id: str) -> int:
    found = log.committed_offsets(topics.SINK_GROUP, topics.destination_topic(destination_id))
    return found.get(TopicPartition(topics.destination_topic(destination_id), 0), 0)
