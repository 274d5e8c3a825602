"""The SIEM sinks (Splunk HEC, Datadog Logs) into their emulators, next to a raw httpx loop.

Run from the repository root::

    .venv/bin/python -m bench.siem_outputs [--events N] [--batch 1000] [--json FILE]

The collectors are the emulators the tests use (``devservices.splunk_hec_receiver``,
``devservices.datadog_receiver``), each started as its own process on 127.0.0.1 (counting,
not keeping, what arrives) so their parsing does not share this process's interpreter lock.

For each output and variant (gzip on or off; Splunk also with indexer acknowledgement), the
same N decoded events (the simulator's mix, encoded and decoded as the sink worker sees them)
go in batches of ``--batch`` events:

1. **sink**: ``write`` of every batch, one after another: rendering, compression, requests,
   answers (and acknowledgement polls).
2. **raw**: the very request bodies the sink sent (built beforehand, untimed) POSTed with one
   ``httpx.Client`` in a loop, with the same headers: what the collector and HTTP cost alone.

Printed per row: events/s of both and their ratio, requests, and bytes on the wire per event
(request bodies as sent) next to the uncompressed JSON per event. Figures, never assertions.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from auditstream.config.destinations import DatadogLogsDestination, SplunkHecDestination
from auditstream.pipeline.log import Record
from auditstream.producers.simulator import Simulator, SimulatorConfig
from auditstream.schemas import codec
from auditstream.sinks.batch import Batch
from auditstream.sinks.datadog_logs import INTAKE_PATH, DatadogLogsSink, payloads
from auditstream.sinks.http_batch import gzip_body
from auditstream.sinks.splunk_hec import CHANNEL_HEADER, EVENT_PATH, SplunkHecSink
from bench.report import Column, notes, num, per_second, progress, run_meta, table, write_json
from bench.workload import SEED

TOKEN = "00000000-0000-4000-8000-000000000001"
ACK_TOKEN = "00000000-0000-4000-8000-000000000002"
KEY = "0123456789abcdef0123456789abcdef"
ACCOUNTS = [f"bench-acct-{i}" for i in range(1, 6)]
REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Row:
    output: str
    variant: str
    events: int
    requests: int
    sink_s: float
    raw_s: float
    wire_bytes: int
    json_bytes: int

    @property
    def sink_eps(self) -> float:
        return per_second(self.events, self.sink_s)

    @property
    def raw_eps(self) -> float:
        return per_second(self.events, self.raw_s)


@contextmanager
def emulator(module: str, *args: str) -> Iterator[str]:
    """``python -m devservices.<module>`` on a free port; its URL while the block runs."""
    proc = subprocess.Popen(
        [sys.executable, "-m", f"devservices.{module}", "--count-only", *args],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        if not url.startswith("http://"):
            raise RuntimeError(f"{module} did not start")
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def decoded_events(count: int) -> list[dict[str, Any]]:
    """``count`` simulated events, through the Avro codec as the sink worker sees them, recent
    enough for Datadog to index (the clock starts an hour ago)."""
    start = datetime.now(UTC) - timedelta(hours=1)
    simulator = Simulator(SimulatorConfig(accounts=ACCOUNTS, seed=SEED, start=start))
    return [codec.decode(codec.encode(e)) for e in simulator.events(count)]


def batches(events: list[dict[str, Any]], size: int) -> list[Batch]:
    topic = "auditstream.dest.bench"
    out = []
    for first in range(0, len(events), size):
        chunk = events[first : first + size]
        records = [Record(topic, 0, first + i, b"", b"") for i in range(len(chunk))]
        out.append(Batch("bench", "bench-acct-1", topic, 0, records, chunk))
    return out


Bodies = list[bytes]


def timed_sink(sink: Any, work: list[Batch]) -> tuple[float, int, int]:
    """Seconds to write every batch, requests and wire bytes (after one warm-up batch)."""
    sink.write(work[0])
    started = time.perf_counter()
    requests = wire = 0
    for batch in work:
        result = sink.write(batch)
        requests += result.deliveries
        wire += result.bytes_written
    return time.perf_counter() - started, requests, wire


def timed_raw(url: str, bodies: Bodies, headers: dict[str, str]) -> float:
    """Seconds to POST every body with a plain httpx client (after one warm-up POST)."""
    with httpx.Client(timeout=30) as client:
        client.post(url, content=bodies[0], headers=headers).raise_for_status()
        started = time.perf_counter()
        for body in bodies:
            client.post(url, content=body, headers=headers).raise_for_status()
        return time.perf_counter() - started


def run_case(
    output: str,
    variant: str,
    sink: Any,
    work: list[Batch],
    plain_bodies: Callable[[Batch], Bodies],
    compress: bool,
    url: str,
    headers: dict[str, str],
) -> Row:
    """One row: the sink's writes timed, then the same request bodies POSTed raw."""
    progress(f"{output} {variant}: sink")
    sink_s, requests, wire = timed_sink(sink, work)
    sink.close()
    plain = [body for batch in work for body in plain_bodies(batch)]
    raw_bodies = [gzip_body(b) for b in plain] if compress else plain
    json_bytes = sum(len(b) for b in plain)
    progress(f"{output} {variant}: raw httpx")
    raw_s = timed_raw(url, raw_bodies, headers)
    events = sum(len(b.events) for b in work)
    return Row(output, variant, events, requests, sink_s, raw_s, wire, json_bytes)


