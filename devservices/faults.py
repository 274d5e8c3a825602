"""Fault injection against the real stream: proof that no audit event is lost or duplicated.

One scenario is one run: a fresh three-node Kafka cluster (:mod:`devservices.kafka_cluster`),
account settings published to it, the router and sink workers started as the real CLI processes
(``python -m auditstream router`` / ``sink-worker``, :class:`devservices.processes.ProjectProcess`),
a seeded stream of simulated events produced at a steady rate from a thread of this process, and
faults injected at set points of the production (kill -9 of a process, a broker crashed, a
webhook answering 503, processes added and removed, the settings changed, poison records, the
object-store emulator stopped). Then the run waits until
every destination holds what it should, and counts, per destination:

* **expected**: computed here from the events the log acknowledged and the settings, with an
  inclusion rule written out below (not the pipeline's own code);
* **delivered**: distinct event ids the destination holds (files under the local root and
  objects in the emulator read back and decoded; requests the webhook receiver accepted);
* **lost**: expected ids the destination does not hold;
* **duplicated**: ids stored more than once. For a local directory, an id in two objects (or
  twice in one). For a webhook, an id accepted in requests with two different
  ``Idempotency-Key`` values: a retry that repeats the key is deduplicated by the receiver, as
  the protocol intends, and is not a duplicate.

``run(scenario, workdir, options)`` returns a :class:`Result`; :func:`table` formats results. The
reliability tests (``tests/reliability``) run the CI size, ``python -m bench.faults`` the full
size. Every process, node and server a run starts is stopped by its own PID before it returns.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from auditstream.api import audit
from auditstream.config.stream import AccountSettings
from auditstream.config.wire import encode_settings
from auditstream.pipeline import topics
from auditstream.pipeline.embedded_log import EmbeddedLog
from auditstream.pipeline.errors import LogError
from auditstream.pipeline.kafka_log import KafkaLog
from auditstream.pipeline.log import OutgoingRecord
from auditstream.pipeline.settings_writer import new_revision, publish_settings, with_revision
from auditstream.producers.sdk import to_record
from auditstream.producers.simulator import Simulator, SimulatorConfig
from auditstream.schemas import catalog, codec
from auditstream.schemas.errors import CodecError

from .full_disk import ProducerProcess, producer_command, small_disk
from .kafka_cluster import KafkaCluster
from .object_stores import AzureStore
from .processes import ProjectProcess
from .stored_objects import decode_object
from .webhook_receiver import WebhookReceiver

SIM_START = datetime(2026, 11, 29, tzinfo=UTC)
"""Where the simulated clock starts: with the seed, the same events on every run."""
SECRET = "fault-suite-signing-secret"  # noqa: S105 - the test receiver's, on 127.0.0.1
HOOK_A, HOOK_B = "hook-a", "hook-b"
SCENARIOS = (
    "kill9",
    "brokers",
    "webhook503",
    "scaling",
    "settings",
    "poison",
    "store",
    "diskfull",
)
"""Run order and names (``--scenario``)."""

DESCRIPTIONS = {
    "kill9": "kill -9 of the router or a sink worker (seeded random choice and moment), N times;"
    " a new process replaces each",
    "brokers": "one broker of three killed -9 and restarted, then the active controller killed -9"
    " and restarted",
    "webhook503": "one webhook destination answers 503 for a while; the other keeps delivering",
    "scaling": "sink workers 1 -> 3 -> 1 and routers 1 -> 2 -> 1 (SIGTERM to scale down)",
    "settings": "settings changed mid-stream, as the settings API writes them (the settings"
    " records and their audit events in one transaction), while the router is stopped: a"
    " category excluded, a destination added, one deleted; events before the change follow the"
    " old settings, after it the new, by offset in the activity topic",
    "poison": "garbage bytes, unknown schema fingerprint, truncated body, missing headers and an"
    " account without settings, mixed into the stream: each poison record is dead-lettered"
    " (or, without settings, filtered) and nothing else stops",
    "store": "the Azure Blob emulator (Azurite, keeps its data) stopped for a while and started"
    " again; an extra account streams to it",
    "diskfull": "the embedded log's directory fills up (a small tmpfs filled with a file, or"
    " where mounting is not permitted a file size limit on the writing processes) while the"
    " producer, router and sink worker write to it; the router is killed -9 while it is full;"
    " room returns, refused flushes are sent again; no Kafka cluster",
}

_BATCH = {"max_events": 500, "max_age_s": 0.5}
_SETTINGS_ACTIVITIES = {
    "audit_log_streaming",
    "audit_log_streaming_data_inclusion",
    "audit_log_streaming_destination_updated",
}
"""The activities that announce a settings change (docs/adr/005-settings-api.md)."""
_DROPPED_CATEGORY = "recipe"
"""The category the settings scenario stops streaming for acct-all."""
_INCLUDED_CATEGORIES = ["account", "team", "recipe"]
_EXCLUDED_ACTIVITIES = ["user_login", "recipe_started"]

# -- settings and what they include ----------------------------------------------------------


def account_settings(
    hook_a: str, hook_b: str, store: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Six accounts: everything to a local directory; a category filter; an exclusion list;
    a local directory and a webhook; a second webhook alone; streaming switched off. With
    ``store`` (an object-store destination), a seventh account streams to it."""
    extra = [] if store is None else [{"account_id": "acct-blob", "destinations": [store]}]
    return [
        *extra,
        {
            "account_id": "acct-all",
            "destinations": [{"id": "all-local", "type": "local", "path": "all-local"}],
        },
        {
            "account_id": "acct-cats",
            "include_categories": _INCLUDED_CATEGORIES,
            "destinations": [
                {
                    "id": "cats-local",
                    "type": "local",
                    "path": "cats-local",
                    "format": "avro",
                    "compression": "deflate",
                }
            ],
        },
        {
            "account_id": "acct-excl",
            "exclude_activities": _EXCLUDED_ACTIVITIES,
            "destinations": [
                {"id": "excl-local", "type": "local", "path": "excl-local", "compression": "zstd"}
            ],
        },
        {
            "account_id": "acct-hooks",
            "destinations": [
                {"id": "hooks-local", "type": "local", "path": "hooks-local"},
                {"id": HOOK_A, "type": "webhook", "url": hook_a, "secret": SECRET},
            ],
        },
        {
            "account_id": "acct-hook-b",
            "destinations": [{"id": HOOK_B, "type": "webhook", "url": hook_b, "secret": SECRET}],
        },
        {
            "account_id": "acct-off",
            "streaming_enabled": False,
            "destinations": [{"id": "off-local", "type": "local", "path": "off-local"}],
        },
    ]


def _with_batches(raw: list[dict[str, Any]]) -> list[AccountSettings]:
    out = []
    for account in raw:
        dests = [{**d, "batch": dict(_BATCH)} for d in account["destinations"]]
        out.append(AccountSettings.model_validate({**account, "destinations": dests}))
    return out


