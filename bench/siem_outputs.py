"""The SIEM outputs (Splunk HEC, Datadog Logs, Azure Monitor Logs, the webhook with Standard
Webhooks signing) into their emulators, next to a raw httpx loop; and bytes on the wire per
event for each schema and output.

Run from the repository root::

    .venv/bin/python -m bench.siem_outputs [--events N] [--batch 1000] [--json FILE]

The collectors are the emulators the tests use (``devservices.splunk_hec_receiver``,
``devservices.datadog_receiver``, ``devservices.azure_monitor_receiver`` over HTTPS with a local
CA, ``devservices.webhook_receiver`` verifying Standard Webhooks signatures), each started as its
own process on 127.0.0.1 (``--serve``; counting, not keeping, what arrives where the emulator
can) so their parsing does not share this process's interpreter lock.

For each output and variant (gzip on or off; Splunk also with indexer acknowledgement), the
same N decoded events (the simulator's mix, encoded and decoded as the sink worker sees them)
go in batches of ``--batch`` events:

1. **sink**: ``write`` of every batch, one after another: rendering, compression, signing,
   requests, answers (Azure: the token from the emulator's Entra ID, cached by the credential;
   Splunk with ack: acknowledgement polls).
2. **raw**: the very request bodies the sink sends, with the same headers (signatures and the
   bearer token included), built beforehand, untimed, POSTed with one ``httpx.Client`` in a
   loop: what the collector and HTTP cost alone.

A row counts only when the emulator counted every event of it (warm-up batch included) as
accepted. Printed per row: events/s of both and their ratio, requests, bytes on the wire per
event (request bodies as sent) next to the uncompressed JSON per event.

The second table: bytes per event of the request bodies the sinks build (their own body
builders, untimed) for every schema and output, plain and gzip (level 6, as the sinks
compress), for the same batches. ``object store`` is the NDJSON object of a batch; the webhook
never compresses, its gzip column only says what gzip would save. Last, the resident set sizes
of this process and of each emulator. Figures, never assertions.
"""

from __future__ import annotations

import argparse
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import httpx

from auditstream.config.destinations import (
    AzureMonitorLogsDestination,
    DatadogLogsDestination,
    SplunkHecDestination,
    WebhookDestination,
)
from auditstream.pipeline.log import Record
from auditstream.producers.simulator import Simulator, SimulatorConfig
from auditstream.schemas import codec
from auditstream.sinks.azure_monitor_logs import API_VERSION, Authority, AzureMonitorLogsSink
from auditstream.sinks.azure_monitor_logs import request_bodies as azure_bodies
from auditstream.sinks.batch import Batch
from auditstream.sinks.datadog_logs import INTAKE_PATH, DatadogLogsSink, payloads
from auditstream.sinks.http_batch import gzip_body
from auditstream.sinks.render import batch_documents, ndjson_of
from auditstream.sinks.shapes import SHAPES
from auditstream.sinks.splunk_hec import CHANNEL_HEADER, EVENT_PATH, SplunkHecSink
from auditstream.sinks.webhook import WebhookSink
from bench.memory import status_kib
from bench.report import Column, notes, num, per_second, progress, run_meta, table, write_json
from bench.workload import SEED

TOKEN = "00000000-0000-4000-8000-000000000001"
ACK_TOKEN = "00000000-0000-4000-8000-000000000002"
KEY = "0123456789abcdef0123456789abcdef"
AZ_TENANT = "5d1f0c3e-7a2b-4c8d-9e6f-0a1b2c3d4e5f"
AZ_CLIENT = "0f9e8d7c-6b5a-4d3c-8b2a-1f0e9d8c7b6a"
AZ_SECRET = "bench-client-secret"
AZ_DCR = "dcr-00112233445566778899aabbccddeeff"
AZ_STREAM = "Custom-AuditStream_CL"
WEBHOOK_SECRET = "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
ACCOUNTS = [f"bench-acct-{i}" for i in range(1, 6)]
REPO_ROOT = Path(__file__).resolve().parents[1]
EMULATORS = ("splunk_hec", "datadog_logs", "azure_monitor_logs", "webhook")
SIZE_OUTPUTS = ("object_store", "webhook", "splunk_hec", "datadog_logs", "azure_monitor_logs")
"""The outputs of the bytes table, in its column order."""


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