def splunk_rows(url: str, work: list[Batch]) -> list[Row]:
    rows = []
    for variant, settings in (
        ("gzip", {}),
        ("plain", {"gzip": False}),
        ("gzip+ack", {"ack": True, "token": ACK_TOKEN}),
    ):
        destination = SplunkHecDestination.model_validate(
            {"id": "bench", "url": url, "token": TOKEN, **settings}
        )
        sink = SplunkHecSink(destination)
        headers = {"Authorization": f"Splunk {destination.token.get_secret_value()}"}
        if destination.gzip:
            headers["Content-Encoding"] = "gzip"
        if destination.ack:
            headers[CHANNEL_HEADER] = sink.channel

        rows.append(
            run_case(
                "splunk_hec",
                variant,
                sink,
                work,
                sink.render,
                destination.gzip,
                url + EVENT_PATH,
                headers,
            )
        )
    return rows


def datadog_rows(url: str, work: list[Batch]) -> list[Row]:
    rows = []
    for variant, settings in (("gzip", {}), ("plain", {"gzip": False})):
        destination = DatadogLogsDestination.model_validate(
            {"id": "bench", "endpoint": url, "api_key": KEY, **settings}
        )
        sink = DatadogLogsSink(destination)
        headers = {"DD-API-KEY": KEY, "Content-Type": "application/json"}
        if destination.gzip:
            headers["Content-Encoding"] = "gzip"

        def plain(batch: Batch, sink: DatadogLogsSink = sink) -> Bodies:
            return payloads(sink.entries(batch))

        rows.append(
            run_case(
                "datadog_logs",
                variant,
                sink,
                work,
                plain,
                destination.gzip,
                url + INTAKE_PATH,
                headers,
            )
        )
    return rows


def report(rows: list[Row], meta: dict[str, Any]) -> list[str]:
    columns = [
        Column("output", 13, "<"),
        Column("variant", 9, "<"),
        Column("events", 7),
        Column("requests", 8),
        Column("sink ev/s", 10),
        Column("raw ev/s", 10),
        Column("sink/raw", 8),
        Column("wire B/ev", 9),
        Column("json B/ev", 9),
    ]
    cells = [
        [
            r.output,
            r.variant,
            str(r.events),
            str(r.requests),
            num(r.sink_eps, ",.0f"),
            num(r.raw_eps, ",.0f"),
            num(r.sink_eps / r.raw_eps, ".2f"),
            num(r.wire_bytes / r.events, ".0f"),
            num(r.json_bytes / r.events, ".0f"),
        ]
        for r in rows
    ]
    return [notes(meta), "", *table(columns, cells)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.siem_outputs")
    parser.add_argument("--events", type=int, default=20_000, help="events per row")
    parser.add_argument("--batch", type=int, default=1000, help="events per batch")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    args = parser.parse_args(argv)
    meta = run_meta("python -m bench.siem_outputs")
    progress(f"simulating {args.events} events")
    work = batches(decoded_events(args.events), args.batch)
    rows: list[Row] = []
    with emulator("splunk_hec_receiver", "--token", TOKEN, "--ack-token", ACK_TOKEN) as splunk_url:
        rows += splunk_rows(splunk_url, work)
    with emulator("datadog_receiver", "--api-key", KEY) as datadog_url:
        rows += datadog_rows(datadog_url, work)
    for line in report(rows, {"batch": args.batch, "cpus": meta["cpus"]}):
        print(line)
    print(
        "raw: the sink's own request bodies, built beforehand, POSTed in a loop (no rendering, "
        "compression or acknowledgement polls); wire: request bodies as sent; json: the same "
        "bodies uncompressed"
    )
    if args.json is not None:
        write_json(args.json, {"meta": meta, "rows": [asdict(r) for r in rows]})
    return 0


if __name__ == "__main__":
    sys.exit(main())
