"""The live view of every account's stream settings, rebuilt from the compacted settings topic
and kept current by polling it: a change takes effect within one poll interval, no restart; in
the router's view, a change with a revision takes effect when its audit event is routed
(``hold_revisions``, docs/adr/017-settings-take-effect-at-their-audit-event.md)."""

from __future__ import annotations

from auditstream.config.destinations import Destination
from auditstream.config.errors import SecretKeyError
from auditstream.config.secrets import SecretBox
from auditstream.config.stream import AccountSettings
from auditstream.pipeline import topics
from auditstream.pipeline.commit_metadata import CommitMetadata
from auditstream.pipeline.compacted_view import CompactedTopicView
from auditstream.pipeline.log import Log, Record
from auditstream.pipeline.settings_table import (
    PREVIOUS_HEADER,
    PREVIOUS_REVISION_HEADER,
    REVISION_HEADER,
    Advance,
    ChangeCallback,
    SettingsTable,
    Snapshot,
    Unapplied,
)

__all__ = ["Advance", "ChangeCallback", "SettingsView", "Snapshot", "Unapplied"]


class SettingsView:
    """Accounts' settings by account id, and destinations by destination id, as the settings
    topic holds them. Not thread-safe: one owner polls it."""

    def __init__(
        self,
        log_backend: Log,
        on_change: ChangeCallback | None = None,
        box: SecretBox | None = None,
    ) -> None:
        """Raises :class:`pipeline.errors.LogError` if the settings topic cannot be opened."""
        self._table = SettingsTable(box, on_change)
        self._read_to: dict[int, int] = {}
        self._topic = CompactedTopicView(log_backend, topics.SETTINGS, self._apply_record)

    def _apply_record(self, record: Record) -> None:
        header = record.header(REVISION_HEADER)
        revision = None if header is None else header.decode(errors="replace")
        previous_revision = record.header(PREVIOUS_REVISION_HEADER) or b""
        self._table.apply(
            record.key,
            record.value,
            revision,
            at=(record.partition, record.offset),
            previous=record.header(PREVIOUS_HEADER),
            previous_revision=previous_revision.decode(errors="replace"),
        )
        self._read_to[record.partition] = max(
            self._read_to.get(record.partition, 0), record.offset + 1
        )

    def settings_read(self) -> dict[int, int]:
        """The next settings offset to read, by partition (partitions read from)."""
        return dict(self._read_to)

    def in_force(self) -> dict[str, str]:
        """The revision in force of each account with one pending (see
        :meth:`SettingsTable.in_force`)."""
        return self._table.in_force()

    def passed(self) -> set[str]:
        """Accounts whose audit event was routed before their settings record was read."""
        return self._table.passed()

    def settle_accounts(self, accounts: list[str]) -> None:
        """Apply these accounts' pending revisions now."""
        self._table.settle_accounts(accounts)

    def hold_back(self, commits: list[CommitMetadata]) -> list[str]:
        """Put back the settings in force at ``commits`` (a router's start); see
        :meth:`SettingsTable.hold_back`."""
        return self._table.hold_back(commits)

    def keep_pending(self, commits: list[CommitMetadata]) -> list[str]:
        """Apply the pending revisions ``commits`` may have passed (partitions given to the
        router); see :meth:`SettingsTable.keep_pending`."""
        return self._table.keep_pending(commits)

    def hold_revisions(self) -> None:
        """From now on, settings records with a revision wait for ``advance`` (the router)."""
        self._table.hold_revisions()

    def pending(self, account_id: str) -> list[str]:
        """The account's revisions read but not applied yet, oldest first."""
        return self._table.pending(account_id)

    def advance(self, account_id: str, revision: str) -> Advance:
        """The account's audit event naming ``revision`` is routed: its settings apply."""
        return self._table.advance(account_id, revision)

    def settle(self, account_id: str, revision: str) -> None:
        """``revision`` was not read in time: apply what was read, and it when it comes."""
        self._table.settle(account_id, revision)

    def settle_all(self) -> None:
        """Apply every pending revision now (partitions newly assigned to the router)."""
        self._table.settle_all()

    def snapshot(self) -> Snapshot:
        return self._table.snapshot()

    def restore(self, snapshot: Snapshot) -> None:
        self._table.restore(snapshot)

    def catch_up(self, timeout: float = 30.0) -> None:
        """Read until the end of the settings topic as it is now (any number of times).
        Raises ``TimeoutError`` if not done within ``timeout`` seconds, and
        :class:`pipeline.errors.LogError` if the log cannot be read."""
        self._topic.catch_up(timeout)

    def poll(self, min_interval: float = 0.5) -> bool:
        """Apply new settings records, at most every ``min_interval`` seconds; True if any.
        Raises :class:`pipeline.errors.LogError` if the log cannot be read."""
        return self._topic.poll(min_interval) > 0

    def unapplied(self) -> dict[str, Unapplied]:
        """Accounts whose latest settings could not be applied, and why."""
        return self._table.unapplied()

    def require_keys(self) -> None:
        """Raise :class:`config.errors.SecretKeyError` if any account's settings hold secrets
        this process cannot open: a router or worker that cannot apply settings must not start
        and run on stale ones."""
        accounts = sorted(a for a, u in self._table.unapplied().items() if u.key_problem)
        if accounts:
            shown = ", ".join(accounts[:5]) + (
                f" and {len(accounts) - 5} more" if len(accounts) > 5 else ""
            )
            raise SecretKeyError(
                f"the settings of {shown} hold secrets this process cannot open: start it "
                "with the settings API's keys in AUDITSTREAM_SECRET_KEYS (or "
                "AUDITSTREAM_SECRET_KEYS_FILE)"
            )

    @property
    def version(self) -> int:
        """Counts the changes applied."""
        return self._table.version

    def account(self, account_id: str) -> AccountSettings | None:
        return self._table.account(account_id)

    def previous(self, account_id: str) -> AccountSettings | None:
        """The account's settings before its latest change (None if it had none)."""
        return self._table.previous(account_id)

    def accounts(self) -> dict[str, AccountSettings]:
        return self._table.accounts()

    def destination(self, destination_id: str) -> tuple[str, Destination] | None:
        """(account id, destination) for ``destination_id``, or None if no account has it."""
        return self._table.destination(destination_id)

    def close(self) -> None:
        self._topic.close()