@dataclass
class Size:
    """Request-body bytes of one schema and output over ``events`` events."""

    schema: str
    output: str
    events: int
    plain_bytes: int
    gzip_bytes: int


# -- the emulators, each in its own process -----------------------------------------------------


def _receiver(name: str, folder: Path) -> tuple[Any, Callable[[], int]]:
    """The emulator ``name`` (not started) and how many events it accepted so far."""
    if name == "splunk_hec":
        from devservices.splunk_hec_receiver import SplunkHecReceiver

        splunk = SplunkHecReceiver(TOKEN)
        splunk.add_token(ACK_TOKEN, indexes=("main",), ack=True)
        splunk.keep = False
        return splunk, lambda: int(splunk.received)
    if name == "datadog_logs":
        from devservices.datadog_receiver import DatadogReceiver

        datadog = DatadogReceiver([KEY])
        datadog.keep = False
        return datadog, lambda: int(datadog.received)
    if name == "azure_monitor_logs":
        from devservices.azure_monitor_receiver import AzureMonitorReceiver, local_tls

        tls = local_tls(folder)
        azure = AzureMonitorReceiver(
            tenant_id=AZ_TENANT,
            client_id=AZ_CLIENT,
            client_secret=AZ_SECRET,
            dcr_id=AZ_DCR,
            streams=(AZ_STREAM,),
            tls=tls.server,
        )
        azure.keep = False
        return azure, lambda: int(azure.received)
    from devservices.webhook_receiver import WebhookReceiver

    hook = WebhookReceiver(WEBHOOK_SECRET.encode(), signing="standard_webhooks")
    # Every accepted event, repeats included: the raw loop sends the sink's requests again
    # under their idempotency keys, which the receiver accepts (200) as duplicates.
    return hook, lambda: len(hook.all_event_ids)


def serve(name: str, folder: Path) -> int:
    """Run emulator ``name``: print its URL, then for each line read on stdin one line
    ``<events accepted> <VmHWM KiB>``; stop at the end of stdin."""
    receiver, accepted = _receiver(name, folder)
    receiver.start()
    url = receiver.base_url if hasattr(receiver, "base_url") else receiver.url
    print(url, flush=True)
    try:
        for _ in sys.stdin:
            print(accepted(), status_kib("VmHWM") or 0, flush=True)
    finally:
        receiver.stop()
    return 0


@dataclass
class Emulator:
    name: str
    url: str
    folder: Path
    proc: subprocess.Popen[str]

    def _ask(self) -> tuple[int, int]:
        stdin, stdout = self.proc.stdin, self.proc.stdout
        assert stdin is not None
        assert stdout is not None
        stdin.write("\n")
        stdin.flush()
        accepted, hwm = stdout.readline().split()
        return int(accepted), int(hwm)

    def accepted(self) -> int:
        """Events the emulator accepted so far."""
        return self._ask()[0]

    def peak_rss_kib(self) -> int:
        return self._ask()[1]

    @property
    def ca_file(self) -> Path:
        return self.folder / "ca.pem"


@contextmanager
def emulator(name: str) -> Iterator[Emulator]:
    """Emulator ``name`` in its own process on a free port of 127.0.0.1 while the block runs."""
    with tempfile.TemporaryDirectory(prefix="siem-bench-") as folder:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.siem_outputs", "--serve", name, "--folder", folder],
            cwd=REPO_ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            stdout: IO[str] | None = proc.stdout
            assert stdout is not None
            url = stdout.readline().strip()
            if not url.startswith(("http://", "https://")):
                raise RuntimeError(f"the {name} emulator did not start")
            yield Emulator(name, url, Path(folder), proc)
        finally:
            if proc.stdin is not None:
                proc.stdin.close()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.terminate()
                proc.wait(10)


# -- the workload --------------------------------------------------------------------------------


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
Request = tuple[bytes, dict[str, str]]
"""A request body as sent and its headers."""


# -- timing ---------------------------------------------------------------------------------------


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


