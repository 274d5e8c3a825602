"""A full embedded log: SQLite's and the OS's errors become :class:`LogFull` (naming the file,
saying to free space and retry), a write that raised stored nothing, and the log, the SDK and
the router carry on once room returns.

The fill here is SQLite's own ``PRAGMA max_page_count`` on this thread's connection: a real
SQLITE_FULL from SQLite's pager, on any machine, without mounting anything. The file system
variants (a small tmpfs, a file size limit) are in tests/integration/test_disk_full.py.
"""

from __future__ import annotations

import errno
import sqlite3
import time
from pathlib import Path

import pytest

from auditstream.config.stream import AccountSettings
from auditstream.pipeline import router as router_module
from auditstream.pipeline import topics
from auditstream.pipeline.embedded_log import EmbeddedLog, storage_error
from auditstream.pipeline.errors import LogError, LogFull
from auditstream.pipeline.log import OutgoingRecord
from auditstream.pipeline.router import Router
from auditstream.pipeline.settings_writer import publish_settings
from auditstream.producers.errors import DeliveryFailed
from auditstream.producers.sdk import ActivityProducer
from tests.factories import make_event


def _sqlite_error(code: int, message: str) -> sqlite3.Error:
    exc = sqlite3.OperationalError(message)
    exc.sqlite_errorcode = code
    return exc


@pytest.mark.parametrize(
    ("exc", "full"),
    [
        (_sqlite_error(sqlite3.SQLITE_FULL, "database or disk is full"), True),
        (OSError(errno.ENOSPC, "No space left on device"), True),
        (OSError(errno.EFBIG, "File too large"), True),
        (OSError(errno.EDQUOT, "Disk quota exceeded"), True),
        (OSError(errno.EACCES, "Permission denied"), False),
        (_sqlite_error(sqlite3.SQLITE_BUSY, "database is locked"), False),
        # An I/O error on a file system with room, no size limit: not a full disk.
        (_sqlite_error(sqlite3.SQLITE_IOERR_WRITE, "disk I/O error"), False),
        (sqlite3.OperationalError("no code at all"), False),
    ],
)
def test_storage_errors_map_to_log_full_only_when_full(exc: Exception, full: bool) -> None:
    path = Path("/var/lib/auditstream/log.sqlite")
    err = storage_error(path, exc, "write failed")  # type: ignore[arg-type]
    assert isinstance(err, LogError)
    assert isinstance(err, LogFull) is full
    assert str(path) in str(err)
    if full:
        assert "free space" in str(err)
        assert "retry" in str(err)


@pytest.mark.parametrize(
    "path",
    ["/tmp/x'; DROP TABLE records;--/log.sqlite", "/tmp/日本語 é/log.sqlite", "/" + "a" * 300],
)
def test_log_full_names_any_path_verbatim(path: str) -> None:
    err = LogFull(path, "database or disk is full")
    assert err.path == path
    assert path in str(err)


def _record(n: int, size: int = 400) -> OutgoingRecord:
    return OutgoingRecord(topics.ACTIVITY, value=bytes([n % 256]) * size, key=b"acct")


def _fill(log: EmbeddedLog, pages: int) -> None:
    log.connection().execute(f"PRAGMA max_page_count={pages}")


def _count(log: EmbeddedLog) -> int:
    return int(log.connection().execute("SELECT COUNT(*) FROM records").fetchone()[0])


def test_a_full_log_acknowledges_only_what_it_stored(tmp_path: Path) -> None:
    log = EmbeddedLog(tmp_path / "log.sqlite")
    log.create_topic(topics.ACTIVITY)
    pages = int(log.connection().execute("PRAGMA page_count").fetchone()[0])
    _fill(log, pages + 8)
    producer = log.producer()
    acked: list[bytes] = []
    errors: list[Exception] = []

    def report(err: Exception | None, record: OutgoingRecord) -> None:
        (errors.append(err) if err else acked.append(record.value))

    for n in range(400):
        producer.produce(_record(n), report)
        if n % 10 == 9:
            producer.flush()
    assert errors, "the page limit was never reached"
    assert all(isinstance(e, LogFull) for e in errors)
    assert str(tmp_path / "log.sqlite") in str(errors[0])
    assert _count(log) == len(acked)

    _fill(log, 1_000_000)  # room again: the same connection writes on
    producer.produce(_record(1), report)
    producer.flush()
    assert _count(log) == len(acked)
    assert log.connection().execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    log.close()


def test_the_sdk_says_the_log_is_full_and_its_events_can_be_sent_again(tmp_path: Path) -> None:
    log = EmbeddedLog(tmp_path / "log.sqlite")
    log.create_topic(topics.ACTIVITY)
    pages = int(log.connection().execute("PRAGMA page_count").fetchone()[0])
    producer = ActivityProducer(log)
    _fill(log, pages)
    events = [make_event(account_id="acme") for _ in range(200)]  # more than a page holds
    for event in events:
        producer.send(event)
    with pytest.raises(DeliveryFailed, match="is full") as caught:
        producer.flush()
    assert isinstance(caught.value.__cause__, LogFull)
    assert _count(log) == 0

    _fill(log, 1_000_000)
    for event in events:
        producer.send(event)
    producer.close()
    assert _count(log) == 200
    log.close()


def test_the_router_commits_nothing_while_full_and_routes_once_room_returns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    waits: list[float] = []
    monkeypatch.setattr(router_module, "_REWIND_RETRY_S", 0.25)
    real_sleep = time.sleep

    def sleep(seconds: float) -> None:
        if seconds == 0.25:  # the router's wait after a full log: counted, not slept
            waits.append(seconds)
        else:
            real_sleep(seconds)

    monkeypatch.setattr(time, "sleep", sleep)
    log = EmbeddedLog(tmp_path / "log.sqlite")
    settings = AccountSettings.model_validate(
        {"account_id": "acme", "destinations": [{"id": "d1", "type": "local", "path": "d1"}]}
    )
    publish_settings(log, [settings])
    with ActivityProducer(log) as producer:
        for _ in range(50):
            producer.send(make_event(account_id="acme"))
    router = Router(log)
    pages = int(log.connection().execute("PRAGMA page_count").fetchone()[0])
    _fill(log, pages)  # not one more page: the copies cannot be stored
    for _ in range(3):
        assert router.step() == 0
    assert log.committed_offsets(topics.ROUTER_GROUP, topics.ACTIVITY) == {}
    assert len(waits) >= 3  # it waits between attempts instead of spinning
    assert sum(log.end_offsets(topics.destination_topic("d1")).values()) == 0

    _fill(log, 1_000_000)
    routed = 0
    for _ in range(10):
        routed += router.step()
    assert routed == 50
    assert sum(log.end_offsets(topics.destination_topic("d1")).values()) == 50
    assert log.connection().execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    router.close()
    log.close()
