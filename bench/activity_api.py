"""The activity audit log's query API on a filled store: first-page latency of five typical
filters through the store and through HTTP, and CSV/NDJSON exports of a million rows through
HTTP beside a plain ``SELECT`` written by hand, with the API process's peak RSS.

It runs on a store a fill bench kept (the fill of a million events is done once per backend)::

    .venv/bin/python -m bench.store_indexing --events 1000000 --accounts 50 --keep /tmp/sq
    .venv/bin/python -m bench.activity_api --keep /tmp/sq
    .venv/bin/python -m bench.store_postgres --events 1000000 --accounts 50 --keep /tmp/pg
    .venv/bin/python -m bench.activity_api --keep /tmp/pg
    .venv/bin/python -m bench.activity_api --drop /tmp/pg     # removes what --keep left

1. **queries**: the fill bench's five filters of the busiest account (its events simulated again
   from the same seed): none, one actor, one category, a 7-day range, free text. The first page
   (100, newest first), 5 untimed asks, then ``--runs`` timed ones, in this process through
   the store's ``query``, then through ``auditstream api --store URL`` (its own process, on
   127.0.0.1, a real token, rate limits lifted) with one keep-alive HTTP client: p50 and p95.
2. **exports**: an account of ``--export-rows`` events (a store of its own beside the filled
   one, written once by plain inserts of the rows the store makes and kept: it is what is
   read that counts). For CSV and NDJSON in turn: a raw baseline in a child process (a plain
   ``SELECT`` of the same rows in the same order, written with ``csv.writer``, or the stored
   canonical JSON a line), then the API's export streamed to a file. rows/s counted in the
   written file; the API process's ``VmRSS`` sampled every 100 ms and its ``VmHWM`` (a new
   API process for each export, so the peak is the export's).

Progress goes to stderr, the tables to stdout. Everything listens on 127.0.0.1; the API
processes are stopped by their PIDs. Figures, never assertions.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import ctypes
import functools
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path
from typing import Any

import httpx
import psycopg

from auditstream.api.tokens import create_token
from auditstream.config.secrets import ENV_KEYS, SecretBox
from auditstream.pipeline.embedded_log import EmbeddedLog
from auditstream.store.open_store import open_store
from auditstream.store.postgres_store import PostgresStore
from auditstream.store.query import ActivityFilter, PageRequest
from bench import store_indexing, store_postgres
from bench.report import Column, latency_ms, num, per_second, progress, run_meta, table, write_json
from bench.store_indexing import positive
from devservices.local_process import terminate
from devservices.ports import free_port
from devservices.postgres import PostgresServer

EXPORT_ACCOUNT = "acct-export"
_EXPORT_DB = "bench_export"
_SAMPLE_S = 0.1
_API_START_S = 120.0
_RAW_CSV = (
    "SELECT occurred_at_us, event_id, category, activity, actor_user_id, actor_email, "
    "resource_type, resource_id, outcome, ip FROM events WHERE account_id = {p} "
    "ORDER BY occurred_at_us DESC, event_id DESC"
)
_RAW_NDJSON = (
    "SELECT canonical FROM events WHERE account_id = {p} "
    "ORDER BY occurred_at_us DESC, event_id DESC"
)


# -- pure functions ----------------------------------------------------------------------------


def status_kib(status_text: str) -> dict[str, int]:
    """The ``kB`` fields of a ``/proc/<pid>/status`` text (``VmRSS``, ``VmHWM``, ...) in KiB;
    lines of another shape are skipped."""
    fields = {}
    for line in status_text.splitlines():
        name, _, rest = line.partition(":")
        parts = rest.split()
        if len(parts) == 2 and parts[1] == "kB" and parts[0].isascii() and parts[0].isdigit():
            fields[name] = int(parts[0])
    return fields


def query_params(flt: ActivityFilter) -> tuple[tuple[str, str], ...]:
    """The query string of ``GET /v1/accounts/{id}/activity`` asking what ``flt`` asks of the
    store (the fields the five filters use). Raises ``ValueError`` for one it cannot say."""
    unsaid = (flt.activities, flt.resource_type, flt.resource_id, flt.outcome, flt.ip)
    if any(unsaid):
        raise ValueError(f"query_params says actors, categories, times and text only: {flt}")
    params = [("actor", a) for a in flt.actors] + [("category", c) for c in flt.categories]
    if flt.since is not None:
        params.append(("from", flt.since.astimezone(UTC).isoformat()))
    if flt.until is not None:
        params.append(("to", flt.until.astimezone(UTC).isoformat()))
    if flt.text is not None:
        params.append(("q", flt.text))
    return tuple(params)


def csv_data_rows(path: Path) -> int:
    """Rows of a CSV file after its header row (a quoted cell may hold line breaks)."""
    with path.open(newline="", encoding="utf-8-sig") as f:
        return max(0, sum(1 for _ in csv.reader(f)) - 1)


def line_count(path: Path) -> int:
    with path.open("rb") as f:
        return sum(1 for _ in f)


# -- the store a fill bench kept -----------------------------------------------------------------


@dataclass
class Target:
    """A kept store, opened: URLs of the filled store and of the export store (made on first
    use) for this process, the same for the API process (PostgreSQL: without the password,
    which ``env`` gives it as ``PGPASSWORD``, as a deployment does)."""

    fill: dict[str, Any]
    store_url: str
    export_url: str
    api_store_url: str
    api_export_url: str
    env: dict[str, str] = field(default_factory=dict)
    server: PostgresServer | None = None


def _server(keep: Path) -> PostgresServer:
    """The kept PostgreSQL server started again on its data (another port if its own is taken).

    Raises ``RuntimeError`` when it cannot start."""
    where = json.loads((keep / "server.json").read_text())
    server = PostgresServer(keep, Path(where["data_root"]), where["port"], where["password"])
    stop_leftover(server.data_dir)
    for attempt in range(3):
        try:
            server.restart()
            return server
        except RuntimeError:
            if attempt == 2:
                raise
            server.port = free_port()
    raise AssertionError("unreachable")


@contextlib.contextmanager
def opened(keep: Path) -> Iterator[Target]:
    """The kept store of ``keep`` (a PostgreSQL server is started and stopped again, its
    data kept). Raises ``SystemExit`` saying what to run when ``keep`` holds no fill."""
    refill = (
        "fill it first with `python -m bench.store_indexing --keep DIR` or "
        "`python -m bench.store_postgres --keep DIR`"
    )
    try:
        fill = json.loads((keep / "fill.json").read_text())
        backend, _, _, _ = fill["backend"], fill["events"], fill["accounts"], fill["days"]
        store = fill["store"] if backend == "sqlite" else fill["database"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SystemExit(f"{keep}: no readable fill.json ({exc!r}); {refill}") from None
    if backend == "sqlite" and not Path(store.removeprefix("sqlite:///")).is_file():
        raise SystemExit(f"{keep}: the kept store {store} is gone; {refill}")
    if fill["backend"] == "sqlite":
        export = f"sqlite:///{(keep / 'export.db').resolve()}"
        yield Target(fill, fill["store"], export, fill["store"], export)
        return
    server = _server(keep)
    try:
        base = f"postgresql://auditstream@127.0.0.1:{server.port}"
        yield Target(
            fill,
            server.dsn_for(fill["database"]),
            server.dsn_for(_EXPORT_DB),
            f"{base}/{fill['database']}",
            f"{base}/{_EXPORT_DB}",
            {"PGPASSWORD": server.password},
            server,
        )
    finally:
        server.stop_keeping_data()


def drop(keep: Path) -> None:
    """Remove what a fill bench's ``--keep`` left: a PostgreSQL data folder and ``keep``."""
    if (keep / "server.json").exists():
        where = json.loads((keep / "server.json").read_text())
        server = PostgresServer(keep, Path(where["data_root"]), where["port"], where["password"])
        stop_leftover(server.data_dir)
        server.stop()
    shutil.rmtree(keep)


