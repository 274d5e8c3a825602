"""Destination status: what the workers reported (``auditstream.status``) and what waits in the
destination's topic, combined with the destination's settings into one state.

:func:`derive_status` is pure; :class:`StatusView` and :func:`count_waiting` read the log.

Events waiting = the destination topic's end offsets minus the sink group's committed offsets.
On the embedded log offsets are dense, so that difference is exact. On Kafka each router
transaction also leaves a commit marker that takes an offset, so the difference is an upper
bound; backlogs up to ``exact_limit`` offsets are therefore counted by reading them (read
committed), larger ones are reported as the upper bound with ``exact: false``.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from auditstream.config.destinations import Destination
from auditstream.pipeline import topics
from auditstream.pipeline.compacted_view import CompactedTopicView
from auditstream.pipeline.errors import LogError
from auditstream.pipeline.log import Consumer, Log, Record, TopicPartition
from auditstream.pipeline.process_reports import (
    ProcessReport,
    decode_report,
    is_report_key,
    unapplied_for,
)
from auditstream.sinks.status import decode_status

log = logging.getLogger(__name__)

FAILING_STATES = frozenset({"failing", "error", "suspended"})
READ_LIMIT_S = 10.0
"""Kafka: how long counting the backlog by reading may take; past it the count is an upper
bound (``events_waiting_exact`` false)."""


@dataclass(frozen=True, slots=True)
class Waiting:
    count: int
    exact: bool
    oldest_ms: int | None


@dataclass(frozen=True, slots=True)
class Reported:
    """The latest status record of a destination, and since when (as far as the status topic
    still tells) it has been failing without interruption."""

    record: dict[str, Any]
    failing_streak_since: float | None


def _ts(epoch_s: float | None) -> datetime | None:
    return None if epoch_s is None else datetime.fromtimestamp(epoch_s, tz=UTC)


PROCESS_REPORT_MAX_AGE_S = 60.0
"""A process report older than this is from a process that stopped (they report every 10 s)."""

QUIET_STATES = frozenset({"active", "waiting"})


def with_settings_problems(body: dict[str, Any], problems: list[str]) -> dict[str, Any]:
    """``body`` with ``settings_applied`` (and ``settings_problems``); a destination whose
    account's latest settings a running process has not applied never reads as quietly active
    or waiting: it is in ``error`` with cause ``settings_not_applied`` (pure)."""
    out = {**body, "settings_applied": not problems, "settings_problems": problems}
    if problems and out.get("state") in QUIET_STATES:
        out["state"] = "error"
        out["last_cause"] = "settings_not_applied"
        out["last_error"] = "; ".join(problems)
    return out


def derive_status(
    destination: Destination,
    reported: Reported | None,
    waiting: Waiting,
    *,
    now: float,
    suspend_after: timedelta,
    account_id: str | None = None,
) -> dict[str, Any]:
    """The status body for ``destination`` (pure; ``now`` in epoch seconds).

    Settings win over what a worker last said: deleting, disabled and paused are reported as
    such whatever the worker state. A worker that reported paused, disabled or waiting for a
    destination whose settings are now active has not caught up yet: the destination is then
    active, or waiting if events wait. A worker reports ``suspended`` itself (after its own
    ``suspend_after``, or at once for a destination that is gone); failing or error for
    longer than ``suspend_after`` here is reported as suspended too. "Since when" is the
    worker's ``failing_since`` if it said, else the earliest of the start of the failing streak
    in the status topic and the oldest waiting event, never before the last success.

    A report of another account than ``account_id`` (a deleted destination whose id was
    reused) is ignored.
    """
    if reported is not None and _other_account(reported.record, account_id):
        reported = None
    record = reported.record if reported is not None else {}
    worker_state = str(record.get("state")) if record.get("state") else None
    last_success = _float(record.get("last_success_at"))
    oldest_s = None if waiting.oldest_ms is None else waiting.oldest_ms / 1000.0

    failing_since: float | None = None
    if worker_state in FAILING_STATES:
        candidates = [
            t
            for t in (reported.failing_streak_since if reported else None, oldest_s)
            if t is not None
        ]
        reported_since = _float(record.get("failing_since"))
        if reported_since is not None:
            candidates = [reported_since]
        if candidates:
            failing_since = min(candidates)
            if last_success is not None:
                failing_since = max(failing_since, last_success)

    if destination.deleting:
        state = "deleting"
    elif not destination.enabled:
        state = "disabled"
    elif destination.paused:
        state = "paused"
    elif worker_state in FAILING_STATES:
        suspended = worker_state == "suspended" or (
            failing_since is not None and now - failing_since > suspend_after.total_seconds()
        )
        state = "suspended" if suspended else worker_state
    elif worker_state == "active":
        state = "active"
    else:
        state = "waiting" if waiting.count > 0 else "active"

    return {
        "destination_id": destination.id,
        "state": state,
        "last_success_at": _ts(last_success),
        "last_error": record.get("last_error"),
        "last_cause": record.get("last_cause"),
        "consecutive_failures": int(record.get("consecutive_failures") or 0),
        "failing_since": _ts(failing_since),
        "events_waiting": waiting.count,
        "events_waiting_exact": waiting.exact,
        "oldest_waiting_event_at": _ts(oldest_s),
        "oldest_waiting_age_s": None if oldest_s is None else max(0.0, round(now - oldest_s, 3)),
        "reported_at": _ts(_float(record.get("reported_at"))),
        "events_expired": int(record.get("expired_events") or 0),
        "next_attempt_at": _ts(_float(record.get("next_attempt_at")))
        if worker_state in FAILING_STATES
        else None,
    }


def _other_account(record: dict[str, Any], account_id: str | None) -> bool:
    reported = record.get("account_id")
    return account_id is not None and reported is not None and reported != account_id


def _float(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


class StatusView:
    """The latest status record per destination id, kept current by polling the status topic.
    Thread-safe."""

    def __init__(self, log_backend: Log) -> None:
        """Raises :class:`LogError` if the status topic cannot be opened."""
        self._latest: dict[str, Reported] = {}
        self._reports: dict[bytes, ProcessReport] = {}
        self._lock = threading.Lock()
        self._topic = CompactedTopicView(log_backend, topics.STATUS, self._apply)

    def catch_up(self, timeout: float = 30.0) -> None:
        """Read the status topic to its end. Raises ``TimeoutError`` if not done within
        ``timeout`` seconds (polling continues from there), :class:`LogError` if the log cannot
        be read."""
        with self._lock:
            self._topic.catch_up(timeout)

    def poll(self, min_interval: float = 0.5) -> None:
        """Apply new status records, at most every ``min_interval`` seconds. Raises
        :class:`LogError` if the log cannot be read."""
        with self._lock:
            self._topic.poll(min_interval)

    def _apply(self, record: Record) -> None:
        if record.key is None:
            return
        if is_report_key(record.key):
            self._apply_report(record.key, record.value)
            return
        destination_id = record.key.decode(errors="replace")
        if not record.value:
            self._latest.pop(destination_id, None)
            return
        try:
            data = decode_status(record.value)
        except ValueError:
            log.warning("status record of %s is not JSON; ignored", destination_id)
            return
        previous = self._latest.get(destination_id)
        streak: float | None = None
        if str(data.get("state")) in FAILING_STATES:
            earlier = previous.failing_streak_since if previous is not None else None
            streak = earlier if earlier is not None else _float(data.get("reported_at"))
        self._latest[destination_id] = Reported(data, streak)

    def _apply_report(self, key: bytes, value: bytes) -> None:
        if not value:
            self._reports.pop(key, None)
            return
        try:
            self._reports[key] = decode_report(value)
        except ValueError:
            log.warning("process report %r is not readable; ignored", key[:80])

    def settings_problems(self, account_id: str, *, now: float, max_age: float) -> list[str]:
        """Why running routers or workers have not applied the account's latest settings
        (empty when every live process has)."""
        with self._lock:
            return unapplied_for(self._reports, account_id, now=now, max_age=max_age)

    def get(self, destination_id: str) -> Reported | None:
        with self._lock:
            return self._latest.get(destination_id)

    def close(self) -> None:
        with self._lock:
            self._topic.close()


def count_waiting(
    log_backend: Log,
    topic: str,
    *,
    group: str = topics.SINK_GROUP,
    exact_limit: int = 10_000,
) -> Waiting:
    """Events of ``topic`` that ``group`` has not committed yet (see the module docstring)."""
    try:
        ends = log_backend.end_offsets(topic)
    except LogError:
        return Waiting(0, True, None)  # no topic: nothing waits
    committed = log_backend.committed_offsets(group, topic)
    starts = {tp: committed.get(tp, 0) for tp in ends}
    backlog = {tp: end - starts[tp] for tp, end in ends.items() if end > starts[tp]}
    upper = sum(backlog.values())
    if upper == 0:
        return Waiting(0, True, None)
    if log_backend.name != "kafka":  # dense offsets: the difference is exact
        return Waiting(upper, True, _oldest(log_backend, starts, backlog))
    if upper > exact_limit:
        return Waiting(upper, False, _oldest(log_backend, starts, backlog))
    return _count_by_reading(log_backend, topic, starts, ends, backlog)


def _oldest(
    log_backend: Log, starts: dict[TopicPartition, int], backlog: dict[TopicPartition, int]
) -> int | None:
    stamps = [log_backend.timestamp_at(tp, starts[tp]) for tp in backlog]
    found = [s for s in stamps if s is not None]
    return min(found) if found else None


def _count_by_reading(
    log_backend: Log,
    topic: str,
    starts: dict[TopicPartition, int],
    ends: dict[TopicPartition, int],
    backlog: dict[TopicPartition, int],
) -> Waiting:
    reader = log_backend.reader(topic)
    try:
        for tp in backlog:
            if starts[tp] > 0:
                reader.seek(tp, starts[tp])
        count = 0
        oldest: int | None = None
        done: set[TopicPartition] = set()
        next_offset = dict(starts)  # after the last record counted
        deadline = time.monotonic() + READ_LIMIT_S
        while len(done) < len(backlog):
            records = reader.poll(1000, 0.5)
            for r in records:
                tp = r.tp
                if tp not in backlog or tp in done or r.offset < starts[tp]:
                    continue
                if r.offset >= ends[tp]:
                    done.add(tp)  # written after we looked
                    continue
                count += 1
                next_offset[tp] = r.offset + 1
                oldest = r.timestamp_ms if oldest is None else min(oldest, r.timestamp_ms)
                if r.offset + 1 >= ends[tp]:
                    done.add(tp)
            if not records:
                # Trailing commit markers are never returned: a partition is read when the
                # reader is past its end, or when no record is left after what was counted.
                # A slow fetch is not the end: the records are still there to be read.
                for tp in backlog.keys() - done:
                    at = max(next_offset[tp], _position(reader, tp))
                    if at >= ends[tp] or log_backend.timestamp_at(tp, at) is None:
                        done.add(tp)
            if len(done) < len(backlog) and time.monotonic() > deadline:
                upper = count + sum(ends[tp] - next_offset[tp] for tp in backlog.keys() - done)
                return Waiting(upper, False, oldest)
        return Waiting(count, True, oldest)
    finally:
        reader.close()


def _position(reader: Consumer, tp: TopicPartition) -> int:
    """The reader's position on ``tp`` (past transaction markers); -1 if it has none yet or
    cannot tell, so the slower empty-read checks decide."""
    try:
        return reader.position(tp)
    except LogError:
        return -1
