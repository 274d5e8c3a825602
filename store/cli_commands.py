"""``auditstream indexer`` and ``auditstream store migrate|retention|verify|retention-override``.

The indexer fills the audit store from the activity topic; the ``store`` commands manage the
store itself. ``--store`` takes ``sqlite:///path.db``, a file path or ``postgresql://...``, by
default ``$AUDITSTREAM_STORE`` or ``sqlite:///auditstream-audit.db``.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from auditstream.store.base import DEFAULT_RETENTION_DAYS
from auditstream.store.open_store import DEFAULT_STORE, STORE_ENV, default_store_url, open_store
from auditstream.store.query import Checkpoint
from auditstream.store.sqlite_store import MAX_RETENTION_DAYS

RuntimeOf = Callable[[argparse.Namespace], Any]
AddBackendArgs = Callable[[argparse.ArgumentParser], None]

log = logging.getLogger("auditstream")


def shown_url(url: str) -> str:
    """``url`` without a password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _days(text: str) -> int:
    try:
        days = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of days") from None
    if not 1 <= days <= MAX_RETENTION_DAYS:
        raise argparse.ArgumentTypeError(f"days must be from 1 to {MAX_RETENTION_DAYS}")
    return days


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO-8601 time, e.g. 2027-01-31T00:00:00Z"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _account(text: str) -> str:
    if not text.strip() or len(text) > 256:
        raise argparse.ArgumentTypeError("an account id is 1 to 256 characters")
    return text


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError("cannot be negative")
    return value


def _store_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--store",
        default=None,
        help=f"the audit store: sqlite:///path.db, a file path, or postgresql://user@host/db "
        f"(default: ${STORE_ENV}, else {DEFAULT_STORE}; now "
        # argparse formats help with %: a percent-encoded URL must not break --help
        f"{shown_url(default_store_url()).replace('%', '%%')})",
    )


# -- commands ------------------------------------------------------------------------------------


def cmd_migrate(args: argparse.Namespace) -> int:
    store = open_store(args.store)
    try:
        store.migrate()
    finally:
        store.close()
    print(f"audit store {shown_url(args.store or default_store_url())}: tables up to date")
    return 0


def cmd_retention(args: argparse.Namespace) -> int:
    now = args.now or datetime.now(UTC)
    store = open_store(args.store)
    deleted, accounts = 0, 0
    try:
        while True:
            result = store.apply_retention(now, args.batch_size)
            deleted, accounts = deleted + result.deleted, accounts + result.accounts
            if result.complete:
                break
    finally:
        store.close()
    print(f"deleted {deleted} expired events of {accounts} accounts (as of {now.isoformat()})")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    store = open_store(args.store)
    try:
        result = store.verify(args.account)
        if result.ok:
            print(f"account {args.account!r}: {result.rows} events, hash chain intact")
            return 0
        seq = result.first_bad_seq or 0
        found = store.after(args.account, Checkpoint(seq - 1), 1).events if seq else []
        event = f", event {found[0].event_id}" if found and found[0].seq == seq else ""
        print(
            f"account {args.account!r}: hash chain broken at seq {seq}{event}: "
            f"{result.problem} ({result.detail}); {result.rows} events read"
        )
        return 1
    finally:
        store.close()


def cmd_retention_override(args: argparse.Namespace) -> int:
    store = open_store(args.store)
    try:
        store.set_retention(args.account, None if args.default else args.days)
        days = store.retention_days(args.account)
    finally:
        store.close()
    note = " (the default)" if args.default else ""
    print(f"account {args.account!r}: events kept {days} days from the event{note}")
    return 0


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def handler(_sig: int, _frame: object) -> None:
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)
    return stop


def cmd_indexer(args: argparse.Namespace, runtime: RuntimeOf) -> int:
    from auditstream.pipeline.health_server import ProcessHealth
    from auditstream.pipeline.open_log import open_log
    from auditstream.store.indexer import INDEXER_GROUP, Indexer, IndexerOptions

    settings = runtime(args)
    options = IndexerOptions(
        batch_size=args.batch_size,
        retention_interval_s=args.retention_interval,
    )
    health = ProcessHealth(settings.metrics_host, settings.metrics_port, stale_after=60.0)
    try:
        store = open_store(args.store)
        try:
            log_backend = open_log(settings)
            try:
                indexer = Indexer(
                    health.observe(log_backend, INDEXER_GROUP, poll_is_progress=True),
                    store,
                    options,
                    activity_partitions=settings.activity_partitions,
                )
                stop = _stop_on_signals()
                health.readiness.follow_stop(stop.is_set)
                log.info(
                    "indexer running: %s into %s",
                    settings.backend,
                    shown_url(args.store or default_store_url()),
                )
                try:
                    indexer.run(stop)
                finally:
                    indexer.close()
            finally:
                log_backend.close()
        finally:
            store.close()
    finally:
        health.close()
    return 0


