"""One worker, two webhook destinations on a real Kafka broker: while A's receiver hangs
(accepts connections, never answers) B still receives every event, and A's hung request is
still open when B has everything (A's timeout is the longest a destination may set, 120 s);
once A answers again, it receives every one of its events, in order, each once."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from auditstream.config.stream import AccountSettings
from auditstream.pipeline.kafka_log import KafkaLog
from auditstream.pipeline.router import Router
from auditstream.pipeline.settings_writer import publish_settings
from auditstream.producers.sdk import ActivityProducer
from auditstream.producers.simulator import Simulator, SimulatorConfig
from auditstream.sinks.retry import RetryPolicy
from auditstream.sinks.worker import SinkWorker, WorkerOptions
from devservices.kafka import KafkaBroker
from devservices.webhook_receiver import WebhookReceiver

SECRET = "isolation-secret"
EVENTS = 1_500


class HangingFront:
    """A TCP front of a receiver. While hanging it accepts every connection and never answers
    (nor closes it); :meth:`recover` closes the held connections and relays every later one
    to the receiver."""

    def __init__(self, target_port: int) -> None:
        self._target = ("127.0.0.1", target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._lock = threading.Lock()
        self._held: list[socket.socket] = []
        self.hanging = True
        self.closed_by_client = 0
        self._relayed: list[socket.socket] = []
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    def _start(self, target: Callable[..., None], *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        with self._lock:
            self._threads.append(thread)
        thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}/events"

    def held_open(self) -> int:
        with self._lock:
            return len(self._held)

    def recover(self) -> None:
        with self._lock:
            self.hanging = False
            held, self._held = self._held, []
        for conn in held:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    def close(self) -> None:
        """Stop accepting, close every connection, and wait for the front's threads. Closing
        the listener alone would not wake the thread blocked in ``accept()``: a shutdown does."""
        self.recover()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        with self._lock:
            relayed, self._relayed = self._relayed, []
            threads = list(self._threads)
        for conn in relayed:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()
        for thread in threads:
            thread.join(10)

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                hanging = self.hanging
                if hanging:
                    self._held.append(conn)
            if hanging:
                self._start(self._hold, conn)
            else:
                upstream = socket.create_connection(self._target)
                with self._lock:
                    self._relayed += [conn, upstream]
                for src, dst in ((conn, upstream), (upstream, conn)):
                    self._start(_pump, src, dst)

    def _hold(self, conn: socket.socket) -> None:
        """Read and ignore the request; count a client that gives up (closes first)."""
        with contextlib.suppress(OSError):
            while conn.recv(65536):
                pass
        with self._lock:
            if conn in self._held:
                self._held.remove(conn)
                self.closed_by_client += 1


def _pump(src: socket.socket, dst: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := src.recv(65536):
            dst.sendall(data)
    for s in (src, dst):
        with contextlib.suppress(OSError):
            s.shutdown(socket.SHUT_RDWR)


def _webhook(dest_id: str, url: str, timeout_s: float) -> dict[str, object]:
    return {
        "id": dest_id,
        "type": "webhook",
        "url": url,
        "secret": SECRET,
        "timeout_s": timeout_s,
        "batch": {"max_events": 50, "max_age_s": 0.3},
    }


@contextmanager
def _running(*loops: Callable[[threading.Event], None]) -> Iterator[None]:
    stop = threading.Event()
    threads = [threading.Thread(target=loop, args=(stop,), daemon=True) for loop in loops]
    for t in threads:
        t.start()
    try:
        yield
    finally:
        stop.set()
        for t in threads:
            t.join(60)


def _wait(done: Callable[[], bool], timeout: float, what: str) -> None:
    finished = threading.Event()
    deadline = threading.Timer(timeout, finished.set)
    deadline.start()
    try:
        while not done():
            assert not finished.wait(0.2), f"{what} not reached in {timeout:.0f} s"
    finally:
        deadline.cancel()


@pytest.mark.kafka
def test_a_hanging_receiver_holds_up_no_other_destination(
    tmp_path: Path, kafka_broker: KafkaBroker
) -> None:
    log = KafkaLog(kafka_broker.bootstrap)
    with WebhookReceiver(SECRET.encode()) as a, WebhookReceiver(SECRET.encode()) as b:
        front = HangingFront(a.port)
        publish_settings(
            log,
            [
                AccountSettings.model_validate(
                    {
                        "account_id": "acct-a",
                        "destinations": [_webhook("iso-a", front.url, timeout_s=120.0)],
                    }
                ),
                AccountSettings.model_validate(
                    {
                        "account_id": "acct-b",
                        "destinations": [_webhook("iso-b", b.url, timeout_s=10.0)],
                    }
                ),
            ],
        )
        events = list(
            Simulator(SimulatorConfig(accounts=["acct-a", "acct-b"], seed=21)).events(EVENTS)
        )
        with ActivityProducer(log) as producer:
            for e in events:
                producer.send(e)
        want_a = [str(e["event_id"]) for e in events if e["account_id"] == "acct-a"]
        want_b = {str(e["event_id"]) for e in events if e["account_id"] == "acct-b"}
        assert want_a
        assert want_b

        router = Router(log)
        options = WorkerOptions(
            poll_timeout=0.05,
            retry_policy=RetryPolicy(attempts=2, base=0.1, max_wait=0.3),
            pause_base=0.5,
            pause_cap=2.0,
        )
        worker = SinkWorker(log, options=options)
        try:
            with _running(router.run, worker.run):
                _wait(lambda: b.unique_event_ids() == want_b, 180, "B receiving everything")
                # B got everything while A's first request was still hanging, unanswered.
                assert front.held_open() >= 1
                assert front.closed_by_client == 0
                assert a.requests == 0
                front.recover()
                _wait(lambda: len(a.unique_event_ids()) >= len(want_a), 180, "A recovering")
            health = worker.health
        finally:
            worker.close()
            router.close()
            log.close()
            front.close()

    received = [i for d in a.deliveries if not d.duplicate for i in d.event_ids]
    assert received == want_a  # every event, in order, once
    assert a.bad_signatures == 0
    assert b.unique_event_ids() == want_b
    assert health["iso-a"].state.value == "active"
    assert health["iso-a"].last_cause in {"transport", "unreachable", "timeout"}
    assert health["iso-b"].consecutive_failures == 0
