"""Embedded logs prepared before anything is timed: simulated events produced and routed into
destination topics once, then copied for each measured run."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path

from auditstream.config.stream import AccountSettings
from auditstream.pipeline import topics
from auditstream.pipeline.embedded_log import EmbeddedLog
from auditstream.pipeline.router import Router
from auditstream.pipeline.settings_writer import publish_settings
from auditstream.producers.sdk import ActivityProducer
from auditstream.schemas.event import ActivityEvent
from bench.timing import Deadline


def build_routed_log(
    path: Path,
    settings: Sequence[AccountSettings],
    events: Iterable[ActivityEvent],
    n: int,
    timeout_s: float,
) -> int:
    """A fresh embedded log at ``path`` holding ``n`` events produced with the producer SDK and
    routed by the router into the settings' destination topics. Returns the routed copies."""
    log = EmbeddedLog(path)
    try:
        publish_settings(log, settings)
        with ActivityProducer(log) as producer:
            for e in events:
                producer.send(e)
        router = Router(log)
        deadline = Deadline("router", timeout_s)
        try:
            while router.consumed < n:
                router.step()
                deadline.check(router.consumed, n)
        finally:
            router.close()
        copies = sum(
            sum(log.end_offsets(topics.destination_topic(d.id)).values())
            for a in settings
            for d in a.destinations
        )
    finally:
        log.close()
    if copies != n:
        raise RuntimeError(f"{n:,} events were routed into {copies:,} copies")
    return copies


def clone_log(source: Path, target: Path) -> None:
    """A copy of the SQLite file ``source`` (its committed state, through SQLite's backup)."""
    with (
        contextlib.closing(sqlite3.connect(source)) as src,
        contextlib.closing(sqlite3.connect(target)) as dst,
    ):
        src.backup(dst)


def remove_log(path: Path) -> None:
    """The SQLite file at ``path`` and its write-ahead log, gone."""
    for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        p.unlink(missing_ok=True)


def payload_bytes(path: Path, topic: str) -> int:
    """Bytes of the record values of ``topic`` in the embedded log at ``path``."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        row = conn.execute(
            "SELECT SUM(LENGTH(value)) FROM records WHERE topic = ?", (topic,)
        ).fetchone()
    return int(row[0] or 0)
