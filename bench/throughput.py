"""Throughput of each stage of the stream, next to a raw baseline, in one run.

Run from the repository root::

    .venv/bin/python -m bench.throughput [--events N] [--backend kafka|embedded|both] [--json FILE]

On Kafka (a real single-node broker started and stopped by this script, 127.0.0.1 only) the
stages run in this order on the same broker:

1. raw produce: a plain confluent-kafka ``Producer`` with our producer configuration
   (``enable.idempotence``, ``acks=all``, ``linger.ms=5``, ``compression.type=lz4``) producing
   the N pre-encoded payloads with the same keys and headers to a separate topic;
2. producer SDK: ``ActivityProducer.send`` of the N pre-generated simulator events (validation,
   Avro encoding, produce) then ``flush``, into the activity topic; then
   ``ActivityProducer.send_many`` of the same events, 1000 a call, into a topic of its own;
3. raw consume: a plain confluent-kafka ``Consumer`` reading the N records of the activity topic
   with ``consume(num_messages=1000)``;
4. router: ``Router(log)`` in-process, stepped until it has consumed the N records;
5. sink worker: ``SinkWorker(log, local_root=tmp)`` stepped until every routed event is delivered
   to the local directory destinations.

On the embedded log (SQLite in a temporary directory) the producer SDK, router and sink stages
run the same way; their baselines are a raw SQLite insert loop of the same payloads (one
transaction per 1000 rows) and a raw SQLite read loop of the activity topic (1000 rows a query).

CPU-only figures (encode, validate, decode of the same events) are measured once, without a log.
See ``bench/README.md`` for what every figure means.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

from auditstream.config.stream import AccountSettings
from auditstream.pipeline import topics
from auditstream.pipeline.embedded_log import EmbeddedLog
from auditstream.pipeline.kafka_log import KafkaLog
from auditstream.pipeline.log import (
    Consumer,
    Headers,
    Log,
    OutgoingRecord,
    TopicPartition,
    TransactionalProducer,
)
from auditstream.pipeline.router import Router
from auditstream.pipeline.settings_writer import publish_settings
from auditstream.producers.sdk import ActivityProducer, to_record
from auditstream.producers.validation import validate_event
from auditstream.schemas import codec
from auditstream.schemas.event import ActivityEvent
from auditstream.sinks.worker import SinkWorker
from bench.memory import peak_rss_mib
from bench.report import (
    MB,
    Column,
    latency_ms,
    notes,
    num,
    per_second,
    progress,
    run_meta,
    table,
    write_json,
)
from bench.timed_sinks import Write, run_until_delivered, timed_factory
from bench.timing import Deadline, SteadyClock, settle
from bench.workload import account_settings, local_destination, simulator

ACCOUNTS = [f"bench-acct-{i}" for i in range(1, 6)]
RAW_TOPIC = "bench.raw-produce"
"""Where the raw produce baseline writes: outside the ``auditstream.`` names, so neither the
router nor the sink worker ever reads it."""

WARMUP_TOPIC = "bench.warm-up"
CONSUME_BATCH = 1000
POLL_TIMEOUT_S = 0.2
"""The router's own poll timeout; the raw consumer waits the same."""
SQLITE_ROWS_PER_TXN = 1000
STAGE_TIMEOUT_S = 600.0

# ------------------------------------------------------------------------------------------------
# Results
# ------------------------------------------------------------------------------------------------


@dataclass
class Latency:
    """Latency percentiles of one kind of operation, in milliseconds."""

    backend: str
    what: str
    count: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float

    @classmethod
    def of(cls, backend: str, what: str, seconds: Sequence[float]) -> Latency:
        return cls(backend=backend, what=what, **latency_ms(seconds))


