"""Changes to account settings, each stored atomically with its audit events.

Every change builds the new ``AccountSettings`` with the pure functions of :mod:`api.ops`,
validates it, creates the destination topics it needs, and then stores the settings record
(``auditstream.settings``, key = account id, secrets sealed) and its audit events
(``auditstream.activity``) in one transaction, all with one revision header (routers apply the
change at its audit event); only then is the change applied to the read model, so a read right
after a write sees it.

Changes are serialised by the read model's lock; network checks (DNS of webhook hosts, building
a sink to validate its settings) run outside it, and the settings are compared again under the
lock before writing (a concurrent change gives 409).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from auditstream.api import audit, ops
from auditstream.api.audit import Actor, RequestInfo
from auditstream.api.errors import Conflict, Invalid, Unavailable
from auditstream.api.metrics import DESTINATIONS_REMOVED, SETTINGS_WRITES
from auditstream.api.models import CREATE_MODELS, StreamSettingsIn
from auditstream.api.options import ApiOptions
from auditstream.api.read_model import SettingsReadModel
from auditstream.api.tokens import Principal
from auditstream.api.topic_deletions import TopicDeletions
from auditstream.config.destinations import Destination, Replay
from auditstream.config.secrets import SecretBox
from auditstream.config.stream import AccountSettings
from auditstream.config.wire import encode_settings
from auditstream.pipeline import topics
from auditstream.pipeline.errors import FencedError, LogError, TransactionAborted
from auditstream.pipeline.log import Log, OutgoingRecord, TransactionalProducer
from auditstream.pipeline.settings_writer import new_revision, with_revision
from auditstream.producers.sdk import to_record

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Caller:
    """Who makes a change, and from where (for its audit event)."""

    principal: Principal
    request: RequestInfo

    @property
    def actor(self) -> Actor:
        return Actor(user_id=self.principal.user_id, role=self.principal.role)


class SettingsWrites:
    """The changes the settings API makes. Thread-safe.

    Every method raises :class:`api.errors.Invalid` for a change that is not allowed,
    :class:`api.errors.NotFound` for an unknown destination, :class:`api.errors.Conflict` when
    another request changed it meanwhile, and :class:`api.errors.Unavailable` when the log
    cannot read or store it (nothing was changed then).
    """

    def __init__(
        self,
        log_backend: Log,
        box: SecretBox,
        options: ApiOptions,
        settings: SettingsReadModel,
        deletions: TopicDeletions,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._log = log_backend
        self._box = box
        self._options = options
        self._settings = settings
        self._deletions = deletions
        self._clock = clock
        self._producer: TransactionalProducer = self._new_producer()
        self._closed = threading.Event()

    def _new_producer(self) -> TransactionalProducer:
        return self._log.transactional_producer(f"auditstream-settings-api-{uuid.uuid4()}")

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), tz=UTC)

    def _stored(self, account_id: str, destination_id: str) -> Destination:
        with self._settings.fresh():
            return ops.find(self._settings.current(account_id), destination_id)

    def _write(
        self,
        settings: AccountSettings,
        events: list[dict[str, Any]],
        new_topics: tuple[str, ...] = (),
    ) -> None:
        """Store ``settings`` and ``events`` atomically, then apply them to the read model. Call
        with the lock held."""
        if self._closed.is_set():
            raise Unavailable("the settings service is closed; nothing was changed")
        value = encode_settings(settings, self._box)
        records = [
            OutgoingRecord(topics.SETTINGS, value, key=settings.account_id.encode()),
            *(to_record(event) for event in events),
        ]
        revision = None
        if events:
            # Routers apply the change at its audit events, not as soon as they read it, and a
            # router restarted before them puts the replaced record back until then
            # (docs/adr/017-settings-take-effect-at-their-audit-event.md).
            revision = new_revision()
            previous, previous_revision = self._settings.latest_record(settings.account_id)
            records = with_revision(
                records, revision, previous=previous, previous_revision=previous_revision
            )
        try:
            for topic in new_topics:
                self._log.create_topic(topic)
            self._producer.produce_atomically(records)
        except FencedError as exc:
            SETTINGS_WRITES.labels(outcome="failed").inc()
            self._producer = self._new_producer()
            raise Unavailable(f"the change was not stored ({exc}); try again") from exc
        except (TransactionAborted, LogError) as exc:
            SETTINGS_WRITES.labels(outcome="failed").inc()
            raise Unavailable(f"the change was not stored ({exc}); try again") from exc
        SETTINGS_WRITES.labels(outcome="committed").inc()
        self._settings.apply_written(settings.account_id, value, revision)

    def put_stream(
        self, account_id: str, update: StreamSettingsIn, caller: Caller
    ) -> dict[str, Any]:
        with self._settings.fresh(min_interval=0.0):
            before = self._settings.current(account_id)
            after = ops.with_stream(before, account_id, update)
            events = audit.stream_events(
                before or ops.blank_settings(account_id),
                after,
                actor=caller.actor,
                request=caller.request,
                now=self._now(),
            )
            if events or before is None:
                self._write(after, events)
                log.info(
                    "account %s: stream settings changed by %s (request %s)",
                    account_id,
                    caller.principal.user_id,
                    caller.request.request_id,
                )
            return ops.stream_view(after, account_id)

    def id_in_use(self, destination_id: str) -> bool:
        """Taken by any account, or its topic still holds records of a removed destination
        (a new destination must never receive another one's events)."""
        if self._settings.destination(destination_id) is not None:
            return True
        topic = topics.destination_topic(destination_id)
        if topic in self._deletions:
            return True
        try:
            if topic not in self._log.list_topics():
                return False
            return any(end > 0 for end in self._log.end_offsets(topic).values())
        except LogError as exc:
            raise Unavailable(f"topics cannot be listed now: {exc}") from exc

    def create_destination(
        self, account_id: str, body: dict[str, Any], caller: Caller
    ) -> Destination:
        ops.refuse_masks(body, CREATE_MODELS[str(body.get("type"))])
        destination = ops.parse_destination(body)
        ops.check_policy(destination, self._options, ops.changed_fields(None, destination))
        with self._settings.fresh(min_interval=0.0):
            before = self._settings.current(account_id)
            after = ops.with_destination_added(
                before,
                account_id,
                destination,
                max_destinations=self._options.max_destinations,
                id_in_use=self.id_in_use(destination.id),
                topics_pending_deletion=self._deletions.count_for(account_id),
            )
            event = audit.destination_event(
                account_id,
                None,
                destination,
                operation="created",
                actor=caller.actor,
                request=caller.request,
                now=self._now(),
            )
            self._write(after, [event], (topics.destination_topic(destination.id),))
            log.info(
                "account %s: destination %s (%s) created by %s (request %s)",
                account_id,
                destination.id,
                destination.type,
                caller.principal.user_id,
                caller.request.request_id,
            )
            return ops.find(self._settings.account(account_id), destination.id)

    def update_destination(
        self, account_id: str, destination_id: str, patch: dict[str, Any], caller: Caller
    ) -> Destination:
        stored = self._stored(account_id, destination_id)
        ops.refuse_if_deleting(stored)
        if patch.get("type") != stored.type:
            raise Invalid.field(
                "type",
                f"destination {destination_id} is a {stored.type} destination; the type cannot "
                "change (create a new destination instead)",
            )
        updated = ops.parse_destination(ops.merge_patch(stored, patch))
        changed = ops.changed_fields(stored, updated)
        if not changed:
            return stored
        ops.check_policy(updated, self._options, changed)
        return self._replace(account_id, stored, updated, caller, operation="updated")

    def _replace(
        self,
        account_id: str,
        stored: Destination,
        updated: Destination,
        caller: Caller,
        *,
        operation: str,
        details: dict[str, str] | None = None,
    ) -> Destination:
        with self._settings.fresh(min_interval=0.0):
            settings = self._settings.current(account_id)
            current = ops.find(settings, stored.id)
            if current != stored:
                raise Conflict(
                    f"destination {stored.id} was changed by another request meanwhile; "
                    "read it again and retry"
                )
            assert settings is not None
            after = ops.with_destination_replaced(settings, updated)
            event = audit.destination_event(
                account_id,
                stored,
                updated,
                operation=operation,
                actor=caller.actor,
                request=caller.request,
                now=self._now(),
                details=details,
            )
            self._write(after, [event])
            log.info(
                "account %s: destination %s %s by %s (request %s)",
                account_id,
                stored.id,
                operation,
                caller.principal.user_id,
                caller.request.request_id,
            )
            return ops.find(self._settings.account(account_id), stored.id)

    def set_paused(
        self, account_id: str, destination_id: str, paused: bool, caller: Caller
    ) -> Destination:
        stored = self._stored(account_id, destination_id)
        ops.refuse_if_deleting(stored)
        if stored.paused == paused:
            return stored
        updated = stored.model_copy(update={"paused": paused})
        return self._replace(
            account_id, stored, updated, caller, operation="paused" if paused else "resumed"
        )

    def replay(
        self, account_id: str, destination_id: str, from_time: datetime, caller: Caller
    ) -> Destination:
        if from_time.tzinfo is None:
            raise Invalid.field("from_time", "give a time zone (e.g. 2026-11-27T10:00:00Z)")
        now = self._now()
        if from_time > now:
            raise Invalid.field("from_time", "must not be in the future")
        earliest = now - self._options.retention
        if from_time < earliest:
            raise Invalid.field(
                "from_time",
                f"is before the retained window ({self._options.retention.days} days): the "
                f"earliest replay starts at {earliest.isoformat(timespec='seconds')}",
            )
        stored = self._stored(account_id, destination_id)
        ops.refuse_if_deleting(stored)
        updated = stored.model_copy(
            update={"replay": Replay(id=str(uuid.uuid4()), from_time=from_time)}
        )
        return self._replace(
            account_id,
            stored,
            updated,
            caller,
            operation="replay_requested",
            details={"from_time": from_time.astimezone(UTC).isoformat()},
        )

    def delete_destination(
        self, account_id: str, destination_id: str, *, force: bool, caller: Caller
    ) -> tuple[Destination, bool]:
        """Mark the destination ``deleting`` (the janitor removes it once drained), or remove it
        at once when ``force`` or when it is paused or disabled (it would never drain).
        Returns the destination and whether it was removed."""
        with self._settings.fresh(min_interval=0.0):
            settings = self._settings.current(account_id)
            stored = ops.find(settings, destination_id)
            assert settings is not None
            if force or stored.paused or not stored.enabled:
                self.remove(settings, stored, caller.actor, caller.request, how="at_once")
                return stored, True
            if stored.deleting:
                return stored, False
            updated = stored.model_copy(update={"deleting": True})
            after = ops.with_destination_replaced(settings, updated)
            event = audit.destination_event(
                account_id,
                stored,
                updated,
                operation="delete_requested",
                actor=caller.actor,
                request=caller.request,
                now=self._now(),
            )
            self._write(after, [event])
            log.info(
                "account %s: destination %s deleting (by %s, request %s)",
                account_id,
                destination_id,
                caller.principal.user_id,
                caller.request.request_id,
            )
            return updated, False

    def remove(
        self,
        settings: AccountSettings,
        destination: Destination,
        actor: Actor,
        request: RequestInfo | None,
        *,
        how: str,
    ) -> None:
        """Remove ``destination`` from the settings now (call with the lock held); its topic
        follows after the grace period, once routers and workers have seen the change.
        ``how`` is ``drained`` (the janitor) or ``at_once``."""
        after = ops.with_destination_removed(settings, destination.id)
        event = audit.destination_event(
            settings.account_id,
            destination,
            None,
            operation="removed" if how == "drained" else "deleted",
            actor=actor,
            request=request,
            now=self._now(),
        )
        self._write(after, [event])
        DESTINATIONS_REMOVED.labels(how=how).inc()
        self._deletions.schedule(
            topics.destination_topic(destination.id),
            self._options.delete_grace,
            settings.account_id,
        )
        log.info(
            "account %s: destination %s removed (%s)",
            settings.account_id,
            destination.id,
            how,
        )

    def close(self) -> None:
        """Refuse further changes and release the producer (call with the lock held)."""
        self._closed.set()
        self._producer.close()