# -- registration --------------------------------------------------------------------------------


def add_store_commands(sub: Any, backend_args: AddBackendArgs, runtime: RuntimeOf) -> None:
    """Register ``indexer`` and ``store`` on the ``auditstream`` parser's subparsers."""
    p = sub.add_parser(
        "indexer",
        help="fill the audit store from the activity topic (consumer group auditstream-indexer)",
        description="Reads auditstream.activity into the audit store: each batch is stored "
        "(an event already stored is skipped) before its offsets are committed, so a restart "
        "never loses or doubles an event. A new group starts from the earliest record the log "
        "still holds. A record whose body does not decode, or whose account is not its key, "
        "goes to auditstream.dlq once (stage indexer, unless the router dead-letters it "
        "too). Run several for more partitions. Retention "
        "runs every --retention-interval seconds. Stops cleanly on SIGTERM.",
    )
    _store_arg(p)
    p.add_argument(
        "--batch-size", type=_positive_int, default=1000, help="records per batch (default 1000)"
    )
    p.add_argument(
        "--retention-interval",
        type=_seconds,
        default=3600.0,
        help="seconds between retention runs (default 3600; 0: no retention in this process)",
    )
    p.add_argument(
        "--metrics-port", type=int, help="serve /metrics, /healthz and /readyz on this port"
    )
    backend_args(p)
    p.set_defaults(func=lambda args: cmd_indexer(args, runtime))

    s = sub.add_parser(
        "store",
        help="manage the audit store: migrate, retention, verify, retention-override",
        description="The audit store keeps every account's activity audit log, searchable, "
        f"{DEFAULT_RETENTION_DAYS} days from each event unless the account has an override.",
    )
    ss = s.add_subparsers(dest="store_command", required=True, metavar="ACTION")

    m = ss.add_parser(
        "migrate",
        help="create or upgrade the store's tables",
        description="Creates the tables of a new store, or upgrades an older one in place. "
        "Safe to run again: a store that is up to date is left as it is.",
    )
    _store_arg(m)
    m.set_defaults(func=cmd_migrate)

    r = ss.add_parser(
        "retention",
        help="delete events past their account's retention now",
        description="Deletes every event older than its account's retention (default "
        f"{DEFAULT_RETENTION_DAYS} days), per account in the order received: an event that "
        "arrived late for its time waits until those received before it expire. Prints how "
        "many events were deleted and from how many accounts (an account whose events span "
        "several batches counts once per batch). The indexer does this every hour by itself.",
    )
    _store_arg(r)
    r.add_argument(
        "--now", type=_moment, help="the time to apply retention at (ISO-8601; default: now)"
    )
    r.add_argument(
        "--batch-size",
        type=_positive_int,
        default=10_000,
        help="events deleted per transaction (default 10000)",
    )
    r.set_defaults(func=cmd_retention)

    v = ss.add_parser(
        "verify",
        help="check an account's hash chain (exit 1 names the first bad event)",
        description="Recomputes the account's hash chain from the stored bytes. Exit 0: every "
        "event is as stored. Exit 1: prints the first event altered, removed or inserted "
        "behind the store's back (its seq, and its event id when it is still there).",
    )
    _store_arg(v)
    v.add_argument("--account", type=_account, required=True, help="the account id")
    v.set_defaults(func=cmd_verify)

    o = ss.add_parser(
        "retention-override",
        help="keep an account's events longer (or shorter) than the default",
        description="Sets how many days an account's events are kept from the event "
        f"(default {DEFAULT_RETENTION_DAYS}); --default removes the override.",
    )
    _store_arg(o)
    o.add_argument("--account", type=_account, required=True, help="the account id")
    which = o.add_mutually_exclusive_group(required=True)
    which.add_argument("--days", type=_days, help=f"days, 1 to {MAX_RETENTION_DAYS}")
    which.add_argument("--default", action="store_true", help="back to the default")
    o.set_defaults(func=cmd_retention_override)
