"""The janitor: removes destinations marked ``deleting`` once their topic is drained, and deletes
removed destinations' topics after ``ApiOptions.delete_grace`` seconds.

A destination is removed when it has been deleting for at least the grace period (routers may
still copy events to it until they saw the change) and its topic was found drained on two passes
in a row. Passes run on a background thread while the API is served (:meth:`Janitor.acquire`),
or one at a time through :meth:`Janitor.run_pass`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from auditstream.api import audit, ops
from auditstream.api.errors import NotFound
from auditstream.api.options import ApiOptions
from auditstream.api.read_model import SettingsReadModel
from auditstream.api.status import Waiting
from auditstream.api.topic_deletions import TopicDeletions
from auditstream.api.writes import SettingsWrites
from auditstream.pipeline import topics
from auditstream.pipeline.errors import LogError
from auditstream.pipeline.log import Log, OutgoingRecord
from auditstream.pipeline.produce_all import produce_all

log = logging.getLogger(__name__)

WaitingOf = Callable[[str], Waiting]
"""Events waiting in a destination's topic, by destination id."""

STOP_TIMEOUT_S = 30.0


class Janitor:
    """Removes drained ``deleting`` destinations and deletes topics that are due. Thread-safe."""

    def __init__(
        self,
        log_backend: Log,
        options: ApiOptions,
        settings: SettingsReadModel,
        writes: SettingsWrites,
        deletions: TopicDeletions,
        waiting: WaitingOf,
    ) -> None:
        self._log = log_backend
        self._options = options
        self._settings = settings
        self._writes = writes
        self._deletions = deletions
        self._waiting = waiting
        self._pass_lock = threading.Lock()  # one pass at a time (thread and callers)
        self._deleting_seen: dict[str, float] = {}  # destination id -> monotonic time first seen
        self._drained_once: set[str] = set()
        self._thread_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._users = 0
        self._closed = False

    # one pass -------------------------------------------------------------------------------

    def run_pass(self) -> list[str]:
        """Remove drained ``deleting`` destinations and delete topics that are due. Returns the
        ids of the destinations removed (none once closed). Raises
        :class:`api.errors.Unavailable` if the log cannot be read or changed now."""
        with self._pass_lock:
            if self._closed:
                return []
            removed = self._remove_drained()
            self._delete_due_topics()
            return removed

    def _remove_drained(self) -> list[str]:
        with self._settings.fresh(min_interval=0.0):
            deleting = [
                (account_id, d)
                for account_id, settings in self._settings.accounts().items()
                for d in settings.destinations
                if d.deleting
            ]
        now = time.monotonic()
        current = {d.id for _a, d in deleting}
        for gone in set(self._deleting_seen) - current:
            self._forget(gone)
        removed: list[str] = []
        for account_id, d in deleting:
            seen = self._deleting_seen.setdefault(d.id, now)
            if now - seen < self._options.delete_grace:
                continue  # routers may still copy events to it
            waiting = self._waiting(d.id)
            if not (waiting.exact and waiting.count == 0):
                self._drained_once.discard(d.id)
                continue
            if d.id not in self._drained_once:
                self._drained_once.add(d.id)  # drained twice in a row, then removed
                continue
            with self._settings.fresh(min_interval=0.0):
                settings = self._settings.account(account_id)
                if settings is None:
                    continue
                try:
                    current_d = ops.find(settings, d.id)
                except NotFound:
                    continue  # removed meanwhile
                if current_d.deleting:
                    self._writes.remove(
                        settings, current_d, audit.SYSTEM_ACTOR, None, how="drained"
                    )
                    self._forget(d.id)
                    removed.append(d.id)
        return removed

    def _forget(self, destination_id: str) -> None:
        self._deleting_seen.pop(destination_id, None)
        self._drained_once.discard(destination_id)

    def _delete_due_topics(self) -> None:
        for topic in self._deletions.due():
            destination_id = topics.destination_of(topic) or ""
            with self._settings.fresh(min_interval=0.0):
                if self._settings.destination(destination_id) is not None:
                    self._deletions.done(topic)  # the id was taken again: keep it
                    continue
                try:
                    self._log.delete_topic(topic)
                    # The status record of a deleted destination goes too (a tombstone).
                    tombstone = OutgoingRecord(topics.STATUS, b"", key=destination_id.encode())
                    produce_all(self._log, [tombstone], what="status tombstone", timeout=10.0)
                except LogError as exc:
                    log.warning("topic %s not deleted yet: %s", topic, exc)
                    continue
                self._deletions.done(topic)
                log.info("topic %s deleted", topic)

    # the background thread ------------------------------------------------------------------

    def acquire(self) -> None:
        """Run the janitor on its thread for one more user (an app being served); see
        :meth:`release`."""
        with self._thread_lock:
            self._users += 1
        self.start()

    def release(self) -> None:
        """The thread stops when its last user releases it."""
        with self._thread_lock:
            self._users = max(0, self._users - 1)
            last = self._users == 0
        if last:
            self.stop()

    def start(self) -> None:
        """Start the thread, unless it runs, the interval is 0 or the janitor is closed."""
        with self._thread_lock:
            if self._closed or self._thread is not None or self._options.janitor_interval <= 0:
                return
            # A fresh event per thread: a thread that did not stop in time must not be revived
            # by a later start clearing the event it waits on.
            self._stop = threading.Event()
            self._thread = threading.Thread(
                target=self._loop,
                args=(self._stop,),
                name="auditstream-api-janitor",
                daemon=True,
            )
            self._thread.start()

    def _loop(self, stop: threading.Event) -> None:
        while not stop.wait(self._options.janitor_interval):
            try:
                self.run_pass()
            except Exception:  # the janitor must outlive a log hiccup
                log.exception(
                    "janitor pass failed; retrying in %.0fs", self._options.janitor_interval
                )

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """Stop the thread and wait up to ``timeout`` seconds for its pass to end."""
        with self._thread_lock:
            thread, self._thread = self._thread, None
            self._stop.set()
        if thread is None or thread is threading.current_thread():
            return
        thread.join(timeout)
        if thread.is_alive():
            log.warning("the janitor pass did not end within %.0f s; it stops after it", timeout)

    def close(self) -> None:
        """Stop the thread for good; later passes do nothing. (A pass still running when the
        wait ends changes nothing any more once the settings writes are closed.)"""
        with self._thread_lock:
            self._closed = True
        self.stop()
