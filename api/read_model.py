"""The settings API's view of every account's settings: the settings topic as read, plus the
API's own writes at once (read-your-writes), behind the lock that serialises changes.

A write is applied as soon as it is stored. The reader may still be behind it (Kafka), so until
the reader returns that very record, the account's older records it returns are skipped: an
account's records are in one partition, in order.

An account whose latest settings record cannot be decoded (e.g. sealed with a key that is not
configured) is "unreadable": the API refuses to show or change it, since a change built on
"no settings" would drop its destinations.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from auditstream.api.errors import Unavailable
from auditstream.config.destinations import Destination
from auditstream.config.errors import ConfigError
from auditstream.config.secrets import SecretBox
from auditstream.config.stream import AccountSettings
from auditstream.config.wire import decode_settings
from auditstream.pipeline import topics
from auditstream.pipeline.compacted_view import CompactedTopicView
from auditstream.pipeline.errors import LogError
from auditstream.pipeline.log import Log, Record
from auditstream.pipeline.settings_table import REVISION_HEADER, SettingsTable

log = logging.getLogger(__name__)

PENDING_TIMEOUT_S = 60.0
"""How long a write not read back yet hides the account's older records (a write compacted away
before the reader reached it is then followed no longer)."""


class SettingsReadModel:
    """Accounts' settings as the API serves them. Thread-safe through :meth:`fresh`."""

    def __init__(self, log_backend: Log, box: SecretBox) -> None:
        """Raises :class:`pipeline.errors.LogError` if the settings topic cannot be opened."""
        self._box = box
        self._table = SettingsTable(box)
        self._pending: dict[str, tuple[bytes, float]] = {}
        self._latest: dict[str, tuple[bytes, str | None]] = {}
        # Each account's newest record as stored (value, revision): a change carries it as its
        # `previous`, so a router restarted inside the change's window puts it back (ADR 017).
        self.unreadable: set[str] = set()
        """Accounts whose latest settings record cannot be decoded."""
        self.lock = threading.RLock()
        """Serialises reads of the view and changes of the settings (one writer at a time)."""
        self._topic = CompactedTopicView(log_backend, topics.SETTINGS, self._read)

    def catch_up(self, timeout: float = 30.0) -> None:
        """Read the settings topic to its end. Raises ``TimeoutError`` if not done within
        ``timeout`` seconds (polling continues from where it stopped), :class:`LogError` if the
        log cannot be read."""
        with self.lock:
            self._topic.catch_up(timeout)

    @contextmanager
    def fresh(self, min_interval: float = 0.5) -> Iterator[None]:
        """Hold the lock, with the settings read from the topic at most ``min_interval``
        seconds ago. Raises :class:`Unavailable` if the topic cannot be read."""
        with self.lock:
            try:
                self._topic.poll(min_interval)
            except LogError as exc:
                raise Unavailable(f"settings cannot be read now: {exc}") from exc
            yield

    def current(self, account_id: str) -> AccountSettings | None:
        """The account's settings (call with the lock held). Raises :class:`Unavailable` for an
        unreadable account."""
        if account_id in self.unreadable:
            raise Unavailable(
                "the stored settings of this account cannot be read by the service (a secret "
                "key is missing); nothing was changed"
            )
        return self._table.account(account_id)

    def account(self, account_id: str) -> AccountSettings | None:
        """The account's settings as last read, unreadable or not (call with the lock held)."""
        return self._table.account(account_id)

    def accounts(self) -> dict[str, AccountSettings]:
        return self._table.accounts()

    def destination(self, destination_id: str) -> tuple[str, Destination] | None:
        """(account id, destination) for ``destination_id``, or None if no account has it."""
        return self._table.destination(destination_id)

    def latest_record(self, account_id: str) -> tuple[bytes, str | None]:
        """The value and revision of the account's newest settings record as stored (``b""``
        and None when it has none; call with the lock held)."""
        return self._latest.get(account_id, (b"", None))

    def apply_written(self, account_id: str, value: bytes, revision: str | None = None) -> None:
        """Apply a settings record this API has just stored (call with the lock held)."""
        self._pending[account_id] = (value, time.monotonic())
        self._latest[account_id] = (value, revision)
        self._table.apply(account_id.encode(), value)

    def _read(self, record: Record) -> None:
        if record.key is None:
            self._table.apply(record.key, record.value)  # logged and ignored there
            return
        account_id = record.key.decode(errors="replace")
        pending = self._pending.get(account_id)
        if pending is not None:
            written, at = pending
            if record.value == written:
                del self._pending[account_id]  # the reader reached our write
                return
            if time.monotonic() - at < PENDING_TIMEOUT_S:
                return  # older than our write
            del self._pending[account_id]  # never read back (compacted away?): follow
        revision = record.header(REVISION_HEADER)
        self._latest[account_id] = (
            record.value or b"",
            revision.decode(errors="replace") if revision else None,
        )
        settings: AccountSettings | None = None
        if record.value:
            try:
                settings = decode_settings(record.value, self._box)
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
        self._table.put(account_id, settings)

    def close(self) -> None:
        with self.lock:
            self._topic.close()
