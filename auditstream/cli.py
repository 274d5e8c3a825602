"""The ``auditstream`` command line."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import socket
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from auditstream.config.errors import ConfigError
from auditstream.config.runtime import RuntimeSettings
from auditstream.config.secrets import box_from_environment
from auditstream.errors import AuditstreamError
from auditstream.log_setup import LOG_FORMATS, configure_logging, log_format
from auditstream.pipeline.watchdog import (
    DEFAULT_STALL_TIMEOUT_S,
    DEFAULT_STOP_GRACE_S,
    EXIT_STALLED,
    EXIT_STOP_TIMEOUT,
)

if TYPE_CHECKING:
    from auditstream.config.destinations import Destination
    from auditstream.pipeline.health_server import ProcessHealth
    from auditstream.pipeline.log import Log
    from auditstream.sinks.base import Sink
    from auditstream.sinks.worker import WorkerOptions

DESCRIPTION = """\
auditstream: every user action in an account, as an Avro event in a log, filtered by the
account's streaming settings and delivered to its destinations:
{kinds}.

Backends: `embedded` (a SQLite file, the default: no Kafka needed) or `kafka`. Choose with
--backend/--bootstrap/--db or the env vars AUDITSTREAM_BACKEND, AUDITSTREAM_KAFKA_BOOTSTRAP,
AUDITSTREAM_EMBEDDED_PATH.
"""


def _backend_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("log backend")
    g.add_argument("--backend", choices=["embedded", "kafka"], help="log backend")
    g.add_argument("--bootstrap", help="Kafka bootstrap servers, e.g. 127.0.0.1:9092")
    g.add_argument("--db", type=Path, help="SQLite file of the embedded log")


def _runtime(args: argparse.Namespace) -> RuntimeSettings:
    overrides: dict[str, object] = {}
    if getattr(args, "backend", None):
        overrides["backend"] = args.backend
    if getattr(args, "bootstrap", None):
        overrides["kafka_bootstrap"] = args.bootstrap
        overrides.setdefault("backend", "kafka")
    if getattr(args, "db", None):
        overrides["embedded_path"] = args.db
    if getattr(args, "metrics_port", None) is not None:
        overrides["metrics_port"] = args.metrics_port
    return RuntimeSettings(**overrides)  # type: ignore[arg-type]


def _serve_metrics(settings: RuntimeSettings, stale_after: float = 60.0) -> ProcessHealth:
    """The process's readiness, and with a metrics port its server of /metrics, /healthz and
    /readyz (ready: connected, polled and progressed within ``stale_after`` seconds)."""
    from auditstream.pipeline.health_server import ProcessHealth

    health = ProcessHealth(settings.metrics_host, settings.metrics_port, stale_after)
    if settings.metrics_port is not None:
        logging.getLogger("auditstream").info(
            "metrics on http://%s:%d (paths /metrics, /healthz, /readyz)",
            settings.metrics_host,
            settings.metrics_port,
        )
    return health


def _stop_event() -> threading.Event:
    stop = threading.Event()

    def handler(_sig: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return stop


def cmd_catalog(args: argparse.Namespace) -> int:
    from auditstream.schemas import catalog

    records = catalog.as_json_records()
    if args.json:
        print(json.dumps(records, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Activity catalog: {len(records)} activities")
    for col in ("category", "activity", "key"):
        table.add_column(col)
    for r in records:
        table.add_row(r["category"], r["name"], r["key"])
    Console().print(table)
    return 0


def _warn_unconfigured(log: Log, accounts: Sequence[str]) -> None:
    """Warn when simulated accounts have no stream settings: the router filters out all of
    their events, and nothing else would say so."""
    from auditstream.pipeline.settings_view import SettingsView

    view = SettingsView(log, box=box_from_environment())
    try:
        view.catch_up()
        known = set(view.accounts()) | set(view.unapplied())
    finally:
        view.close()
    missing = [a for a in accounts if a not in known]
    if not missing:
        return
    shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
    logging.getLogger("auditstream").warning(
        "no stream settings for %s: the router drops their events; apply settings for them "
        "(auditstream settings apply -f FILE) or simulate configured accounts (--account-ids)",
        shown,
    )


def _simulator_clock(args: argparse.Namespace) -> Literal["synthetic", "wall"]:
    """Real time when events are produced at a rate (their timestamps then match when they
    are sent), the synthetic clock otherwise; either on request."""
    if args.synthetic_clock:
        return "synthetic"
    if args.wall_clock or args.rate:
        return "wall"
    return "synthetic"


def cmd_simulate(args: argparse.Namespace) -> int:
    from rich.progress import Progress

    from auditstream.pipeline import topics
    from auditstream.pipeline.open_log import open_log
    from auditstream.pipeline.topic_setup import ensure_core_topics
    from auditstream.producers.sdk import ActivityProducer
    from auditstream.producers.simulator import Simulator, SimulatorConfig

    accounts = [f"account-{i + 1:03d}" for i in range(args.accounts)]
    if args.account_ids:
        accounts = [a.strip() for a in args.account_ids.split(",") if a.strip()]
    try:
        sim = Simulator(
            SimulatorConfig(accounts=accounts, seed=args.seed, clock=_simulator_clock(args))
        )
    except ValueError as exc:
        raise ConfigError(f"simulate: {exc}") from None
    settings = _runtime(args)
    log = open_log(settings)
    ensure_core_topics(log, settings.activity_partitions)
    _warn_unconfigured(log, accounts)
    interval = 1.0 / args.rate if args.rate else 0.0
    events = sim.events(args.events)
    started = time.monotonic()
    with Progress(disable=args.quiet) as progress, ActivityProducer(log) as producer:
        task = progress.add_task("simulate", total=args.events)
        for i in range(1, args.events + 1):
            if interval:
                delay = started + i * interval - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            # Drawn after the wait: under the wall clock an event is recorded when it is sent.
            producer.send(next(events))
            if i % 500 == 0:
                progress.update(task, completed=i)
        progress.update(task, completed=args.events)
    elapsed = time.monotonic() - started
    print(
        f"produced {args.events} events for {len(accounts)} accounts to {topics.ACTIVITY} "
        f"({settings.backend}) in {elapsed:.1f}s"
    )
    log.close()
    return 0


def _port(text: str) -> int:
    """A TCP port to listen on, 1-65535 (argparse type)."""
    try:
        port = int(text)
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"a port is a number from 1 to 65535, not {text!r}")
    return port


def cmd_demo(args: argparse.Namespace) -> int:
    from rich.console import Console

    from auditstream.demo import run_demo

    console = Console(quiet=args.json, stderr=args.json)
    result = run_demo(
        args.out, args.events, args.config, seed=args.seed, console=console, timeout_s=args.timeout
    )
    if args.json:
        print(json.dumps(result.as_json(), indent=2), flush=True)
    if args.serve:
        from auditstream.demo import serve_viewer

        out = sys.stderr if args.json else sys.stdout  # stdout stays the JSON report
        serve_viewer(
            args.out,
            result.viewer_account,
            args.port,
            lambda line: print(line, file=out, flush=True),
        )
    return 0 if result.ok else 1


def _transactional_id(template: str | None) -> str | None:
    """``template`` with ``{hostname}`` replaced by this host's name (a pod's or a container's
    name survives a restart of its process, so the replacement fences the crashed router and
    aborts its open transaction at once instead of after the brokers' transaction timeout)."""
    if template is None:
        return None
    return template.replace("{hostname}", socket.gethostname())


