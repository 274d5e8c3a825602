"""``auditstream demo``: simulator, router and sink worker in one process on the embedded log."""

from __future__ import annotations

import shutil
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from importlib import resources
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING
from urllib.parse import quote

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from auditstream.config.destinations import (
    Destination,
)
from auditstream.config.errors import ConfigError
from auditstream.config.loading import load_settings_file
from auditstream.config.stream import SettingsFile
from auditstream.pipeline import topics
from auditstream.pipeline.embedded_log import EmbeddedLog
from auditstream.pipeline.inclusion import Decision, decide
from auditstream.pipeline.router import Router
from auditstream.pipeline.settings_writer import publish_settings
from auditstream.producers.sdk import ActivityProducer
from auditstream.producers.simulator import Simulator, SimulatorConfig
from auditstream.sinks.worker import SinkWorker
from auditstream.store.indexer import Indexer, IndexerOptions
from auditstream.store.query import ActivityFilter
from auditstream.store.sqlite_store import SqliteStore

if TYPE_CHECKING:
    import uvicorn

MARKER = ".auditstream-demo"
AUDIT_STORE = "audit.sqlite"
"""The demo's audit store (what the activity audit log viewer reads), under its folder."""
DEMO_USER = "demo-owner"
DEMO_TOKEN_LIFETIME = timedelta(days=1)


@dataclass
class DemoResult:
    produced: int
    expected: dict[str, int]
    delivered: dict[str, int]
    paths: dict[str, str]
    objects: dict[str, int] = field(default_factory=dict)
    unconfigured_accounts: list[str] = field(default_factory=list)
    """Accounts that produced events but have no stream settings (nothing is streamed)."""
    timed_out: bool = False
    elapsed_s: float = 0.0
    indexed: int = 0
    """Events the indexer stored in the audit store (every simulated one)."""
    store_path: str = ""
    viewer_account: str = ""
    """The account whose activity audit log ``--serve`` shows (the settings' first)."""

    @property
    def ok(self) -> bool:
        return not self.short() and self.indexed == self.produced

    def short(self) -> dict[str, tuple[int, int]]:
        """Destinations that did not receive every included event: ``id -> (delivered,
        expected)``."""
        return {
            d: (self.delivered.get(d, 0), n)
            for d, n in self.expected.items()
            if self.delivered.get(d, 0) != n
        }

    def as_json(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "produced": self.produced,
            "timed_out": self.timed_out,
            "elapsed_s": round(self.elapsed_s, 3),
            "unconfigured_accounts": self.unconfigured_accounts,
            "audit_store": {"path": self.store_path, "events": self.indexed},
            "destinations": [
                {
                    "id": d,
                    "expected": n,
                    "delivered": self.delivered.get(d, 0),
                    "objects": self.objects.get(d, 0),
                    "location": self.paths.get(d),
                }
                for d, n in self.expected.items()
            ],
        }


def default_config() -> Path:
    return Path(str(resources.files("auditstream.config").joinpath("demo.yaml")))


def prepare_out(out: Path) -> None:
    """Start from a clean demo folder; refuse to touch a folder the demo did not make."""
    if out.exists() and any(out.iterdir()):
        if not (out / MARKER).exists():
            raise SystemExit(
                f"{out} exists and was not made by `auditstream demo`; choose another --out"
            )
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("made by auditstream demo; safe to delete\n")