@dataclass
class Stage:
    """One measured stage. ``events`` and ``seconds`` are what the rate is computed from."""

    backend: str
    name: str
    events: int
    seconds: float
    mbytes: float
    """Megabytes (10^6 bytes) the MB/s column refers to (see ``bytes_meaning``)."""
    bytes_meaning: str
    baseline: str | None = None
    """Name of the stage of the same backend this one is compared with (ratio = ours / raw)."""
    ratio: float | None = None
    peak_rss_mib: float = 0.0
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def events_per_s(self) -> float:
        return per_second(self.events, self.seconds)

    @property
    def mb_per_s(self) -> float:
        return per_second(self.mbytes, self.seconds)


@dataclass
class Report:
    meta: dict[str, Any]
    stages: list[Stage] = field(default_factory=list)
    latencies: list[Latency] = field(default_factory=list)

    def add(self, stage: Stage) -> Stage:
        stage.peak_rss_mib = peak_rss_mib()
        if stage.baseline is not None:
            base = self.find(stage.backend, stage.baseline)
            if base is not None and base.events_per_s > 0:
                stage.ratio = stage.events_per_s / base.events_per_s
        self.stages.append(stage)
        progress(
            f"{stage.backend}: {stage.name} finished: {stage.events:,} events in "
            f"{stage.seconds:.2f}s = {stage.events_per_s:,.0f} events/s, "
            f"peak RSS {stage.peak_rss_mib:,.0f} MiB"
        )
        return stage

    def find(self, backend: str, name: str) -> Stage | None:
        for s in self.stages:
            if s.backend == backend and s.name == name:
                return s
        return None

    def to_json(self) -> dict[str, Any]:
        stages = []
        for s in self.stages:
            d = asdict(s)
            d["events_per_s"] = s.events_per_s
            d["mb_per_s"] = s.mb_per_s if s.mbytes else None
            stages.append(d)
        return {
            "meta": self.meta,
            "stages": stages,
            "latencies": [asdict(x) for x in self.latencies],
        }


# ------------------------------------------------------------------------------------------------
# Workload
# ------------------------------------------------------------------------------------------------


@dataclass
class Workload:
    """N simulator events and, for the raw baselines, the exact bytes ``to_record`` produces."""

    events: list[ActivityEvent]
    values: list[bytes]
    keys: list[bytes]
    headers: list[Headers]

    @property
    def n(self) -> int:
        return len(self.events)

    @property
    def payload_bytes(self) -> int:
        return sum(len(v) for v in self.values)


def generate_events(n: int) -> list[ActivityEvent]:
    return list(simulator(ACCOUNTS).events(n))