def included(account: dict[str, Any] | None, category: str, activity: str) -> bool:
    """The inclusion rule, written out from the documented settings (not the router's code):
    streaming on, the category among ``include_categories`` when given, the activity among
    ``include_activities`` when given, and not among ``exclude_activities``."""
    if account is None or not account.get("streaming_enabled", True):
        return False
    cats = account.get("include_categories")
    if cats is not None and category not in cats:
        return False
    acts = account.get("include_activities") or []
    if acts and activity not in acts:
        return False
    return activity not in (account.get("exclude_activities") or [])


def expected_per_destination(
    events: list[tuple[str, str, str, str]], raw: list[dict[str, Any]]
) -> dict[str, set[str]]:
    """``destination id -> event ids`` it must receive, from ``(event_id, account, category,
    activity)`` of every event the log acknowledged."""
    by_account = {a["account_id"]: a for a in raw}
    out: dict[str, set[str]] = {d["id"]: set() for a in raw for d in a["destinations"]}
    for event_id, account_id, category, activity in events:
        for dest in targets(by_account.get(account_id), category, activity):
            out[dest].add(event_id)
    return out


def live(account: dict[str, Any] | None) -> list[str]:
    """The destinations that receive copies: enabled and not being deleted."""
    if account is None:
        return []
    return [
        d["id"]
        for d in account["destinations"]
        if d.get("enabled", True) and not d.get("deleting", False)
    ]


def targets(
    account: dict[str, Any] | None,
    category: str,
    activity: str,
    before: dict[str, Any] | None = None,
) -> list[str]:
    """The destinations an event goes to under ``account``'s settings. A change of the stream
    settings (the ``audit_log_streaming*`` activities) is also announced to the destinations
    that streamed it before the change (``before``) and still receive copies."""
    out = live(account) if included(account, category, activity) else []
    if (
        activity in _SETTINGS_ACTIVITIES
        and before is not None
        and included(before, category, activity)
    ):
        out += [d for d in live(before) if d in live(account) and d not in out]
    return out


def expected_across_change(
    events: list[tuple[int, str, str, str, str]],
    old: list[dict[str, Any]],
    new: list[dict[str, Any]],
    changed_at: dict[str, int],
) -> dict[str, set[str]]:
    """``destination id -> event ids`` when the settings of the accounts in ``changed_at``
    changed from ``old`` to ``new`` with the audit event at that offset of the activity topic:
    an account's events before it follow ``old``, the rest ``new``. ``events`` are
    ``(offset, event_id, account, category, activity)``."""
    old_by, new_by = {a["account_id"]: a for a in old}, {a["account_id"]: a for a in new}
    out: dict[str, set[str]] = {d["id"]: set() for a in [*old, *new] for d in a["destinations"]}
    for offset, event_id, account_id, category, activity in events:
        at = changed_at.get(account_id)
        if at is None or offset < at:
            # Before the first change, no earlier settings are announced to.
            dests = targets(old_by.get(account_id), category, activity)
        else:
            account = new_by.get(account_id)
            dests = targets(account, category, activity, before=old_by.get(account_id))
        for dest in dests:
            out[dest].add(event_id)
    return out


# -- what the destinations hold ------------------------------------------------------------


