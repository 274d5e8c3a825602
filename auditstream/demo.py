"""``auditstream demo``: simulator, router and sink worker in one process on the embedded log."""

from __future__ import annotations

import shutil
import time
from collections import Counter
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from auditstream.config.destinations import (
    Destination,
)
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

MARKER = ".auditstream-demo"


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

    @property
    def ok(self) -> bool:
        return not self.short()

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
    result = DemoResult(
        produced=events,
        expected={d.id: expected.get(d.id, 0) for a in settings.accounts for d in a.destinations},
        delivered={k: h.delivered_events for k, h in worker.health.items()},
        paths={},
        unconfigured_accounts=[a for a in accounts if a not in by_account],
        timed_out=timed_out,
        elapsed_s=time.monotonic() - started,
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
    if result.ok:
        console.print("[green]every included event was delivered exactly once[/green]")
    else:
        why = f"after {result.elapsed_s:.0f} s (--timeout)" if result.timed_out else ""
        for dest_id, (delivered, expected) in result.short().items():
            console.print(
                f"[red]{dest_id} received {delivered} of {expected} events {why}[/red]",
                soft_wrap=True,
            )
