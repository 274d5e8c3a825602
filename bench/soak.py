"""The soak: ``python -m bench.soak --minutes 30 --rate 2000 --fault-every 120``.

The real router and sink worker processes on a three-broker KRaft cluster (the fault suite's
:class:`devservices.faults.Stack` and :class:`~devservices.faults.Production`), a steady stream
of simulated events, and a fault every ``--fault-every`` seconds, in turn: kill -9 of the
router, kill -9 of a sink worker, a broker killed -9 and restarted, the Azure Blob emulator
stopped and started, a webhook answering 503 for a while. Every 5 s it samples the resident set
size of each router and sink worker process (``/proc/<pid>/status``) and the consumer lag of
each group (end offsets minus committed offsets, summed over partitions).

Writes ``soak.csv`` (one row per reading: ``t_s,kind,name,value``; kinds ``rss_mib``, ``lag``,
``fault``) and ``soak.png`` (RSS and lag over time, a line at each fault), then checks, as the
fault scenarios do, that no event was lost or duplicated, and prints whether memory stayed flat
(median of the last 10 minutes against the first 10, a third of the run each when shorter) and
whether the lag came back down after each fault. Exit status 1 if an event was lost or
duplicated, memory grew, or the lag did not come back.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from devservices import faults

SAMPLE_S = 5.0
"""Seconds between two readings of memory and lag."""
FAULTS = ("kill9-router", "kill9-worker", "broker", "store", "webhook503")
"""The faults, in the order they come round."""
FLAT_TOLERANCE = 0.2
"""Memory is flat when the last window's median is at most this much above the first's."""
WINDOW_S = 600.0
"""The first and last windows compared for flatness (shorter runs: a third of the run)."""
BROKER_DOWN_S = 5.0
"""How long a killed broker stays down before it is started again."""

# -- the pure parts --------------------------------------------------------------------------


def rss_mib(status: str) -> float | None:
    """The ``VmRSS`` of a ``/proc/<pid>/status`` text in MiB, None without one (a process
    that is ending, or a kernel thread)."""
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            parts = line.split()
            if len(parts) >= 2 and parts[1].isdigit():
                return int(parts[1]) / 1024.0
    return None


def lag(end: Mapping[Any, int], committed: Mapping[Any, int]) -> int:
    """Records not yet committed, summed over the partitions of ``end``: a partition without
    a committed offset counts from 0, and a committed offset past the end (read while the end
    was being fetched) counts 0."""
    return sum(max(0, last - committed.get(tp, 0)) for tp, last in end.items())


@dataclass(frozen=True)
class MemoryVerdict:
    first_mib: float
    last_mib: float
    window_s: float

    @property
    def growth(self) -> float:
        """Relative growth of the last window's median over the first's."""
        return (self.last_mib - self.first_mib) / self.first_mib if self.first_mib else 0.0

    @property
    def flat(self) -> bool:
        return self.growth <= FLAT_TOLERANCE


def memory_verdict(
    samples: Sequence[tuple[float, float]], window_s: float = WINDOW_S
) -> MemoryVerdict | None:
    """Compare the median of ``(t_s, mib)`` samples in the first ``window_s`` with the last
    ``window_s`` (a third of the span each when the run is shorter than three windows).
    None with fewer than two samples."""
    if len(samples) < 2:
        return None
    start, end = samples[0][0], samples[-1][0]
    window = min(window_s, (end - start) / 3) or end - start
    first = [m for t, m in samples if t <= start + window]
    last = [m for t, m in samples if t >= end - window]
    return MemoryVerdict(statistics.median(first), statistics.median(last), window)


@dataclass(frozen=True)
class Recovery:
    fault: str
    at_s: float
    peak: int
    """The highest lag read between this fault and the next."""
    back_after_s: float | None
    """Seconds from the fault until the lag was at or below the threshold again, after its
    peak; None if it was not, before the next fault (or the end)."""


def recoveries(
    lags: Sequence[tuple[float, int]],
    faults_at: Sequence[tuple[float, str]],
    threshold: int,
) -> list[Recovery]:
    """For each ``(t_s, label)`` fault: the lag's peak among the ``(t_s, lag)`` samples up to
    the next fault, and how long after the fault the lag came back to ``threshold`` or less
    once past that peak."""
    out = []
    for i, (at, label) in enumerate(faults_at):
        until = faults_at[i + 1][0] if i + 1 < len(faults_at) else float("inf")
        window = [(t, v) for t, v in lags if at <= t < until]
        if not window:
            out.append(Recovery(label, at, 0, None))
            continue
        peak_i = max(range(len(window)), key=lambda j: window[j][1])
        peak = window[peak_i][1]
        if peak <= threshold:
            peak_i = 0  # never above: back at the first reading after the fault
        back = next((t for t, v in window[peak_i:] if v <= threshold), None)
        out.append(Recovery(label, at, peak, None if back is None else back - at))
    return out


# -- readings -------------------------------------------------------------------------------


def process_rss(pid: int) -> float | None:
    try:
        return rss_mib(Path(f"/proc/{pid}/status").read_text())
    except OSError:
        return None


@dataclass
class Readings:
    """What the soak read, in the order it read it; written out as ``soak.csv``."""

    rows: list[tuple[float, str, str, float | None]] = field(default_factory=list)
    faults: list[tuple[float, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, t: float, kind: str, name: str, value: float | None) -> None:
        with self.lock:
            self.rows.append((t, kind, name, value))

    def fault(self, t: float, label: str) -> None:
        with self.lock:
            self.faults.append((t, label))
            self.rows.append((t, "fault", label, None))

    def series(self, kind: str, name: str | None = None) -> list[tuple[float, float]]:
        """``(t, value)`` of ``kind``, summed over names per reading time when ``name`` is
        None (the RSS of every process of a role)."""
        sums: dict[float, float] = {}
        for t, k, n, v in self.rows:
            if k == kind and v is not None and (name is None or n.startswith(name)):
                sums[t] = sums.get(t, 0.0) + v
        return sorted(sums.items())

    def write_csv(self, path: Path) -> None:
        with path.open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["t_s", "kind", "name", "value"])
            for t, kind, name, value in self.rows:
                w.writerow([f"{t:.1f}", kind, name, "" if value is None else f"{value:.1f}"])


def plot(readings: Readings, path: Path) -> None:
    """RSS per role and lag per group over time, a vertical line at each fault."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(10, 6))
    for role in ("router", "worker"):
        points = readings.series("rss_mib", role)
        if points:
            top.plot([t for t, _ in points], [v for _, v in points], label=f"{role} RSS")
    top.set_ylabel("RSS (MiB, all processes of a role)")
    names = sorted({n for _t, k, n, _v in readings.rows if k == "lag"})
    for name in names:
        points = readings.series("lag", name)
        bottom.plot([t for t, _ in points], [v for _, v in points], label=name)
    bottom.set_ylabel("consumer lag (records)")
    bottom.set_xlabel("seconds")
    for axes in (top, bottom):
        for t, _label in readings.faults:
            axes.axvline(t, color="grey", linestyle=":", linewidth=1)
        axes.legend(loc="upper left", fontsize="small")
    for t, label in readings.faults:
        top.annotate(
            label,
            (t, 1.0),
            xycoords=("data", "axes fraction"),
            rotation=90,
            fontsize="x-small",
            va="top",
        )
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