def cmd_router(args: argparse.Namespace) -> int:
    from auditstream.pipeline.open_log import open_log
    from auditstream.pipeline.router import Router
    from auditstream.pipeline.topics import ROUTER_GROUP
    from auditstream.pipeline.watchdog import Watchdog, supervise

    settings = _runtime(args)
    health = _serve_metrics(settings, stale_after=args.stall_timeout / 2)
    try:
        log = open_log(settings)
    except BaseException:
        health.close()
        raise
    watchdog = Watchdog(args.stall_timeout)
    health.readiness.follow_progress(lambda: watchdog.idle().seconds)
    router = Router(
        health.observe(log, ROUTER_GROUP, poll_is_progress=False),
        transactional_id=_transactional_id(args.transactional_id),
        activity_partitions=settings.activity_partitions,
        box=box_from_environment(),
        batch_size=args.batch_size,
        watchdog=watchdog,
    )
    stop = _stop_event()
    health.readiness.follow_stop(stop.is_set)
    logging.getLogger("auditstream").info(
        "router running on %s (stall timeout %g s)", settings.backend, args.stall_timeout
    )

    def loop(stop: threading.Event) -> None:
        try:
            router.run(stop)
        finally:
            router.close()

    # The steps run in a thread of their own: the main thread takes SIGTERM at once, and
    # ends the process if the steps stall or outlive a stop request (pipeline/watchdog.py).
    try:
        supervise("router", loop, stop, watchdog, stop_grace=args.stop_grace)
    finally:
        log.close()
        health.close()
    return 0


