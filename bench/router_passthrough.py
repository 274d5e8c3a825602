"""The router next to a raw transactional passthrough on the same broker, in the same run.

Run from the repository root::

    .venv/bin/python -m bench.router_passthrough [--events N] [--rounds R] [--partitions P]

Both sides do the same work per batch: consume up to the router's batch size of records from the
activity topic, produce one copy of each to its account's destination topic, send the consumed
offsets to the transaction and commit it. The raw side is plain confluent-kafka with the clients
configured like ``pipeline.kafka_log`` configures the router's, and no settings lookup; the
router is ``Router(log)`` stepped in this process. The settings send every event to exactly one
destination, so both produce N copies. The two alternate over R rounds, each from offset 0.

With ``--partitions 2`` or more, one ``auditstream router`` process is then compared with as
many processes as partitions on the same topic (scaling). See ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import cProfile
import ctypes
import inspect
import io
import logging
import os
import pstats
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer as RawConsumer
from confluent_kafka import Producer as RawProducer
from confluent_kafka import TopicPartition as RawTopicPartition
from confluent_kafka.admin import AdminClient

from auditstream.pipeline import topics
from auditstream.pipeline.kafka_log import KafkaLog
from auditstream.pipeline.log import OutgoingRecord
from auditstream.pipeline.router import Router
from auditstream.pipeline.settings_writer import publish_settings
from auditstream.producers.sdk import to_record
from bench.memory import peak_rss_mib, status_kib
from bench.report import Column, latency_ms, num, per_second, progress, run_meta, table
from bench.throughput import (
    ACCOUNTS,
    POLL_TIMEOUT_S,
    STAGE_TIMEOUT_S,
    bench_settings,
    generate_events,
    timed_transactions,
    warm_up_kafka,
)
from bench.timing import Deadline, SteadyClock, settle

BATCH_SIZE: int = inspect.signature(Router).parameters["batch_size"].default
"""The router's own batch size (records per poll, one transaction each); the raw loop uses it."""
TXN_TIMEOUT_S = 30.0
"""The transactional producer's bound on each call, as in ``pipeline.kafka_log``."""
GROUP_POLL_S = 0.02
"""How often the scaling stage reads the router group's committed offsets."""
PROCESS_START_TIMEOUT_S = 120.0
PROCESS_STOP_TIMEOUT_S = 30.0


# ------------------------------------------------------------------------------------------------
# Pure helpers
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Spread:
    """Median, lowest and highest of one figure over the rounds; ``spread_pct`` is
    (max - min) / median in percent."""

    median: float
    low: float
    high: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        if not values:
            raise ValueError("a spread needs at least one value")
        return cls(statistics.median(values), min(values), max(values))

    @property
    def spread_pct(self) -> float:
        return (self.high - self.low) / self.median * 100.0 if self.median else float("nan")


def round_ratios(ours: Sequence[float], raw: Sequence[float]) -> list[float]:
    """Ours / raw of each round (the two measured back to back, so under the same load)."""
    if len(ours) != len(raw):
        raise ValueError(f"{len(ours)} rounds of ours against {len(raw)} of raw")
    return [o / r if r > 0 else float("nan") for o, r in zip(ours, raw, strict=True)]


def spread_partition(index: int, partitions: int) -> int:
    """The partition record ``index`` of the fill goes to: round-robin, so every partition holds
    the same number of records whatever the accounts' keys hash to."""
    if partitions < 1:
        raise ValueError("partitions must be at least 1")
    return index % partitions


def next_offsets(positions: Sequence[tuple[str, int, int]]) -> dict[tuple[str, int], int]:
    """The offsets to commit after a batch of (topic, partition, offset): each partition's
    highest offset plus one."""
    out: dict[tuple[str, int], int] = {}
    for topic, partition, offset in positions:
        key = (topic, partition)
        out[key] = max(out.get(key, 0), offset + 1)
    return out