# -- the run ------------------------------------------------------------------------------


@dataclass
class SoakOptions:
    minutes: float
    rate: float
    fault_every_s: float
    outage_s: float
    seed: int
    workers: int


class Soak:
    """One soak: the stream, the fault thread, the readings."""

    def __init__(self, run: faults.Run, raw: list[dict[str, Any]], opts: SoakOptions) -> None:
        self.run = run
        self.raw = raw
        self.opts = opts
        self.readings = Readings()
        self.t0 = time.monotonic()
        self.lock = threading.Lock()
        """Held around every change to the stack's processes (the fault thread and the
        main loop's replacement of a process that exited)."""
        self.stop = threading.Event()
        self.done: list[str] = []
        """What each fault did, for the report."""
        self._last_sample = -SAMPLE_S
        from auditstream.pipeline import topics

        self.groups = {
            topics.ROUTER_GROUP: [topics.ACTIVITY],
            topics.SINK_GROUP: [
                topics.destination_topic(d["id"]) for a in raw for d in a["destinations"]
            ],
        }

    def now(self) -> float:
        return time.monotonic() - self.t0

    def sample(self, force: bool = False) -> None:
        t = self.now()
        if not force and t - self._last_sample < SAMPLE_S:
            return
        self._last_sample = t
        with self.lock:
            processes = [("router", p) for p in self.run.stack.routers]
            processes += [("worker", p) for p in self.run.stack.workers]
        for _role, p in processes:
            self.readings.add(t, "rss_mib", p.log_path.stem, process_rss(p.pid))
        for group, group_topics in self.groups.items():
            total: int | None = 0
            for topic in group_topics:
                try:
                    end = self.run.log.end_offsets(topic)
                    committed = self.run.log.committed_offsets(group, topic)
                except Exception:  # a broker down: no reading this time
                    total = None
                    break
                assert total is not None
                total += lag(end, committed)
            self.readings.add(t, "lag", group, None if total is None else float(total))

    def tick(self) -> None:
        with self.lock:
            self.run.stack.check()
        self.sample()

    def inject(self, label: str) -> str:
        run, outage = self.run, self.opts.outage_s
        if label == "kill9-router":
            with self.lock:
                victim = run.stack.routers[0]
                slot = run.stack.slot(victim)
                run.stack.kill9(victim)
                run.stack.start_router(slot)
            return f"kill -9 router PID {victim.pid}"
        if label == "kill9-worker":
            with self.lock:
                victim = run.stack.workers[0]
                run.stack.kill9(victim)
                run.stack.start_worker()
            return f"kill -9 sink worker PID {victim.pid}"
        if label == "broker":
            controller = run.cluster.controller()
            node = run.rng.choice([n for n in run.cluster.nodes if n != controller])
            run.cluster.kill9(node)
            self.stop.wait(BROKER_DOWN_S)
            run.cluster.restart(node)
            return f"kill -9 broker {node}, restarted"
        if label == "store":
            assert run.store is not None
            run.store.stop()
            self.stop.wait(outage)
            run.store.restart()
            return f"Azurite stopped for {outage:.0f} s"
        from devservices.faults import HOOK_B

        run.receivers[HOOK_B].set_status(503)
        self.stop.wait(outage)
        run.receivers[HOOK_B].set_status(None)
        return f"{HOOK_B} answered 503 for {outage:.0f} s"

    def faults_loop(self) -> None:
        """The next fault every ``fault_every_s`` from the start (a fault that takes a while,
        a broker restart, does not push the later ones back); until :attr:`stop` is set."""
        n = 0
        while not self.stop.wait(max(0.0, (n + 1) * self.opts.fault_every_s - self.now())):
            label = FAULTS[n % len(FAULTS)]
            n += 1
            self.readings.fault(self.now(), label)
            try:
                done = self.inject(label)
            except Exception as exc:  # noted; the next fault still comes
                done = f"{label} failed: {exc!r}"
                self.run.problems.append(done)
            say(f"fault: {done}")
            self.done.append(f"at {self.readings.faults[-1][0]:.0f} s: {done}")