def run_demo(
    out: Path,
    events: int,
    config_path: Path | None = None,
    *,
    seed: int | None = 7,
    console: Console | None = None,
    timeout_s: float = 120.0,
) -> DemoResult:
    """Run the demo; stops after ``timeout_s`` even if a destination keeps failing (the result
    then names what is missing)."""
    console = console or Console()
    started = time.monotonic()
    settings: SettingsFile = load_settings_file(config_path or default_config())
    prepare_out(out)
    log = EmbeddedLog(out / "log.sqlite")
    log.create_topic(topics.ACTIVITY)
    publish_settings(log, settings.accounts)
    by_account = {a.account_id: a for a in settings.accounts}

    accounts = [*by_account, "hooli"]  # hooli has no stream settings: nothing is streamed
    sim = Simulator(SimulatorConfig(accounts=accounts, seed=seed))
    expected: Counter[str] = Counter()
    progress = Progress(
        TextColumn("{task.description:<10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )
    router = Router(log)
    worker = SinkWorker(log, local_root=out)
    with progress:
        produce = progress.add_task("produce", total=events)
        with ActivityProducer(log) as producer:
            for i, event in enumerate(sim.events(events), 1):
                producer.send(event)
                acct = by_account.get(event["account_id"])
                if decide(acct, event["category"], event["activity"]) is Decision.INCLUDED:
                    assert acct is not None
                    for d in acct.destinations:
                        if d.enabled:
                            expected[d.id] += 1
                if i % 1000 == 0:
                    progress.update(produce, completed=i)
        progress.update(produce, completed=events)

        route = progress.add_task("route", total=events)
        deliver = progress.add_task("deliver", total=sum(expected.values()))
        deadline = started + timeout_s
        timed_out = True
        while time.monotonic() < deadline:
            router.step()
            worker.step()
            delivered = sum(h.delivered_events for h in worker.health.values())
            progress.update(route, completed=router.consumed)
            progress.update(deliver, completed=delivered)
            if router.consumed >= events and router.lag() == 0:
                worker.drain()
                delivered = sum(h.delivered_events for h in worker.health.values())
                progress.update(deliver, completed=delivered)
                if delivered >= sum(expected.values()):
                    timed_out = False
                    break
        index = progress.add_task("index", total=events)
        indexed = index_events(log, out / AUDIT_STORE, deadline, progress, index)
    result = DemoResult(
        produced=events,
        expected={d.id: expected.get(d.id, 0) for a in settings.accounts for d in a.destinations},
        delivered={k: h.delivered_events for k, h in worker.health.items()},
        paths={},
        unconfigured_accounts=[a for a in accounts if a not in by_account],
        timed_out=timed_out,
        elapsed_s=time.monotonic() - started,
        indexed=indexed,
        store_path=str(out / AUDIT_STORE),
        viewer_account=settings.accounts[0].account_id if settings.accounts else accounts[0],
    )
    for a in settings.accounts:
        for d in a.destinations:
            result.paths[d.id] = where(d, out)
            result.objects[d.id] = (
                worker.health[d.id].written_batches if d.id in worker.health else 0
            )
    worker.close()
    router.close()
    log.close()
    _report(console, settings, result)
    return result


def index_events(
    log: EmbeddedLog, path: Path, deadline: float, progress: Progress, task: TaskID
) -> int:
    """Read the activity topic into the SQLite audit store at ``path`` with the indexer, as
    a deployment's indexer does, until it is caught up or ``deadline`` passes; returns the
    events the store holds. Raises ``StoreError`` or ``LogError``."""
    store = SqliteStore(path)
    try:
        indexer = Indexer(log, store, IndexerOptions(retention_interval_s=0, poll_timeout_s=0.2))
        try:
            taken = 0
            while time.monotonic() < deadline:
                step = indexer.step()
                if step == 0:
                    break
                taken += step
                progress.update(task, completed=taken)
        finally:
            indexer.close()
        held = sum(store.count(ActivityFilter(account)) for account in store.accounts())
        progress.update(task, completed=held)
        return held
    finally:
        store.close()


def where(d: Destination, out: Path) -> str:
    """Where a destination's objects or requests go, for people (no secrets)."""
    return d.location(out)


def _report(console: Console, settings: SettingsFile, result: DemoResult) -> None:
    table = Table(title=f"auditstream demo: {result.produced} events simulated")
    for col in ("account", "destination", "expected", "delivered", "objects"):
        table.add_column(col, no_wrap=True)
    for a in settings.accounts:
        for d in a.destinations:
            table.add_row(
                a.account_id + ("" if a.streaming_enabled else " (off)"),
                d.id,
                str(result.expected.get(d.id, 0)),
                str(result.delivered.get(d.id, 0)),
                str(result.objects.get(d.id, 0)),
            )
    for account in result.unconfigured_accounts:
        table.add_row(f"{account} (no settings)", "-", "0", "0", "0")
    console.print(table)
    console.print("Delivered to:")
    for dest_id, path in result.paths.items():
        console.print(f"  {dest_id:<18} {path}", soft_wrap=True)
    console.print(
        f"Activity audit log: {result.indexed} events indexed into {result.store_path}",
        soft_wrap=True,
    )
    if result.indexed < result.produced:
        console.print(
            f"[red]the audit store holds {result.indexed} of {result.produced} events[/red]"
        )
    console.print(
        "  see it in a browser: auditstream demo --serve (then open the address it prints)",
        soft_wrap=True,
    )
    if not result.short():
        console.print("[green]every included event was delivered exactly once[/green]")
    else:
        why = f"after {result.elapsed_s:.0f} s (--timeout)" if result.timed_out else ""
        for dest_id, (delivered, expected) in result.short().items():
            console.print(
                f"[red]{dest_id} received {delivered} of {expected} events {why}[/red]",
                soft_wrap=True,
            )


# -- demo --serve: the activity audit log viewer on the demo's log and audit store --------------


def viewer_url(port: int, account_id: str) -> str:
    return f"http://127.0.0.1:{port}/accounts/{quote(account_id, safe='')}/activity"


@contextmanager
def _stop_on_signals() -> Iterator[threading.Event]:
    """An event set by SIGINT (Ctrl-C) or SIGTERM while the block runs; the handlers before
    it are restored after."""
    stop = threading.Event()

    def handler(_sig: int, _frame: FrameType | None) -> None:
        stop.set()

    before = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, old in before.items():
            signal.signal(sig, old)


def serve_viewer(out: Path, account_id: str, port: int, announce: Callable[[str], None]) -> None:
    """Serve the API and its activity audit log viewer on 127.0.0.1:``port`` over the demo's
    embedded log and audit store in ``out`` until SIGINT or SIGTERM, with a new token of an
    owner of ``account_id`` (valid one day) that ``announce`` prints with the address.

    Raises ``ConfigError`` when the port cannot be listened on (taken, or not allowed)."""
    import uvicorn

    from auditstream.api.app import create_app
    from auditstream.api.options import ApiOptions
    from auditstream.api.service import SettingsService
    from auditstream.config.secrets import SecretBox

    log = EmbeddedLog(out / "log.sqlite")
    store = SqliteStore(out / AUDIT_STORE)
    service: SettingsService | None = None
    try:
        options = ApiOptions(local_root=out)
        # The demo's settings hold no sealed secrets: a key of this run only is enough.
        box = SecretBox([SecretBox.generate_key()])
        service = SettingsService(log, box, options, audit_store=store)
        config = uvicorn.Config(
            create_app(service, options),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            log_config=None,
            server_header=False,
            lifespan="on",
        )
        server = uvicorn.Server(config)
        # On a thread of its own the server leaves the signals to us: it stops when asked,
        # and the log and store are closed after it.
        thread = threading.Thread(target=server.run, name="auditstream-demo-api", daemon=True)
        with _stop_on_signals() as stop:
            thread.start()
            try:
                _announce_when_serving(server, thread, log, account_id, port, announce)
                while not stop.wait(0.2) and thread.is_alive():
                    pass
            finally:
                server.should_exit = True
                thread.join(timeout=30)
        announce("stopped")
    finally:
        if service is not None:
            service.close()
        store.close()
        log.close()


def _announce_when_serving(
    server: uvicorn.Server,
    thread: threading.Thread,
    log: EmbeddedLog,
    account_id: str,
    port: int,
    announce: Callable[[str], None],
) -> None:
    """Wait until ``server`` listens, then make the demo token and print where to sign in.
    Raises ``ConfigError`` if the server ended instead (the port is taken)."""
    from auditstream.api.tokens import create_token

    while not server.started and thread.is_alive():
        thread.join(0.05)
    if not server.started:
        raise ConfigError(
            f"cannot serve on 127.0.0.1:{port} (in use, or not allowed): choose another port "
            "with --port"
        )
    # Made once the server listens (none is left behind for a port in use); the API reads
    # new tokens before it answers a request.
    token, _ = create_token(
        log,
        account_id=account_id,
        user_id=DEMO_USER,
        role="owner",
        expires_in=DEMO_TOKEN_LIFETIME,
    )
    announce(f"Activity audit log of {account_id}: {viewer_url(port, account_id)}")
    announce(f"Sign in with this token (an owner of {account_id}, valid one day):")
    announce(token)
    announce("Serving on 127.0.0.1 until Ctrl-C (or SIGTERM).")
