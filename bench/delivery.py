"""Delivery engine figures, printed in one run (``python -m bench.delivery``).

1. **throughput**: 100 webhook destinations, each with a backlog, behind a receiver that takes
   50 ms per request (``bench.slow_receiver``, its own process); events/s of the worker with its
   default delivery threads beside one delivery thread (the old sequential behaviour: one write
   at a time for the whole worker).
2. **latency**: destination B gets a steady stream (200 events/s) while destination A has a
   backlog; B's per-event delivery latency (from the moment the event was in B's topic to the
   receiver's answer for the request that carried it), p50/p99, with A answering normally, with
   A hanging (accepts, never answers; A's timeout 5 s), and with A hanging and one delivery
   thread.
3. **rss**: peak RSS of a worker process with 1,000 local-directory destinations and a
   backlog of 500 events each (500,000 events), from start to everything delivered.
4. **cpu**: process CPU seconds per 1,000 events delivered to one fast local-directory
   destination (20,000 events, best of three runs).
5. **threads**: RSS growth of a process from 32 and from 1,000 threads blocked as a delivery
   thread waits on a receiver (the cost of one thread per destination).

Everything runs on the embedded log in a temporary directory (records are written straight into
the destination topics: the router is not what is measured). Options the worker does not have
(``delivery_threads`` on an older engine) are left out, so the same script measures both.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from auditstream.config.stream import AccountSettings
from auditstream.pipeline import topics
from auditstream.pipeline.embedded_log import EmbeddedLog
from auditstream.pipeline.log import OutgoingRecord
from auditstream.pipeline.settings_writer import publish_settings
from auditstream.schemas import codec
from auditstream.sinks.worker import SinkWorker, WorkerOptions
from bench import memory
from bench.report import percentile, progress
from bench.workload import simulator

SECRET = "bench-delivery-secret"
RECEIVER_DELAY_S = 0.05


# -- workload ------------------------------------------------------------------------------------


def encoded_events(n: int = 1000) -> list[bytes]:
    """``n`` realistic encoded events (the simulator's mix), reused round-robin as payloads."""
    return [codec.encode(e) for e in simulator(["bench-acct"]).events(n)]


def fill(log: EmbeddedLog, backlog: dict[str, int], payloads: Sequence[bytes]) -> None:
    """Write ``backlog[destination]`` records into each destination's topic."""
    producer = log.producer()
    i = 0
    for dest_id, n in backlog.items():
        topic = topics.destination_topic(dest_id)
        log.create_topic(topic)
        for _ in range(n):
            producer.produce(OutgoingRecord(topic, payloads[i % len(payloads)], key=b"acct"))
            i += 1
    producer.close()


def webhook(dest_id: str, url: str, **extra: Any) -> dict[str, Any]:
    return {"id": dest_id, "type": "webhook", "url": url, "secret": SECRET, **extra}


def publish(log: EmbeddedLog, destinations: Sequence[dict[str, Any]], per_account: int) -> None:
    accounts = [
        AccountSettings.model_validate(
            {
                "account_id": f"acct-{i // per_account:04d}",
                "destinations": list(destinations[i : i + per_account]),
            }
        )
        for i in range(0, len(destinations), per_account)
    ]
    publish_settings(log, accounts)


def make_worker(log: EmbeddedLog, local_root: Path, **options: Any) -> SinkWorker:
    """A worker with the ``options`` its engine knows (others are left out)."""
    known = {f.name for f in dataclasses.fields(WorkerOptions)}
    kept = {k: v for k, v in options.items() if k in known}
    return SinkWorker(log, local_root=local_root, options=WorkerOptions(**kept))


def delivered(worker: SinkWorker) -> int:
    return sum(h.delivered_events for h in worker.health.values())


def _delivered_all(worker: SinkWorker, n: int) -> Callable[[], bool]:
    return lambda: delivered(worker) >= n


def run_until(
    worker: SinkWorker, done: Callable[[], bool], total_read: int, timeout_s: float
) -> None:
    """Step ``worker`` until ``done()``; once ``total_read`` records are read, drain."""
    deadline = time.monotonic() + timeout_s
    read = 0
    while not done():
        read += worker.step()
        if read >= total_read:
            worker.drain()
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"not done after {timeout_s:.0f} s ({delivered(worker):,} delivered)"
            )


# -- the slow receiver ---------------------------------------------------------------------------