def stop_leftover(data_dir: Path) -> None:
    """Shut down (SIGINT: PostgreSQL's fast shutdown) the postmaster a killed run left on
    ``data_dir``: the PID in its ``postmaster.pid``, if that process still works in
    ``data_dir`` (a PID the system gave to another process since is left alone)."""
    try:
        pid = int((data_dir / "postmaster.pid").read_text().splitlines()[0])
        if Path(f"/proc/{pid}/cwd").resolve() != data_dir.resolve():
            return
        os.kill(pid, signal.SIGINT)
    except (OSError, ValueError, IndexError):
        return
    progress(f"stopped the server an earlier run left (PID {pid})")
    deadline = time.monotonic() + 60
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)


def simulated_filters(fill: dict[str, Any]) -> dict[str, ActivityFilter]:
    """The fill bench's five filters, from its events simulated again."""
    if fill["backend"] == "sqlite":
        events = store_indexing.simulated(fill["events"], fill["days"], fill["accounts"])
        return store_indexing.typical_filters(events)[1]
    return store_postgres.typical_filters(
        store_postgres.simulated(fill["events"], fill["accounts"], fill["days"])
    )


# -- the export account ----------------------------------------------------------------------------


def export_events(rows: int) -> list[dict[str, Any]]:
    """``rows`` simulated events, all of one account, over 90 days."""
    events = store_indexing.simulated(rows, 90, 1)
    for event in events:
        event["account_id"] = EXPORT_ACCOUNT
    return events