def timed_raw(
    url: str, per_batch: list[list[Request]], verify: ssl.SSLContext | bool = True
) -> float:
    """Seconds to POST every request with a plain httpx client (after the first batch's
    requests once, as a warm-up)."""
    with httpx.Client(timeout=30, verify=verify) as client:
        for body, headers in per_batch[0]:
            client.post(url, content=body, headers=headers).raise_for_status()
        started = time.perf_counter()
        for requests in per_batch:
            for body, headers in requests:
                client.post(url, content=body, headers=headers).raise_for_status()
        return time.perf_counter() - started


def counted(collector: Emulator, before: int, expected: int, what: str) -> int:
    """The emulator's count after ``what``, which must have added ``expected`` events."""
    after = collector.accepted()
    if after - before != expected:
        raise RuntimeError(
            f"{what}: {expected} events sent, the {collector.name} emulator accepted "
            f"{after - before}"
        )
    return after


def run_case(
    collector: Emulator,
    variant: str,
    sink: Any,
    work: list[Batch],
    requests: Callable[[Batch], list[Request]],
    plain_bodies: Callable[[Batch], Bodies],
    url: str,
    verify: ssl.SSLContext | bool = True,
) -> Row:
    """One row: the sink's writes timed, then the same requests POSTed raw; each counted."""
    output = collector.name
    events = sum(len(b.events) for b in work)
    sent = events + len(work[0].events)  # the warm-up batch too
    before = collector.accepted()
    progress(f"{output} {variant}: sink")
    sink_s, count, wire = timed_sink(sink, work)
    before = counted(collector, before, sent, f"{output} {variant} sink")
    raw = [requests(batch) for batch in work]
    json_bytes = sum(len(b) for batch in work for b in plain_bodies(batch))
    sink.close()
    progress(f"{output} {variant}: raw httpx")
    raw_s = timed_raw(url, raw, verify)
    counted(collector, before, sent, f"{output} {variant} raw")
    return Row(output, variant, events, count, sink_s, raw_s, wire, json_bytes)


def splunk_rows(collector: Emulator, work: list[Batch]) -> list[Row]:
    rows = []
    for variant, settings in (
        ("gzip", {}),
        ("plain", {"gzip": False}),
        ("gzip+ack", {"ack": True, "token": ACK_TOKEN}),
    ):
        destination = SplunkHecDestination.model_validate(
            {"id": "bench", "url": collector.url, "token": TOKEN, **settings}
        )
        sink = SplunkHecSink(destination)
        headers = {"Authorization": f"Splunk {destination.token.get_secret_value()}"}
        if destination.gzip:
            headers["Content-Encoding"] = "gzip"
        if destination.ack:
            headers[CHANNEL_HEADER] = sink.channel

        def requests(
            batch: Batch,
            sink: SplunkHecSink = sink,
            zip_: bool = destination.gzip,
            headers: dict[str, str] = headers,
        ) -> list[Request]:
            return [(gzip_body(b) if zip_ else b, headers) for b in sink.render(batch)]

        rows.append(
            run_case(
                collector, variant, sink, work, requests, sink.render, collector.url + EVENT_PATH
            )
        )
    return rows


def datadog_rows(collector: Emulator, work: list[Batch]) -> list[Row]:
    rows = []
    for variant, settings in (("gzip", {}), ("plain", {"gzip": False})):
        destination = DatadogLogsDestination.model_validate(
            {"id": "bench", "endpoint": collector.url, "api_key": KEY, **settings}
        )
        sink = DatadogLogsSink(destination)
        headers = {"DD-API-KEY": KEY, "Content-Type": "application/json"}
        if destination.gzip:
            headers["Content-Encoding"] = "gzip"

        def plain(batch: Batch, sink: DatadogLogsSink = sink) -> Bodies:
            return payloads(sink.entries(batch))

        def requests(
            batch: Batch,
            plain: Callable[[Batch], Bodies] = plain,
            zip_: bool = destination.gzip,
            headers: dict[str, str] = headers,
        ) -> list[Request]:
            return [(gzip_body(b) if zip_ else b, headers) for b in plain(batch)]

        rows.append(
            run_case(collector, variant, sink, work, requests, plain, collector.url + INTAKE_PATH)
        )
    return rows