class Receiver:
    """``bench.slow_receiver`` in its own process."""

    def __init__(self, workdir: Path, delay_s: float = RECEIVER_DELAY_S) -> None:
        self.answers = workdir / f"answers-{time.monotonic_ns()}.txt"
        command = [sys.executable, "-m", "bench.slow_receiver", "--delay", str(delay_s)]
        self._process = subprocess.Popen(
            [*command, "--log", str(self.answers)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._process.stdout is not None
        self.base = self._process.stdout.readline().strip()

    def answered(self) -> list[tuple[float, str, str]]:
        """(time, destination, idempotency key) of every answered request."""
        if not self.answers.exists():
            return []
        rows = []
        for line in self.answers.read_text().splitlines():
            when, dest, key = line.split(" ", 2)
            rows.append((float(when), dest, key))
        return rows

    def stop(self) -> None:
        self._process.terminate()
        self._process.wait(10)


def first_offset(key: str) -> int:
    """The batch's first offset from its ``Idempotency-Key`` (``dest:partition:first[-last]``)."""
    return int(key.split(":")[2].split("-")[0])


# -- 1. throughput -------------------------------------------------------------------------------


def throughput(workdir: Path, threads: int | None, destinations: int, per_dest: int) -> float:
    receiver = Receiver(workdir)
    try:
        log = EmbeddedLog(workdir / f"tp-{threads}.sqlite")
        dests = [
            webhook(
                f"tp-{i:03d}",
                f"{receiver.base}/ok/{i}",
                batch={"max_events": 100, "max_age_s": 0.5},
            )
            for i in range(destinations)
        ]
        publish(log, dests, per_account=1)
        fill(log, {d["id"]: per_dest for d in dests}, encoded_events())
        total = destinations * per_dest
        options = {} if threads is None else {"delivery_threads": threads}
        worker = make_worker(log, workdir, **options)
        started = time.perf_counter()
        run_until(worker, lambda: delivered(worker) >= total, total, 600)
        seconds = time.perf_counter() - started
        worker.close()
        log.close()
        return total / seconds
    finally:
        receiver.stop()


# -- 2. latency ----------------------------------------------------------------------------------


def latency(workdir: Path, *, hang: bool, threads: int | None) -> tuple[float, float, int]:
    """B's p50 and p99 delivery latency in seconds, and how many events B received."""
    receiver = Receiver(workdir)
    try:
        log = EmbeddedLog(workdir / f"lat-{hang}-{threads}.sqlite")
        a_url = f"{receiver.base}/{'hang' if hang else 'ok'}/a"
        dests = [
            webhook("lat-a", a_url, timeout_s=5.0, batch={"max_events": 100, "max_age_s": 0.2}),
            webhook("lat-b", f"{receiver.base}/ok/b", batch={"max_events": 100, "max_age_s": 0.2}),
        ]
        publish(log, dests, per_account=1)
        payloads = encoded_events()
        fill(log, {"lat-a": 1000, "lat-b": 0}, payloads)
        produced_at: list[float] = []
        done_producing = threading.Event()

        def produce_b() -> None:  # 10 events every 50 ms for 15 s
            producer = log.producer()
            topic = topics.destination_topic("lat-b")
            for i in range(300):
                for j in range(10):
                    payload = payloads[(i * 10 + j) % len(payloads)]
                    producer.produce(OutgoingRecord(topic, payload, key=b"acct"))
                producer.flush()
                produced_at.extend([time.time()] * 10)
                time.sleep(0.05)
            producer.close()
            done_producing.set()

        options = {} if threads is None else {"delivery_threads": threads}
        worker = make_worker(log, workdir, **options)
        feeder = threading.Thread(target=produce_b, daemon=True)
        feeder.start()
        deadline = time.monotonic() + 300
        while not (done_producing.is_set() and worker.health.get("lat-b") is not None):
            worker.step()
        b = worker.health["lat-b"]
        while b.delivered_events < 3000 and time.monotonic() < deadline:
            worker.step()
            b = worker.health["lat-b"]
        worker.close()
        log.close()
        answers = sorted(
            (first_offset(key), when) for when, dest, key in receiver.answered() if dest == "lat-b"
        )
        latencies: list[float] = []
        for n, (first, when) in enumerate(answers):
            end = answers[n + 1][0] if n + 1 < len(answers) else len(produced_at)
            latencies.extend(
                when - produced_at[o] for o in range(first, min(end, len(produced_at)))
            )
        latencies.sort()
        return percentile(latencies, 50), percentile(latencies, 99), len(latencies)
    finally:
        receiver.stop()


# -- 3. rss --------------------------------------------------------------------------------------


def rss_child(log_path: Path, out: Path, total: int) -> dict[str, float]:
    """Run in a fresh process: deliver the backlog; RSS before the worker and its peak, MiB
    (``VmHWM``: ``ru_maxrss`` would carry the parent's peak across ``exec``)."""
    log = EmbeddedLog(log_path)
    before = (memory.status_kib("VmRSS") or 0) / 1024.0
    memory.reset_peak()
    worker = make_worker(log, out)
    started = time.perf_counter()
    run_until(worker, lambda: delivered(worker) >= total, total, 1200)
    seconds = time.perf_counter() - started
    worker.close()
    peak = (memory.status_kib("VmHWM") or 0) / 1024.0
    return {
        "rss_before_mib": round(before, 1),
        "peak_rss_mib": round(peak, 1),
        "seconds": round(seconds, 1),
    }


def rss(workdir: Path, destinations: int, per_dest: int) -> dict[str, float]:
    log_path = workdir / "rss.sqlite"
    log = EmbeddedLog(log_path)
    dests = [
        {"id": f"rss-{i:04d}", "type": "local", "path": f"rss-{i:04d}"} for i in range(destinations)
    ]
    publish(log, dests, per_account=10)
    fill(log, {d["id"]: per_dest for d in dests}, encoded_events())
    log.close()
    total = destinations * per_dest
    args = ["--rss-child", str(log_path), str(workdir / "rss-out"), str(total)]
    result = subprocess.run(
        [sys.executable, "-m", "bench.delivery", *args],
        capture_output=True,
        text=True,
        check=True,
    )
    figures: dict[str, float] = json.loads(result.stdout.strip().splitlines()[-1])
    return figures


# -- 4. cpu --------------------------------------------------------------------------------------


def cpu_per_1000(workdir: Path, events: int) -> float:
    best = float("inf")
    payloads = encoded_events()
    for run in range(3):
        log = EmbeddedLog(workdir / f"cpu-{run}.sqlite")
        publish(log, [{"id": "cpu", "type": "local", "path": f"cpu-{run}"}], per_account=1)
        fill(log, {"cpu": events}, payloads)
        worker = make_worker(log, workdir)
        started = time.process_time()
        run_until(worker, _delivered_all(worker, events), events, 300)
        best = min(best, (time.process_time() - started) / events * 1000)
        worker.close()
        log.close()
    return best


# -- 5. what a thread costs ----------------------------------------------------------------------


def thread_cost_child(n: int) -> dict[str, float]:
    """Run in a fresh process: RSS growth from ``n`` threads blocked the way a delivery thread
    waits on a receiver (a socket read that never returns)."""
    before = memory.status_kib("VmRSS") or 0
    release = threading.Event()
    threads = [threading.Thread(target=release.wait, daemon=True) for _ in range(n)]
    for t in threads:
        t.start()
    after = memory.status_kib("VmRSS") or 0
    release.set()
    return {"threads": n, "rss_growth_mib": round((after - before) / 1024, 1)}


def thread_cost(n: int) -> dict[str, float]:
    result = subprocess.run(
        [sys.executable, "-m", "bench.delivery", "--thread-cost-child", str(n)],
        capture_output=True,
        text=True,
        check=True,
    )
    figures: dict[str, float] = json.loads(result.stdout.strip().splitlines()[-1])
    return figures


# -- main ----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.delivery", description=__doc__)
    parser.add_argument("--only", default="throughput,latency,rss,cpu,threads")
    parser.add_argument("--destinations", type=int, default=100)
    parser.add_argument("--events-per-destination", type=int, default=1000)
    parser.add_argument("--threads", default="default,1", help="delivery threads to compare")
    parser.add_argument("--rss-child", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--thread-cost-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.thread_cost_child:
        print(json.dumps(thread_cost_child(args.thread_cost_child)))
        return 0
    if args.rss_child:
        log_path, out, total = args.rss_child
        print(json.dumps(rss_child(Path(log_path), Path(out), int(total))))
        return 0
    only = set(args.only.split(","))
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-delivery-") as tmp:
        workdir = Path(tmp)
        if "throughput" in only:
            for spec in args.threads.split(","):
                threads = None if spec == "default" else int(spec)
                progress(f"throughput, delivery threads: {spec}")
                rate = throughput(workdir, threads, args.destinations, args.events_per_destination)
                figures[f"throughput_events_per_s[threads={spec}]"] = round(rate, 1)
        if "latency" in only:
            for hang, threads in ((False, None), (True, None), (True, 1)):
                progress(f"latency, A hanging: {hang}, threads: {threads or 'default'}")
                p50, p99, n = latency(workdir, hang=hang, threads=threads)
                name = f"b_latency[a_hangs={hang},threads={threads or 'default'}]"
                figures[name] = {"p50_s": round(p50, 3), "p99_s": round(p99, 3), "events": n}
        if "rss" in only:
            progress("rss: 1,000 destinations x 500 events")
            figures["rss_1000_destinations"] = rss(workdir, 1000, 500)
        if "threads" in only:
            for n in (32, 1000):
                progress(f"what {n} blocked threads cost")
                figures[f"thread_cost[{n}]"] = thread_cost(n)
        if "cpu" in only:
            progress("cpu: one local destination, 20,000 events")
            figures["cpu_s_per_1000_events"] = round(cpu_per_1000(workdir, 20_000), 4)
    for name, value in figures.items():
        print(f"{name:55} {value}")
    print(json.dumps({"pid": os.getpid(), **figures}), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