def _positive_seconds(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {text}")
    return value


def _sink_factory(args: argparse.Namespace) -> Callable[[Destination], Sink]:
    """Sinks that check every request's host against the address policy right before sending
    it (webhooks, S3, GCS, Azure): private, loopback, link-local and metadata addresses are
    refused, except --allow-network ones (metadata addresses always). --no-address-check turns
    the check off, for a single-tenant installation whose destinations are on its own
    network."""
    from auditstream.config.address_policy import AddressPolicy, parse_networks
    from auditstream.sinks.factory import build_sink

    if args.allow_network and not args.address_check:
        raise ConfigError("--allow-network has no effect with --no-address-check: remove one")
    policy: AddressPolicy | None = None
    if args.address_check:
        try:
            policy = AddressPolicy(allowed_networks=parse_networks(args.allow_network or []))
        except ValueError as exc:
            raise ConfigError(f"--allow-network: {exc}") from None
    else:
        logging.getLogger("auditstream").warning(
            "address check off: destinations may reach private and loopback addresses"
        )

    def factory(destination: Destination) -> Sink:
        return build_sink(destination, local_root=args.local_root, address_policy=policy)

    return factory


def _worker_options(args: argparse.Namespace, exit_after_writes: int | None) -> WorkerOptions:
    """The sink worker's options from its flags. Raises :class:`ConfigError` for a flag that
    is not more than 0."""
    from auditstream.sinks.worker import WorkerOptions

    for flag, value in (
        ("--delivery-threads", args.delivery_threads),
        ("--max-buffered-mb", args.max_buffered_mb),
        ("--suspend-after-hours", args.suspend_after_hours),
        ("--drain-timeout", args.drain_timeout),
    ):
        if value <= 0:
            raise ConfigError(f"{flag} must be more than 0 (got {value:g})")
    return WorkerOptions(
        delivery_threads=args.delivery_threads,
        max_buffered_bytes=int(args.max_buffered_mb * 1024 * 1024),
        suspend_after=args.suspend_after_hours * 3600.0,
        drain_timeout=args.drain_timeout,
        destination_metrics=args.destination_metrics,
        exit_after_writes=exit_after_writes,
    )


def cmd_sink_worker(args: argparse.Namespace) -> int:
    from auditstream.pipeline.open_log import open_log
    from auditstream.pipeline.topics import SINK_GROUP
    from auditstream.sinks.worker import SinkWorker

    settings = _runtime(args)
    options = _worker_options(args, settings.fault_exit_after_writes)
    health = _serve_metrics(settings)
    try:
        log = open_log(settings)
    except BaseException:
        health.close()
        raise
    worker = SinkWorker(
        health.observe(log, SINK_GROUP, poll_is_progress=True),
        local_root=args.local_root,
        box=box_from_environment(),
        options=options,
        sink_factory=_sink_factory(args),
    )
    stop = _stop_event()
    health.readiness.follow_stop(stop.is_set)
    logging.getLogger("auditstream").info("sink worker running on %s", settings.backend)
    try:
        worker.run(stop)
    finally:
        worker.close()
        log.close()
        health.close()
    return 0


def cmd_settings_apply(args: argparse.Namespace) -> int:
    from auditstream.config.fields import holds_secrets
    from auditstream.config.loading import load_settings_file
    from auditstream.config.secrets import ENV_KEYS, ENV_KEYS_FILE
    from auditstream.pipeline.open_log import open_log
    from auditstream.pipeline.settings_writer import publish_settings

    settings_file = load_settings_file(args.file)
    box = box_from_environment()
    if box is None and holds_secrets(settings_file) and not args.insecure_plaintext_secrets:
        raise ConfigError(
            f"{args.file} holds destination secrets and no secret key is configured, so they "
            f"would be stored in plain text: make a key with `auditstream keys generate`, give "
            f"it to every process as {ENV_KEYS} (or {ENV_KEYS_FILE}) and run this again; or "
            "pass --insecure-plaintext-secrets to store them unsealed"
        )
    if box is None and holds_secrets(settings_file):
        logging.getLogger("auditstream").warning(
            "storing destination secrets in plain text (--insecure-plaintext-secrets)"
        )
    log = open_log(_runtime(args))
    n = publish_settings(log, settings_file.accounts, box)
    dests = sum(len(a.destinations) for a in settings_file.accounts)
    print(f"applied settings for {n} accounts ({dests} destinations) from {args.file}")
    log.close()
    return 0


def cmd_settings_show(args: argparse.Namespace) -> int:
    from auditstream.pipeline.open_log import open_log
    from auditstream.pipeline.settings_view import SettingsView

    log = open_log(_runtime(args))
    view = SettingsView(log, box=box_from_environment())
    view.catch_up()
    out = [
        json.loads(a.model_dump_json())  # secrets stay masked
        for a in view.accounts().values()
    ]
    print(json.dumps(out, indent=2))
    view.close()
    log.close()
    return 0


def _description() -> str:
    from auditstream.sinks.registry import KINDS

    kinds = ", ".join(f"{k.title} ({k.type})" for k in KINDS.values())
    return DESCRIPTION.format(kinds=textwrap.fill(kinds, width=92))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="auditstream",
        description=_description(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        help="text (default) or json: one object per line with time, level, logger, message "
        "(env AUDITSTREAM_LOG_FORMAT)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("catalog", help="list every activity (category, name, key)")
    p.add_argument("--json", action="store_true", help="print a JSON array")
    p.set_defaults(func=cmd_catalog)

    p = sub.add_parser("simulate", help="produce realistic activity events")
    p.add_argument("--accounts", type=int, default=5, help="number of accounts (default 5)")
    p.add_argument("--account-ids", help="comma-separated account ids (overrides --accounts)")
    p.add_argument("--events", type=int, default=10_000, help="number of events (default 10000)")
    p.add_argument("--rate", type=float, help="events per second (default: as fast as possible)")
    p.add_argument("--seed", type=int, help="random seed for a reproducible stream")
    clock = p.add_mutually_exclusive_group()
    clock.add_argument(
        "--synthetic-clock",
        action="store_true",
        help="timestamps from a simulated clock (about 20 events a second from now, however "
        "fast events are produced); the default without --rate",
    )
    clock.add_argument(
        "--wall-clock",
        action="store_true",
        help="each event recorded at the real time it is sent; the default with --rate",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _backend_args(p)
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser(
        "demo",
        help="simulate, route, deliver and index on the embedded log (--serve: the viewer)",
        description="Runs the simulator, the router and a sink worker in one process on the "
        "embedded log with the example settings (config/demo.yaml, or --config), writes each "
        "destination's objects under --out, indexes every event into the audit store "
        "--out/audit.sqlite (what the activity audit log viewer reads), and exits 0 once every "
        "included event arrived and every event is indexed; 1 (naming what is short) otherwise.",
    )
    p.add_argument("--out", type=Path, default=Path("auditstream-demo"), help="output folder")
    p.add_argument("--events", type=int, default=20_000, help="events to simulate")
    p.add_argument("--config", type=Path, help="settings YAML (default: the bundled example)")
    p.add_argument("--seed", type=int, default=7, help="random seed")
    p.add_argument(
        "--timeout",
        type=float,
        default=120.0,
        help="seconds to wait for delivery before reporting what is missing (default 120)",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    p.add_argument(
        "--serve",
        action="store_true",
        help="then serve the activity audit log viewer on 127.0.0.1 (the API over the demo's "
        "log and audit store), print its address and a token of an owner of the first "
        "account, and stop on Ctrl-C or SIGTERM",
    )
    p.add_argument(
        "--port", type=_port, default=8080, help="port of --serve on 127.0.0.1 (default 8080)"
    )
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("router", help="run the router (activity topic → destination topics)")
    p.add_argument(
        "--transactional-id",
        default=os.environ.get("AUDITSTREAM_ROUTER_TRANSACTIONAL_ID"),
        help="Kafka transactional id; {hostname} is replaced by the host's name (default: "
        "$AUDITSTREAM_ROUTER_TRANSACTIONAL_ID, else unique per process). Give each router a "
        "name it keeps across restarts, e.g. 'auditstream-router-{hostname}' in a pod or "
        "container: a restarted router then aborts the transaction its predecessor left open "
        "at once; with a unique id, readers wait up to a minute for the brokers to time it out",
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=2000,
        help="records per transaction (default 2000): larger amortises the commit, "
        "smaller lowers latency",
    )
    p.add_argument(
        "--stall-timeout",
        type=_positive_seconds,
        default=DEFAULT_STALL_TIMEOUT_S,
        help="seconds without routing progress (a Kafka call blocked past its own timeout, "
        "e.g. after a broker restart) before the router logs why and exits with status "
        f"{EXIT_STALLED} for its supervisor to restart it (default {DEFAULT_STALL_TIMEOUT_S:g}); "
        "keep it above 60 s in production: one transaction and its abort may take 30 s each",
    )
    p.add_argument(
        "--stop-grace",
        type=_positive_seconds,
        default=DEFAULT_STOP_GRACE_S,
        help="seconds the router gets to finish its step and close after SIGTERM/SIGINT "
        f"before it exits with status {EXIT_STOP_TIMEOUT} (default {DEFAULT_STOP_GRACE_S:g})",
    )
    p.add_argument(
        "--metrics-port", type=int, help="serve /metrics, /healthz and /readyz on this port"
    )
    _backend_args(p)
    p.set_defaults(func=cmd_router)

    p = sub.add_parser("sink-worker", help="run a sink worker (destination topics → sinks)")
    p.add_argument(
        "--metrics-port", type=int, help="serve /metrics, /healthz and /readyz on this port"
    )
    p.add_argument(
        "--local-root", type=Path, help="folder relative local destination paths start from"
    )
    p.add_argument(
        "--address-check",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="check the host of every webhook, S3, GCS and Azure request right before it is "
        "sent; refuse private, loopback, link-local and cloud metadata addresses (default on; "
        "--no-address-check only for a single-tenant installation)",
    )
    p.add_argument(
        "--allow-network",
        action="append",
        metavar="CIDR",
        help="a private network destinations may reach anyway (repeatable), e.g. 10.20.0.0/16; "
        "cloud metadata addresses stay refused",
    )
    p.add_argument(
        "--delivery-threads",
        type=int,
        default=32,
        help="writes to destinations under way at once, over all destinations (default 32); "
        "one destination has one at a time, and failing ones never more than half",
    )
    p.add_argument(
        "--max-buffered-mb",
        type=float,
        default=128,
        help="memory for events read and not yet stored, counted decoded (default 128); when "
        "full, the destinations holding the most stop reading",
    )
    p.add_argument(
        "--suspend-after-hours",
        type=float,
        default=72,
        help="a destination failing this long is suspended: tried every 15 minutes (default 72)",
    )
    p.add_argument(
        "--drain-timeout",
        type=float,
        default=30,
        help="on SIGTERM, seconds to wait for writes under way; what is not stored by then is "
        "not committed and is delivered by the next owner (default 30)",
    )
    p.add_argument(
        "--destination-metrics",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="export lag and oldest-undelivered age per destination (a `destination` label); "
        "--no-destination-metrics for workers serving very many destinations",
    )
    _backend_args(p)
    p.set_defaults(func=cmd_sink_worker)

    p = sub.add_parser("settings", help="stream settings of accounts")
    ss = p.add_subparsers(dest="settings_command", required=True, metavar="ACTION")
    a = ss.add_parser("apply", help="publish the accounts of a settings YAML file")
    a.add_argument("-f", "--file", type=Path, required=True, help="settings YAML")
    a.add_argument(
        "--insecure-plaintext-secrets",
        action="store_true",
        help="store destination secrets unsealed when no secret key is configured (not for "
        "production: set AUDITSTREAM_SECRET_KEYS instead)",
    )
    _backend_args(a)
    a.set_defaults(func=cmd_settings_apply)
    s = ss.add_parser("show", help="print the current settings (secrets masked)")
    _backend_args(s)
    s.set_defaults(func=cmd_settings_show)

    from auditstream.api.cli_commands import add_commands
    from auditstream.api.dlq_command import add_dlq_command
    from auditstream.store.cli_commands import add_store_commands

    add_commands(sub, ss, _backend_args, _runtime)
    add_dlq_command(sub, _backend_args, _runtime)
    add_store_commands(sub, _backend_args, _runtime)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        fmt = log_format(args.log_format)
    except ValueError as exc:
        print(f"auditstream: error: {exc}", file=sys.stderr)
        return 2
    configure_logging(verbose=args.verbose, fmt=fmt)
    try:
        code: int = args.func(args)
    except AuditstreamError as exc:
        print(f"auditstream: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