_T0 = time.monotonic()


def say(message: str) -> None:
    print(f"[{time.monotonic() - _T0:7.1f}s] {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def _stream(workdir: Path, opts: SoakOptions) -> Iterator[tuple[faults.Run, list[dict[str, Any]]]]:
    """The cluster, the receivers, Azurite, the router and sink workers; all stopped after."""
    from auditstream.pipeline.kafka_log import KafkaLog
    from devservices import faults
    from devservices.kafka_cluster import KafkaCluster
    from devservices.object_stores import AzureStore

    options = replace(
        faults.Options(), events=0, seed=opts.seed, workers=opts.workers, outage_s=opts.outage_s
    )
    with contextlib.ExitStack() as resources:
        cluster = resources.enter_context(KafkaCluster.start(workdir / "kafka"))
        receivers = resources.enter_context(faults.webhook_receivers())
        store = AzureStore(workdir / "azurite")
        resources.callback(store.stop)
        log = KafkaLog(cluster.bootstrap)
        resources.callback(log.close)
        stack = faults.Stack(workdir, cluster.bootstrap, workdir / "out")
        resources.callback(stack.stop_all)
        rng = random.Random(f"soak-{opts.seed}")
        run = faults.Run("soak", options, workdir, cluster, stack, receivers, rng, log, store)
        raw = faults.start_stream(run)
        stack.wait_ready(timeout=180.0)
        yield run, raw


@dataclass
class Outcome:
    result: faults.Result
    memory: dict[str, MemoryVerdict | None]
    recovered: dict[str, list[Recovery]]
    final_lag: dict[str, float]


def soak(workdir: Path, out_dir: Path, opts: SoakOptions) -> Outcome:
    from devservices import faults

    events = int(opts.minutes * 60 * opts.rate)
    with _stream(workdir, opts) as (run, raw):
        s = Soak(run, raw, opts)
        accounts = [a["account_id"] for a in raw]
        production = faults.Production(run.log, accounts, events, opts.rate, opts.seed)
        say(f"soak: {events} events at {opts.rate:g}/s, a fault every {opts.fault_every_s:g} s")
        injector = threading.Thread(target=s.faults_loop, name="soak-faults")
        production.start()
        injector.start()
        try:
            while not production.done():
                s.tick()
                time.sleep(0.5)
        finally:
            s.stop.set()
            injector.join()
            production.join()
        if production.error is not None:
            run.problems.append(f"production failed: {production.error!r}")
        say("soak: produced; waiting for every destination")
        expected = faults.expected_per_destination(production.acked, raw)
        counts, drain_s = faults.wait_for_destinations(
            run, raw, expected, run.options.stall_s, tick=s.tick
        )
        s.sample(force=True)
        result = faults.Result("soak", opts.seed, len(production.acked))
        result.per_destination, result.drain_s = counts, drain_s
        result.faults = s.done
        result.problems, result.crashes = run.problems, run.stack.exited
    readings = s.readings
    out_dir.mkdir(parents=True, exist_ok=True)
    readings.write_csv(out_dir / "soak.csv")
    plot(readings, out_dir / "soak.png")
    threshold = int(opts.rate * SAMPLE_S)
    return Outcome(
        result=result,
        memory={r: memory_verdict(readings.series("rss_mib", r)) for r in ("router", "worker")},
        recovered={
            g: recoveries(_ints(readings.series("lag", g)), readings.faults, threshold)
            for g in s.groups
        },
        final_lag={g: (readings.series("lag", g) or [(0.0, -1.0)])[-1][1] for g in s.groups},
    )


def _ints(points: list[tuple[float, float]]) -> list[tuple[float, int]]:
    return [(t, int(v)) for t, v in points]


def report(outcome: Outcome, opts: SoakOptions) -> tuple[list[str], bool]:
    """The lines to print, and whether the soak passed."""
    from devservices import faults

    r = outcome.result
    lines = faults.table([r])
    ok = not (r.lost or r.duplicated or r.extra or r.problems)
    for role, verdict in outcome.memory.items():
        if verdict is None:
            lines.append(f"memory {role}: too few readings")
            ok = False
            continue
        lines.append(
            f"memory {role}: median {verdict.first_mib:.0f} MiB in the first "
            f"{verdict.window_s:.0f} s, {verdict.last_mib:.0f} MiB in the last "
            f"({verdict.growth:+.0%}): {'flat' if verdict.flat else 'GREW'}"
        )
        ok = ok and verdict.flat
    threshold = int(opts.rate * SAMPLE_S)
    for group, recs in outcome.recovered.items():
        for rec in recs:
            if rec.peak <= threshold:
                back = "never above"
            elif rec.back_after_s is None:
                back = "NOT back"
            else:
                back = f"back in {rec.back_after_s:.0f} s"
            lines.append(
                f"lag {group} after {rec.fault} at {rec.at_s:.0f} s: peak {rec.peak}, {back} "
                f"(<= {threshold})"
            )
            ok = ok and rec.back_after_s is not None
        lines.append(f"lag {group} at the end: {outcome.final_lag[group]:.0f}")
    return lines, ok


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench.soak",
        description="Soak the real stream under a fault every few minutes; write soak.csv and "
        "soak.png; check no event is lost or duplicated, memory stays flat, lag comes back.",
    )
    p.add_argument("--minutes", type=float, default=30.0, help="production time (default 30)")
    p.add_argument("--rate", type=float, default=2000.0, help="events per second (default 2000)")
    p.add_argument(
        "--fault-every", type=float, default=120.0, help="seconds between faults (default 120)"
    )
    p.add_argument(
        "--outage", type=float, default=20.0, help="seconds a store or webhook is down (20)"
    )
    p.add_argument("--workers", type=int, default=1, help="sink worker processes (default 1)")
    p.add_argument("--seed", type=int, default=20261129)
    p.add_argument("--out", type=Path, default=Path("."), help="where soak.csv and soak.png go")
    p.add_argument("--workdir", type=Path, help="keep the cluster's data and logs here")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    opts = SoakOptions(
        args.minutes, args.rate, args.fault_every, args.outage, args.seed, args.workers
    )
    root = args.workdir or Path(tempfile.mkdtemp(prefix="auditstream-soak-"))
    try:
        outcome = soak(root, args.out, opts)
    finally:
        if args.workdir is None:
            shutil.rmtree(root, ignore_errors=True)
    lines, ok = report(outcome, opts)
    print("\n".join(lines))
    print(f"wrote {args.out / 'soak.csv'} and {args.out / 'soak.png'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
