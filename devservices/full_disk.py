"""A directory that really fills up, for the embedded log's disk-full tests and fault scenario.

Two ways, the first the machine allows:

* ``tmpfs``: a small tmpfs mounted on the directory (needs root or CAP_SYS_ADMIN), filled with a
  filler file until the kernel answers ENOSPC, and emptied by removing it: a full file system,
  as every process writing there sees it. Unmounted on exit, always.
* ``rlimit``: where mounting is not permitted (an unprivileged CI container), the per-process
  file size limit (RLIMIT_FSIZE, set on running processes with ``prlimit``): a write past it
  fails with EFBIG (Python ignores SIGXFSZ, so the process lives on), which SQLite reports as
  an I/O error or SQLITE_FULL. Room returns when the soft limit is raised again.

:func:`small_disk` picks one; ``python -m devservices.full_disk produce ...`` is the producer
process the tests and the ``diskfull`` scenario run against it (:func:`main`).
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import functools
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from .local_process import terminate

FILLER = ".filler"
_MOUNT_TIMEOUT_S = 60.0
_CHUNK = 1 << 16


def mount_permitted() -> str | None:
    """None if this process may mount a tmpfs, else why not (shown in test output)."""
    if not sys.platform.startswith("linux"):
        return f"no tmpfs on {sys.platform}"
    if shutil.which("mount") is None or shutil.which("umount") is None:
        return "no mount/umount command"
    with tempfile.TemporaryDirectory(prefix="auditstream-mount-probe-") as probe:
        try:
            done = subprocess.run(
                ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", probe],
                capture_output=True,
                text=True,
                check=False,
                timeout=_MOUNT_TIMEOUT_S,
            )
        except subprocess.TimeoutExpired:
            return f"mount did not answer within {_MOUNT_TIMEOUT_S:g} s"
        if done.returncode != 0:
            return f"mount refused: {done.stderr.strip() or done.returncode}"
        _unmount(Path(probe))
    return None


def _unmount(path: Path) -> None:
    done = subprocess.run(
        ["umount", str(path)], capture_output=True, check=False, timeout=_MOUNT_TIMEOUT_S
    )
    if done.returncode != 0:  # still busy (a process of a failed run): detach it anyway
        subprocess.run(
            ["umount", "-l", str(path)], capture_output=True, check=False, timeout=_MOUNT_TIMEOUT_S
        )


class TmpfsDisk:
    """A tmpfs of ``size_mb`` on ``path``: :meth:`fill` takes every free byte, :meth:`free`
    gives them back."""

    mode = "tmpfs"

    def __init__(self, path: Path, size_mb: int) -> None:
        self.path = path
        self.size_mb = size_mb
        self.why = f"a {size_mb} MiB tmpfs mounted on {path}, filled with a file"

    def __enter__(self) -> TmpfsDisk:
        self.path.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={self.size_mb}m", "tmpfs", str(self.path)],
            check=True,
            capture_output=True,
            timeout=_MOUNT_TIMEOUT_S,
        )
        return self

    def __exit__(self, *exc: object) -> None:
        _unmount(self.path)

    def fill(self, pids: list[int]) -> int:
        """Write the filler until the file system is full; returns the bytes it took."""
        taken = 0
        block = b"\0" * _CHUNK
        with (self.path / FILLER).open("ab", buffering=0) as f:
            size = _CHUNK
            while size:
                try:
                    taken += f.write(block[:size])
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    size //= 2  # the last blocks: down to a byte
        return taken

    def free(self, pids: list[int]) -> None:
        (self.path / FILLER).unlink(missing_ok=True)

    def set_pids(self, pids: list[int]) -> None:
        """Processes started later see the same full file system: nothing to do."""


class FileSizeLimit:
    """The directory as it is; :meth:`fill` lowers the file size limit of the writing
    processes to the size the log's files have now, :meth:`free` lifts it again."""

    mode = "rlimit"

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        self.why = f"RLIMIT_FSIZE set on the writing processes (no tmpfs: {reason})"
        self.limit: int | None = None

    def __enter__(self) -> FileSizeLimit:
        self.path.mkdir(parents=True, exist_ok=True)
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def fill(self, pids: list[int]) -> int:
        """Limit ``pids`` to the size of the largest write-ahead log in the directory (at
        least 128 KiB, so the processes' own log files stay writable): the database file is
        larger, so a checkpoint cannot grow it, and the WAL cannot grow past its size."""
        wal = [p.stat().st_size for p in self.path.glob("*-wal") if p.is_file()]
        self.limit = max([*wal, 2 * _CHUNK])
        self.set_pids(pids)
        return self.limit

    def set_pids(self, pids: list[int]) -> None:
        """Apply the limit to ``pids`` while the directory is 'full': a process started
        meanwhile must be limited as well."""
        if self.limit is not None:
            _limit(pids, self.limit)

    def free(self, pids: list[int]) -> None:
        self.limit = None
        _limit(pids, None)