def routed_to_end(committed: Mapping[int, int], targets: Mapping[int, int]) -> bool:
    """Whether the committed offset of every partition in ``targets`` has reached its target."""
    return all(committed.get(p, 0) >= t for p, t in targets.items())


def balanced(assignments: Sequence[Sequence[int]], members: int, partitions: int) -> bool:
    """Whether a group of ``members`` has each member owning a share of the ``partitions``:
    every member at least one, every partition exactly once."""
    owned = sorted(p for a in assignments for p in a)
    return (
        len(assignments) == members
        and all(len(a) > 0 for a in assignments)
        and owned == list(range(partitions))
    )


# ------------------------------------------------------------------------------------------------
# Measurements
# ------------------------------------------------------------------------------------------------


@dataclass
class Round:
    """One timed pass over the N records."""

    events: int
    seconds: float
    txn_seconds: list[float]
    step_seconds: list[float]
    rss_mib: float

    @property
    def events_per_s(self) -> float:
        return per_second(self.events, self.seconds)


@dataclass
class Results:
    raw: list[Round] = field(default_factory=list)
    router: list[Round] = field(default_factory=list)
    one_process: list[float] = field(default_factory=list)
    many_processes: list[float] = field(default_factory=list)
    profile: str = ""


def _rss_mib() -> float:
    kib = status_kib("VmRSS")
    return kib / 1024.0 if kib is not None else float("nan")


def _consumer_conf(bootstrap: str, group: str) -> dict[str, Any]:
    # The same configuration as pipeline.kafka_log.KafkaLog.consumer().
    return {
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "isolation.level": "read_committed",
        "topic.metadata.refresh.interval.ms": 2000,
        "partition.assignment.strategy": "cooperative-sticky",
        "session.timeout.ms": 10000,
        "heartbeat.interval.ms": 2000,
    }


def _transactional_conf(log: KafkaLog, transactional_id: str) -> dict[str, Any]:
    # The same configuration as pipeline.kafka_log.KafkaLog.transactional_producer().
    return {
        "bootstrap.servers": log.bootstrap,
        "transactional.id": transactional_id,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "compression.type": "lz4",
        "message.max.bytes": log.max_record_bytes,
    }


def destination_topics() -> dict[bytes, str]:
    """Each account's destination topic by record key, as ``bench_settings`` routes them."""
    return {a.encode(): topics.destination_topic(f"{a}-local") for a in ACCOUNTS}


def fill(log: KafkaLog, records: Sequence[OutgoingRecord], partitions: int) -> None:
    """Write ``records`` to the activity topic in one transaction: read_committed readers see
    all of them at once, when the commit returns."""
    producer = RawProducer(_transactional_conf(log, f"bench-fill-{uuid.uuid4()}"))
    producer.init_transactions(TXN_TIMEOUT_S)
    producer.begin_transaction()
    for i, r in enumerate(records):
        while True:
            try:
                producer.produce(
                    topics.ACTIVITY,
                    value=r.value,
                    key=r.key,
                    headers=list(r.headers),
                    partition=spread_partition(i, partitions),
                )
                break
            except BufferError:
                producer.poll(0.1)
    producer.commit_transaction(STAGE_TIMEOUT_S)


