"""What a test leaves running: Python threads, librdkafka clients and processes it started.

:func:`snapshot` notes what runs before a test; :func:`leaked_since` says, after the test and
its fixtures are done, what it started and did not end. The autouse fixture in
``tests/conftest.py`` fails the test with :func:`describe` of what leaked.

librdkafka clients are found by their threads: every client runs one ``rdk:main`` thread and
one ``rdk:broker...`` thread per broker (admin clients also ``rdk:bg``), named in
``/proc/self/task/<tid>/comm``. A client whose wrapper only flushed, or that nothing closed,
keeps them until it is destroyed, reconnecting to brokers that a test stopped long ago. A
client counts as the test's when its ``rdk:main`` thread is new: an older leaked client may
start new broker threads when its brokers go away, and that is not the current test's doing.
"""

from __future__ import annotations

import gc
import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import confluent_kafka
from confluent_kafka.admin import AdminClient

GRACE_S = 2.0
"""How long a test's threads, clients and processes get to finish after its teardown."""

_POLL_S = 0.02

# Threads that start once per process, on first use, and then serve every later test.
PROCESS_WIDE_THREADS: dict[str, str] = {}


@dataclass(frozen=True)
class Process:
    pid: int
    start: str  # clock ticks since boot: a reused PID is another process
    state: str
    command: str


@dataclass
class Snapshot:
    threads: set[threading.Thread]
    rdk_tids: set[int]
    processes: set[tuple[int, str]]

    def __or__(self, other: Snapshot) -> Snapshot:
        return Snapshot(
            self.threads | other.threads,
            self.rdk_tids | other.rdk_tids,
            self.processes | other.processes,
        )

    def __sub__(self, other: Snapshot) -> Snapshot:
        return Snapshot(
            self.threads - other.threads,
            self.rdk_tids - other.rdk_tids,
            self.processes - other.processes,
        )


def nothing() -> Snapshot:
    return Snapshot(set(), set(), set())


# What module- and session-scoped fixtures started, while they are set up: a test that is the
# first to ask for one (``request.getfixturevalue`` included) does not own what it runs.
_wider: dict[int, Snapshot] = {}


def wider_fixture_started(key: int, started: Snapshot) -> None:
    _wider[key] = started


def wider_fixture_ended(key: int) -> None:
    _wider.pop(key, None)


def owned_by_wider_fixtures() -> Snapshot:
    out = nothing()
    for started in _wider.values():
        out = out | started
    return out


@dataclass
class Leaks:
    threads: list[threading.Thread] = field(default_factory=list)
    rdk_threads: list[str] = field(default_factory=list)
    clients: list[str] = field(default_factory=list)
    clients_gone_on_gc: bool = False
    processes: list[Process] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.threads or self.rdk_threads or self.processes)


def rdk_threads() -> dict[int, str]:
    """This process's librdkafka threads: task ID to name (``rdk:main``, ``rdk:broker1``...)."""
    out = {}
    for comm in Path("/proc/self/task").glob("*/comm"):
        try:
            name = comm.read_text().strip()
        except OSError:  # the thread ended meanwhile
            continue
        if name.startswith("rdk:"):
            out[int(comm.parent.name)] = name
    return out


def _process(pid: int) -> Process | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    # "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
    rest = stat[stat.rindex(")") + 2 :].split()
    command = cmdline.replace(b"\0", b" ").decode(errors="replace").strip()
    return Process(pid, rest[19], rest[0], command or stat[stat.index("(") : stat.rindex(")") + 1])


def _ours() -> dict[int, Process]:
    """Children of this process, and processes in its process group (a daemon that a script
    started in the background, such as the Kafka broker, stays in the group when the script
    has exited). Zombies are left out: they have ended, and run nothing."""
    me, group = os.getpid(), os.getpgid(0)
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        state, ppid, pgrp = fields[0], int(fields[1]), int(fields[2])
        if state in "ZX" or (ppid != me and pgrp != group):
            continue
        process = _process(int(entry.name))
        if process is not None:
            out[process.pid] = process
    return out


def _ancestors() -> set[int]:
    """This process's parents up to init: they share its process group but are not its doing."""
    out, pid = set(), os.getppid()
    while pid > 1:
        out.add(pid)
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            break
        pid = int(stat[stat.rindex(")") + 2 :].split()[1])
    return out


def snapshot() -> Snapshot:
    """What runs now."""
    return Snapshot(
        threads=set(threading.enumerate()),
        rdk_tids=set(rdk_threads()),
        processes={(p.pid, p.start) for p in _ours().values()},
    )


def _wait(still: Callable[[], bool], deadline: float) -> None:
    while still() and time.monotonic() < deadline:
        time.sleep(_POLL_S)