def fill_export_store(target: Target, keep: Path, rows: int) -> None:
    """The export store of ``target`` with ``rows`` events of one account, unless it has them:
    plain inserts of the rows the store would write (how they got there is not measured)."""
    if target.server is not None:
        with contextlib.suppress(psycopg.errors.DuplicateDatabase):
            target.server.create_database(_EXPORT_DB)
    with contextlib.closing(open_store(target.export_url)) as store:
        store.migrate()
        if store.count(ActivityFilter(EXPORT_ACCOUNT)) == rows:
            return
    if target.server is not None:
        target.server.drop_database(_EXPORT_DB)
        target.server.create_database(_EXPORT_DB)
    else:
        (keep / "export.db").unlink()
    progress(f"export store: simulating {rows:,} events of one account")
    events = export_events(rows)
    first = min(e["occurred_at"] for e in events)
    last = max(e["occurred_at"] for e in events)
    if target.server is None:
        with contextlib.closing(open_store(target.export_url)) as store:
            store.migrate()
    else:
        with PostgresStore(target.export_url) as pg_store:
            pg_store.migrate()
            pg_store.create_months(first, last)
    progress("export store: inserting")
    if target.server is None:
        table_rows, texts = store_indexing.raw_rows(events)
        lite = sqlite3.connect(keep / "export.db", isolation_level=None)
        try:
            for start in range(0, rows, 50_000):
                end = start + 50_000
                store_indexing.raw_insert(lite, table_rows[start:end], texts[start:end])
        finally:
            lite.close()
    else:
        dsn = target.server.dsn_for(_EXPORT_DB)
        with psycopg.connect(dsn) as conn:
            for start in range(0, rows, 50_000):
                with conn.transaction(), conn.cursor().copy(store_postgres._COPY) as copy:
                    for row in store_postgres.raw_rows(events[start : start + 50_000]):
                        copy.write_row(row)
            conn.execute("ANALYZE events")
    progress(f"export store: {rows:,} events")


# -- the API process -------------------------------------------------------------------------------


@dataclass
class Api:
    process: subprocess.Popen[bytes]
    url: str
    token: str