def _limit(pids: list[int], soft: int | None) -> None:
    """Set the soft file size limit of ``pids`` (None: as high as the hard limit allows)."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):  # ended meanwhile: nothing to limit
            hard = resource.prlimit(pid, resource.RLIMIT_FSIZE)[1]
            resource.prlimit(pid, resource.RLIMIT_FSIZE, (hard if soft is None else soft, hard))


SmallDisk = TmpfsDisk | FileSizeLimit


@contextlib.contextmanager
def small_disk(path: Path, size_mb: int = 32, mode: str | None = None) -> Iterator[SmallDisk]:
    """A :class:`TmpfsDisk` where mounting is permitted, else a :class:`FileSizeLimit`
    (``mode`` forces one; ``tmpfs`` raises ``RuntimeError`` where it cannot be had)."""
    refused = mount_permitted() if mode in (None, "tmpfs") else "rlimit asked for"
    disk: SmallDisk
    if refused is None:
        disk = TmpfsDisk(path, size_mb)
    elif mode == "tmpfs":
        raise RuntimeError(f"cannot mount a tmpfs here: {refused}")
    else:
        disk = FileSizeLimit(path, refused)
    with disk:
        yield disk


# -- the producer process ----------------------------------------------------------------------


def _note_error(errors: list[Exception], err: Exception | None, _record: object) -> None:
    if err is not None:
        errors.append(err)


def produce(db: Path, accounts: list[str], events: int, rate: float, seed: int, batch: int) -> int:
    """Produce ``events`` simulated events to the embedded log at ``db``, ``batch`` per flush.
    Prints one JSON line per flush: ``{"acked": [[id, account, category, activity], ...]}``,
    or ``{"error": ..., "kind": ...}`` for a flush the log refused, after which the same
    events are sent again (an application that retries) until they are stored."""
    from auditstream.pipeline.embedded_log import EmbeddedLog
    from auditstream.pipeline.errors import LogError
    from auditstream.pipeline.log import OutgoingRecord
    from auditstream.producers.sdk import to_record
    from auditstream.producers.simulator import Simulator, SimulatorConfig

    start = datetime(2026, 11, 29, tzinfo=UTC)
    sim = Simulator(SimulatorConfig(accounts=accounts, seed=seed, start=start))
    log = EmbeddedLog(db)
    producer = log.producer()
    began = time.monotonic()
    pending: list[tuple[list[str], OutgoingRecord]] = []

    def flush() -> None:
        while pending:
            errors: list[Exception] = []
            for _key, record in pending:
                producer.produce(record, functools.partial(_note_error, errors))
            producer.flush()
            if not errors:
                print(json.dumps({"acked": [k for k, _ in pending]}), flush=True)
                pending.clear()
                return
            first = errors[0]
            kind = type(first).__name__ if isinstance(first, LogError) else "other"
            print(json.dumps({"error": str(first), "kind": kind}), flush=True)
            time.sleep(0.2)

    for i, event in enumerate(sim.events(events), start=1):
        delay = began + i / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        key = [str(event[k]) for k in ("event_id", "account_id", "category", "activity")]
        pending.append((key, to_record(event)))
        if len(pending) >= batch:
            flush()
    flush()
    producer.close()
    log.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m devservices.full_disk")
    sub = p.add_subparsers(dest="command", required=True)
    pr = sub.add_parser("produce", help="produce simulated events, retrying a refused flush")
    pr.add_argument("--db", type=Path, required=True)
    pr.add_argument("--accounts", required=True, help="comma-separated account ids")
    pr.add_argument("--events", type=int, required=True)
    pr.add_argument("--rate", type=float, default=250.0)
    pr.add_argument("--seed", type=int, default=1)
    pr.add_argument("--batch", type=int, default=25)
    args = p.parse_args(argv)
    return produce(args.db, args.accounts.split(","), args.events, args.rate, args.seed, args.batch)


def producer_command(
    db: Path, accounts: list[str], events: int, rate: float, seed: int
) -> list[str]:
    """The command line of the producer process (run it with the repository as the cwd)."""
    return [
        sys.executable,
        "-m",
        "devservices.full_disk",
        "produce",
        "--db",
        str(db),
        "--accounts",
        ",".join(accounts),
        "--events",
        str(events),
        "--rate",
        str(rate),
        "--seed",
        str(seed),
    ]


REPO = Path(__file__).resolve().parents[1]
"""The working directory of the producer process (``devservices`` importable from it)."""


class ProducerProcess:
    """The producer process (:func:`produce`) started with ``command``; a thread collects what
    it reports. Stopped by its PID (:meth:`stop`)."""

    def __init__(self, command: list[str], log_path: Path) -> None:
        self._stderr = log_path.open("ab")
        self.proc = subprocess.Popen(
            command, cwd=REPO, stdout=subprocess.PIPE, stderr=self._stderr, text=True
        )
        self.acked: list[tuple[str, str, str, str]] = []
        self.errors: list[tuple[str, str]] = []
        """``(error class, message)`` of each flush the log refused."""
        self.garbled: list[str] = []
        self._thread = threading.Thread(target=self._read, name="full-disk-producer-output")
        self._thread.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                message = json.loads(line)
            except ValueError:
                self.garbled.append(line)
                continue
            if "acked" in message:
                self.acked.extend(
                    (str(a), str(b), str(c), str(d)) for a, b, c, d in message["acked"]
                )
            else:
                self.errors.append((str(message.get("kind")), str(message.get("error"))))

    def wait(self, timeout: float) -> int | None:
        """The exit status, or None if it still runs after ``timeout`` seconds."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> None:
        terminate(self.proc, 30.0)  # type: ignore[arg-type]
        self._thread.join()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._stderr.close()


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
