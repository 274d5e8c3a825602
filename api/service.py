"""The settings service: what the HTTP API asks of the log, in one object.

It composes the parts, each in its own module: the read model of every account's settings
(:mod:`api.read_model`), the changes, stored atomically with their audit events
(:mod:`api.writes`), destination status (:mod:`api.status`), API tokens (:mod:`api.tokens`) and
the janitor that removes drained destinations and deletes their topics (:mod:`api.janitor`).
Routers and sink workers pick changes up from the settings topic within a few seconds.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from auditstream.api import ops
from auditstream.api.errors import Invalid, TooManyRequests, Unavailable, failure_text
from auditstream.api.janitor import Janitor
from auditstream.api.models import StreamSettingsIn
from auditstream.api.options import ApiOptions
from auditstream.api.read_model import SettingsReadModel
from auditstream.api.status import (
    PROCESS_REPORT_MAX_AGE_S,
    StatusView,
    Waiting,
    count_waiting,
    derive_status,
    with_settings_problems,
)
from auditstream.api.tokens import Principal, TokenStore
from auditstream.api.topic_deletions import TopicDeletions
from auditstream.api.writes import Caller, SettingsWrites
from auditstream.config.destinations import Destination
from auditstream.config.secrets import SecretBox
from auditstream.config.stream import AccountSettings
from auditstream.pipeline import topics
from auditstream.pipeline.errors import LogError
from auditstream.pipeline.log import Log
from auditstream.pipeline.topic_setup import ensure_core_topics
from auditstream.producers.errors import DeliveryFailed
from auditstream.producers.sdk import ActivityProducer
from auditstream.sinks.check import CheckResult, check_destination
from auditstream.store.base import AuditStore

__all__ = ["Caller", "CheckFunction", "SettingsService"]

log = logging.getLogger(__name__)

CheckFunction = Callable[..., CheckResult]

_CATCH_UP_S = 30.0


class SettingsService:
    """Account settings on ``log_backend``: read, change (atomically with audit events),
    check and report on destinations. Thread-safe.

    Reads and changes raise the :mod:`api.errors` the HTTP API answers with:
    :class:`api.errors.NotFound`, :class:`api.errors.Invalid`, :class:`api.errors.Conflict`,
    and :class:`api.errors.Unavailable` when the log cannot serve the request now.
    """

    def __init__(
        self,
        log_backend: Log,
        box: SecretBox,
        options: ApiOptions | None = None,
        *,
        clock: Callable[[], float] = time.time,
        check: CheckFunction = check_destination,
        audit_store: AuditStore | None = None,
    ) -> None:
        """Read the settings, tokens and status topics to their end (each for at most 30 s,
        then carrying on from where it got). Raises :class:`pipeline.errors.LogError` if the
        log cannot be opened. ``audit_store`` serves the activity audit log (its opener
        closes it, after this service)."""
        self.options = options or ApiOptions()
        self._log = log_backend
        self._clock = clock
        self._check = check
        self._audit_store = audit_store
        self._activity_lock = threading.Lock()
        self._activity_producer: ActivityProducer | None = None
        ensure_core_topics(log_backend)
        self.read_model = SettingsReadModel(log_backend, box)
        self.tokens = TokenStore(log_backend)
        self.status_view = StatusView(log_backend)
        for view in (self.read_model, self.tokens, self.status_view):
            try:
                view.catch_up(_CATCH_UP_S)
            except TimeoutError as exc:
                log.warning("%s; continuing", exc)
        self._checks_lock = threading.Lock()
        self._checking: set[str] = set()
        self._deletions = TopicDeletions()
        self.writes = SettingsWrites(
            log_backend, box, self.options, self.read_model, self._deletions, clock=clock
        )
        self.janitor = Janitor(
            log_backend, self.options, self.read_model, self.writes, self._deletions, self.waiting
        )

    # reading --------------------------------------------------------------------------------

    def account(self, account_id: str) -> AccountSettings | None:
        with self.read_model.fresh():
            return self.read_model.current(account_id)

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
            with self.read_model.fresh(min_interval=0.0):
                return True
        except Unavailable:
            return False

    # writing (see api.writes) ---------------------------------------------------------------

    def put_stream(
        self, account_id: str, update: StreamSettingsIn, caller: Caller
    ) -> dict[str, Any]:
        return self.writes.put_stream(account_id, update, caller)

    def create_destination(
        self, account_id: str, body: dict[str, Any], caller: Caller
    ) -> Destination:
        return self.writes.create_destination(account_id, body, caller)

    def update_destination(
        self, account_id: str, destination_id: str, patch: dict[str, Any], caller: Caller
    ) -> Destination:
        return self.writes.update_destination(account_id, destination_id, patch, caller)

    def set_paused(
        self, account_id: str, destination_id: str, paused: bool, caller: Caller
    ) -> Destination:
        return self.writes.set_paused(account_id, destination_id, paused, caller)

    def replay(
        self, account_id: str, destination_id: str, from_time: datetime, caller: Caller
    ) -> Destination:
        return self.writes.replay(account_id, destination_id, from_time, caller)

    def delete_destination(
        self, account_id: str, destination_id: str, *, force: bool, caller: Caller
    ) -> tuple[Destination, bool]:
        """Mark the destination ``deleting`` (the janitor removes it once drained), or remove it
        at once when ``force`` or when it is paused or disabled (it would never drain).
        Returns the destination and whether it was removed."""
        return self.writes.delete_destination(
            account_id, destination_id, force=force, caller=caller
        )

    # checks and status ----------------------------------------------------------------------

    def check(self, account_id: str, destination_id: str) -> CheckResult:
        """Check the destination with the same policy as deliveries. Raises
        :class:`api.errors.TooManyRequests` when a check of the account, or
        ``max_concurrent_checks`` checks in all, are running (each holds a worker thread of
        the API while the destination takes its time to answer)."""
        destination = self.destination(account_id, destination_id)
        with self._check_slot(account_id):
            return self._checked(account_id, destination_id, destination)

    @contextmanager
    def _check_slot(self, account_id: str) -> Iterator[None]:
        with self._checks_lock:
            if account_id in self._checking:
                raise TooManyRequests(
                    "a check of this account's destinations is running: try again when it has "
                    "answered"
                )
            if len(self._checking) >= self.options.max_concurrent_checks:
                raise TooManyRequests("too many destination checks are running: try again soon")
            self._checking.add(account_id)
        try:
            yield
        finally:
            with self._checks_lock:
                self._checking.discard(account_id)

    def _checked(
        self, account_id: str, destination_id: str, destination: Destination
    ) -> CheckResult:
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
        try:
            return self._check(
                destination,
                local_root=self.options.local_root,
                address_policy=self.options.address_policy,
            )
        except Exception as exc:  # a vendor SDK's surprise is the check's answer
            log.error(
                "account %s: the check of destination %s stopped: %s",
                account_id,
                destination_id,
                failure_text(exc),
            )
            return CheckResult(
                False,
                "check_failed",
                f"the check stopped on an unexpected {type(exc).__name__}; deliveries would "
                "likely fail the same way: check the destination's settings (credentials, key "
                "files), and the settings API's log for where it stopped",
                ["ran the check: stopped unexpectedly"],
            )

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
        try:
            self.status_view.poll()
        except LogError as exc:
            raise Unavailable(f"status cannot be read now: {exc}") from exc
        reported = self.status_view.get(destination_id)
        waiting = self.waiting(destination_id)
        body = derive_status(
            destination,
            reported,
            waiting,
            now=self._clock(),
            suspend_after=self.options.suspend_after,
            account_id=account_id,
        )
        problems = self.status_view.settings_problems(
            account_id, now=self._clock(), max_age=PROCESS_REPORT_MAX_AGE_S
        )
        return with_settings_problems(body, problems)

    # the activity audit log ----------------------------------------------------------------

    def audit_store(self) -> AuditStore:
        """The audit store the activity routes read. Raises :class:`api.errors.Unavailable`
        when this service has none."""
        if self._audit_store is None:
            raise Unavailable(
                "this API serves no activity audit log: start it with --store URL (or "
                "AUDITSTREAM_STORE)"
            )
        return self._audit_store

    def record_activity(self, event: dict[str, Any], timeout: float = 10.0) -> None:
        """Produce one audit event of the API's own (an export) to the activity topic and wait
        until the log stored it. Raises :class:`api.errors.Unavailable` if it did not."""
        with self._activity_lock:
            try:
                if self._activity_producer is None:
                    self._activity_producer = ActivityProducer(self._log)
                self._activity_producer.send(event)
                self._activity_producer.flush(timeout)
            except (LogError, DeliveryFailed) as exc:
                raise Unavailable(f"the audit event could not be stored now: {exc}") from exc

    # janitor (see api.janitor) --------------------------------------------------------------

    def janitor_pass(self) -> list[str]:
        """Remove drained ``deleting`` destinations and delete topics that are due. Returns the
        ids of the destinations removed."""
        return self.janitor.run_pass()

    def topics_pending_deletion(self) -> set[str]:
        return self._deletions.pending()

    def acquire_janitor(self) -> None:
        """Start the janitor for one more user (an app being served); see release_janitor."""
        self.janitor.acquire()

    def release_janitor(self) -> None:
        """The janitor stops when its last user releases it."""
        self.janitor.release()

    def close(self) -> None:
        """Stop the janitor and release every client; later reads and changes raise
        :class:`api.errors.Unavailable`."""
        self.janitor.close()
        with self.read_model.lock:
            self.writes.close()
            self.read_model.close()
        self.tokens.close()
        self.status_view.close()
        with self._activity_lock:
            if self._activity_producer is not None:
                try:
                    self._activity_producer.close()
                except DeliveryFailed as exc:
                    log.warning("an audit event of the API was not stored: %s", exc)
                self._activity_producer = None
