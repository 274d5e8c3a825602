"""Every account's current stream settings, by account id and by destination id, changed one
settings record (key = account id, empty value = removed) at a time."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from auditstream.config.destinations import Destination
from auditstream.config.errors import ConfigError, SecretKeyError
from auditstream.config.secrets import SecretBox
from auditstream.config.stream import AccountSettings
from auditstream.config.wire import decode_settings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Unapplied:
    """Why an account's latest settings record was not applied. ``key_problem``: the process
    has no key (or not the key) that opens the record's secrets."""

    reason: str
    key_problem: bool


ChangeCallback = Callable[[str, AccountSettings | None], None]
"""Called after an account's settings changed: (account id, new settings or None)."""


class SettingsTable:
    """Accounts' settings by account id, and destinations by destination id."""

    def __init__(
        self, box: SecretBox | None = None, on_change: ChangeCallback | None = None
    ) -> None:
        self._box = box
        self._on_change = on_change
        self._accounts: dict[str, AccountSettings] = {}
        self._destinations: dict[str, tuple[str, Destination]] = {}
        self._previous: dict[str, AccountSettings] = {}
        self.version = 0
        """Counts the changes applied."""
        self._unapplied: dict[str, Unapplied] = {}

    def apply(self, key: bytes | None, value: bytes) -> None:
        """Apply one settings record. A record without a key, or whose value cannot be decoded,
        is logged and ignored: the last good settings stay, a bad record must not stop the
        stream. Never raises for a bad record."""
        if key is None:
            log.warning("settings record without key ignored")
            return
        account_id = key.decode()
        settings: AccountSettings | None = None
        if value:
            try:
                settings = decode_settings(value, self._box)
            except ConfigError as exc:
                log.error("settings for account %s not applied: %s", account_id, exc)
                key_problem = isinstance(exc, SecretKeyError)
                self._unapplied[account_id] = Unapplied(str(exc), key_problem)
                return
        self._unapplied.pop(account_id, None)
        self.put(account_id, settings)

    def put(self, account_id: str, settings: AccountSettings | None) -> None:
        """Make ``settings`` the account's settings (None: it has none any more)."""
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

    def unapplied(self) -> dict[str, Unapplied]:
        """Accounts whose latest settings record could not be applied (their previous
        settings, if any, still hold), and why."""
        return dict(self._unapplied)

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