_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: the child gets SIGKILL when this process ends, even by kill -9 (else an API
    process would outlive a killed run)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def start_child(args: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """``python args`` with its output appended to ``log``, ended with this process."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, *args], stdout=out, stderr=subprocess.STDOUT,
            env={**os.environ, **env}, preexec_fn=_die_with_parent,
        )  # fmt: skip


@contextlib.contextmanager
def api_on(store_url: str, account: str, work: Path, env: dict[str, str]) -> Iterator[Api]:
    """``auditstream api --store store_url`` on 127.0.0.1 with a token of ``account``'s admin
    and its read limits lifted; stopped by its PID at the end. Raises ``RuntimeError`` with
    the process's log when it does not answer ``/healthz`` within 120 s."""
    log_db = work / f"api-{time.monotonic_ns()}.sqlite"
    log = EmbeddedLog(log_db)
    try:
        token, _ = create_token(log, account_id=account, user_id="bench", role="admin")
    finally:
        log.close()
    port = free_port()
    unlimited = ["--activity-reads-per-second", "1000000", "--activity-read-burst", "1000000"]
    args = ["api", "--db", str(log_db), "--port", str(port), "--store", store_url, *unlimited]
    log_path = work / "api.log"
    process = start_child(
        ["-m", "auditstream", *args], log_path, {ENV_KEYS: SecretBox.generate_key(), **env}
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + _API_START_S
        while not _healthy(url):
            if process.poll() is not None or time.monotonic() > deadline:
                tail = log_path.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"the API did not start (log {log_path}):\n{tail}")
            time.sleep(0.2)
        yield Api(process, url, token)
    finally:
        terminate(process, 30.0)


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


class RssSampler:
    """Reads ``VmRSS`` and ``VmHWM`` of ``pid`` every 100 ms on a thread until stopped."""

    def __init__(self, pid: int) -> None:
        self._path = Path(f"/proc/{pid}/status")
        self._stop = threading.Event()
        self.peak_rss_kib = 0
        self.hwm_kib = 0
        self.samples = 0
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def __enter__(self) -> RssSampler:
        self._read()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._read()

    def _run(self) -> None:
        while not self._stop.wait(_SAMPLE_S):
            self._read()

    def _read(self) -> None:
        try:
            fields = status_kib(self._path.read_text())
        except OSError:
            return  # the process is gone: its last readings stand
        self.samples += 1
        self.peak_rss_kib = max(self.peak_rss_kib, fields.get("VmRSS", 0))
        self.hwm_kib = max(self.hwm_kib, fields.get("VmHWM", 0))


# -- measuring -------------------------------------------------------------------------------------


def timed(ask: Callable[[], object], runs: int) -> dict[str, Any]:
    for _ in range(5):
        ask()
    durations = []
    for _ in range(runs):
        began = time.perf_counter()
        ask()
        durations.append(time.perf_counter() - began)
    return latency_ms(durations)


def store_latencies(url: str, filters: dict[str, ActivityFilter], runs: int) -> dict[str, Any]:
    out = {}
    page = PageRequest(order="desc", limit=100)
    with contextlib.closing(open_store(url)) as store:
        for name, flt in filters.items():
            out[name] = {**timed(functools.partial(store.query, flt, page), runs),
                         "total": store.count(flt)}  # fmt: skip
    return out


def http_latencies(api: Api, filters: dict[str, ActivityFilter], runs: int) -> dict[str, Any]:
    out = {}
    headers = {"Authorization": f"Bearer {api.token}"}
    with httpx.Client(base_url=api.url, headers=headers, timeout=60) as client:
        for name, flt in filters.items():
            path = f"/v1/accounts/{flt.account_id}/activity"
            params = httpx.QueryParams(query_params(flt))

            def ask(path: str = path, params: httpx.QueryParams = params) -> object:
                answer = client.get(path, params=params)
                answer.raise_for_status()
                return answer.content

            out[name] = timed(ask, runs)
    return out


def http_export(api: Api, fmt: str, out: Path) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {api.token}"}
    path = f"/v1/accounts/{EXPORT_ACCOUNT}/activity/export"
    with RssSampler(api.process.pid) as rss:
        start_rss = rss.peak_rss_kib
        began = time.perf_counter()
        with (
            httpx.Client(base_url=api.url, headers=headers, timeout=120) as client,
            client.stream("GET", path, params={"format": fmt}) as answer,
            out.open("wb") as f,
        ):
            answer.raise_for_status()
            for chunk in answer.iter_bytes(1 << 16):
                f.write(chunk)
        seconds = time.perf_counter() - began
    rows = csv_data_rows(out) if fmt == "csv" else line_count(out)
    return {"rows": rows, "seconds": seconds, "rows_per_s": per_second(rows, seconds),
            "bytes": out.stat().st_size, "start_rss_mib": start_rss / 1024,
            "peak_rss_mib": rss.peak_rss_kib / 1024, "vm_hwm_mib": rss.hwm_kib / 1024,
            "samples": rss.samples}  # fmt: skip


def raw_export(url: str, fmt: str, out: Path) -> dict[str, Any]:
    """The raw baseline in a child process of its own (its peak RSS is its own)."""
    log = out.with_suffix(".log")
    child = start_child(["-m", "bench.activity_api", "--raw-export", url, fmt, str(out)], log, {})
    if child.wait() != 0:
        raise RuntimeError(f"the raw export failed:\n{log.read_text(errors='replace')[-3000:]}")
    figures: dict[str, Any] = json.loads(log.read_text().splitlines()[-1])
    figures["rows_per_s"] = per_second(figures["rows"], figures["seconds"])
    figures["bytes"] = out.stat().st_size
    return figures


def _raw_export_child(url: str, fmt: str, out: Path) -> None:
    """A plain ``SELECT`` of the export rows in the export's order, written to ``out``."""
    began = time.perf_counter()
    rows = 0
    with out.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        if fmt == "csv":
            writer.writerow(["occurred_at_us", "event_id", "category", "activity",
                             "actor_user_id", "actor_email", "resource_type", "resource_id",
                             "outcome", "ip"])  # fmt: skip
        for row in _raw_rows(url, _RAW_CSV if fmt == "csv" else _RAW_NDJSON):
            if fmt == "csv":
                writer.writerow(row)
            else:
                canonical = row[0]
                f.write(canonical.decode() if isinstance(canonical, bytes) else canonical)
                f.write("\n")
            rows += 1
    seconds = time.perf_counter() - began
    # VmHWM, not ru_maxrss: Linux carries the parent's peak (this child was forked from a
    # process holding a million simulated events) into ru_maxrss across exec.
    peak = status_kib(Path("/proc/self/status").read_text()).get("VmHWM", 0) / 1024
    print(json.dumps({"rows": rows, "seconds": seconds, "peak_rss_mib": peak}))


def _raw_rows(url: str, select: str) -> Iterator[Sequence[Any]]:
    if url.startswith("sqlite:///"):
        lite = sqlite3.connect(url.removeprefix("sqlite:///"))
        try:
            yield from lite.execute(select.format(p="?"), (EXPORT_ACCOUNT,))
        finally:
            lite.close()
        return
    with (
        psycopg.connect(url) as conn,
        conn.transaction(),
        conn.cursor(name="raw_export") as cursor,
    ):
        cursor.itersize = 1000
        cursor.execute(select.format(p="%s"), (EXPORT_ACCOUNT,))
        yield from cursor


# -- the run ---------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n\n".join(__doc__.split("\n\n")[1:]),
    )  # fmt: skip
    parser.add_argument("--keep", type=Path, metavar="DIR", help="a store a fill bench kept")
    parser.add_argument("--drop", type=Path, metavar="DIR", help="remove a kept store and stop")
    parser.add_argument("--runs", type=positive, default=100, help="timed asks of each query")
    parser.add_argument(
        "--export-rows", type=positive, default=1_000_000, help="events of the export account"
    )
    parser.add_argument(
        "--formats", default="csv,ndjson", help="export formats, comma-separated (csv,ndjson)"
    )
    parser.add_argument("--skip-queries", action="store_true", help="the exports only")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    parser.add_argument("--raw-export", nargs=3, metavar=("URL", "FORMAT", "FILE"),
                        help=argparse.SUPPRESS)  # fmt: skip
    args = parser.parse_args(argv)
    # A TERM ends the run through its cleanups (the API process, the server's shutdown).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.raw_export:
        url, fmt, out = args.raw_export
        _raw_export_child(url, fmt, Path(out))
        return 0
    if args.drop is not None:
        drop(args.drop)
        return 0
    if args.keep is None:
        parser.error("name the kept store: --keep DIR (or --drop DIR)")
    formats = [f for f in args.formats.split(",") if f]
    if not set(formats) <= {"csv", "ndjson"}:
        parser.error(f"--formats: csv and/or ndjson, not {args.formats!r}")
    meta = run_meta("python -m bench.activity_api")
    figures: dict[str, Any] = {"meta": meta, "load": {}}
    with opened(args.keep) as target, tempfile.TemporaryDirectory(prefix="bench-api-") as work:
        figures["fill"] = target.fill
        if not args.skip_queries:
            figures["queries"] = measure_queries(target, args.runs, Path(work))
        if formats:
            fill_export_store(target, args.keep, args.export_rows)
            figures["exports"] = measure_exports(target, formats, Path(work))
    report(figures, args.runs)
    if args.json:
        write_json(args.json, figures)
    return 0


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def measure_queries(target: Target, runs: int, work: Path) -> dict[str, Any]:
    progress(f"simulating the fill's {target.fill['events']:,} events again for its filters")
    filters = simulated_filters(target.fill)
    progress(f"first pages through the store, load {load()}")
    through_store = store_latencies(target.store_url, filters, runs)
    account = next(iter(filters.values())).account_id
    progress(f"first pages through HTTP, load {load()}")
    with api_on(target.api_store_url, account, work, target.env) as api:
        through_http = http_latencies(api, filters, runs)
    return {"account": account, "runs": runs, "store": through_store, "http": through_http,
            "load": load()}  # fmt: skip


