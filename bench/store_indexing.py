"""Audit store bench: appending simulated events into the SQLite store, next to a raw
``executemany`` of the same rows into the same tables, and first-page query latencies.

Both inserts run in this process on fresh files with the same schema and pragmas (WAL,
``synchronous=FULL``) in transactions of ``--batch`` rows, events and free text alike, batch by
batch in turn (raw, then store) so both see the same disk load. The raw
side gets its rows computed beforehand (columns, canonical bytes, chain hashes) and only inserts
them; the store side is ``SqliteStore.append`` doing everything it does for the indexer
(duplicate lookup, canonical bytes, hashes, free text, chain heads). The simulator's timestamps
(about 20 events a second) are spread evenly over ``--days`` days so that a 7-day range is a
range. Query latencies are of the first page (100 events, newest first) of five filters on
the busiest account, each asked ``--repeat`` times.

``--keep DIR`` keeps the filled store as ``DIR/store.db`` and what made it in ``DIR/fill.json``,
so that ``bench.activity_api`` measures the query API on it without filling it again.

    .venv/bin/python -m bench.store_indexing                 # 200,000 events of 20 accounts
    .venv/bin/python -m bench.store_indexing --events 20000
    .venv/bin/python -m bench.store_indexing --events 1000000 --accounts 50 --keep /tmp/sq
"""

from __future__ import annotations

import argparse
import gc
import json
import shutil
import sqlite3
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from auditstream.producers.simulator import Simulator, SimulatorConfig
from auditstream.store import sqlite_schema
from auditstream.store.event_columns import columns_of
from auditstream.store.hash_chain import GENESIS, link
from auditstream.store.query import ActivityFilter, PageRequest
from auditstream.store.sqlite_store import SqliteStore
from bench.report import progress

START = datetime(2026, 8, 1, tzinfo=UTC)


def positive(text: str) -> int:
    """An option's whole number of at least 1 (for ``argparse``)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a whole number, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"at least 1, not {value}")
    return value


def account_names(count: int) -> list[str]:
    return [f"acct-{i:02d}" for i in range(count)]


def simulated(count: int, days: int, accounts: int = 20) -> list[dict[str, Any]]:
    """The simulator's events (seeded) of ``accounts`` accounts, spread over ``days`` days."""
    sim = Simulator(SimulatorConfig(accounts=account_names(accounts), seed=7, start=START))
    events: list[dict[str, Any]] = [dict(e) for e in sim.events(count)]
    step = timedelta(days=days) / max(1, count)
    for i, event in enumerate(events):
        shift = START + step * i - event["recorded_at"]
        event["occurred_at"] += shift
        event["recorded_at"] += shift
    return events


def raw_rows(events: list[dict[str, Any]]) -> tuple[list[tuple[Any, ...]], list[tuple[int, str]]]:
    heads: dict[str, tuple[int, str]] = {}
    rows, texts = [], []
    for row_id, event in enumerate(events, start=1):
        col = columns_of(event)
        seq, prev = heads.get(col.account_id, (0, GENESIS))
        hash_ = link(prev, col.canonical)
        heads[col.account_id] = (seq + 1, hash_)
        rows.append(
            (row_id, col.account_id, seq + 1, col.event_id, col.occurred_at_us, col.category,
             col.activity, col.actor_user_id, col.actor_email, col.resource_type,
             col.resource_id, col.outcome, col.ip, col.canonical, prev, hash_)
        )  # fmt: skip
        texts.append((row_id, col.text))
    return rows, texts


