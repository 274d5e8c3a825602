"""Audit events for a destination that the sink workers suspend, and for its return to active.

The product audits streaming activities (the catalog in :mod:`schemas.catalog`); a destination
the platform stops delivering to is one of them, as much as a destination its owner pauses.
The catalog has no activity for a suspension: the closest is
``audit_log_streaming_destination_updated`` ("the destination where streaming audit logs are
sent" was updated), the activity the settings API records when a destination is created,
changed, paused or resumed. Its ``details.operation`` says what happened, as for the API's
events: ``suspended`` (failing for too long, or gone: 410, revoked credentials, deleted bucket)
or ``reactivated`` (a retry stored a batch again). The actor is the platform itself, as for the
API's own actions.

The event id is derived from the account, the destination, the operation and the start of the
run of failures: if a crash makes a worker announce the same transition twice, both records
carry one id, and readers can recognise the repeat.

:class:`StateAnnouncer` decides when to announce: a suspension once per run of failures (not
again when a destination comes back from an owner's pause still failing, nor after a restart
when the status topic already says suspended), and a return to active only after an announced
suspension. Records are produced to the activity topic, where the router treats them like any
other event; one that the log does not store is produced again.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from auditstream.config.destinations import Destination
from auditstream.pipeline import topics
from auditstream.pipeline.errors import LogError
from auditstream.pipeline.log import OutgoingRecord, Producer
from auditstream.schemas import catalog, codec
from auditstream.schemas.event import ActivityEvent
from auditstream.sinks.health import DestinationHealth, State
from auditstream.sinks.lanes import LaneKey

log = logging.getLogger(__name__)

# No catalog activity names a suspension; a suspension changes how the destination is served,
# which is what "destination updated" records (see the module's docstring).
ACTIVITY = catalog.activity("audit_log_streaming_destination_updated")
SUSPENDED = "suspended"
REACTIVATED = "reactivated"
DESTINATION_RESOURCE = "audit_log_destination"
SYSTEM_USER = "auditstream"
"""The actor of the platform's own actions (the settings API's system actor too)."""

_ID_NAMESPACE = uuid.UUID("6c0f3a52-3d1e-4a53-9a43-2f1d8f0c6b1e")


def event_id(account_id: str, destination_id: str, operation: str, failing_since: float) -> str:
    """The same id for every announcement of one transition."""
    return str(
        uuid.uuid5(_ID_NAMESPACE, f"{account_id}/{destination_id}/{operation}/{failing_since!r}")
    )


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def state_event(
    account_id: str,
    destination: Destination,
    *,
    operation: str,
    cause: str | None,
    failing_since: float,
    occurred_at: float,
    recorded_at: float,
) -> ActivityEvent:
    """The event for a destination suspended (``operation`` :data:`SUSPENDED`) or active again
    (:data:`REACTIVATED`). ``cause`` is the failure's cause code (``http_410``,
    ``bad_credentials``...); error messages are never written (they may carry addresses)."""
    old, new = (
        (State.ACTIVE.value, State.SUSPENDED.value)
        if operation == SUSPENDED
        else (State.SUSPENDED.value, State.ACTIVE.value)
    )
    details = {
        "destination_type": destination.type,
        "operation": operation,
        "failing_since": _utc(failing_since).isoformat(),
    }
    if cause:
        details["cause"] = cause
    return {
        "event_id": event_id(account_id, destination.id, operation, failing_since),
        "occurred_at": _utc(occurred_at),
        "recorded_at": _utc(recorded_at),
        "account_id": account_id,
        "category": ACTIVITY.category,
        "activity": ACTIVITY.key,
        "actor": {
            "user_id": SYSTEM_USER,
            "name": None,
            "email": None,
            "role": None,
            "auth_method": "system",
        },
        "resource": {
            "type": DESTINATION_RESOURCE,
            "id": destination.id,
            "name": destination.id,
            "folder": None,
        },
        "outcome": {"status": "success", "reason": None},
        "changes": [{"field": "state", "old_value": old, "new_value": new}],
        "request": None,
        "details": details,
    }


def activity_record(event: ActivityEvent) -> OutgoingRecord:
    """``event`` as a record of the activity topic: keyed by account, with the headers the
    router filters on (as the producer SDK writes it, which this layer does not import)."""
    return OutgoingRecord(
        topic=topics.ACTIVITY,
        value=codec.encode(event),
        key=event["account_id"].encode(),
        headers=(
            ("category", event["category"].encode()),
            ("activity", event["activity"].encode()),
        ),
    )


class StateAnnouncer:
    """Announces destinations' suspensions and returns to active through ``producer``.

    Not thread-safe: the poll loop calls it. :meth:`follow` compares each destination's health
    with what was announced and queues an event; :meth:`deliver` produces what is queued and
    waits for it. A destination whose announcement is not stored yet is :meth:`pending`: its
    status record should wait, so that a status record saying ``suspended`` means the
    suspension was announced.
    """

    def __init__(self, producer: Producer, wall_clock: Callable[[], float]) -> None:
        self._producer = producer
        self._wall = wall_clock
        self._suspended: dict[LaneKey, float] = {}
        """Destinations whose suspension was announced -> the start of that run of failures."""
        self._queued: dict[LaneKey, list[OutgoingRecord]] = {}
        self._in_flight: dict[LaneKey, int] = {}
        self._failed: list[tuple[LaneKey, OutgoingRecord, Exception]] = []

    def restored(self, key: LaneKey, health: DestinationHealth) -> None:
        """``health`` was restored from the status topic: a suspension recorded there was
        announced before."""
        if health.state is State.SUSPENDED:
            self._suspended[key] = health.failing_since or health.suspended_at or 0.0

    def forget(self, key: LaneKey) -> None:
        """The destination is no longer delivered here (deleted, or moved to another worker):
        what was announced no longer matters here; what is queued is still sent."""
        self._suspended.pop(key, None)

    def follow(self, key: LaneKey, destination: Destination, health: DestinationHealth) -> None:
        """Queue the event for a transition of ``health`` not announced yet."""
        now = self._wall()
        if health.state is State.SUSPENDED and key not in self._suspended:
            since = health.failing_since or health.suspended_at or now
            self._suspended[key] = since
            self._queue(
                key,
                state_event(
                    key[0],
                    destination,
                    operation=SUSPENDED,
                    cause=health.last_cause,
                    failing_since=since,
                    occurred_at=health.suspended_at or now,
                    recorded_at=now,
                ),
            )
        elif health.state is State.ACTIVE and key in self._suspended:
            since = self._suspended.pop(key)
            self._queue(
                key,
                state_event(
                    key[0],
                    destination,
                    operation=REACTIVATED,
                    cause=None,
                    failing_since=since,
                    occurred_at=health.last_success_at or now,
                    recorded_at=now,
                ),
            )

    def _queue(self, key: LaneKey, event: ActivityEvent) -> None:
        log.warning(
            "destination %s of %s %s: audit event %s",
            key[1],
            key[0],
            event["details"]["operation"],
            event["event_id"],
        )
        self._queued.setdefault(key, []).append(activity_record(event))

    def pending(self, key: LaneKey) -> bool:
        """Whether an announcement of ``key`` is not stored yet."""
        return bool(self._queued.get(key)) or self._in_flight.get(key, 0) > 0

    def pending_keys(self) -> set[LaneKey]:
        return {k for k in {*self._queued, *self._in_flight} if self.pending(k)}

    def deliver(self, timeout: float) -> None:
        """Produce every queued announcement and wait up to ``timeout`` seconds for them.
        Those the log refused are queued again; those not acknowledged yet stay in flight."""
        if not self._queued and not self._in_flight:
            return
        queued, self._queued = self._queued, {}
        for key, records in queued.items():
            for i, record in enumerate(records):
                self._in_flight[key] = self._in_flight.get(key, 0) + 1  # before: a callback
                try:  # may come at once
                    self._producer.produce(record, self._callback(key))
                except LogError as exc:
                    log.warning("audit event of %s not queued, retried: %s", key[1], exc)
                    self._settled(key)
                    self._queued.setdefault(key, []).extend(records[i:])
                    break
        self._producer.flush(timeout)
        failed, self._failed = self._failed, []
        for key, record, err in failed:
            log.warning("audit event of %s not stored, retried: %s", key[1], err)
            self._queued.setdefault(key, []).append(record)

    def _callback(self, key: LaneKey) -> Callable[[Exception | None, OutgoingRecord], None]:
        def done(err: Exception | None, record: OutgoingRecord) -> None:
            self._settled(key)
            if err is not None:
                self._failed.append((key, record, err))

        return done

    def _settled(self, key: LaneKey) -> None:
        left = self._in_flight.get(key, 1) - 1
        if left > 0:
            self._in_flight[key] = left
        else:
            self._in_flight.pop(key, None)