def raw_round(log: KafkaLog, n: int) -> Round:
    """Plain confluent-kafka: consume a batch, produce each record's bytes to its destination
    topic, send the offsets, commit; one transaction per batch, from offset 0 (a group of its
    own) until N records are committed."""
    dest = destination_topics()
    consumer = RawConsumer(_consumer_conf(log.bootstrap, f"bench-raw-passthrough-{uuid.uuid4()}"))
    producer: RawProducer | None = None
    try:
        consumer.subscribe([topics.ACTIVITY])
        producer = RawProducer(_transactional_conf(log, f"bench-raw-{uuid.uuid4()}"))
        producer.init_transactions(TXN_TIMEOUT_S)
        clock = SteadyClock()
        deadline = Deadline("raw passthrough", STAGE_TIMEOUT_S)
        txn_seconds: list[float] = []
        step_seconds: list[float] = []
        read = 0
        while read < n:
            started = time.perf_counter()
            msgs = consumer.consume(num_messages=BATCH_SIZE, timeout=POLL_TIMEOUT_S)
            if msgs:
                txn_started = time.perf_counter()
                producer.begin_transaction()
                positions = []
                for m in msgs:
                    if m.error() is not None:
                        raise RuntimeError(f"raw passthrough: {m.error()}")
                    producer.produce(
                        dest[m.key() or b""], value=m.value(), key=m.key(), headers=m.headers()
                    )
                    positions.append(
                        (str(m.topic()), int(m.partition() or 0), int(m.offset() or 0))
                    )
                producer.send_offsets_to_transaction(
                    [RawTopicPartition(t, p, o) for (t, p), o in next_offsets(positions).items()],
                    consumer.consumer_group_metadata(),
                    TXN_TIMEOUT_S,
                )
                producer.commit_transaction(TXN_TIMEOUT_S)
                finished = time.perf_counter()
                read += len(msgs)
                if clock.batch(len(msgs), finished):
                    txn_seconds.append(finished - txn_started)
                    step_seconds.append(finished - started)
            deadline.check(read, n)
        clock.stop()
    finally:
        consumer.close()
        if producer is not None:
            producer.flush(TXN_TIMEOUT_S)
        del producer
        settle()
    if read != n:
        raise RuntimeError(f"raw passthrough read {read:,}, expected {n:,}")
    return Round(n - clock.first_batch, clock.seconds, txn_seconds, step_seconds, _rss_mib())


def router_round(log: KafkaLog, n: int, profiler: cProfile.Profile | None = None) -> Round:
    """``Router(log)`` stepped until it has consumed N records; the group's offsets are deleted
    afterwards so the next round starts from offset 0 too. With ``profiler``, it runs during
    each timed ``step`` and only then."""
    step_seconds: list[float] = []
    clock = SteadyClock()
    deadline = Deadline("router", STAGE_TIMEOUT_S)
    counted_from = 0
    with timed_transactions(log) as txn_seconds:
        router = Router(log, batch_size=BATCH_SIZE)
        try:
            while router.consumed < n:
                started = time.perf_counter()
                # Profiled from the second batch on, as timed: the first one joins the group.
                active = profiler if clock.start is not None else None
                if active is not None:
                    active.enable()
                got = router.step()
                if active is not None:
                    active.disable()
                finished = time.perf_counter()
                if clock.batch(got, finished):
                    step_seconds.append(finished - started)
                elif got:
                    counted_from = len(txn_seconds)
                deadline.check(router.consumed, n)
            clock.stop()
        finally:
            router.close()
    consumed = router.consumed
    del router
    settle()
    if consumed != n:
        raise RuntimeError(f"router consumed {consumed:,}, expected {n:,}")
    rss = _rss_mib()
    forget_group(log.bootstrap, topics.ROUTER_GROUP)
    return Round(
        n - clock.first_batch, clock.seconds, txn_seconds[counted_from:], step_seconds, rss
    )


def profile_router(log: KafkaLog, n: int, top: int = 10) -> str:
    """One more router round under cProfile (inside the timed ``Router.step`` calls only): the
    ``top`` functions by cumulative time, then by own time."""
    profiler = cProfile.Profile()
    router_round(log, n, profiler)
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats(pstats.SortKey.CUMULATIVE).print_stats(top)
    stats.sort_stats(pstats.SortKey.TIME).print_stats(top)
    return out.getvalue()


