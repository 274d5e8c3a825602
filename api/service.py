"""The settings service: reads and changes account settings on the log.

Every change builds the new ``AccountSettings`` with the pure functions of :mod:`api.ops`,
validates it, creates the destination topics it needs, and then stores the settings record
(``auditstream.settings``, key = account id, secrets sealed) and its audit events
(``auditstream.activity``) in one transaction; only then is the change applied to the local view,
so a read right after a write sees it. Routers and sink workers pick it up from the settings
topic within a few seconds.

Changes are serialised by one lock per service; network checks (DNS of webhook hosts, building a
sink to validate its settings) run outside it, and the settings are compared again under the
lock before writing (a concurrent change gives 409).

A janitor thread removes destinations marked ``deleting`` once their topic is drained, and
deletes removed destinations' topics after ``ApiOptions.delete_grace`` seconds.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from auditstream.api import audit, ops
from auditstream.api.audit import Actor, RequestInfo
from auditstream.api.compacted import read_to_end
from auditstream.api.errors import Conflict, Invalid, NotFound, Unavailable
from auditstream.api.metrics import DESTINATIONS_REMOVED, SETTINGS_WRITES
from auditstream.api.models import CREATE_MODELS, StreamSettingsIn
from auditstream.api.options import ApiOptions
from auditstream.api.status import StatusView, Waiting, count_waiting, derive_status
from auditstream.api.tokens import Principal, TokenStore
from auditstream.config.destinations import Destination, Replay
from auditstream.config.errors import ConfigError
from auditstream.config.secrets import SecretBox
from auditstream.config.stream import AccountSettings
from auditstream.config.wire import decode_settings, encode_settings
from auditstream.pipeline import topics
from auditstream.pipeline.errors import FencedError, LogError, TransactionAborted
from auditstream.pipeline.log import Log, OutgoingRecord, TransactionalProducer
from auditstream.pipeline.settings_view import SettingsView
from auditstream.pipeline.topic_setup import ensure_core_topics
from auditstream.producers.sdk import to_record
from auditstream.sinks.check import CheckResult, check_destination
from auditstream.sinks.factory import build_sink

log = logging.getLogger(__name__)

CheckFunction = Callable[..., CheckResult]


@dataclass(frozen=True, slots=True)
class Caller:
    """Who makes a change, and from where (for its audit event)."""

    principal: Principal
    request: RequestInfo

    @property
    def actor(self) -> Actor:
        return Actor(user_id=self.principal.user_id, role=self.principal.role)


class _View(SettingsView):
    """The settings view, plus what the service needs: reading to the end of a topic that
    holds transaction markers (Kafka), and applying its own writes at once.

    Read-your-writes: a write is applied as soon as it is stored. The reader may still be
    behind it (Kafka), so until the reader returns that very record, the account's older
    records it returns are skipped: an account's records are in one partition, in order.
    """

    caught_up = False
    PENDING_TIMEOUT_S = 60.0

    def __init__(self, log_backend: Log, box: SecretBox) -> None:
        super().__init__(log_backend, box=box)
        self._view_box = box
        self._pending: dict[str, tuple[bytes, float]] = {}
        self.unreadable: set[str] = set()
        """Accounts whose latest settings record cannot be decoded (e.g. sealed with a key
        that is not configured): the service refuses to show or change them, since a change
        built on "no settings" would drop their destinations."""

    def catch_up(self, timeout: float = 30.0) -> None:
        self.caught_up = read_to_end(
            self._log,
            self._reader,
            topics.SETTINGS,
            lambda r: self._apply(r.key, r.value),
            timeout,
        )

    def apply_written(self, account_id: str, value: bytes) -> None:
        self._pending[account_id] = (value, time.monotonic())
        super()._apply(account_id.encode(), value)

    def _apply(self, key: bytes | None, value: bytes) -> None:
        if key is not None:
            account_id = key.decode(errors="replace")
            pending = self._pending.get(account_id)
            if pending is not None:
                written, at = pending
                if value == written:
                    del self._pending[account_id]  # the reader reached our write
                    return
                if time.monotonic() - at < self.PENDING_TIMEOUT_S:
                    return  # older than our write
                del self._pending[account_id]  # never read back (compacted away?): follow
            if value:
                try:
                    decode_settings(value, self._view_box)
                except ConfigError:
                    if account_id not in self.unreadable:
                        log.error(
                            "settings of account %s cannot be read (wrong or missing secret "
                            "key?): the API refuses to show or change them",
                            account_id,
                        )
                    self.unreadable.add(account_id)
                    return
            self.unreadable.discard(account_id)
        super()._apply(key, value)


class SettingsService:
    """Account settings on ``log_backend``: read, change (atomically with audit events),
    check and report on destinations. Thread-safe."""

    def __init__(
        self,
        log_backend: Log,
        box: SecretBox,
        options: ApiOptions | None = None,
        *,
        clock: Callable[[], float] = time.time,
        check: CheckFunction = check_destination,
    ) -> None:
        self.options = options or ApiOptions()
        self._log = log_backend
        self._box = box
        self._clock = clock
        self._check = check
        self._lock = threading.RLock()
        ensure_core_topics(log_backend)
        self.view = _View(log_backend, box=box)
        self.view.catch_up()
        self.tokens = TokenStore(log_backend)
        self.tokens.catch_up()
        self.status_view = StatusView(log_backend)
        self.status_view.catch_up()
        self._producer: TransactionalProducer = self._new_producer()
        # janitor state
        self._deleting_seen: dict[str, float] = {}
        self._drained_once: set[str] = set()
        self._topics_to_delete: dict[str, float] = {}  # topic -> monotonic time due
        self._stop = threading.Event()
        self._janitor: threading.Thread | None = None
        self._janitor_users = 0

    def _new_producer(self) -> TransactionalProducer:
        return self._log.transactional_producer(f"auditstream-settings-api-{uuid.uuid4()}")

    # reading --------------------------------------------------------------------------------

    @contextmanager
    def _fresh(self, min_interval: float = 0.5) -> Iterator[None]:
        with self._lock:
            try:
                self.view.poll(min_interval)
            except LogError as exc:
                raise Unavailable(f"settings cannot be read now: {exc}") from exc
            yield

    def _current(self, account_id: str) -> AccountSettings | None:
        """The account's settings from the view (lock held); refuses unreadable ones."""
        if account_id in self.view.unreadable:
            raise Unavailable(
                "the stored settings of this account cannot be read by the service (a secret "
                "key is missing); nothing was changed"
            )
        return self.view.account(account_id)

    def account(self, account_id: str) -> AccountSettings | None:
        with self._fresh():
            return self._current(account_id)

    def stream(self, account_id: str) -> dict[str, Any]:
        return ops.stream_view(self.account(account_id), account_id)

    def destinations(self, account_id: str) -> list[Destination]:
        settings = self.account(account_id)
        return list(settings.destinations) if settings is not None else []

    def destination(self, account_id: str, destination_id: str) -> Destination:
        return ops.find(self.account(account_id), destination_id)

    def authenticate(self, token: str) -> Principal | None:
        try:
            return self.tokens.authenticate(token)
        except LogError as exc:
            raise Unavailable(f"tokens cannot be read now: {exc}") from exc

    def ready(self) -> bool:
        try:
            with self._fresh(min_interval=0.0):
                return True
        except Unavailable:
            return False

    # writing --------------------------------------------------------------------------------

    def _write(
        self,
        settings: AccountSettings,
        events: list[dict[str, Any]],
        new_topics: tuple[str, ...] = (),
    ) -> None:
        """Store ``settings`` and ``events`` atomically, then apply them locally. Call with the
        lock held."""
        value = encode_settings(settings, self._box)
        records = [
            OutgoingRecord(topics.SETTINGS, value, key=settings.account_id.encode()),
            *(to_record(event) for event in events),
        ]
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
        self.view.apply_written(settings.account_id, value)

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), tz=UTC)

    def put_stream(
        self, account_id: str, update: StreamSettingsIn, caller: Caller
    ) -> dict[str, Any]:
        with self._fresh(min_interval=0.0):
            before = self._current(account_id)
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

    def _probe_sink(self, destination: Destination) -> None:
        """Build the destination's sink once to catch settings that cannot work together."""
        try:
            sink = build_sink(destination, local_root=self.options.local_root)
        except ConfigError as exc:
            raise Invalid([(["body"], str(exc), "invalid_settings")]) from None
        except Exception:  # a vendor client refusing early: the worker will say more
            log.warning("destination %s: sink could not be built for a probe", destination.id)
            return
        try:
            sink.close()
        except Exception:  # closing a probe must not fail the request
            log.debug("closing a probe sink failed", exc_info=True)

    def _id_in_use(self, destination_id: str) -> bool:
        """Taken by any account, or its topic still holds records of a removed destination
        (a new destination must never receive another one's events)."""
        if self.view.destination(destination_id) is not None:
            return True
        topic = topics.destination_topic(destination_id)
        if topic in self._topics_to_delete:
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
        ops.check_policy(destination, self.options, ops.changed_fields(None, destination))
        self._probe_sink(destination)
        with self._fresh(min_interval=0.0):
            before = self._current(account_id)
            after = ops.with_destination_added(
                before,
                account_id,
                destination,
                max_destinations=self.options.max_destinations,
                id_in_use=self._id_in_use(destination.id),
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
            return ops.find(self.view.account(account_id), destination.id)

    def update_destination(
        self, account_id: str, destination_id: str, patch: dict[str, Any], caller: Caller
    ) -> Destination:
        stored = self.destination(account_id, destination_id)
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
        ops.check_policy(updated, self.options, changed)
        self._probe_sink(updated)
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
        with self._fresh(min_interval=0.0):
            settings = self._current(account_id)
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
            return ops.find(self.view.account(account_id), stored.id)

    def set_paused(
        self, account_id: str, destination_id: str, paused: bool, caller: Caller
    ) -> Destination:
        stored = self.destination(account_id, destination_id)
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
        earliest = now - self.options.retention
        if from_time < earliest:
            raise Invalid.field(
                "from_time",
                f"is before the retained window ({self.options.retention.days} days): the "
                f"earliest replay starts at {earliest.isoformat(timespec='seconds')}",
            )
        stored = self.destination(account_id, destination_id)
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
        with self._fresh(min_interval=0.0):
            settings = self._current(account_id)
            stored = ops.find(settings, destination_id)
            assert settings is not None
            if force or stored.paused or not stored.enabled:
                self._remove(settings, stored, caller.actor, caller.request, how="at_once")
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

    def _remove(
        self,
        settings: AccountSettings,
        destination: Destination,
        actor: Actor,
        request: RequestInfo | None,
        *,
        how: str,
    ) -> None:
        """Remove ``destination`` from the settings now (lock held); its topic follows after
        the grace period, once routers and workers have seen the change."""
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
        self._topics_to_delete[topics.destination_topic(destination.id)] = (
            time.monotonic() + self.options.delete_grace
        )
        self._deleting_seen.pop(destination.id, None)
        self._drained_once.discard(destination.id)
        log.info(
            "account %s: destination %s removed (%s)",
            settings.account_id,
            destination.id,
            how,
        )

    # checks and status ----------------------------------------------------------------------

    def check(self, account_id: str, destination_id: str) -> CheckResult:
        destination = self.destination(account_id, destination_id)
        try:
            # The same address policy as deliveries, applied now (names may resolve elsewhere).
            ops.check_policy(destination, self.options, set(type(destination).model_fields))
        except Invalid as exc:
            loc, msg, kind = exc.errors[0]
            return CheckResult(
                False,
                "address_refused" if kind in ("url_refused", "unresolvable") else kind,
                f"{loc[-1]}: {msg}",
                ["checked the destination's address: refused"],
            )
        return self._check(destination, local_root=self.options.local_root)

    def waiting(self, destination_id: str) -> Waiting:
        try:
            return count_waiting(
                self._log,
                topics.destination_topic(destination_id),
                exact_limit=self.options.exact_waiting_limit,
            )
        except LogError as exc:
            raise Unavailable(f"offsets cannot be read now: {exc}") from exc

    def status(self, account_id: str, destination_id: str) -> dict[str, Any]:
        destination = self.destination(account_id, destination_id)
        with self._lock:
            try:
                self.status_view.poll()
            except LogError as exc:
                raise Unavailable(f"status cannot be read now: {exc}") from exc
            reported = self.status_view.get(destination_id)
        waiting = self.waiting(destination_id)
        return derive_status(
            destination,
            reported,
            waiting,
            now=self._clock(),
            suspend_after=self.options.suspend_after,
        )

    # janitor --------------------------------------------------------------------------------

    def janitor_pass(self) -> list[str]:
        """Remove drained ``deleting`` destinations and delete topics that are due. Returns the
        ids of the destinations removed."""
        with self._fresh(min_interval=0.0):
            deleting = [
                (account_id, d)
                for account_id, settings in self.view.accounts().items()
                for d in settings.destinations
                if d.deleting
            ]
        now = time.monotonic()
        current = {d.id for _a, d in deleting}
        for gone in set(self._deleting_seen) - current:
            self._deleting_seen.pop(gone, None)
            self._drained_once.discard(gone)
        removed: list[str] = []
        for account_id, d in deleting:
            seen = self._deleting_seen.setdefault(d.id, now)
            if now - seen < self.options.delete_grace:
                continue  # routers may still copy events to it
            waiting = self.waiting(d.id)
            if not (waiting.exact and waiting.count == 0):
                self._drained_once.discard(d.id)
                continue
            if d.id not in self._drained_once:
                self._drained_once.add(d.id)  # drained twice in a row, then removed
                continue
            with self._fresh(min_interval=0.0):
                settings = self.view.account(account_id)
                if settings is None:
                    continue
                try:
                    current_d = ops.find(settings, d.id)
                except NotFound:
                    continue  # removed meanwhile
                if current_d.deleting:
                    self._remove(settings, current_d, audit.SYSTEM_ACTOR, None, how="drained")
                    removed.append(d.id)
        self._delete_due_topics()
        return removed

    def _delete_due_topics(self) -> None:
        now = time.monotonic()
        with self._lock:
            due = [t for t, at in self._topics_to_delete.items() if at <= now]
        for topic in due:
            destination_id = topics.destination_of(topic) or ""
            with self._fresh(min_interval=0.0):
                if self.view.destination(destination_id) is not None:
                    self._topics_to_delete.pop(topic, None)  # the id was taken again: keep it
                    continue
                try:
                    self._log.delete_topic(topic)
                    producer = self._log.producer()
                    producer.produce(
                        OutgoingRecord(topics.STATUS, b"", key=destination_id.encode())
                    )
                    producer.flush(10.0)
                    producer.close()
                except LogError as exc:
                    log.warning("topic %s not deleted yet: %s", topic, exc)
                    continue
                self._topics_to_delete.pop(topic, None)
                log.info("topic %s deleted", topic)

    def topics_pending_deletion(self) -> set[str]:
        with self._lock:
            return set(self._topics_to_delete)

    def acquire_janitor(self) -> None:
        """Start the janitor for one more user (an app being served); see release_janitor."""
        with self._lock:
            self._janitor_users += 1
            self.start_janitor()

    def release_janitor(self) -> None:
        """The janitor stops when its last user releases it."""
        with self._lock:
            self._janitor_users = max(0, self._janitor_users - 1)
            last = self._janitor_users == 0
        if last:
            self.stop_janitor()

    def start_janitor(self) -> None:
        if self._janitor is not None or self.options.janitor_interval <= 0:
            return
        self._stop.clear()
        self._janitor = threading.Thread(
            target=self._janitor_loop, name="auditstream-api-janitor", daemon=True
        )
        self._janitor.start()

    def _janitor_loop(self) -> None:
        while not self._stop.wait(self.options.janitor_interval):
            try:
                self.janitor_pass()
            except Exception:  # the janitor must outlive a log hiccup
                log.exception(
                    "janitor pass failed; retrying in %.0fs", self.options.janitor_interval
                )

    def stop_janitor(self) -> None:
        self._stop.set()
        if self._janitor is not None:
            self._janitor.join(timeout=30.0)
            self._janitor = None

    def close(self) -> None:
        self.stop_janitor()
        with self._lock:
            self._producer.close()
            self.view.close()
            self.tokens.close()
            self.status_view.close()