class LocalReader:
    """Event ids per object under a local root; an object is decoded once (objects are written
    to a temporary name and renamed, so a finished object never changes)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._cache: dict[Path, tuple[int, list[str]]] = {}

    def ids(self, dest_path: str) -> list[str]:
        base = self.root / dest_path
        found: list[str] = []
        if not base.exists():
            return found
        for path in sorted(base.rglob("*")):
            if not path.is_file() or path.name.startswith(".tmp-"):
                continue
            size = path.stat().st_size
            cached = self._cache.get(path)
            if cached is None or cached[0] != size:
                ids = [str(e["event_id"]) for e in decode_object(path.name, path.read_bytes())]
                cached = (size, ids)
                self._cache[path] = cached
            found.extend(cached[1])
        return found


def webhook_counts(receiver: WebhookReceiver) -> tuple[set[str], set[str]]:
    """(distinct event ids accepted, ids accepted under two or more Idempotency-Keys)."""
    keys: dict[str, set[str]] = {}
    for n, delivery in enumerate(receiver.deliveries):
        key = delivery.idempotency_key or delivery.headers.get("webhook-id") or f"no-key-{n}"
        for event_id in delivery.event_ids:
            keys.setdefault(event_id, set()).add(key)
    return set(keys), {i for i, k in keys.items() if len(k) > 1}


def store_ids(store: AzureStore) -> list[str]:
    """Every event id in the store's objects (the sink's reachability probes left out),
    duplicates included. An object the store cannot list or read now counts as absent."""
    try:
        objects = store.objects()
    except Exception:  # stopped on purpose: nothing can be read meanwhile
        return []
    return [
        str(e["event_id"])
        for key, data in objects.items()
        if "/_auditstream_check/" not in key
        for e in decode_object(key, data)
    ]


# -- results -------------------------------------------------------------------------------


ROUTER_STALL_TIMEOUT_S = 15.0
"""Routers of the suite give up a stalled step sooner than the default 120 s."""


@dataclass
class Count:
    expected: int
    delivered: int
    lost: int
    duplicated: int
    extra: int = 0
    """Ids the destination holds that it should not (not produced, or filtered out)."""
    examples: list[str] = field(default_factory=list)
    """A few lost, extra or duplicated event ids (with their activity offset when known)."""


@dataclass
class Result:
    scenario: str
    seed: int
    produced: int
    faults: list[str] = field(default_factory=list)
    per_destination: dict[str, Count] = field(default_factory=dict)
    drain_s: float | None = None
    problems: list[str] = field(default_factory=list)
    """What went wrong besides the counts: a drain that timed out, a dead letter that did not
    arrive, production that failed."""
    crashes: list[str] = field(default_factory=list)
    """Router or sink worker processes that exited by themselves (with their log's last
    lines); each was replaced by a new one, as a supervisor would."""
    notes: list[str] = field(default_factory=list)

    @property
    def expected(self) -> int:
        return sum(c.expected for c in self.per_destination.values())

    @property
    def delivered(self) -> int:
        return sum(c.delivered for c in self.per_destination.values())

    @property
    def lost(self) -> int:
        return sum(c.lost for c in self.per_destination.values())

    @property
    def duplicated(self) -> int:
        return sum(c.duplicated for c in self.per_destination.values())

    @property
    def extra(self) -> int:
        return sum(c.extra for c in self.per_destination.values())

    def expected_by_destination(self) -> str:
        return " ".join(f"{d}={c.expected}" for d, c in sorted(self.per_destination.items()))


_COLUMNS = (
    ("scenario", 10, "<"),
    ("seed", 6, ">"),
    ("produced", 9, ">"),
    ("faults", 6, ">"),
    ("expected", 9, ">"),
    ("delivered", 9, ">"),
    ("LOST", 6, ">"),
    ("DUPLICATED", 10, ">"),
    ("drain s", 8, ">"),
    ("crashed", 7, ">"),
)


def table(results: list[Result]) -> list[str]:
    """One row per scenario (expected and delivered summed over destinations), then, per
    scenario, the expected count of each destination, the faults and any problem."""

    def line(cells: list[str]) -> str:
        return " ".join(f"{c:{a}{w}}" for (_, w, a), c in zip(_COLUMNS, cells, strict=True))

    head = line([c[0] for c in _COLUMNS])
    out = [head, "-" * len(head)]
    for r in results:
        drain = "-" if r.drain_s is None else f"{r.drain_s:.1f}"
        out.append(
            line(
                [
                    r.scenario,
                    str(r.seed),
                    str(r.produced),
                    str(len(r.faults)),
                    str(r.expected),
                    str(r.delivered),
                    str(r.lost),
                    str(r.duplicated),
                    drain,
                    str(len(r.crashes)),
                ]
            )
        )
    out.append("")
    for r in results:
        out.append(f"{r.scenario}: expected per destination: {r.expected_by_destination()}")
        for d, c in sorted(r.per_destination.items()):
            if c.lost or c.duplicated or c.extra:
                out.append(
                    f"  {d}: expected {c.expected} delivered {c.delivered} lost {c.lost} "
                    f"duplicated {c.duplicated} extra {c.extra}: {', '.join(c.examples)}"
                )
        out.extend(f"  fault: {f}" for f in r.faults)
        out.extend(f"  note: {n}" for n in r.notes)
        out.extend(f"  PROBLEM: {p}" for p in r.problems)
        out.extend(f"  CRASHED: {c}" for c in r.crashes)
    return out


# -- options ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    """How big a run is. The CI size is the default; ``full()`` the full size."""

    events: int = 5_000
    seed: int = 20261129
    kills: int = 3
    rate: float = 250.0
    """Events produced per second (the faults happen while they are produced)."""
    outage_s: float = 10.0
    """How long the failing webhook answers 503."""
    min_production_s: float = 15.0
    """Production lasts at least this long (the rate is lowered for small runs)."""
    drain_timeout_s: float = 300.0
    stall_s: float = 45.0
    """Stop waiting when no destination received anything new for this long (an event that
    has not arrived by then is lost; the webhook and store outages end before production
    does)."""
    workers: int = 1

    @classmethod
    def full(cls, events: int = 200_000, seed: int = 20261129) -> Options:
        return cls(
            events=events,
            seed=seed,
            kills=10,
            rate=1000.0,
            outage_s=60.0,
            drain_timeout_s=1800.0,
            stall_s=120.0,
        )


# -- the running stack -----------------------------------------------------------------------


class Stack:
    """The router and sink worker processes of a run, started and ended by PID."""

    def __init__(
        self, workdir: Path, bootstrap: str, out: Path, log_args: list[str] | None = None
    ) -> None:
        self.workdir = workdir
        self.bootstrap = bootstrap
        self.out = out
        self.log_args = log_args or ["--bootstrap", bootstrap]
        """How the processes reach the log (``--backend embedded --db ...`` for the
        embedded log)."""
        self.routers: list[ProjectProcess] = []
        self.workers: list[ProjectProcess] = []
        self._started = 0
        self._slots: dict[ProjectProcess, int] = {}
        self.exited: list[str] = []

    def _log(self, role: str) -> Path:
        self._started += 1
        return self.workdir / f"{role}-{self._started:02d}.log"

    def start_router(self, slot: int | None = None) -> ProjectProcess:
        """A router with the transactional id of ``slot`` (default: the lowest free one). A
        replacement takes its predecessor's slot, as a stateful deployment gives it the same
        id: it fences the dead router and aborts its open transaction at once."""
        if slot is None:
            taken = set(self._slots.values())
            slot = next(i for i in range(1, len(taken) + 2) if i not in taken)
        txid = f"fault-suite-router-{slot}"
        # A router wedged in a transactional call after a broker restart (a librdkafka call
        # that ignores its timeout; ADR 013) exits after --stall-timeout and is replaced, as
        # its supervisor would: the suite's wait for new deliveries outlasts that.
        args = [
            "router",
            *self.log_args,
            "--transactional-id",
            txid,
            "--stall-timeout",
            str(ROUTER_STALL_TIMEOUT_S),
        ]
        p = ProjectProcess(args, self._log("router"))
        self._slots[p] = slot
        self.routers.append(p)
        return p

    def slot(self, p: ProjectProcess) -> int | None:
        return self._slots.get(p)

    def start_worker(self) -> ProjectProcess:
        args = ["sink-worker", *self.log_args, "--local-root", str(self.out)]
        p = ProjectProcess([*args, "--allow-network", "127.0.0.1/32"], self._log("worker"))
        self.workers.append(p)
        return p

    def _forget(self, p: ProjectProcess) -> None:
        self._slots.pop(p, None)
        for group in (self.routers, self.workers):
            if p in group:
                group.remove(p)

    def kill9(self, p: ProjectProcess) -> None:
        p.kill9()
        p.stop()  # closes its log file; the process is gone already
        self._forget(p)

    def stop(self, p: ProjectProcess) -> int:
        code = p.stop()
        self._forget(p)
        return code

    def wait_ready(self, timeout: float) -> None:
        """Poll the processes' logs until each says it runs. Raises ``RuntimeError`` (with the
        log's tail) for one that does not within ``timeout`` seconds."""
        ready = {"router": "router running on", "worker": "sink worker running on"}
        deadline = time.monotonic() + timeout
        for p in [*self.routers, *self.workers]:
            line = ready["router" if p in self.routers else "worker"]
            while line not in p.output():
                if not p.alive() or time.monotonic() > deadline:
                    tail = "\n".join(p.output().splitlines()[-15:])
                    raise RuntimeError(f"{p.log_path.name} did not start:\n{tail}")
                time.sleep(0.2)

    def check(self) -> None:
        """Replace a process that exited by itself, and note it (with its log's tail)."""
        for group, start in ((self.routers, self.start_router), (self.workers, self.start_worker)):
            for p in list(group):
                if not p.alive():
                    tail = "\n".join(p.output().splitlines()[-15:])
                    self.exited.append(f"{p.log_path.name} exited by itself:\n{tail}")
                    slot = self.slot(p)
                    p.stop()
                    self._forget(p)
                    if start == self.start_router:
                        self.start_router(slot)
                    else:
                        self.start_worker()

    def stop_all(self) -> None:
        for p in [*self.routers, *self.workers]:
            with contextlib.suppress(Exception):
                p.stop()
        self.routers.clear()
        self.workers.clear()


# -- producing -----------------------------------------------------------------------------


