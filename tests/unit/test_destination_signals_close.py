"""Closing the destination signals waits for a sample under way: a sampling thread still
asking the log would outlive the worker (the leak check caught one after a broker restart)."""

from __future__ import annotations

import threading
from typing import Any

from auditstream.pipeline.log import TopicPartition
from auditstream.sinks.destination_signals import DestinationSignals, Undelivered


class _SlowLog:
    """``end_offsets`` blocks until released, as a Kafka call does while a broker is away."""

    def __init__(self) -> None:
        self.asked = threading.Event()
        self.release = threading.Event()

    def end_offsets(self, topic: str) -> dict[TopicPartition, int]:
        self.asked.set()
        self.release.wait(10)
        return {TopicPartition(topic, 0): 5}

    def timestamp_at(self, tp: TopicPartition, offset: int) -> int | None:
        return None


def _signals(log: Any) -> DestinationSignals:
    return DestinationSignals(log, interval=60.0, wall_clock=lambda: 0.0)


def test_close_waits_for_the_sample_under_way() -> None:
    log = _SlowLog()
    signals = _signals(log)
    signals.update({"hook": [(TopicPartition("auditstream.dest.hook", 0), Undelivered(2, 1))]})
    assert log.asked.wait(5)
    threading.Timer(0.2, log.release.set).start()
    signals.close(timeout=10)
    assert not [t for t in threading.enumerate() if t.name == "destination-signals"]


def test_close_gives_up_after_its_timeout_and_says_so(caplog: Any) -> None:
    log = _SlowLog()
    signals = _signals(log)
    signals.update({"hook": [(TopicPartition("auditstream.dest.hook", 0), Undelivered(2, 1))]})
    assert log.asked.wait(5)
    signals.close(timeout=0.05)
    assert "still sampling" in caplog.text
    log.release.set()
    for thread in threading.enumerate():
        if thread.name == "destination-signals":
            thread.join(5)


def test_close_before_any_update_starts_nothing() -> None:
    signals = _signals(_SlowLog())
    signals.close()
    signals.update({})
    assert not [t for t in threading.enumerate() if t.name == "destination-signals"]
