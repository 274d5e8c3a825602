"""The router process through broker outages: it recovers, or it ends non-zero with one line
saying why (and a restarted router delivers the rest, exactly once); it never hangs silently,
and SIGTERM ends it within a bound even while a Kafka call blocks.

A frozen broker (SIGSTOP to the broker's own PID, SIGCONT after) holds every connection
open without answering: the Kafka client's calls block until their own timeouts, which is
how a router wedged after a broker restart looked from outside.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from auditstream.config.stream import AccountSettings
from auditstream.pipeline import topics
from auditstream.pipeline.kafka_log import KafkaLog
from auditstream.pipeline.settings_writer import publish_settings
from auditstream.pipeline.watchdog import EXIT_STALLED, EXIT_STOP_TIMEOUT
from auditstream.producers.sdk import ActivityProducer
from auditstream.schemas import codec
from devservices.kafka import KafkaBroker
from devservices.processes import ProjectProcess
from tests.factories import make_event

DEST = "acme-files"
SETTINGS = AccountSettings.model_validate(
    {"account_id": "acme", "destinations": [{"id": DEST, "type": "local", "path": "acme"}]}
)


def _router(broker: KafkaBroker, log_path: Path, *extra: str) -> ProjectProcess:
    return ProjectProcess(
        [
            "router",
            "--bootstrap",
            broker.bootstrap,
            "--transactional-id",
            "router-outage-test",
            *extra,
        ],
        log_path,
    )


def _send(log: KafkaLog, n: int) -> list[str]:
    events = [make_event(account_id="acme") for _ in range(n)]
    with ActivityProducer(log) as producer:
        for e in events:
            producer.send(e)
    return [e["event_id"] for e in events]


class Routed:
    """Event ids in the destination topic, committed data only, duplicates kept; one reader
    for the whole test, read on from where it was."""

    def __init__(self, log: KafkaLog) -> None:
        self._reader = log.reader(topics.destination_topic(DEST))
        self.ids: list[str] = []

    def read(self) -> list[str]:
        while batch := self._reader.poll(1000, 0.5):
            self.ids.extend(str(codec.decode(r.value)["event_id"]) for r in batch)
        return self.ids

    def close(self) -> None:
        self._reader.close()


def _wait_routed(routed: Routed, want: list[str], router: ProjectProcess, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while sorted(routed.read()) != sorted(want):
        assert router.alive(), router.output()[-3000:]
        assert time.monotonic() < deadline, router.output()[-3000:]


def _wait_busy(log: KafkaLog, router: ProjectProcess) -> None:
    """Until the router has routed its first events (of thousands, one per transaction): it
    is in the middle of its work, a transaction open or about to be."""
    deadline = time.monotonic() + 120
    while not any(log.end_offsets(topics.destination_topic(DEST)).values()):
        assert router.alive(), router.output()[-3000:]
        assert time.monotonic() < deadline, router.output()[-3000:]
        time.sleep(0.05)


@contextlib.contextmanager
def _frozen(broker: KafkaBroker) -> Iterator[None]:
    pid = int((broker.workdir / "kafka.pid").read_text().strip())
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def _wait_exit(router: ProjectProcess, timeout: float) -> int:
    try:
        return router.proc.wait(timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError(
            f"router still running {timeout:g} s on:\n{router.output()[-3000:]}"
        ) from None


def test_router_after_broker_stop_and_restart_delivers_everything_once(
    kafka_broker: KafkaBroker, tmp_path: Path
) -> None:
    log = KafkaLog(kafka_broker.bootstrap)
    publish_settings(log, [SETTINGS])
    routed = Routed(log)
    router = _router(kafka_broker, tmp_path / "router.log", "--stall-timeout", "20")
    restarted: ProjectProcess | None = None
    try:
        first = _send(log, 200)
        _wait_routed(routed, first, router, 120)

        kafka_broker.stop()
        time.sleep(5)  # an outage the router lives through
        kafka_broker.restart()
        second = _send(log, 200)

        deadline = time.monotonic() + 180
        while sorted(routed.read()) != sorted(first + second):
            assert time.monotonic() < deadline, router.output()[-3000:]
            if not router.alive() and restarted is None:
                # Ended instead of recovering: non-zero, with the reason logged; what its
                # supervisor would do, the test does: start it again.
                code = router.stop()
                assert code != 0, router.output()[-3000:]
                assert "stalled" in router.output() or "error" in router.output()
                restarted = _router(kafka_broker, tmp_path / "router2.log")
        assert len(routed.ids) == len(set(routed.ids)) == 400  # exactly once
    finally:
        router.stop()
        if restarted is not None:
            restarted.stop()
        routed.close()
        log.close()


def test_router_blocked_in_a_kafka_call_exits_stalled_and_a_restart_delivers_the_rest(
    kafka_broker: KafkaBroker, tmp_path: Path
) -> None:
    log = KafkaLog(kafka_broker.bootstrap)
    publish_settings(log, [SETTINGS])
    routed = Routed(log)
    router = _router(
        kafka_broker, tmp_path / "router.log", "--stall-timeout", "8", "--batch-size", "1"
    )
    restarted: ProjectProcess | None = None
    try:
        ids = _send(log, 5000)
        _wait_busy(log, router)
        with _frozen(kafka_broker):
            # Its calls block for their 30 s timeouts; the watchdog ends it before that.
            code = _wait_exit(router, 120)
        out = router.output()
        assert code == EXIT_STALLED, out[-3000:]
        (line,) = [x for x in out.splitlines() if "router stalled" in x]
        assert "no progress for" in line
        assert f"exiting with status {EXIT_STALLED}" in line

        # Its supervisor starts it again: same transactional id, the open transaction is
        # fenced, and everything arrives once.
        restarted = _router(kafka_broker, tmp_path / "router2.log")
        _wait_routed(routed, ids, restarted, 180)
        assert len(routed.ids) == len(set(routed.ids)) == len(ids)
    finally:
        router.stop()
        if restarted is not None:
            restarted.stop()
        routed.close()
        log.close()


def test_sigterm_ends_a_router_blocked_in_a_kafka_call(
    kafka_broker: KafkaBroker, tmp_path: Path
) -> None:
    log = KafkaLog(kafka_broker.bootstrap)
    publish_settings(log, [SETTINGS])
    router = _router(
        kafka_broker,
        tmp_path / "router.log",
        "--stall-timeout",
        "600",
        "--stop-grace",
        "5",
        "--batch-size",
        "1",
    )
    try:
        _send(log, 5000)
        _wait_busy(log, router)
        with _frozen(kafka_broker):
            time.sleep(2)  # now inside a call that waits for the frozen broker
            router.proc.send_signal(signal.SIGTERM)
            code = _wait_exit(router, 60)
        out = router.output()
        assert code in (0, EXIT_STOP_TIMEOUT), out[-3000:]
        if code == EXIT_STOP_TIMEOUT:
            assert "router did not stop within 5 s of the stop request" in out
    finally:
        router.stop()
        log.close()


def test_sigterm_during_a_broker_outage_ends_the_router(
    kafka_broker: KafkaBroker, tmp_path: Path
) -> None:
    log = KafkaLog(kafka_broker.bootstrap)
    publish_settings(log, [SETTINGS])
    routed = Routed(log)
    router = _router(kafka_broker, tmp_path / "router.log", "--stop-grace", "5")
    try:
        ids = _send(log, 50)
        _wait_routed(routed, ids, router, 120)
        kafka_broker.kill9()
        time.sleep(3)
        router.proc.send_signal(signal.SIGTERM)
        code = _wait_exit(router, 60)
        assert code in (0, EXIT_STOP_TIMEOUT), router.output()[-3000:]
    finally:
        router.stop()
        routed.close()
        log.close()