def azure_destination(endpoint: str, ca_file: str | None, **settings: Any) -> Any:
    return AzureMonitorLogsDestination.model_validate(
        {
            "id": "bench",
            "endpoint": endpoint,
            "dcr_immutable_id": AZ_DCR,
            "stream_name": AZ_STREAM,
            "tenant_id": AZ_TENANT,
            "client_id": AZ_CLIENT,
            "client_secret": AZ_SECRET,
            **({"ca_file": ca_file} if ca_file else {}),
            **settings,
        }
    )


def azure_rows(collector: Emulator, work: list[Batch]) -> list[Row]:
    rows = []
    ca_file = str(collector.ca_file)
    # The emulator is also the Entra ID authority (the operator's override, as in the tests).
    authority = Authority(collector.url.removeprefix("https://"), ca_file)
    url = (
        f"{collector.url}/dataCollectionRules/{AZ_DCR}/streams/{AZ_STREAM}"
        f"?api-version={API_VERSION}"
    )
    for variant, settings in (("gzip", {}), ("plain", {"gzip": False})):
        destination = azure_destination(collector.url, ca_file, **settings)
        sink = AzureMonitorLogsSink(destination, authority=authority)

        def plain(batch: Batch, sink: AzureMonitorLogsSink = sink) -> Bodies:
            return azure_bodies(sink.rows(batch))

        def requests(
            batch: Batch,
            sink: AzureMonitorLogsSink = sink,
            plain: Callable[[Batch], Bodies] = plain,
            zip_: bool = destination.gzip,
        ) -> list[Request]:
            # The token the sink's credential holds, from the emulator's authority.
            headers = {
                "Authorization": f"Bearer {sink.token()}",
                "Content-Type": "application/json",
            }
            if zip_:
                headers["Content-Encoding"] = "gzip"
            return [(gzip_body(b) if zip_ else b, headers) for b in plain(batch)]

        verify = ssl.create_default_context(cafile=ca_file)
        rows.append(run_case(collector, variant, sink, work, requests, plain, url, verify))
    return rows


def webhook_destination(url: str, schema: str = "native") -> WebhookDestination:
    return WebhookDestination.model_validate(
        {
            "id": "bench",
            "url": url,
            "secret": WEBHOOK_SECRET,
            "signing": "standard_webhooks",
            "schema": schema,
        }
    )


def webhook_rows(collector: Emulator, work: list[Batch]) -> list[Row]:
    sink = WebhookSink(webhook_destination(collector.url))

    def plain(batch: Batch) -> Bodies:
        return [sink.render(batch)]

    def requests(batch: Batch) -> list[Request]:
        body = sink.render(batch)
        return [(body, sink.build_headers(batch, body, int(time.time())))]

    return [run_case(collector, "std-webhooks", sink, work, requests, plain, collector.url)]


# -- bytes per event ------------------------------------------------------------------------------


def size_builders(schema: str) -> dict[str, Callable[[Batch], Bodies]]:
    """For each output of :data:`SIZE_OUTPUTS`, the uncompressed request bodies (or object) its
    sink builds for a batch with ``schema``; nothing is sent."""
    url = "http://127.0.0.1:9"
    splunk = SplunkHecSink(
        SplunkHecDestination.model_validate(
            {"id": "bench", "url": url, "token": TOKEN, "schema": schema}
        )
    )
    datadog = DatadogLogsSink(
        DatadogLogsDestination.model_validate(
            {"id": "bench", "endpoint": url, "api_key": KEY, "schema": schema}
        )
    )
    azure = AzureMonitorLogsSink(
        azure_destination("https://127.0.0.1:9", None, schema=schema),
        authority=Authority("127.0.0.1:9"),
    )
    webhook = WebhookSink(webhook_destination(url, schema))
    return {
        "object_store": lambda b: [ndjson_of(batch_documents(b, schema))],
        "webhook": lambda b: [webhook.render(b)],
        "splunk_hec": splunk.render,
        "datadog_logs": lambda b: payloads(datadog.entries(b)),
        "azure_monitor_logs": lambda b: azure_bodies(azure.rows(b)),
    }


