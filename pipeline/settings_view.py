"""The live view of every account's stream settings, rebuilt from the compacted settings topic
and kept current by polling it: a change takes effect within one poll interval, no restart."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from auditstream.config.destinations import Destination
from auditstream.config.errors import ConfigError
from auditstream.config.secrets import SecretBox
from auditstream.config.stream import AccountSettings
from auditstream.config.wire import decode_settings
from auditstream.pipeline import topics
from auditstream.pipeline.log import Consumer, Log

log = logging.getLogger(__name__)

ChangeCallback = Callable[[str, AccountSettings | None], None]


class SettingsView:
    """Accounts' settings by account id, and destinations by destination id."""

    def __init__(
        self,
        log_backend: Log,
        on_change: ChangeCallback | None = None,
        box: SecretBox | None = None,
    ) -> None:
        self._box = box
        log_backend.create_topic(topics.SETTINGS, compacted=True)
        self._log = log_backend
        self._reader: Consumer = log_backend.reader(topics.SETTINGS)
        self._accounts: dict[str, AccountSettings] = {}
        self._destinations: dict[str, tuple[str, Destination]] = {}
        self._previous: dict[str, AccountSettings] = {}
        self._on_change = on_change
        self.version = 0
        self._polled_at = 0.0

    def catch_up(self, timeout: float = 30.0) -> None:
        """Read until the end of the settings topic as it is now (any number of times).
        Raises ``TimeoutError``. The reader's position, not the last record's offset, says how
        far it read: on Kafka a transactional write ends with a marker no poll returns."""
        ends = self._log.end_offsets(topics.SETTINGS)
        deadline = time.monotonic() + timeout
        # A position is negative until the first fetch: an empty partition (end 0) is read.
        while any(max(self._reader.position(tp), 0) < end for tp, end in ends.items()):
            if time.monotonic() > deadline:
                raise TimeoutError("settings topic not read to its end in time")
            for record in self._reader.poll(1000, 0.5):
                self._apply(record.key, record.value)

    def poll(self, min_interval: float = 0.5) -> bool:
        """Apply new settings records, at most every ``min_interval`` seconds; True if any."""
        now = time.monotonic()
        if now - self._polled_at < min_interval:
            return False
        self._polled_at = now
        changed = False
        for record in self._reader.poll(1000, 0.0):
            self._apply(record.key, record.value)
            changed = True
        return changed

    def _apply(self, key: bytes | None, value: bytes) -> None:
        if key is None:
            log.warning("settings record without key ignored")
            return
        account_id = key.decode()
        settings: AccountSettings | None = None
        if value:
            try:
                settings = decode_settings(value, self._box)
            except ConfigError as exc:
                # Keep the last good settings: a bad record must not stop the stream.
                log.error("settings for account %s ignored: %s", account_id, exc)
                return
        for dest_id, (acct, _d) in list(self._destinations.items()):
            if acct == account_id:
                del self._destinations[dest_id]
        previous = self._accounts.get(account_id)
        if previous is not None:
            self._previous[account_id] = previous
        if settings is None:
            self._accounts.pop(account_id, None)
        else:
            self._accounts[account_id] = settings
            for d in settings.destinations:
                self._destinations[d.id] = (account_id, d)
        self.version += 1
        if self._on_change is not None:
            self._on_change(account_id, settings)

    def account(self, account_id: str) -> AccountSettings | None:
        return self._accounts.get(account_id)

    def previous(self, account_id: str) -> AccountSettings | None:
        """The account's settings before its latest change (None if it had none)."""
        return self._previous.get(account_id)

    def accounts(self) -> dict[str, AccountSettings]:
        return dict(self._accounts)

    def destination(self, destination_id: str) -> tuple[str, Destination] | None:
        """(account id, destination) for ``destination_id``, or None if no account has it."""
        return self._destinations.get(destination_id)

    def close(self) -> None:
        self._reader.close()
