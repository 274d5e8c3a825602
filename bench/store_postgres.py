"""The audit store on PostgreSQL: ``PostgresStore.append`` beside a raw ``COPY`` of the same rows,
then first-page query latency for five typical filters.

Run from the repository root::

    .venv/bin/python -m bench.store_postgres [--events 200000] [--accounts 20] [--json FILE]
    .venv/bin/python -m bench.store_postgres --events 1000000 --accounts 50 --keep /tmp/pg

A server of its own (``devservices.postgres``: Debian's binaries, 127.0.0.1, fsync off) holds two
databases with the store's tables and the same month partitions made beforehand. The events are
the simulator's (``--accounts`` accounts, seeded), their times stretched over ``--days`` days so
that they fill several month partitions as a real store does.

1. **append**: batches of ``--batch`` events, in turns: ``PostgresStore.append`` into one
   database (reading the fields, canonical bytes, free text, duplicate lookup and chain lock,
   hashes, ``COPY``, chain head update), then a plain ``COPY`` of the very rows the store wrote
   (built beforehand, untimed) into a second, then a ``COPY`` of the same rows built from the
   events inside the timed part (fields, canonical bytes, free text, hashes) into a third; one
   transaction each. events/s of the three; the store's ratio to both raw paths.
2. **queries**: after ``ANALYZE``, the first page (100 events, newest first) of the busiest
   account for five filters: none, one actor, one category, a 7-day range, free text; 5
   untimed runs, then ``--runs`` timed ones: p50 and p95.

``--keep DIR`` stops the server at the end without removing its data and writes how to start it
again to ``DIR/server.json`` (with the filled database's name in ``DIR/fill.json``), so that
``bench.activity_api --keep DIR`` measures the query API on the filled store;
``bench.activity_api --drop DIR`` removes it.

Figures, never assertions.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from auditstream.producers.simulator import Simulator, SimulatorConfig
from auditstream.store.event_columns import columns_of
from auditstream.store.hash_chain import GENESIS, link
from auditstream.store.postgres_filters import no_nul
from auditstream.store.postgres_store import PostgresStore
from auditstream.store.postgres_text import document
from auditstream.store.query import ActivityFilter, PageRequest
from bench.report import Column, latency_ms, num, per_second, progress, run_meta, table, write_json
from bench.store_indexing import positive
from devservices.postgres import PostgresServer

START = datetime(2026, 6, 1, tzinfo=UTC)
_COPY = (
    "COPY events (account_id, seq, event_id, occurred_at_us, category, activity, "
    "actor_user_id, actor_email, resource_type, resource_id, outcome, ip, search, canonical, "
    "prev_hash, hash) FROM STDIN"
)


def simulated(count: int, accounts: int, days: int) -> list[dict[str, Any]]:
    """The simulator's events, their receive times stretched from ~20 a second to ``days``
    days (a late event stays as late as the simulator made it)."""
    names = [f"acct-{i:03d}" for i in range(accounts)]
    sim = Simulator(SimulatorConfig(accounts=names, seed=7, start=START, late_fraction=0.01))
    events: list[dict[str, Any]] = [dict(e) for e in sim.events(count)]
    last = max(e["recorded_at"] for e in events)
    factor = days * 86_400 / max(1.0, (last - START).total_seconds())
    for event in events:
        lateness = event["recorded_at"] - event["occurred_at"]
        event["recorded_at"] = START + (event["recorded_at"] - START) * factor
        event["occurred_at"] = event["recorded_at"] - lateness
    return events


def raw_rows(events: Sequence[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """The rows the store writes for ``events`` (in order, no duplicates among them)."""
    heads: dict[str, tuple[int, str]] = {}
    rows = []
    for index, event in enumerate(events):
        col = columns_of(event, index)
        seq, prev = heads.get(col.account_id, (0, GENESIS))
        hash_ = link(prev, col.canonical)
        heads[col.account_id] = (seq + 1, hash_)
        rows.append(
            (
                no_nul(col.account_id), seq + 1, col.event_id, col.occurred_at_us,
                col.category, col.activity, col.actor_user_id, col.actor_email,
                col.resource_type, col.resource_id, col.outcome, col.ip, document(col.text),
                col.canonical, prev, hash_,
            )
        )  # fmt: skip
    return rows


def append_all(
    store: PostgresStore, raw_dsn: str, built_dsn: str, events: list[dict[str, Any]], batch: int
) -> dict[str, Any]:
    """Each batch three ways in turn: the store, a COPY of its prebuilt rows, and a COPY of
    rows built from the events in the timed part (what any loader of events pays)."""
    rows = raw_rows(events)
    store_s = raw_s = built_s = 0.0
    with psycopg.connect(raw_dsn) as raw, psycopg.connect(built_dsn) as built:
        for start in range(0, len(events), batch):
            began = time.perf_counter()
            store.append(events[start : start + batch])
            store_s += time.perf_counter() - began
            began = time.perf_counter()
            with raw.transaction(), raw.cursor().copy(_COPY) as copy:
                for row in rows[start : start + batch]:
                    copy.write_row(row)
            raw_s += time.perf_counter() - began
            began = time.perf_counter()
            with built.transaction(), built.cursor().copy(_COPY) as copy:
                for row in raw_rows(events[start : start + batch]):
                    copy.write_row(row)
            built_s += time.perf_counter() - began
            if (start // batch) % 20 == 0:
                progress(f"appended {start + batch:,} of {len(events):,}")
    rate = {k: per_second(len(events), v) for k, v in (("store", store_s), ("raw", raw_s),
                                                       ("built", built_s))}  # fmt: skip
    return {
        "events": len(events),
        "batch": batch,
        "store_s": store_s,
        "raw_s": raw_s,
        "raw_built_s": built_s,
        "store_events_per_s": rate["store"],
        "raw_events_per_s": rate["raw"],
        "raw_built_events_per_s": rate["built"],
        "ratio": rate["store"] / rate["raw"],
        "ratio_to_built": rate["store"] / rate["built"],
    }


def typical_filters(events: list[dict[str, Any]]) -> dict[str, ActivityFilter]:
    """Five filters a reader of the busiest account would use."""
    account = Counter(e["account_id"] for e in events).most_common(1)[0][0]
    mine = [e for e in events if e["account_id"] == account]
    actor = Counter(e["actor"]["user_id"] for e in mine).most_common(2)[-1][0]
    category = Counter(e["category"] for e in mine).most_common(2)[-1][0]
    middle = sorted(e["occurred_at"] for e in mine)[len(mine) // 2]
    names = Counter(
        word.lower()
        for e in mine
        if e["resource"] and e["resource"]["name"]
        for word in e["resource"]["name"].split()
        if len(word) > 4
    )
    word = names.most_common(5)[-1][0]
    return {
        "no filter": ActivityFilter(account),
        "one actor": ActivityFilter(account, actors=(actor,)),
        "one category": ActivityFilter(account, categories=(category,)),
        "7-day range": ActivityFilter(account, since=middle, until=middle + timedelta(days=7)),
        f"text {word!r}": ActivityFilter(account, text=word),
    }


def time_queries(
    store: PostgresStore, filters: dict[str, ActivityFilter], runs: int
) -> dict[str, dict[str, Any]]:
    out = {}
    for name, flt in filters.items():
        page = PageRequest(order="desc", limit=100)
        for _ in range(5):
            store.query(flt, page)
        durations = []
        for _ in range(runs):
            began = time.perf_counter()
            found = store.query(flt, page)
            durations.append(time.perf_counter() - began)
        out[name] = {**latency_ms(durations), "rows": len(found.events), "total": store.count(flt)}
    return out


@contextlib.contextmanager
def server_in(keep: Path | None) -> Iterator[PostgresServer]:
    """A new server: removed at the end, or with ``keep`` stopped with its data kept and
    ``keep/server.json`` saying where it is."""
    if keep is None:
        with (
            tempfile.TemporaryDirectory(prefix="bench-pg-") as work,
            PostgresServer.start(Path(work)) as server,
        ):
            yield server
        return
    keep.mkdir(parents=True, exist_ok=True)
    server = PostgresServer.start(keep)
    try:
        # Written first, so that `bench.activity_api --drop` finds a server a killed run left.
        where = {"data_root": str(server.data_dir.parent), "port": server.port,
                 "password": server.password}  # fmt: skip
        (keep / "server.json").touch(0o600)
        (keep / "server.json").write_text(json.dumps(where, indent=2))
        yield server
    except BaseException:
        server.stop()
        raise
    server.stop_keeping_data()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=positive, default=200_000, help="events (default 200,000)")
    parser.add_argument("--batch", type=int, default=1_000, help="events a transaction")
    parser.add_argument("--accounts", type=positive, default=20, help="accounts (default 20)")
    parser.add_argument("--days", type=int, default=120, help="days the events span")
    parser.add_argument("--runs", type=int, default=100, help="timed asks of each query")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    parser.add_argument(
        "--keep",
        type=Path,
        metavar="DIR",
        help="keep the server's data (DIR must be empty or new) for bench.activity_api",
    )
    args = parser.parse_args(argv)
    if args.keep is not None and args.keep.exists() and any(args.keep.iterdir()):
        parser.error(f"--keep {args.keep}: the folder is not empty; name a new one")
    meta = run_meta("python -m bench.store_postgres")
    progress(f"simulating {args.events:,} events")
    events = simulated(args.events, args.accounts, args.days)
    first = min(e["occurred_at"] for e in events)
    last = max(e["occurred_at"] for e in events)
    with server_in(args.keep) as server:
        store_dsn = server.create_database("bench_store")
        raw_dsn = server.create_database("bench_raw")
        built_dsn = server.create_database("bench_built")
        for dsn in (raw_dsn, built_dsn):
            with PostgresStore(dsn) as raw_side:
                raw_side.migrate()
                raw_side.create_months(first, last)
        with PostgresStore(store_dsn) as store:
            store.migrate()
            months = store.create_months(first, last)
            progress(f"{months} month partitions; appending")
            append = append_all(store, raw_dsn, built_dsn, events, args.batch)
            with psycopg.connect(store_dsn, autocommit=True) as conn:
                conn.execute("ANALYZE")
            progress("timing queries")
            queries = time_queries(store, typical_filters(events), args.runs)
        if args.keep is not None:
            server.drop_database("bench_raw")
            server.drop_database("bench_built")
            fill = {"backend": "postgres", "events": args.events, "accounts": args.accounts,
                    "days": args.days, "database": "bench_store"}  # fmt: skip
            (args.keep / "fill.json").write_text(json.dumps(fill, indent=2))
    print(
        f"append: {append['events']:,} events in batches of {append['batch']:,} "
        f"over {months} months, {args.accounts} accounts"
    )
    for line in table(
        [Column("path", 34, "<"), Column("events/s", 10), Column("seconds", 8)],
        [
            ["PostgresStore.append", num(append["store_events_per_s"], ",.0f"),
             num(append["store_s"], ".1f")],
            ["raw COPY of the same rows", num(append["raw_events_per_s"], ",.0f"),
             num(append["raw_s"], ".1f")],
            ["raw COPY, rows built in the loop", num(append["raw_built_events_per_s"], ",.0f"),
             num(append["raw_built_s"], ".1f")],
        ],
    ):  # fmt: skip
        print(line)
    print(f"ratio store/raw: {append['ratio']:.2f}; store/raw with rows built: "
          f"{append['ratio_to_built']:.2f}\n")  # fmt: skip
    print(f"first page (100, newest first), {args.runs} runs each")
    for line in table(
        [Column("filter", 24, "<"), Column("p50 ms", 8), Column("p95 ms", 8),
         Column("rows", 5), Column("matching", 9)],
        [[name, num(q["p50_ms"], ".2f"), num(q["p95_ms"], ".2f"), str(q["rows"]),
          f"{q['total']:,}"] for name, q in queries.items()],
    ):  # fmt: skip
        print(line)
    if args.json:
        write_json(args.json, {"meta": meta, "append": append, "queries": queries})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