def _allowed(thread: threading.Thread, before: Snapshot) -> bool:
    if any(thread.name.startswith(prefix) for prefix in PROCESS_WIDE_THREADS):
        return True
    # anyio's pooled worker threads belong to the event loop that started them: they end
    # with it, or after 10 s idle. A loop that runs in a thread older than the test (a
    # module-scoped TestClient's portal) is not the test's; a test's own loop that still runs
    # is reported through its own thread.
    loop = getattr(thread, "loop", None) if type(thread).__name__ == "WorkerThread" else None
    if loop is None or not loop.is_running():
        return False
    loop_thread = getattr(loop, "_thread_id", None)
    return any(t.ident == loop_thread for t in before.threads)


def _holder(referrer: object) -> str:
    if isinstance(referrer, FrameType):
        code = referrer.f_code
        return f"a frame of {code.co_qualname} ({Path(code.co_filename).name})"
    return type(referrer).__qualname__


def _kind(obj: object, kinds: tuple[tuple[type, str], ...]) -> str | None:
    return next((kind for cls, kind in kinds if isinstance(obj, cls)), None)


def live_clients() -> list[str]:
    """The confluent-kafka client objects alive now (closed ones included), by kind, with what
    holds them (a frame kept by an exception's traceback, an object's ``__dict__``...), to
    find their owner."""
    kinds: tuple[tuple[type, str], ...] = (
        (confluent_kafka.Producer, "Producer"),
        (confluent_kafka.Consumer, "Consumer"),
        (AdminClient.__mro__[1], "AdminClient"),
    )
    found: list[str] = []
    here = sys._getframe()
    everything = gc.get_objects()
    for obj in everything:
        kind = _kind(obj, kinds)  # not a closure over obj: a cell would hold it too
        if kind is None:
            continue
        holders = sorted(
            {_holder(r) for r in gc.get_referrers(obj) if r is not everything and r is not here}
        )
        found.append(f"{kind} held by {', '.join(holders) or 'no object the collector sees'}")
    del everything, here
    return found


def leaked_since(before: Snapshot, grace_s: float = GRACE_S) -> Leaks:
    """What started since ``before`` and still runs after ``grace_s`` seconds at most.

    Threads get joined with the remaining grace; librdkafka threads and processes get polled.
    Clients are looked for before any garbage collection: a client left to the collector
    reconnects until it runs. If some remain, ``gc.collect()`` runs once, and the report says
    whether that ended them (dropped, not closed) or not (still referenced)."""
    deadline = time.monotonic() + grace_s
    leaks = Leaks()
    for thread in threading.enumerate():
        if thread in before.threads or thread is threading.current_thread():
            continue
        if _allowed(thread, before):
            continue
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            leaks.threads.append(thread)

    def new_rdk() -> dict[int, str]:
        return {t: n for t, n in rdk_threads().items() if t not in before.rdk_tids}

    def new_clients() -> bool:
        return "rdk:main" in new_rdk().values()

    _wait(new_clients, deadline)
    if new_clients():
        leaks.rdk_threads = sorted(new_rdk().values())
        leaks.clients = live_clients()
        gc.collect()
        _wait(new_clients, time.monotonic() + 0.5)
        leaks.clients_gone_on_gc = not new_clients()

    ancestors = _ancestors()

    def new_processes() -> list[Process]:
        return [
            p
            for p in _ours().values()
            if (p.pid, p.start) not in before.processes and p.pid not in ancestors
        ]

    _wait(lambda: bool(new_processes()), deadline)
    leaks.processes = new_processes()
    return leaks


def _thread_line(thread: threading.Thread) -> str:
    target = getattr(thread, "_target", None)
    where = ""
    if target is not None:
        where = f", target {getattr(target, '__qualname__', repr(target))}"
        module = getattr(target, "__module__", None)
        if module:
            where += f" in {module}"
    kind = type(thread).__qualname__
    return f"thread {thread.name!r} ({kind}{where}, daemon={thread.daemon})"


def describe(leaks: Leaks) -> str:
    """One line per leaked thing, named so that its owner can be found."""
    lines = [_thread_line(t) for t in leaks.threads]
    if leaks.rdk_threads:
        counted = Counter(leaks.rdk_threads)
        threads = ", ".join(f"{n} x{c}" if c > 1 else n for n, c in sorted(counted.items()))
        clients = "; ".join(leaks.clients) or "none found"
        how = (
            "dropped without close(): ended only by gc.collect()"
            if leaks.clients_gone_on_gc
            else "still referenced after gc.collect()"
        )
        count = counted["rdk:main"]
        lines.append(
            f"{count} librdkafka client(s) not closed ({how}); new threads: {threads}; "
            f"client objects alive (closed ones too): {clients}"
        )
    lines += [f"process {p.pid} [{p.state}]: {p.command[:200]}" for p in leaks.processes]
    return "\n".join(f"  - {line}" for line in lines)
