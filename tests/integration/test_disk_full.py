"""The embedded log on a disk that really fills up, with real processes.

Which fill runs, and why (each test's id says it):

* ``tmpfs``: a small tmpfs mounted on the log's directory and filled with a file, emptied
  again by removing it. Needs the right to mount (root, CAP_SYS_ADMIN): skipped, with the
  reason, where mounting is refused, as in an unprivileged CI container.
* ``rlimit``: the writing processes' file size limit (RLIMIT_FSIZE, set with ``prlimit``)
  lowered to the size of the write-ahead log, raised again afterwards. Needs no privilege and
  runs on any Linux machine, so CI always runs a real fill.

(SQLite's ``PRAGMA max_page_count``, a third fill, is used by tests/unit/test_disk_full_errors.py.)
"""

from __future__ import annotations

import functools
import os
import resource
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from auditstream.pipeline import topics
from auditstream.pipeline.embedded_log import EmbeddedLog
from auditstream.pipeline.errors import LogError
from auditstream.pipeline.topic_setup import ensure_core_topics
from auditstream.schemas import codec
from devservices import faults
from devservices.full_disk import (
    ProducerProcess,
    mount_permitted,
    producer_command,
    small_disk,
)

pytestmark = pytest.mark.timeout(300)

MODES = ["tmpfs", "rlimit"]


@functools.cache
def _mount_refused() -> str | None:
    return mount_permitted()  # mounts a probe once, when a tmpfs test first runs


@pytest.fixture(autouse=True)
def _tmpfs_where_permitted(request: pytest.FixtureRequest) -> None:
    callspec = getattr(request.node, "callspec", None)
    if callspec is not None and callspec.params.get("mode") == "tmpfs":
        refused = _mount_refused()
        if refused is not None:
            pytest.skip(f"tmpfs: {refused}; the rlimit variant runs instead")


SMALL = replace(faults.Options(), events=2000, rate=200.0, min_production_s=8.0, outage_s=6.0)


def _until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


@pytest.mark.parametrize("mode", MODES)
def test_router_and_worker_ride_through_a_full_disk(mode: str, tmp_path: Path) -> None:
    """The ``diskfull`` fault scenario, small: refusals say the log is full and where, the
    router killed -9 while full is replaced, and after room returns every acknowledged event
    is in the log once, the log is sound, and every destination holds what it should."""
    result = faults.run_diskfull(tmp_path / "run", SMALL, mode=mode)
    print("\n".join(faults.table([result])))
    assert result.problems == []
    assert result.crashes == []
    assert result.produced == SMALL.events
    for dest, count in result.per_destination.items():
        assert count.lost == 0, f"{dest}: {count}"
        assert count.duplicated == 0, f"{dest}: {count}"
        assert count.extra == 0, f"{dest}: {count}"
    assert ("tmpfs" if mode == "tmpfs" else "RLIMIT_FSIZE") in result.notes[0]


@pytest.mark.parametrize("mode", MODES)
def test_a_writer_killed_while_the_disk_is_full_leaves_a_sound_log(
    mode: str, tmp_path: Path
) -> None:
    """kill -9 of the producer while its flushes are being refused (the worst moment: a
    write failing half-way), then room again: ``integrity_check`` is ok, every event the
    producer was told was stored is there once, and the log takes new writes."""
    with small_disk(tmp_path / "disk", 32, mode) as disk:
        db = disk.path / "log.sqlite"
        log = EmbeddedLog(db)
        ensure_core_topics(log)
        command = producer_command(db, ["acct-a", "acct-b"], 100_000, 2000.0, seed=3)
        producer = ProducerProcess(command, tmp_path / "producer.log")
        try:
            assert _until(lambda: len(producer.acked) >= 500, 60), producer.errors
            log.connection().execute("PRAGMA wal_checkpoint(TRUNCATE)")
            disk.fill([producer.pid])
            assert _until(lambda: len(producer.errors) >= 3, 30), "never refused"
            os.kill(producer.pid, signal.SIGKILL)
            producer.wait(30)
        finally:
            producer.stop()
            disk.free([producer.pid])
        kinds = {kind for kind, _message in producer.errors}
        assert kinds == {"LogFull"}
        assert str(db) in producer.errors[0][1]
        assert "free space" in producer.errors[0][1]

        log.close()
        log = EmbeddedLog(db)  # a fresh connection, as a restarted process opens it
        conn = log.connection()
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        stored = Counter(
            str(codec.decode(v)["event_id"])
            for (v,) in conn.execute(
                "SELECT value FROM records WHERE topic = ?", (topics.ACTIVITY,)
            )
        )
        acked = [a[0] for a in producer.acked]
        assert [i for i in acked if i not in stored] == []
        assert [i for i, n in stored.items() if n > 1] == []
        ensure_core_topics(log)
        log.create_topic("after-the-fill")
        log.close()


def test_a_log_that_cannot_be_created_says_why(tmp_path: Path) -> None:
    """A directory that is a file: the error names the path (not a raw traceback)."""
    blocker = tmp_path / "taken"
    blocker.write_text("")
    with pytest.raises(LogError, match="taken"):
        EmbeddedLog(blocker / "log.sqlite")


@pytest.mark.parametrize("mode", MODES)
def test_a_router_started_on_a_full_disk_says_so_and_exits(mode: str, tmp_path: Path) -> None:
    """A new log cannot even be created: the router exits with status 2 and one line naming
    the file and what to do, no traceback."""
    with small_disk(tmp_path / "disk", 8, mode) as disk:
        db = disk.path / "new" / "log.sqlite"
        limit = None
        if mode == "tmpfs":
            disk.fill([])
        else:
            limit = 0  # not one byte: creating the file's header fails with EFBIG

        def limited() -> None:
            if limit is not None:
                resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))

        done = subprocess.run(
            [sys.executable, "-m", "auditstream", "router", "--db", str(db)],
            capture_output=True,
            text=True,
            timeout=120,
            preexec_fn=limited,
            check=False,
        )
        disk.free([])
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert f"embedded log {db} is full" in done.stderr
    assert "free space" in done.stderr