def raw_connection(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    sqlite_schema.migrate(conn)
    return conn


def raw_insert(
    conn: sqlite3.Connection, rows: list[tuple[Any, ...]], texts: list[tuple[int, str]]
) -> None:
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany(
        "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows
    )
    conn.executemany("INSERT INTO events_text (rowid, body) VALUES (?, ?)", texts)
    conn.execute("COMMIT")


def insert_both(folder: Path, events: list[dict[str, Any]], batch: int) -> tuple[float, float]:
    """Seconds of the raw inserts and of ``SqliteStore.append``, batch by batch in turn, so
    that both see the same disk and the same neighbours on a shared machine."""
    rows, texts = raw_rows(events)
    conn = raw_connection(folder / "raw.db")
    store = SqliteStore(folder / "store.db")
    raw_s = store_s = 0.0
    try:
        gc.collect()
        gc.disable()
        for start in range(0, len(events), batch):
            end = start + batch
            began = time.perf_counter()
            raw_insert(conn, rows[start:end], texts[start:end])
            middle = time.perf_counter()
            store.append(events[start:end])
            raw_s += middle - began
            store_s += time.perf_counter() - middle
            if (start // batch) % 100 == 99:
                progress(f"inserted {end:,} of {len(events):,} both ways")
    finally:
        gc.enable()
        conn.close()
        store.close()
    return raw_s, store_s


def typical_filters(events: list[dict[str, Any]]) -> tuple[str, dict[str, ActivityFilter]]:
    """The busiest account and five filters a viewer asks of it."""
    account = Counter(e["account_id"] for e in events).most_common(1)[0][0]
    mine = [e for e in events if e["account_id"] == account]
    actor = Counter(e["actor"]["user_id"] for e in mine if e["actor"]["user_id"] != "system")
    category = Counter(e["category"] for e in mine).most_common(2)[-1][0]
    words = Counter(
        word
        for e in mine
        if e["resource"] and e["resource"]["name"]
        for word in e["resource"]["name"].split()
        if len(word) > 4
    )
    middle = mine[len(mine) // 2]["occurred_at"]
    return account, {
        "no filter": ActivityFilter(account),
        "one actor": ActivityFilter(account, actors=(actor.most_common(5)[-1][0],)),
        "one category": ActivityFilter(account, categories=(category,)),
        "7-day range": ActivityFilter(account, since=middle, until=middle + timedelta(days=7)),
        "free text": ActivityFilter(account, text=words.most_common(10)[-1][0]),
    }


def latencies(query: Callable[[], object], repeat: int) -> tuple[float, float]:
    """p50 and p95 in milliseconds."""
    query()  # the first asks warm the page cache, as a viewer's later pages find it
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        query()
        times.append((time.perf_counter() - began) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.95))]


def _first_page(store: SqliteStore, flt: ActivityFilter) -> Callable[[], object]:
    return lambda: store.query(flt, PageRequest(limit=100))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=positive, default=200_000, help="events (default 200,000)")
    parser.add_argument("--accounts", type=positive, default=20, help="accounts (default 20)")
    parser.add_argument("--batch", type=int, default=1000, help="rows per transaction")
    parser.add_argument("--days", type=int, default=90, help="days the events span")
    parser.add_argument("--repeat", type=int, default=50, help="asks of each query")
    parser.add_argument("--dir", type=Path, help="where the files go (default: a temp folder)")
    parser.add_argument(
        "--keep",
        type=Path,
        metavar="DIR",
        help="keep the filled store as DIR/store.db (DIR must be empty or new), with "
        "DIR/fill.json saying how it was made, for bench.activity_api",
    )
    args = parser.parse_args(argv)
    if args.keep is not None and args.keep.exists() and any(args.keep.iterdir()):
        parser.error(f"--keep {args.keep}: the folder is not empty; name a new one")

    print(f"simulating {args.events} events over {args.days} days, {args.accounts} accounts")
    events = simulated(args.events, args.days, args.accounts)
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        raw_s, store_s = insert_both(Path(folder), events, args.batch)
        (Path(folder) / "raw.db").unlink()
        raw_eps, store_eps = len(events) / raw_s, len(events) / store_s
        print(f"raw executemany     : {raw_eps:10,.0f} events/s ({raw_s:.2f} s)")
        print(f"SqliteStore.append  : {store_eps:10,.0f} events/s ({store_s:.2f} s)")
        print(f"ratio store/raw     : {store_eps / raw_eps:10.2f} (goal >= 0.70)")
        size = sum(p.stat().st_size for p in Path(folder).glob("store.db*"))
        print(f"store file          : {size / len(events):10,.0f} bytes/event")

        account, filters = typical_filters(events)
        store = SqliteStore(Path(folder) / "store.db")
        try:
            total = store.count(ActivityFilter(account))
            print(f"first page (100, newest first) of {account} ({total} events), ms:")
            for name, flt in filters.items():
                p50, p95 = latencies(_first_page(store, flt), args.repeat)
                matched = store.count(flt)
                print(f"  {name:13}: p50 {p50:7.2f}  p95 {p95:7.2f}   ({matched} match)")
        finally:
            store.close()
        if args.keep is not None:
            keep_store(Path(folder), args.keep, args)
    return 0


def keep_store(folder: Path, keep: Path, args: argparse.Namespace) -> None:
    keep.mkdir(parents=True, exist_ok=True)
    for path in folder.glob("store.db*"):
        shutil.move(path, keep / path.name)
    fill = {"backend": "sqlite", "events": args.events, "accounts": args.accounts,
            "days": args.days, "store": f"sqlite:///{(keep / 'store.db').resolve()}"}  # fmt: skip
    (keep / "fill.json").write_text(json.dumps(fill, indent=2))
    print(f"store kept in {keep} (remove the folder when done)")


if __name__ == "__main__":
    raise SystemExit(main())