def forget_group(bootstrap: str, group: str) -> None:
    """Delete ``group`` (and its committed offsets). The broker refuses while the closed
    members' leave is being processed, so it is retried for a while."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    deadline = time.monotonic() + 60.0
    while True:
        try:
            admin.delete_consumer_groups([group], request_timeout=10.0)[group].result()
            return
        except Exception as exc:  # the admin API raises KafkaException with the broker's error
            if "GROUP_ID_NOT_FOUND" in str(exc):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"cannot delete consumer group {group}: {exc}") from exc
            time.sleep(0.2)


# ------------------------------------------------------------------------------------------------
# Scaling: router processes on a topic of several partitions
# ------------------------------------------------------------------------------------------------


def skip_to_end(log: KafkaLog) -> None:
    """Commit the end of every activity partition for the router group (empty now), so the
    router processes start with nothing to route."""
    consumer = RawConsumer({"bootstrap.servers": log.bootstrap, "group.id": topics.ROUTER_GROUP})
    try:
        ends = log.end_offsets(topics.ACTIVITY)
        consumer.commit(
            offsets=[RawTopicPartition(tp.topic, tp.partition, end) for tp, end in ends.items()],
            asynchronous=False,
        )
    finally:
        consumer.close()


def _router_env() -> dict[str, str]:
    # No metrics server: the processes must not compete for a port or do extra work.
    return {k: v for k, v in os.environ.items() if not k.startswith("AUDITSTREAM_")}


_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: the child gets SIGKILL when this process ends, even by kill -9; a router left
    running would route the next run's records."""
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


LOG_TAIL_LINES = 20


@dataclass
class RouterProcess:
    """An ``auditstream router`` child and the file its output goes to."""

    proc: subprocess.Popen[bytes]
    log: Path

    def ended(self) -> str | None:
        """Why it is no longer running (its status and the end of its output), or None."""
        if self.proc.poll() is None:
            return None
        try:
            tail = self.log.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
        except OSError:
            tail = []
        return f"router process {self.proc.pid} exited with status {self.proc.returncode}:\n" + (
            "\n".join(tail) or "(no output)"
        )


def exited(procs: Sequence[RouterProcess]) -> str | None:
    """Why the first router process that has ended ended; None if all run."""
    return next((why for p in procs if (why := p.ended()) is not None), None)