def wire_sizes(work: Sequence[Batch]) -> list[Size]:
    """Bytes of every schema's and output's bodies for ``work``, plain and gzip."""
    events = sum(len(b.events) for b in work)
    sizes = []
    for schema in SHAPES:
        for output, build in size_builders(schema).items():
            bodies = [body for batch in work for body in build(batch)]
            sizes.append(
                Size(
                    schema,
                    output,
                    events,
                    sum(len(b) for b in bodies),
                    sum(len(gzip_body(b)) for b in bodies),
                )
            )
    return sizes


# -- the report -----------------------------------------------------------------------------------


def report(rows: list[Row], meta: dict[str, Any]) -> list[str]:
    columns = [
        Column("output", 18, "<"),
        Column("variant", 12, "<"),
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


def size_report(sizes: list[Size]) -> list[str]:
    """One line per schema: plain / gzip bytes per event for each output."""
    columns = [Column("schema", 12, "<")] + [Column(o, 19) for o in SIZE_OUTPUTS]
    by_key = {(s.schema, s.output): s for s in sizes}
    cells = []
    for schema in SHAPES:
        line = [schema]
        for output in SIZE_OUTPUTS:
            s = by_key[(schema, output)]
            line.append(
                f"{num(s.plain_bytes / s.events, '.0f')} / {num(s.gzip_bytes / s.events, '.0f')}"
            )
        cells.append(line)
    return ["bytes per event, plain / gzip (level 6)", "", *table(columns, cells)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.siem_outputs",
        description=(
            "Events/s of the Splunk HEC, Datadog Logs, Azure Monitor Logs and webhook "
            "(Standard Webhooks) sinks into their emulators, beside a raw httpx POST loop of "
            "the same request bodies in the same run; then bytes on the wire per event for "
            "each schema and output, with and without gzip; then resident set sizes."
        ),
    )
    parser.add_argument("--events", type=int, default=20_000, help="events per row")
    parser.add_argument("--batch", type=int, default=1000, help="events per batch")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    parser.add_argument(
        "--serve",
        choices=EMULATORS,
        help="internal: run one emulator in this process (the benchmark starts these itself)",
    )
    parser.add_argument("--folder", type=Path, help="internal: with --serve, where the CA goes")
    args = parser.parse_args(argv)
    if args.serve:
        return serve(args.serve, args.folder or Path(tempfile.mkdtemp()))
    meta = run_meta("python -m bench.siem_outputs")
    progress(f"simulating {args.events} events")
    work = batches(decoded_events(args.events), args.batch)
    rows: list[Row] = []
    emulator_rss: dict[str, float] = {}
    for name, measure in (
        ("splunk_hec", splunk_rows),
        ("datadog_logs", datadog_rows),
        ("azure_monitor_logs", azure_rows),
        ("webhook", webhook_rows),
    ):
        with emulator(name) as collector:
            rows += measure(collector, work)
            emulator_rss[name] = collector.peak_rss_kib() / 1024
    progress("bytes per event")
    sizes = wire_sizes(work)
    for line in report(rows, {"batch": args.batch, "cpus": meta["cpus"]}):
        print(line)
    print(
        "raw: the sink's own requests (bodies and headers), built beforehand, POSTed in a loop "
        "(no rendering, compression, signing or acknowledgement polls); wire: request bodies as "
        "sent; json: the same bodies uncompressed; every event counted by the emulator"
    )
    print()
    for line in size_report(sizes):
        print(line)
    print(
        "object_store: the batch as one NDJSON object; webhook: its JSON array body (the sink "
        "never compresses it); the others: their request bodies"
    )
    print()
    rss = {"bench VmRSS": (status_kib("VmRSS") or 0) / 1024}
    rss["bench VmHWM"] = (status_kib("VmHWM") or 0) / 1024
    rss |= {f"{name} emulator VmHWM": mib for name, mib in emulator_rss.items()}
    print("RSS (MiB): " + ", ".join(f"{k} {v:.0f}" for k, v in rss.items()))
    if args.json is not None:
        write_json(
            args.json,
            {
                "meta": meta,
                "rows": [asdict(r) for r in rows],
                "sizes": [asdict(s) for s in sizes],
                "rss_mib": rss,
            },
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