def cpu_stages(report: Report, events: list[ActivityEvent]) -> Workload:
    """Encode-only, validate-only and decode-only rates; returns the encoded workload."""
    n = len(events)
    progress(f"cpu: encode only ({n:,} events) started")
    started = time.perf_counter()
    values = [codec.encode(e) for e in events]
    elapsed = time.perf_counter() - started
    size = sum(len(v) for v in values)
    report.add(
        Stage("cpu", "encode only (codec.encode)", n, elapsed, size / MB, "Avro payload bytes")
    )

    progress(f"cpu: validate only ({n:,} events) started")
    started = time.perf_counter()
    for e in events:
        validate_event(e)
    elapsed = time.perf_counter() - started
    report.add(
        Stage("cpu", "validate only (validate_event)", n, elapsed, size / MB, "Avro payload bytes")
    )

    progress(f"cpu: decode only ({n:,} events) started")
    started = time.perf_counter()
    for v in values:
        codec.decode(v)
    elapsed = time.perf_counter() - started
    report.add(
        Stage("cpu", "decode only (codec.decode)", n, elapsed, size / MB, "Avro payload bytes")
    )

    keys = [str(e["account_id"]).encode() for e in events]
    headers: list[Headers] = [
        (("category", str(e["category"]).encode()), ("activity", str(e["activity"]).encode()))
        for e in events
    ]
    # The raw baselines must send exactly what the SDK sends.
    for i in range(0, n, max(1, n // 50)):
        rec = to_record(events[i])
        if (rec.value, rec.key, rec.headers) != (values[i], keys[i], headers[i]):
            raise RuntimeError(f"pre-encoded event {i} differs from to_record's output")
    return Workload(events, values, keys, headers)


def bench_settings() -> list[AccountSettings]:
    """Five accounts streaming every event to one local destination each (default batch
    limits: 1000 events, 4 MiB, 5 s; NDJSON + gzip): each event is copied exactly once."""
    return [account_settings(a, local_destination(f"{a}-local", a)) for a in ACCOUNTS]


# ------------------------------------------------------------------------------------------------
# Instrumentation: time the router's transactions and the sink's writes without touching them
# ------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def timed_transactions(log: Log) -> Iterator[list[float]]:
    """Within the block, every transactional producer ``log`` hands out records the duration of
    each ``produce_and_commit`` in the yielded list. Only this log object (the bench's own) is
    patched, on the instance, and only for the block; the router runs unchanged."""
    seconds: list[float] = []
    make = log.transactional_producer

    def timed_producer(transactional_id: str) -> TransactionalProducer:
        producer = make(transactional_id)
        commit = producer.produce_and_commit

        def produce_and_commit(
            records: Sequence[OutgoingRecord],
            consumer: Consumer,
            offsets: Mapping[TopicPartition, int],
        ) -> None:
            started = time.perf_counter()
            commit(records, consumer, offsets)
            seconds.append(time.perf_counter() - started)

        producer.produce_and_commit = produce_and_commit  # type: ignore[method-assign]
        return producer

    log.transactional_producer = timed_producer  # type: ignore[method-assign]
    try:
        yield seconds
    finally:
        del log.transactional_producer  # the class's method again


# ------------------------------------------------------------------------------------------------
# Stepping loops shared by both backends
# ------------------------------------------------------------------------------------------------


def sdk_stage(report: Report, log: Log, w: Workload, baseline: str) -> None:
    progress(f"{log.name}: producer SDK ({w.n:,} events) started")
    producer = ActivityProducer(log)
    # The first event, sent and flushed before the clock starts, absorbs the connection and
    # producer-id set-up (the raw baseline does the same).
    producer.send(w.events[0])
    producer.flush()
    started = time.perf_counter()
    for e in w.events[1:]:
        producer.send(e)
    producer.flush()
    elapsed = time.perf_counter() - started
    producer.close()
    if producer.delivered != w.n:
        raise RuntimeError(f"producer SDK delivered {producer.delivered:,} of {w.n:,}")
    report.add(
        Stage(
            log.name,
            "producer SDK (ActivityProducer.send)",
            w.n - 1,
            elapsed,
            (w.payload_bytes - len(w.values[0])) / MB,
            "Avro payload bytes",
            baseline=baseline,
            notes={"first_event_excluded": 1},
        )
    )


SEND_MANY_TOPIC = "bench.sdk-send-many"
SEND_MANY_BATCH = 1000


def sdk_many_stage(report: Report, log: Log, w: Workload, baseline: str) -> None:
    """``ActivityProducer.send_many`` of the N events, 1000 a call, into a topic of its own
    (the router stage reads the activity topic); skipped by an SDK without it."""
    if not hasattr(ActivityProducer, "send_many"):
        progress(f"{log.name}: producer SDK has no send_many: stage skipped")
        return
    progress(f"{log.name}: producer SDK send_many ({w.n:,} events) started")
    log.create_topic(SEND_MANY_TOPIC)
    producer = ActivityProducer(log, topic=SEND_MANY_TOPIC)
    producer.send_many(w.events[:1])
    producer.flush()
    started = time.perf_counter()
    for lo in range(1, w.n, SEND_MANY_BATCH):
        producer.send_many(w.events[lo : lo + SEND_MANY_BATCH])
    producer.flush()
    elapsed = time.perf_counter() - started
    producer.close()
    if producer.delivered != w.n:
        raise RuntimeError(f"producer SDK delivered {producer.delivered:,} of {w.n:,}")
    report.add(
        Stage(
            log.name,
            "producer SDK (ActivityProducer.send_many, 1000 a call)",
            w.n - 1,
            elapsed,
            (w.payload_bytes - len(w.values[0])) / MB,
            "Avro payload bytes",
            baseline=baseline,
            notes={"first_event_excluded": 1},
        )
    )


def router_stage(report: Report, log: Log, n: int, baseline: str) -> None:
    progress(f"{log.name}: router ({n:,} records) started")
    step_seconds: list[float] = []
    clock = SteadyClock()
    deadline = Deadline("router", STAGE_TIMEOUT_S)
    counted_from = 0
    with timed_transactions(log) as txn_seconds:
        router = Router(log)
        try:
            while router.consumed < n:
                started = time.perf_counter()
                got = router.step()
                finished = time.perf_counter()
                if clock.batch(got, finished):
                    step_seconds.append(finished - started)
                elif got:
                    counted_from = len(txn_seconds)
                deadline.check(router.consumed, n)
            clock.stop()
        finally:
            router.close()
    if router.consumed != n:
        raise RuntimeError(f"router consumed {router.consumed:,}, expected {n:,}")
    txn = txn_seconds[counted_from:]
    report.add(
        Stage(
            log.name,
            "router",
            n - clock.first_batch,
            clock.seconds,
            0.0,
            "-",
            baseline=baseline,
            notes={
                "startup_s": round(clock.startup_s, 3),
                "first_batch_excluded": clock.first_batch,
                "transactions": len(txn),
                "mean_records_per_transaction": round((n - clock.first_batch) / max(1, len(txn))),
            },
        )
    )
    report.latencies.append(
        Latency.of(log.name, "router step = 1 transaction (poll+route+commit)", step_seconds)
    )
    report.latencies.append(Latency.of(log.name, "  of which produce_and_commit", txn))


def sink_stage(report: Report, log: Log, n: int, out: Path, baseline: str) -> None:
    progress(f"{log.name}: sink worker → local directory ({n:,} events) started")
    writes: list[Write] = []
    worker = SinkWorker(log, sink_factory=timed_factory(out, writes))
    try:
        run = run_until_delivered(worker, writes, n, "sink worker", STAGE_TIMEOUT_S)
    finally:
        worker.close()
    clock, timed = run.clock, run.timed
    if run.delivered != n or run.read != n:
        raise RuntimeError(
            f"sink worker read {run.read:,} and delivered {run.delivered:,} of {n:,}"
        )
    objects = sum(w.deliveries for w in writes)
    report.add(
        Stage(
            log.name,
            "sink worker → local dir",
            n - clock.first_batch,
            clock.seconds,
            sum(w.bytes for w in timed) / MB,
            "bytes of objects written (NDJSON+gzip)",
            baseline=baseline,
            notes={
                "startup_s": round(clock.startup_s, 3),
                "first_batch_excluded": clock.first_batch,
                "objects_written_total": objects,
                "objects_written_timed": sum(w.deliveries for w in timed),
                "object_bytes_total": sum(w.bytes for w in writes),
                "mean_events_per_object": round(sum(w.events for w in writes) / max(1, objects)),
                "files_on_disk": sum(1 for p in out.rglob("*") if p.is_file()),
            },
        )
    )
    report.latencies.append(
        Latency.of(log.name, "sink batch write (Sink.write)", [w.seconds for w in timed])
    )


# ------------------------------------------------------------------------------------------------
# Kafka
# ------------------------------------------------------------------------------------------------


def _kafka_producer_conf(bootstrap: str) -> dict[str, Any]:
    # The same configuration as pipeline.kafka_log.KafkaLog.producer().
    return {
        "bootstrap.servers": bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "compression.type": "lz4",
    }


def raw_produce_kafka(report: Report, log: KafkaLog, w: Workload) -> None:
    """The documented confluent-kafka loop: produce with a delivery callback, ``poll(0)`` after
    each produce (serves callbacks), ``poll`` on a full queue, ``flush`` at the end. As for the
    SDK, the first record is produced and flushed before the clock starts."""
    from confluent_kafka import Producer as RawProducer

    log.create_topic(RAW_TOPIC)
    progress(f"kafka: raw produce ({w.n:,} events) started")
    producer = RawProducer(_kafka_producer_conf(log.bootstrap))
    outcome = {"ok": 0, "failed": 0}

    def delivered(err: Any, _msg: Any) -> None:
        outcome["ok" if err is None else "failed"] += 1

    def produce(i: int) -> None:
        while True:
            try:
                producer.produce(
                    RAW_TOPIC,
                    value=w.values[i],
                    key=w.keys[i],
                    headers=list(w.headers[i]),
                    on_delivery=delivered,
                )
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)

    produce(0)
    producer.flush(60.0)
    started = time.perf_counter()
    for i in range(1, w.n):
        produce(i)
    remaining = producer.flush(60.0)
    elapsed = time.perf_counter() - started
    if remaining or outcome["ok"] != w.n:
        raise RuntimeError(f"raw produce: {outcome}, {remaining} left")
    report.add(
        Stage(
            "kafka",
            "raw produce (confluent-kafka)",
            w.n - 1,
            elapsed,
            (w.payload_bytes - len(w.values[0])) / MB,
            "Avro payload bytes",
            notes={"first_event_excluded": 1},
        )
    )


def raw_consume_kafka(report: Report, log: KafkaLog, n: int) -> None:
    """A plain consumer (read_committed, no auto-commit, like ours) assigned every partition of
    the activity topic from the beginning, reading with ``consume(num_messages=1000)`` and
    touching each value. Timed like the router: the first batch is excluded."""
    from confluent_kafka import OFFSET_BEGINNING
    from confluent_kafka import Consumer as RawConsumer
    from confluent_kafka import TopicPartition as RawTopicPartition

    progress(f"kafka: raw consume ({n:,} records) started")
    consumer = RawConsumer(
        {
            "bootstrap.servers": log.bootstrap,
            "group.id": f"bench-raw-consume-{uuid.uuid4()}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
    partitions = sorted(tp.partition for tp in log.end_offsets(topics.ACTIVITY))
    consumer.assign([RawTopicPartition(topics.ACTIVITY, p, OFFSET_BEGINNING) for p in partitions])
    clock = SteadyClock()
    deadline = Deadline("raw consume", STAGE_TIMEOUT_S)
    read = size = counted_size = 0
    try:
        while read < n:
            got = batch_size = 0
            for m in consumer.consume(num_messages=CONSUME_BATCH, timeout=POLL_TIMEOUT_S):
                if m.error() is not None:
                    raise RuntimeError(f"raw consume: {m.error()}")
                batch_size += len(m.value() or b"")
                got += 1
            read += got
            size += batch_size
            if clock.batch(got, time.perf_counter()):
                counted_size += batch_size
            deadline.check(read, n)
        clock.stop()
    finally:
        consumer.close()
    report.add(
        Stage(
            "kafka",
            "raw consume (confluent-kafka)",
            n - clock.first_batch,
            clock.seconds,
            counted_size / MB,
            "Avro payload bytes",
            notes={
                "startup_s": round(clock.startup_s, 3),
                "first_batch_excluded": clock.first_batch,
            },
        )
    )


def run_kafka(report: Report, w: Workload, workdir: Path, *, producer_only: bool = False) -> None:
    from devservices.kafka import KafkaBroker

    progress("kafka: starting the broker")
    broker = KafkaBroker.start(workdir / "kafka")
    progress(f"kafka: broker up at {broker.bootstrap}")
    try:
        log = KafkaLog(broker.bootstrap)
        try:
            warm_up_kafka(log)
            publish_settings(log, bench_settings())
            # Between stages, the clients of the one that ended are collected: their
            # librdkafka threads must not compete with the next stage.
            raw_produce_kafka(report, log, w)
            settle()
            sdk_stage(report, log, w, baseline="raw produce (confluent-kafka)")
            settle()
            sdk_many_stage(report, log, w, baseline="raw produce (confluent-kafka)")
            settle()
            if producer_only:
                return
            raw_consume_kafka(report, log, w.n)
            settle()
            router_stage(report, log, w.n, baseline="raw consume (confluent-kafka)")
            settle()
            sink_stage(report, log, w.n, workdir / "kafka-out", "raw consume (confluent-kafka)")
        finally:
            log.close()
            del log
            settle()  # every client is gone before the broker stops: no reconnect noise
    finally:
        progress("kafka: stopping the broker")
        broker.stop()


def warm_up_kafka(log: KafkaLog) -> None:
    """Load the broker's producer-id and transaction coordinators before anything is timed: the
    first idempotent producer after a broker start otherwise waits for "coordinator load in
    progress" retries. Produces to its own topic, which no stage reads."""
    from confluent_kafka import Producer as RawProducer

    log.create_topic(WARMUP_TOPIC)
    producer = RawProducer(_kafka_producer_conf(log.bootstrap))
    for i in range(1000):
        producer.produce(WARMUP_TOPIC, value=b"warm-up", key=str(i).encode())
        producer.poll(0)
    if producer.flush(60.0):
        raise RuntimeError("warm-up produce did not complete")


# ------------------------------------------------------------------------------------------------
# Embedded (SQLite)
# ------------------------------------------------------------------------------------------------

_RAW_SCHEMA = """
CREATE TABLE records (
    topic TEXT NOT NULL, part INTEGER NOT NULL, off INTEGER NOT NULL,
    key BLOB, value BLOB NOT NULL, headers BLOB, ts INTEGER NOT NULL,
    PRIMARY KEY (topic, part, off)
) WITHOUT ROWID;
"""


def _sqlite(path: Path) -> sqlite3.Connection:
    # The embedded log's connection settings.
    conn = sqlite3.connect(path, timeout=30.0, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


def raw_insert_sqlite(report: Report, w: Workload, path: Path) -> None:
    """The same payloads, keys and headers (JSON, encoded beforehand) inserted into a table like
    the embedded log's ``records``, one ``BEGIN IMMEDIATE`` ... ``COMMIT`` per 1000 rows."""
    conn = _sqlite(path)
    conn.executescript(_RAW_SCHEMA)
    # Copied: each small orjson output otherwise pins a ~4 KiB buffer (400 MiB for 100k rows).
    header_blobs = [
        bytes(bytearray(orjson.dumps([[k, v.decode("latin-1")] for k, v in h]))) for h in w.headers
    ]
    progress(f"embedded: raw SQLite insert ({w.n:,} rows) started")

    def insert(lo: int, hi: int) -> None:
        now = int(time.time() * 1000)
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            "INSERT INTO records(topic, part, off, key, value, headers, ts) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (topics.ACTIVITY, 0, i, w.keys[i], w.values[i], header_blobs[i], now)
                for i in range(lo, hi)
            ],
        )
        conn.execute("COMMIT")

    insert(0, 1)  # like the SDK stage: the first row goes before the clock starts
    started = time.perf_counter()
    for lo in range(1, w.n, SQLITE_ROWS_PER_TXN):
        insert(lo, min(w.n, lo + SQLITE_ROWS_PER_TXN))
    elapsed = time.perf_counter() - started
    conn.close()
    report.add(
        Stage(
            "embedded",
            "raw SQLite insert (1000 rows/txn)",
            w.n - 1,
            elapsed,
            (w.payload_bytes - len(w.values[0])) / MB,
            "Avro payload bytes",
            notes={"first_event_excluded": 1},
        )
    )


def raw_read_sqlite(report: Report, path: Path, n: int) -> None:
    """The activity topic of the embedded log read back 1000 rows a query (the embedded
    consumer's query), as plain tuples. Timed like the router: the first batch is excluded."""
    conn = _sqlite(path)
    progress(f"embedded: raw SQLite read ({n:,} rows) started")
    clock = SteadyClock()
    read = counted_size = position = 0
    while read < n:
        rows = conn.execute(
            "SELECT off, key, value, headers, ts FROM records "
            "WHERE topic = ? AND part = ? AND off >= ? ORDER BY off LIMIT ?",
            (topics.ACTIVITY, 0, position, CONSUME_BATCH),
        ).fetchall()
        if not rows:
            raise RuntimeError(f"raw SQLite read: only {read:,} of {n:,} rows")
        batch_size = 0
        for _off, _key, value, _headers, _ts in rows:
            batch_size += len(value)
        read += len(rows)
        position = rows[-1][0] + 1
        if clock.batch(len(rows), time.perf_counter()):
            counted_size += batch_size
    clock.stop()
    conn.close()
    report.add(
        Stage(
            "embedded",
            "raw SQLite read (1000 rows/query)",
            n - clock.first_batch,
            clock.seconds,
            counted_size / MB,
            "Avro payload bytes",
            notes={"first_batch_excluded": clock.first_batch},
        )
    )


def run_embedded(report: Report, w: Workload, workdir: Path) -> None:
    raw_insert_sqlite(report, w, workdir / "raw.sqlite")
    log = EmbeddedLog(workdir / "log.sqlite")
    try:
        publish_settings(log, bench_settings())
        sdk_stage(report, log, w, baseline="raw SQLite insert (1000 rows/txn)")
        raw_read_sqlite(report, log.path, w.n)
        router_stage(report, log, w.n, baseline="raw SQLite read (1000 rows/query)")
        sink_stage(report, log, w.n, workdir / "embedded-out", "raw SQLite read (1000 rows/query)")
    finally:
        log.close()


# ------------------------------------------------------------------------------------------------
# Output
# ------------------------------------------------------------------------------------------------


STAGE_COLUMNS = (
    Column("backend", 9, "<"),
    Column("stage", 38, "<"),
    Column("events", 8),
    Column("s", 7),
    Column("events/s", 9),
    Column("MB/s", 7),
    Column("ours/raw", 8),
    Column("peak RSS MiB", 12),
)
LATENCY_COLUMNS = (
    Column("backend", 9, "<"),
    Column("latency", 48, "<"),
    Column("count", 6),
    Column("p50 ms", 8),
    Column("p95 ms", 8),
    Column("p99 ms", 8),
    Column("max ms", 8),
)


def stage_cells(s: Stage) -> list[str]:
    return [
        s.backend,
        s.name,
        f"{s.events:,}",
        f"{s.seconds:.2f}",
        num(s.events_per_s, ",.0f"),
        num(s.mb_per_s if s.mbytes else None, ".2f"),
        num(s.ratio, ".2f"),
        f"{s.peak_rss_mib:,.0f}",
    ]


def latency_cells(lat: Latency) -> list[str]:
    figures = (lat.p50_ms, lat.p95_ms, lat.p99_ms, lat.max_ms)
    return [lat.backend, lat.what, str(lat.count), *(num(x, ".1f") for x in figures)]


def stage_note(s: Stage) -> str:
    vs = f"ratio vs '{s.baseline}'" if s.baseline else ""
    return f"{s.backend} / {s.name}: {'; '.join(x for x in (vs, notes(s.notes)) if x)}"


def render(report: Report) -> str:
    m = report.meta
    sizes = ", ".join(
        f"{name} N = {m[key]:,}"
        for name, key in (
            ("cpu", "events"),
            ("kafka", "events_kafka"),
            ("embedded", "events_embedded"),
        )
        if m[key] is not None
    )
    lines = [
        f"auditstream throughput: {sizes}; mean payload {m['mean_payload_bytes']:.0f} B; "
        f"{m['cpus']} CPUs; Python {m['python']}; librdkafka {m['librdkafka']}",
        "",
        *table(STAGE_COLUMNS, [stage_cells(s) for s in report.stages]),
        *table(LATENCY_COLUMNS, [latency_cells(lat) for lat in report.latencies]),
        *(stage_note(s) for s in report.stages if s.baseline is not None or s.notes),
        "",
        "MB = 10^6 bytes of Avro payload, except the sink rows: bytes of gzip NDJSON objects "
        "written. Produce stages exclude their first event, consuming stages their first batch "
        "(connection, group join); peak RSS is the process peak so far. See bench/README.md.",
    ]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------
# Main
# ------------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.throughput",
        description="Throughput of producer SDK, router and sink worker next to raw baselines.",
    )
    parser.add_argument(
        "--events", type=int, default=100_000, help="events per backend (default 100000)"
    )
    parser.add_argument(
        "--embedded-events",
        type=int,
        default=None,
        help="events on the embedded log (default: --events)",
    )
    parser.add_argument("--backend", choices=("kafka", "embedded", "both"), default="both")
    parser.add_argument(
        "--no-gc-freeze",
        action="store_true",
        help="do not gc.freeze() the pre-generated workload (see bench/README.md)",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument(
        "--producer-only",
        action="store_true",
        help="on Kafka, stop after the producer stages (raw produce, send, send_many)",
    )
    args = parser.parse_args(argv)
    for value in (args.events, args.embedded_events):
        if value is not None and value < 2 * CONSUME_BATCH:
            parser.error(f"--events and --embedded-events must be at least {2 * CONSUME_BATCH}")
    return args


@contextlib.contextmanager
def _workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="auditstream-bench-") as tmp:
        yield Path(tmp)


def _librdkafka_version() -> str:
    import confluent_kafka

    return str(confluent_kafka.libversion()[0])


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    kafka = args.backend in ("kafka", "both")
    embedded = args.backend in ("embedded", "both")
    n_kafka = args.events
    n_embedded = args.embedded_events or args.events
    n = max(n_kafka if kafka else 0, n_embedded if embedded else 0)

    progress(f"generating {n:,} simulator events (not measured)")
    events = generate_events(n)
    report = Report(
        meta={
            **run_meta(".venv/bin/python -m bench.throughput"),
            "events": n,
            "events_kafka": n_kafka if kafka else None,
            "events_embedded": n_embedded if embedded else None,
            "accounts": len(ACCOUNTS),
            "librdkafka": _librdkafka_version(),
            "gc_freeze": not args.no_gc_freeze,
        }
    )
    if not args.no_gc_freeze:
        # The N event dicts live all run long; a stage's own process would not hold them.
        # Freezing them keeps the cyclic collector from re-scanning them in every stage.
        settle(freeze=True)
    w = cpu_stages(report, events)
    report.meta["mean_payload_bytes"] = w.payload_bytes / w.n
    with _workdir() as workdir:
        if kafka:
            run_kafka(report, _subset(w, n_kafka), workdir, producer_only=args.producer_only)
        if embedded:
            run_embedded(report, _subset(w, n_embedded), workdir)
    print(render(report))
    if args.json is not None:
        write_json(args.json, report.to_json())
    return 0


def _subset(w: Workload, n: int) -> Workload:
    if n >= w.n:
        return w
    return Workload(w.events[:n], w.values[:n], w.keys[:n], w.headers[:n])


if __name__ == "__main__":
    raise SystemExit(main())