def start_routers(bootstrap: str, count: int, workdir: Path) -> list[RouterProcess]:
    """``count`` router processes on ``bootstrap``, each ended with this process."""
    exe = Path(sys.executable).parent / "auditstream"
    procs: list[RouterProcess] = []
    for i in range(count):
        log = workdir / f"router-{uuid.uuid4().hex[:8]}.log"
        with log.open("wb") as out:  # the child has its own descriptor
            proc = subprocess.Popen(
                [str(exe), "router", "--bootstrap", bootstrap, "--batch-size", str(BATCH_SIZE)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=_router_env(),
                preexec_fn=_die_with_parent,
            )
        procs.append(RouterProcess(proc, log))
        progress(f"router process {i + 1}/{count} started (pid {proc.pid})")
    return procs


def stop_routers(procs: Sequence[RouterProcess]) -> None:
    """TERM each by its PID, then KILL one that has not ended in time."""
    for p in procs:
        if p.proc.poll() is None:
            p.proc.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.proc.wait(PROCESS_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            p.proc.kill()
            p.proc.wait()


def _assignments(admin: AdminClient, group: str) -> list[list[int]]:
    try:
        desc = admin.describe_consumer_groups([group], request_timeout=5.0)[group].result()
    except Exception:  # not there yet
        return []
    if str(desc.state).rsplit(".", 1)[-1] != "STABLE":
        return []
    return [
        [tp.partition for tp in m.assignment.topic_partitions if tp.topic == topics.ACTIVITY]
        for m in desc.members
    ]


def _committed(log: KafkaLog) -> dict[int, int]:
    return {
        tp.partition: off
        for tp, off in log.committed_offsets(topics.ROUTER_GROUP, topics.ACTIVITY).items()
    }


def processes_round(
    log: KafkaLog, records: Sequence[OutgoingRecord], count: int, partitions: int, workdir: Path
) -> float:
    """Events/s of ``count`` router processes routing N new records: the processes start and
    share the partitions first, then the N records are written in one transaction; the clock
    runs from its commit until the group's committed offsets reach the end of every partition."""
    admin = AdminClient({"bootstrap.servers": log.bootstrap})
    procs = start_routers(log.bootstrap, count, workdir)
    try:
        deadline = time.monotonic() + PROCESS_START_TIMEOUT_S
        while not balanced(_assignments(admin, topics.ROUTER_GROUP), count, partitions):
            if (why := exited(procs)) is not None:
                raise RuntimeError(why)
            if time.monotonic() > deadline:
                raise RuntimeError(f"{count} router(s) did not share {partitions} partitions")
            time.sleep(0.2)
        fill(log, records, partitions)
        started = time.perf_counter()
        # The fill's commit marker is the last offset of each partition: the records end before.
        targets = {tp.partition: end - 1 for tp, end in log.end_offsets(topics.ACTIVITY).items()}
        run_deadline = Deadline(f"{count} router process(es)", STAGE_TIMEOUT_S)
        while not routed_to_end(_committed(log), targets):
            run_deadline.check(sum(_committed(log).values()), sum(targets.values()))
            if (why := exited(procs)) is not None:
                raise RuntimeError(f"{why} before routing every record")
            time.sleep(GROUP_POLL_S)
        elapsed = time.perf_counter() - started
    finally:
        stop_routers(procs)
    rate = per_second(len(records), elapsed)
    progress(
        f"{count} router process(es): {len(records):,} events in {elapsed:.2f}s = {rate:,.0f}/s"
    )
    return rate


# ------------------------------------------------------------------------------------------------
# Output
# ------------------------------------------------------------------------------------------------

RATE_COLUMNS = (
    Column("loop", 16, "<"),
    Column("events/s med", 12),
    Column("min", 8),
    Column("max", 8),
    Column("spread", 7),
    Column("txns", 5),
    Column("txn p50 ms", 10),
    Column("txn p99 ms", 10),
    Column("p99/p50", 7),
    Column("step p50 ms", 11),
    Column("step p99 ms", 11),
    Column("RSS MiB", 8),
)


def rate_cells(name: str, rounds: Sequence[Round]) -> list[str]:
    rates = Spread.of([r.events_per_s for r in rounds])
    txn = latency_ms([s for r in rounds for s in r.txn_seconds])
    step = latency_ms([s for r in rounds for s in r.step_seconds])
    return [
        name,
        f"{rates.median:,.0f}",
        f"{rates.low:,.0f}",
        f"{rates.high:,.0f}",
        f"{rates.spread_pct:.0f} %",
        str(txn["count"]),
        num(txn["p50_ms"], ".1f"),
        num(txn["p99_ms"], ".1f"),
        num(txn["p99_ms"] / txn["p50_ms"], ".2f"),
        num(step["p50_ms"], ".1f"),
        num(step["p99_ms"], ".1f"),
        num(statistics.median(r.rss_mib for r in rounds), ",.0f"),
    ]


def render(meta: Mapping[str, Any], res: Results, partitions: int) -> str:
    raw = [r.events_per_s for r in res.raw]
    ours = [r.events_per_s for r in res.router]
    per_round = round_ratios(ours, raw)
    lines = [
        f"auditstream router vs raw transactional passthrough: N = {meta['events']:,}, "
        f"{meta['rounds']} rounds, {partitions} partition(s), batch {BATCH_SIZE}; "
        f"{meta['cpus']} CPUs; Python {meta['python']}; librdkafka {meta['librdkafka']}",
        "",
        *table(
            RATE_COLUMNS, [rate_cells("raw passthrough", res.raw), rate_cells("router", res.router)]
        ),
        f"router/raw: {statistics.median(ours) / statistics.median(raw):.2f} (medians); "
        f"per round {', '.join(f'{x:.2f}' for x in per_round)}",
    ]
    if res.one_process:
        one = Spread.of(res.one_process)
        many = Spread.of(res.many_processes)
        lines += [
            "",
            f"router processes on {partitions} partitions: 1 process {one.median:,.0f} events/s "
            f"({one.low:,.0f}-{one.high:,.0f}), {partitions} processes {many.median:,.0f} "
            f"events/s ({many.low:,.0f}-{many.high:,.0f}); scaling "
            f"{many.median / one.median:.2f} (medians); per round "
            + ", ".join(f"{x:.2f}" for x in round_ratios(res.many_processes, res.one_process)),
        ]
    lines += [
        "",
        f"peak RSS of this process {peak_rss_mib():,.0f} MiB (holds the N pre-generated events). "
        "Rates exclude each round's first batch (group join); txn = begin..commit "
        "(produce_and_commit for the router), step = poll + route + txn. See bench/README.md.",
    ]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------
# Main
# ------------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.router_passthrough",
        description="The router against a raw transactional consume-produce-commit loop.",
    )
    parser.add_argument("--events", type=int, default=50_000, help="events (default 50000)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each (default 3)")
    parser.add_argument(
        "--partitions", type=int, default=1, help="partitions of the activity topic (default 1)"
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=1,
        help="untimed rounds of each before the timed ones (default 1): the broker's JVM and "
        "the clients warm up",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="after the rounds, profile one more router round (cProfile inside Router.step) "
        "and print the top 10 functions by cumulative time",
    )
    args = parser.parse_args(argv)
    if args.events < 2 * BATCH_SIZE:
        parser.error(f"--events must be at least {2 * BATCH_SIZE} (two router batches)")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.warmup < 0:
        parser.error("--warmup must be 0 or more")
    if not 1 <= args.partitions <= 8:
        parser.error("--partitions must be between 1 and 8 (one router process each)")
    return args


def run(args: argparse.Namespace, records: list[OutgoingRecord], workdir: Path) -> Results:
    from devservices.kafka import KafkaBroker

    res = Results()
    progress("starting the broker")
    broker = KafkaBroker.start(workdir / "kafka")
    try:
        log = KafkaLog(broker.bootstrap)
        try:
            warm_up_kafka(log)
            log.create_topic(topics.ACTIVITY, partitions=args.partitions)
            publish_settings(log, bench_settings())
            fill(log, records, args.partitions)
            for i in range(args.warmup):
                progress(f"warm-up round {i + 1} (not reported)")
                raw_round(log, len(records))
                router_round(log, len(records))
            for i in range(args.rounds):
                for name, measure, out in (
                    ("raw passthrough", raw_round, res.raw),
                    ("router", router_round, res.router),
                ):
                    r = measure(log, len(records))
                    out.append(r)
                    progress(
                        f"round {i + 1}: {name}: {r.events:,} events in {r.seconds:.2f}s = "
                        f"{r.events_per_s:,.0f}/s"
                    )
            if args.profile:
                progress("profiling one more router round")
                res.profile = profile_router(log, len(records))
            if args.partitions > 1:
                # Each round below routes only the records it adds.
                skip_to_end(log)
                for _ in range(args.rounds):
                    for count, out_rates in (
                        (1, res.one_process),
                        (args.partitions, res.many_processes),
                    ):
                        out_rates.append(
                            processes_round(log, records, count, args.partitions, workdir)
                        )
        finally:
            log.close()
            del log
            settle()
    finally:
        progress("stopping the broker")
        broker.stop()
    return res


def main(argv: Sequence[str] | None = None) -> int:
    import confluent_kafka

    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    progress(f"generating {args.events:,} simulator events (not measured)")
    records = [to_record(e) for e in generate_events(args.events)]
    settle(freeze=True)  # as in bench.throughput: the workload is not the measured process's
    meta = {
        **run_meta(".venv/bin/python -m bench.router_passthrough"),
        "events": args.events,
        "rounds": args.rounds,
        "librdkafka": confluent_kafka.libversion()[0],
    }
    with tempfile.TemporaryDirectory(prefix="auditstream-bench-") as tmp:
        res = run(args, records, Path(tmp))
    print(render(meta, res, args.partitions))
    if res.profile:
        print("\nOne router round, timed Router.step calls, top 10 by cumulative and own time:\n")
        print(res.profile)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