class Production:
    """Produces ``count`` simulated events at ``rate`` per second from a thread, noting which
    the log acknowledged. ``inject`` queues extra raw records (poison) to send as well."""

    def __init__(
        self, log: KafkaLog, accounts: list[str], count: int, rate: float, seed: int
    ) -> None:
        self._log = log
        self._sim = Simulator(SimulatorConfig(accounts=accounts, seed=seed, start=SIM_START))
        self.count = count
        self.rate = rate
        self.sent = 0
        self.acked: list[tuple[str, str, str, str]] = []
        self.failed: list[str] = []
        self._lock = threading.Lock()
        self._extra: list[OutgoingRecord] = []
        self.extra_acked: list[OutgoingRecord] = []
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fault-suite-producer")

    def start(self) -> None:
        self._thread.start()

    def inject(self, records: list[OutgoingRecord]) -> None:
        with self._lock:
            self._extra.extend(records)

    @property
    def progress(self) -> float:
        return self.sent / self.count if self.count else 1.0

    def done(self) -> bool:
        return not self._thread.is_alive()

    def join(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        try:
            self._produce()
        except BaseException as exc:  # reported by the run
            self.error = exc

    def _produce(self) -> None:
        producer = self._log.producer()
        started = time.monotonic()
        try:
            events = self._sim.events(self.count)
            for i, event in enumerate(events, start=1):
                if self._stop.is_set():
                    break
                delay = started + i / self.rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                key = (
                    str(event["event_id"]),
                    str(event["account_id"]),
                    str(event["category"]),
                    str(event["activity"]),
                )

                def report(err: Exception | None, _r: OutgoingRecord, key: Any = key) -> None:
                    with self._lock:
                        (self.failed.append(key[0]) if err else self.acked.append(key))

                producer.produce(to_record(event), report)
                self.sent = i
                self._send_extra(producer)
            self._send_extra(producer)
            remaining = producer.flush(300.0)
            if remaining:
                raise RuntimeError(f"{remaining} events not acknowledged after 300 s")
        finally:
            producer.close()

    def _send_extra(self, producer: Any) -> None:
        with self._lock:
            extra, self._extra = self._extra, []

        def report(err: Exception | None, r: OutgoingRecord) -> None:
            if err is None:
                with self._lock:
                    self.extra_acked.append(r)

        for record in extra:
            producer.produce(record, report)


# -- poison ----------------------------------------------------------------------------------


def poison_records(seed: int) -> list[tuple[str, str | None, OutgoingRecord]]:
    """``(kind, expected dead-letter reason or None, record)``: None means filtered (an account
    without settings is not streamed anywhere)."""
    rng = random.Random(seed)
    sim = Simulator(SimulatorConfig(accounts=["acct-all"], seed=seed + 1, start=SIM_START))
    good = to_record(next(iter(sim.events(1))))
    nobody = SimulatorConfig(accounts=["acct-nobody"], seed=seed + 2, start=SIM_START)
    nosettings = to_record(next(iter(Simulator(nobody).events(1))))
    fingerprint = good.value[:2] + bytes(rng.randrange(256) for _ in range(8))
    headers = good.headers
    return [
        ("garbage bytes", "malformed", OutgoingRecord(
            topic=topics.ACTIVITY, key=good.key, headers=headers,
            value=bytes(rng.randrange(256) for _ in range(64)),
        )),
        ("unknown fingerprint", "unknown_schema", OutgoingRecord(
            topic=topics.ACTIVITY, key=good.key, headers=headers,
            value=fingerprint + good.value[10:],
        )),
        ("truncated body", "malformed", OutgoingRecord(
            topic=topics.ACTIVITY, key=good.key, headers=headers,
            value=good.value[: 10 + (len(good.value) - 10) // 3],
        )),
        ("missing headers", "missing_header", OutgoingRecord(
            topic=topics.ACTIVITY, key=good.key, headers=(), value=good.value,
        )),
        ("account without settings", None, nosettings),
    ]  # fmt: skip


def read_dead_letters(log: KafkaLog, want: int, timeout: float) -> list[tuple[str, str, bytes]]:
    """``(reason, stage, value)`` of the dead letters, read until ``want`` are there (or the
    time is up)."""
    reader = log.reader(topics.DEAD_LETTERS)
    found: list[tuple[str, str, bytes]] = []
    deadline = time.monotonic() + timeout
    try:
        while len(found) < want and time.monotonic() < deadline:
            for r in reader.poll(500, 0.5):
                reason = (r.header("dlq.reason") or b"").decode()
                stage = (r.header("dlq.stage") or b"").decode()
                found.append((reason, stage, r.value))
    finally:
        reader.close()
    return found


# -- one run ---------------------------------------------------------------------------------

Action = tuple[float, str, Callable[[], str]]
"""(at this share of the production, label, do it: returns what was done)."""


@dataclass
class Run:
    """One run's moving parts and what it learnt (also driven by ``bench/soak.py``)."""

    scenario: str
    options: Options
    workdir: Path
    cluster: KafkaCluster
    stack: Stack
    receivers: dict[str, WebhookReceiver]
    rng: random.Random
    log: KafkaLog
    store: AzureStore | None = None
    raw: list[dict[str, Any]] = field(default_factory=list)
    new_raw: list[dict[str, Any]] | None = None
    change_events: dict[str, str] = field(default_factory=dict)
    offsets: dict[str, int] = field(default_factory=dict)
    """Activity offset by event id (read back in the settings scenario only)."""
    production: Production | None = None
    poison: list[tuple[str, str | None, OutgoingRecord]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _kill9_actions(run: Run) -> list[Action]:
    moments = sorted(run.rng.uniform(0.05, 0.95) for _ in range(run.options.kills))

    def kill() -> str:
        processes = [*run.stack.routers, *run.stack.workers]
        victim = run.rng.choice(processes)
        role = "router" if victim in run.stack.routers else "sink worker"
        pid, slot = victim.pid, run.stack.slot(victim)
        run.stack.kill9(victim)
        if role == "router":
            run.stack.start_router(slot)
        else:
            run.stack.start_worker()
        return f"kill -9 {role} PID {pid}"

    return [(m, "kill9", kill) for m in moments]


def _broker_actions(run: Run) -> list[Action]:
    state: dict[str, int] = {}

    def kill_follower() -> str:
        controller = run.cluster.controller()
        node = run.rng.choice([n for n in run.cluster.nodes if n != controller])
        run.cluster.kill9(node)
        state["follower"] = node
        return f"kill -9 broker {node} (controller was {controller})"

    def restart_follower() -> str:
        t0 = time.monotonic()
        run.cluster.restart(state["follower"])
        return f"restart broker {state['follower']} ({time.monotonic() - t0:.0f} s)"

    def kill_controller() -> str:
        controller = run.cluster.controller()
        run.cluster.kill9(controller)
        state["controller"] = controller
        after = run.cluster.controller(timeout=60.0)
        return f"kill -9 controller broker {controller} (new controller {after})"

    def restart_controller() -> str:
        t0 = time.monotonic()
        run.cluster.restart(state["controller"])
        return f"restart broker {state['controller']} ({time.monotonic() - t0:.0f} s)"

    return [
        (0.15, "kill broker", kill_follower),
        (0.3, "restart broker", restart_follower),
        (0.5, "kill controller", kill_controller),
        (0.65, "restart controller", restart_controller),
    ]


def _webhook_actions(run: Run) -> list[Action]:
    failing, healthy = run.receivers[HOOK_B], run.receivers[HOOK_A]
    state: dict[str, Any] = {}

    def fail() -> str:
        failing.set_status(503)
        state["t0"] = time.monotonic()
        state["a0"] = len(healthy.unique_event_ids())
        state["b0"] = len(failing.unique_event_ids())
        return f"{HOOK_B} answers 503"

    def recover() -> str:
        remaining = state["t0"] + run.options.outage_s - time.monotonic()
        # The outage lasts its full time even when production is faster.
        while remaining > 0:
            time.sleep(min(remaining, 0.5))
            remaining = state["t0"] + run.options.outage_s - time.monotonic()
        failing.set_status(None)
        a_gain = len(healthy.unique_event_ids()) - state["a0"]
        b_gain = len(failing.unique_event_ids()) - state["b0"]
        run.notes.append(
            f"during the {time.monotonic() - state['t0']:.0f} s outage {HOOK_A} received "
            f"{a_gain} new events, {HOOK_B} {b_gain}"
        )
        if a_gain <= 0:
            run.problems.append(f"{HOOK_A} received nothing while {HOOK_B} was failing")
        return f"{HOOK_B} answers again after {time.monotonic() - state['t0']:.0f} s"

    return [(0.15, "webhook 503", fail), (0.16, "webhook ok", recover)]


def _scaling_actions(run: Run) -> list[Action]:
    def workers_up() -> str:
        run.stack.start_worker()
        run.stack.start_worker()
        return "sink workers 1 -> 3"

    def routers_up() -> str:
        run.stack.start_router()
        return "routers 1 -> 2"

    def workers_down() -> str:
        codes = [run.stack.stop(p) for p in run.stack.workers[:2]]
        return f"sink workers 3 -> 1 (SIGTERM, exit codes {codes})"

    def routers_down() -> str:
        code = run.stack.stop(run.stack.routers[0])
        return f"routers 2 -> 1 (SIGTERM, exit code {code})"

    return [
        (0.15, "scale", workers_up),
        (0.35, "scale", routers_up),
        (0.6, "scale", workers_down),
        (0.8, "scale", routers_down),
    ]


def _poison_actions(run: Run) -> list[Action]:
    records = run.poison = poison_records(run.options.seed)

    def inject(i: int) -> Callable[[], str]:
        def do() -> str:
            kind, _reason, record = records[i]
            assert run.production is not None
            run.production.inject([record])
            return f"poison: {kind}"

        return do

    step = 0.8 / len(records)
    return [(0.1 + i * step, "poison", inject(i)) for i in range(len(records))]


def _store_actions(run: Run) -> list[Action]:
    state: dict[str, float] = {}

    def stop() -> str:
        assert run.store is not None
        run.store.stop()
        state["t0"] = time.monotonic()
        return "Azurite stopped"

    def restart() -> str:
        assert run.store is not None
        remaining = state["t0"] + run.options.outage_s - time.monotonic()
        while remaining > 0:
            time.sleep(min(remaining, 0.5))
            remaining = state["t0"] + run.options.outage_s - time.monotonic()
        run.store.restart()
        return f"Azurite started again after {time.monotonic() - state['t0']:.0f} s"

    return [(0.2, "store down", stop), (0.21, "store up", restart)]


def changed_settings(raw: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``raw`` after the change: acct-all no longer streams the ``recipe`` category, acct-excl
    gets a second local destination ``excl-new``, acct-hooks deletes ``hooks-local`` (marked
    ``deleting``: no more copies, what its topic holds is still delivered)."""
    out = []
    for account in raw:
        account = {**account, "destinations": [dict(d) for d in account["destinations"]]}
        if account["account_id"] == "acct-all":
            keys = [c.key for c in catalog.CATEGORIES if c.key != _DROPPED_CATEGORY]
            account["include_categories"] = keys
        elif account["account_id"] == "acct-excl":
            account["destinations"].append({"id": "excl-new", "type": "local", "path": "excl-new"})
        elif account["account_id"] == "acct-hooks":
            for d in account["destinations"]:
                if d["id"] == "hooks-local":
                    d["deleting"] = True
        out.append(account)
    return out


def _settings_actions(run: Run) -> list[Action]:
    def change() -> str:
        old = run.raw
        new = changed_settings(old)
        before = {a.account_id: a for a in _with_batches(old)}
        after = {a.account_id: a for a in _with_batches(new)}
        actor = audit.Actor(user_id="fault-suite", role="admin")
        now = datetime.now(UTC)
        events = [
            *audit.stream_events(
                before["acct-all"], after["acct-all"], actor=actor, request=None, now=now
            ),
            audit.destination_event(
                "acct-excl",
                None,
                after["acct-excl"].destinations[-1],
                operation="created",
                actor=actor,
                request=None,
                now=now,
            ),
            audit.destination_event(
                "acct-hooks",
                before["acct-hooks"].destinations[0],
                after["acct-hooks"].destinations[0],
                operation="delete_requested",
                actor=actor,
                request=None,
                now=now,
            ),
        ]
        run.change_events = {str(e["event_id"]): str(e["account_id"]) for e in events}
        # As the settings API writes a change: each account's record and audit event in one
        # transaction, stamped with one revision (ADR 017).
        records = [
            record
            for a in ("acct-all", "acct-excl", "acct-hooks")
            for record in with_revision(
                [
                    OutgoingRecord(topics.SETTINGS, encode_settings(after[a]), key=a.encode()),
                    *(to_record(e) for e in events if e["account_id"] == a),
                ],
                new_revision(),
                previous=encode_settings(before[a]),  # published without a revision
            )
        ]
        run.log.create_topic(topics.destination_topic("excl-new"))
        producer = run.log.transactional_producer(f"fault-suite-settings-{run.options.seed}")
        try:
            producer.produce_atomically(records)
        finally:
            producer.close()
        run.new_raw = new
        return (
            f"settings changed in one transaction: acct-all without {_DROPPED_CATEGORY!r}, "
            "acct-excl + excl-new, acct-hooks deletes hooks-local"
        )

    def router_down() -> str:
        code = run.stack.stop(run.stack.routers[0])
        return f"router stopped (SIGTERM, exit code {code}): events wait unrouted"

    def router_up() -> str:
        run.stack.start_router()
        return "router started again: it routes the events written before the change now"

    # The router is down across the change (a deployment during a settings change): the
    # events written before the change are all routed after it, which makes the boundary
    # deterministic instead of a race within one batch.
    return [(0.4, "router down", router_down), (0.5, "settings", change), (0.6, "up", router_up)]


def activity_offsets(log: KafkaLog) -> list[tuple[int, str, str, str, str]]:
    """``(offset, event_id, account, category, activity)`` of every event in the activity
    topic that decodes (poison records do not), read from the log."""
    end = sum(log.end_offsets(topics.ACTIVITY).values())
    reader = log.reader(topics.ACTIVITY)
    out: list[tuple[int, str, str, str, str]] = []
    last = -1
    deadline = time.monotonic() + 120
    try:
        # Transaction markers take offsets too: read until the last record before the end.
        while last < end - 2 and time.monotonic() < deadline:
            records = reader.poll(5000, 1.0)
            if not records and last >= 0:
                break
            for r in records:
                last = r.offset
                try:
                    e = codec.decode(r.value)
                except CodecError:
                    continue
                out.append(
                    (
                        r.offset,
                        str(e["event_id"]),
                        str(e["account_id"]),
                        e["category"],
                        e["activity"],
                    )
                )
    finally:
        reader.close()
    return out


_MIN_PRODUCTION_S = {"brokers": 35.0}
"""Production lasts at least this long in these scenarios: two broker restarts, each up to
15 s on a busy machine, must happen while events are still produced."""

_MIN_STALL_S = {"kill9": 100.0}
"""Wait at least this long without a new delivery before calling events lost. A router killed
with -9 leaves its open transaction behind. Its replacement takes the same transactional id
(:meth:`Stack.start_router`) and aborts it at once; a router with an id of its own (the CLI's
default, ``auditstream-router-<uuid>``) would not, and the brokers abort it only once it
times out (librdkafka's ``transaction.timeout.ms``, 60 s, plus up to 10 s): until then no
read_committed consumer reads past it, and every destination waits."""

_ACTIONS: dict[str, Callable[[Run], list[Action]]] = {
    "kill9": _kill9_actions,
    "brokers": _broker_actions,
    "webhook503": _webhook_actions,
    "scaling": _scaling_actions,
    "poison": _poison_actions,
    "store": _store_actions,
    "settings": _settings_actions,
}


def _count(
    run: Run,
    raw: list[dict[str, Any]],
    expected: dict[str, set[str]],
    reader: LocalReader,
) -> dict[str, Count]:
    out: dict[str, Count] = {}
    for account in raw:
        for d in account["destinations"]:
            want = expected[d["id"]]
            if d["type"] == "webhook":
                got, dupes = webhook_counts(run.receivers[d["id"]])
            elif d["type"] != "local":
                assert run.store is not None
                ids = store_ids(run.store)
                got = set(ids)
                dupes = {i for i, n in Counter(ids).items() if n > 1}
            else:
                ids = reader.ids(d["path"])
                got = set(ids)
                dupes = {i for i, n in Counter(ids).items() if n > 1}
            out[d["id"]] = Count(
                expected=len(want),
                delivered=len(got & want),
                lost=len(want - got),
                duplicated=len(dupes),
                extra=len(got - want),
                examples=_examples(run, want - got, got - want, dupes),
            )
    return out


def _examples(run: Run, lost: set[str], extra: set[str], dupes: set[str]) -> list[str]:
    """A few of the events that are wrong, with their activity offset when it is known."""
    out = []
    for what, ids in (("lost", lost), ("extra", extra), ("duplicated", dupes)):
        for event_id in sorted(ids, key=lambda i: run.offsets.get(i, -1))[:5]:
            where = run.offsets.get(event_id)
            out.append(f"{what} {event_id}" + ("" if where is None else f" @{where}"))
    return out


def _totals(counts: dict[str, Count]) -> tuple[int, int, int]:
    return (
        sum(c.delivered for c in counts.values()),
        sum(c.extra for c in counts.values()),
        sum(c.duplicated for c in counts.values()),
    )


def _complete(counts: dict[str, Count]) -> bool:
    return all(c.lost == 0 for c in counts.values())


@contextlib.contextmanager
def webhook_receivers() -> Iterator[dict[str, WebhookReceiver]]:
    with WebhookReceiver(SECRET.encode()) as a, WebhookReceiver(SECRET.encode()) as b:
        yield {HOOK_A: a, HOOK_B: b}


_T0 = time.monotonic()


def say(message: str) -> None:
    """One progress line on stderr, so a long run shows life."""
    print(f"[{time.monotonic() - _T0:7.1f}s] {message}", file=sys.stderr, flush=True)


def run(scenario: str, workdir: Path, options: Options | None = None) -> Result:
    """Run one scenario in ``workdir`` (created; the cluster's data and every process's log stay
    there) and count what each destination holds."""
    if scenario == "diskfull":
        return run_diskfull(workdir, options or Options())
    unknown = [s for s in scenario.split("+") if s not in _ACTIONS]
    if unknown:
        raise ValueError(f"unknown scenario {unknown[0]!r}; choose from {', '.join(SCENARIOS)}")
    options = options or Options()
    workdir.mkdir(parents=True, exist_ok=True)
    out = workdir / "out"
    say(f"{scenario}: starting a three-node cluster in {workdir}")
    with contextlib.ExitStack() as resources:
        cluster = resources.enter_context(KafkaCluster.start(workdir / "kafka"))
        receivers = resources.enter_context(webhook_receivers())
        store = None
        if "store" in scenario.split("+"):
            store = AzureStore(workdir / "azurite")
            resources.callback(store.stop)
        log = KafkaLog(cluster.bootstrap)
        stack = Stack(workdir, cluster.bootstrap, out)
        rng = random.Random(f"{scenario}-{options.seed}")
        state = Run(scenario, options, workdir, cluster, stack, receivers, rng, log, store)
        try:
            return _run(state)
        finally:
            say(f"{scenario}: stopping")
            stack.stop_all()
            log.close()


def _setup(run: Run, step: Callable[[], object], what: str, attempts: int = 3) -> None:
    """Run a setup ``step``, again after a ``LogError`` (noted). A client given the cluster's
    three addresses drops those bootstrap connections once it has learnt the brokers, and an
    admin request in flight on one fails with _DESTROY_BROKER; the setup is not what a run
    measures."""
    for attempt in range(attempts):
        try:
            step()
            return
        except LogError as exc:
            run.notes.append(f"{what} failed once, retried: {exc}")
            if attempt == attempts - 1:
                raise


def start_stream(run: Run) -> list[dict[str, Any]]:
    """Publish the suite's settings (an object-store account too when ``run.store``), start
    the router and ``options.workers`` sink workers; returns the settings as written."""
    blob = None
    if run.store is not None:
        blob = run.store.destination("blob", prefix="faults", format="ndjson", compression="gzip")
    raw = run.raw = account_settings(run.receivers[HOOK_A].url, run.receivers[HOOK_B].url, blob)
    _setup(run, lambda: publish_settings(run.log, _with_batches(raw)), "publishing the settings")
    run.stack.start_router()
    for _ in range(run.options.workers):
        run.stack.start_worker()
    return raw


def _run(run: Run) -> Result:
    options = run.options
    raw = start_stream(run)
    longest = max(_MIN_PRODUCTION_S.get(p, 0.0) for p in run.scenario.split("+"))
    rate = min(options.rate, options.events / max(options.min_production_s, longest))
    accounts = [a["account_id"] for a in raw]
    production = Production(run.log, accounts, options.events, rate, options.seed)
    run.production = production
    parts = run.scenario.split("+")
    actions = sorted((a for p in parts for a in _ACTIONS[p](run)), key=lambda a: a[0])
    result = Result(run.scenario, options.seed, 0)
    run.stack.wait_ready(timeout=180.0)
    say(f"{run.scenario}: producing {options.events} events at {rate:.0f}/s")
    production.start()
    try:
        while actions or not production.done():
            if actions and (production.progress >= actions[0][0] or production.done()):
                _at, _label, do = actions.pop(0)
                began = production.sent
                done = do()  # may take a while (a broker restart, an outage)
                result.faults.append(f"at {began}-{production.sent} events: {done}")
                say(f"{run.scenario}: {result.faults[-1]}")
                continue
            run.stack.check()
            time.sleep(0.1)
    finally:
        production.join()
    if production.error is not None:
        run.problems.append(f"production failed: {production.error!r}")
    say(f"{run.scenario}: produced; waiting for every destination")
    drained_from = time.monotonic()
    expected = _expected(run, production)
    if run.new_raw is not None:
        raw = run.new_raw  # every destination, the added one too
    stall_s = max([options.stall_s, *(_MIN_STALL_S.get(p, 0.0) for p in parts)])
    result.per_destination, result.drain_s = wait_for_destinations(
        run, raw, expected, stall_s, since=drained_from
    )
    result.produced = len(production.acked)
    if production.failed:
        run.notes.append(f"{len(production.failed)} events refused by the log (not expected)")
    if "poison" in run.scenario.split("+"):
        _check_poison(run, production)
    result.notes = run.notes
    result.problems = run.problems
    result.crashes = run.stack.exited
    return result


def wait_for_destinations(
    run: Run,
    raw: list[dict[str, Any]],
    expected: dict[str, set[str]],
    stall_s: float,
    tick: Callable[[], None] | None = None,
    since: float | None = None,
) -> tuple[dict[str, Count], float | None]:
    """Wait until every destination of ``raw`` holds its ``expected`` ids, at most
    ``drain_timeout_s`` and at most ``stall_s`` without a new delivery (then a problem is
    noted). Returns the counts (taken 3 s after, so a late duplicate shows) and the seconds it
    took since ``since`` (default: now), None when it gave up. ``tick`` runs every second
    (default: replace processes that exited)."""
    tick = tick or run.stack.check
    drained_from = time.monotonic() if since is None else since
    reader = LocalReader(run.stack.out)
    deadline = drained_from + run.options.drain_timeout_s
    counts = _count(run, raw, expected, reader)
    changed_at, last = time.monotonic(), _totals(counts)
    while not _complete(counts) and time.monotonic() < deadline:
        if time.monotonic() - changed_at > stall_s:
            break
        tick()
        time.sleep(1.0)
        counts = _count(run, raw, expected, reader)
        if _totals(counts) != last:
            changed_at, last = time.monotonic(), _totals(counts)
    drain_s = None
    if _complete(counts):
        drain_s = time.monotonic() - drained_from
    else:
        waited = time.monotonic() - drained_from
        run.problems.append(
            f"not every event arrived: gave up after {waited:.0f} s "
            f"({time.monotonic() - changed_at:.0f} s without a new delivery)"
        )
    # Anything delivered twice would show up now: watch a little longer than a batch's age.
    time.sleep(3.0)
    return _count(run, raw, expected, reader), drain_s


def _expected(run: Run, production: Production) -> dict[str, set[str]]:
    if run.new_raw is None:
        return expected_per_destination(production.acked, run.raw)
    # By offset: the activity topic says which events came before the change's audit events.
    acked = {e[0] for e in production.acked} | set(run.change_events)
    events = [e for e in activity_offsets(run.log) if e[1] in acked]
    where = run.offsets = {e[1]: e[0] for e in events}
    missing = [i for i in acked if i not in where]
    if missing:
        run.problems.append(f"{len(missing)} acknowledged events not found in the activity topic")
    changed_at = {acct: where[i] for i, acct in run.change_events.items() if i in where}
    run.notes.append(f"settings change at activity offsets {sorted(changed_at.items())}")
    return expected_across_change(events, run.raw, run.new_raw, changed_at)


# -- diskfull: the embedded log on a disk that fills up ----------------------------------------


def disk_mb(events: int) -> int:
    """The tmpfs the embedded log lives on: room for the run's records (about 1.5 KiB an
    event with its copies, the WAL and the indexes), since a file fills it at the fault."""
    return 64 + events // 400


def _local_only(raw: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [a for a in raw if all(d["type"] == "local" for d in a["destinations"])]


def _wait_for(condition: Callable[[], bool], timeout: float, tick: Callable[[], None]) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        tick()
        time.sleep(0.2)
    return True


def run_diskfull(workdir: Path, options: Options, mode: str | None = None) -> Result:
    """The ``diskfull`` scenario: the router and a sink worker (real processes) and a producer
    process on the embedded log in a directory that fills up (:func:`full_disk.small_disk`;
    ``mode`` forces ``tmpfs`` or ``rlimit``). At 30 % of the production the directory is
    filled, the router killed -9 and replaced while it is full, and after ``outage_s`` room
    returns; the producer sends a refused flush again until it is stored. Beyond the counts,
    a problem is noted when the producer was never refused, when a refusal does not name the
    file and say to free space, when the log fails ``PRAGMA integrity_check``, or when an
    acknowledged event is not in the activity topic."""
    workdir.mkdir(parents=True, exist_ok=True)
    result = Result("diskfull", options.seed, 0)
    raw = _local_only(account_settings("http://127.0.0.1:1/a", "http://127.0.0.1:1/b"))
    accounts = [a["account_id"] for a in raw]
    say(f"diskfull: the embedded log in {workdir / 'disk'}")
    with contextlib.ExitStack() as resources:
        # Entered first, left last: every process and connection is gone before unmounting.
        disk = resources.enter_context(small_disk(workdir / "disk", disk_mb(options.events), mode))
        result.notes.append(f"full disk: {disk.why}")
        db = disk.path / "log.sqlite"
        log = EmbeddedLog(db)
        resources.callback(log.close)
        publish_settings(log, _with_batches(raw))
        stack = Stack(workdir, "", workdir / "out", ["--backend", "embedded", "--db", str(db)])
        resources.callback(stack.stop_all)
        stack.start_router()
        stack.start_worker()
        stack.wait_ready(timeout=180.0)
        rate = min(options.rate, options.events / options.min_production_s)
        command = producer_command(db, accounts, options.events, rate, options.seed)
        producer = ProducerProcess(command, workdir / "producer.log")
        resources.callback(producer.stop)

        def pids() -> list[int]:
            return [producer.pid, *(p.pid for p in [*stack.routers, *stack.workers])]

        def tick() -> None:
            stack.check()
            disk.set_pids(pids())  # a replacement is limited like the others

        say(f"diskfull: producing {options.events} events at {rate:.0f}/s ({disk.mode})")
        at = int(options.events * 0.3)
        _wait_for(lambda: len(producer.acked) >= at or producer.proc.poll() is not None, 600, tick)
        # The router paused a moment first, so it has events to route when the log is full.
        router = stack.routers[0]
        os.kill(router.pid, signal.SIGSTOP)
        paused_at = len(producer.acked)
        _wait_for(lambda: len(producer.acked) >= paused_at + 300, 5.0, lambda: None)
        # The WAL file keeps its size after a checkpoint and is written over again: truncated,
        # its room goes to the filler, and the router's next write needs new space.
        busy = log.connection().execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
        t0 = time.monotonic()
        took = disk.fill(pids())
        os.kill(router.pid, signal.SIGCONT)
        result.faults.append(
            f"at {len(producer.acked)} events: full ({disk.mode}, {took} bytes; WAL "
            f"{'not ' if busy else ''}truncated first), router paused for "
            f"{len(producer.acked) - paused_at} events"
        )
        say(f"diskfull: {result.faults[-1]}")
        _wait_for(lambda: bool(producer.errors) and "is full" in router.output(), 10.0, tick)
        slot = stack.slot(router)
        stack.kill9(router)
        stack.start_router(slot)
        tick()
        result.faults.append(f"kill -9 router PID {router.pid} while full; a new one started")
        _wait_for(lambda: time.monotonic() - t0 >= options.outage_s, options.outage_s, tick)
        disk.free(pids())
        result.faults.append(
            f"room again after {time.monotonic() - t0:.0f} s; the producer was refused "
            f"{len(producer.errors)} flushes meanwhile"
        )
        say(f"diskfull: {result.faults[-1]}")
        code = producer.wait(options.events / rate * 3 + 300)
        if code != 0:
            result.problems.append(f"the producer process ended with {code}")
        drained_from = time.monotonic()
        expected = expected_per_destination(producer.acked, raw)
        reader = LocalReader(stack.out)
        counts = _count_local(raw, expected, reader)
        ok = _wait_for(
            lambda: _complete(_count_local(raw, expected, reader)), options.stall_s * 3, tick
        )
        if ok:
            result.drain_s = time.monotonic() - drained_from
        else:
            result.problems.append(f"not every event arrived within {options.stall_s * 3:.0f} s")
        time.sleep(3.0)  # anything delivered twice would show up now
        counts = _count_local(raw, expected, reader)
        result.per_destination = counts
        result.produced = len(producer.acked)
        result.problems.extend(_check_full_log(log, db, producer))
        logs = sorted(workdir.glob("router-*.log"))
        refused = [p.name for p in logs if "is full" in p.read_text(errors="replace")]
        result.notes.append(f"router logs that say the log is full: {refused} of {len(logs)}")
        if not refused:
            result.problems.append("no router met the full log: the scenario did not test it")
        result.crashes = stack.exited
    return result


def _count_local(
    raw: list[dict[str, Any]], expected: dict[str, set[str]], reader: LocalReader
) -> dict[str, Count]:
    out: dict[str, Count] = {}
    for account in raw:
        for d in account["destinations"]:
            want = expected[d["id"]]
            ids = reader.ids(d["path"])
            got = set(ids)
            dupes = {i for i, n in Counter(ids).items() if n > 1}
            out[d["id"]] = Count(
                expected=len(want),
                delivered=len(got & want),
                lost=len(want - got),
                duplicated=len(dupes),
                extra=len(got - want),
                examples=sorted(want - got)[:3] + sorted(got - want)[:3] + sorted(dupes)[:3],
            )
    return out


def _check_full_log(log: EmbeddedLog, db: Path, producer: ProducerProcess) -> list[str]:
    """What is wrong with the log and the producer's refusals after room returned."""
    problems = []
    if not producer.errors:
        problems.append("the producer was never refused: the log did not fill")
    unclear = [m for kind, m in producer.errors if kind != "LogFull" or str(db) not in m]
    unclear += [m for _kind, m in producer.errors if "free space" not in m]
    if unclear:
        problems.append(f"{len(unclear)} refusals do not say the log is full: {unclear[0]}")
    if producer.garbled:
        problems.append(f"producer output not understood: {producer.garbled[0]!r}")
    conn = log.connection()
    check = [str(r[0]) for r in conn.execute("PRAGMA integrity_check")]
    if check != ["ok"]:
        problems.append(f"integrity_check: {check[:5]}")
    stored: Counter[str] = Counter()
    for (value,) in conn.execute("SELECT value FROM records WHERE topic = ?", (topics.ACTIVITY,)):
        stored[str(codec.decode(value)["event_id"])] += 1
    twice = [i for i, n in stored.items() if n > 1]
    if twice:
        # A flush reported refused but stored after all would be stored again by its retry.
        problems.append(f"{len(twice)} events stored twice in the log, e.g. {twice[:3]}")
    acked = [e[0] for e in producer.acked]
    missing = [i for i in acked if i not in stored]
    if missing:
        problems.append(f"{len(missing)} acknowledged events not in the log, e.g. {missing[:3]}")
    if len(acked) != len(set(acked)):
        problems.append(f"{len(acked) - len(set(acked))} events acknowledged twice")
    return problems


def _check_poison(run: Run, production: Production) -> None:
    records = run.poison
    want = Counter(reason for _k, reason, _r in records if reason is not None)
    got = read_dead_letters(run.log, sum(want.values()), timeout=60.0)
    reasons = Counter(reason for reason, _stage, _value in got)
    stages = sorted({f"{reason}@{stage}" for reason, stage, _v in got})
    run.notes.append(f"dead letters: {dict(reasons)} ({', '.join(stages)})")
    if reasons != want:
        run.problems.append(f"dead letters {dict(reasons)}, expected {dict(want)}")
    poison_values = {r.value for _k, _reason, r in records}
    others = [f"{reason}@{stage}" for reason, stage, v in got if v not in poison_values]
    if others:
        run.problems.append(f"records that are not poison were dead-lettered: {others}")
    if len(production.extra_acked) != len(records):
        run.problems.append(
            f"{len(records) - len(production.extra_acked)} poison records not acknowledged"
        )


__all__ = [
    "DESCRIPTIONS",
    "SCENARIOS",
    "Options",
    "Result",
    "account_settings",
    "expected_per_destination",
    "included",
    "run",
    "table",
]