def measure_exports(target: Target, formats: list[str], work: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for fmt in formats:
        progress(f"{fmt}: raw SELECT, load {load()}")
        raw = raw_export(target.export_url, fmt, work / f"raw.{fmt}")
        (work / f"raw.{fmt}").unlink()
        progress(f"{fmt}: through the API, load {load()}")
        with api_on(target.api_export_url, EXPORT_ACCOUNT, work, target.env) as api:
            through_api = http_export(api, fmt, work / f"api.{fmt}")
        (work / f"api.{fmt}").unlink()
        out[fmt] = {"raw": raw, "api": through_api, "load": load()}
        progress(f"{fmt}: {through_api['rows']:,} rows, {through_api['rows_per_s']:,.0f}/s")
    return out


def report(figures: dict[str, Any], runs: int) -> None:
    fill = figures["fill"]
    print(f"{fill['backend']}: {fill['events']:,} events of {fill['accounts']} accounts")
    queries = figures.get("queries")
    if queries:
        print(f"first page (100, newest first) of {queries['account']}, {runs} runs each, "
              f"ms, load {queries['load']}")  # fmt: skip
        for line in table(
            [Column("filter", 24, "<"), Column("store p50", 9), Column("store p95", 9),
             Column("HTTP p50", 9), Column("HTTP p95", 9), Column("matching", 9)],
            [[name, num(s["p50_ms"], ".2f"), num(s["p95_ms"], ".2f"),
              num(queries["http"][name]["p50_ms"], ".2f"),
              num(queries["http"][name]["p95_ms"], ".2f"), f"{s['total']:,}"]
             for name, s in queries["store"].items()],
        ):  # fmt: skip
            print(line)
    for fmt, e in figures.get("exports", {}).items():
        raw, api = e["raw"], e["api"]
        print(f"{fmt} export of {api['rows']:,} rows, load {e['load']}")
        for line in table(
            [Column("path", 28, "<"), Column("rows", 10), Column("rows/s", 9),
             Column("s", 6), Column("MB", 6), Column("peak RSS MiB", 12)],
            [["raw SELECT + writer", f"{raw['rows']:,}", num(raw["rows_per_s"], ",.0f"),
              num(raw["seconds"], ".1f"), num(raw["bytes"] / 1e6, ".0f"),
              num(raw["peak_rss_mib"], ".0f")],
             ["API export over HTTP", f"{api['rows']:,}", num(api["rows_per_s"], ",.0f"),
              num(api["seconds"], ".1f"), num(api["bytes"] / 1e6, ".0f"),
              f"{api['peak_rss_mib']:.0f} (HWM {api['vm_hwm_mib']:.0f})"]],
        ):  # fmt: skip
            print(line)
        print(f"ratio API/raw: {api['rows_per_s'] / raw['rows_per_s']:.2f}; API RSS before "
              f"the export {api['start_rss_mib']:.0f} MiB\n")  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
