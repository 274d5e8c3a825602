"""Every account's current stream settings, by account id and by destination id, changed one
settings record (key = account id, empty value = removed) at a time.

A settings record the settings API writes carries a revision (header ``settings.revision``),
and so do the audit events written with it in the same transaction. A table that holds
revisions (the router's, see docs/adr/017-settings-take-effect-at-their-audit-event.md) keeps
such a record pending until the router routes the account's audit event with that revision
(``advance``): events before the change in the activity topic follow the old settings, the
ones after it the new. A record without a revision applies at once.

A router starting from a commit (a restart, a rebalance) was not there when the changes after
that commit were read: the commit's metadata (``pipeline.commit_metadata``) and the headers
naming the record each change replaced (``settings.previous``, ``settings.previous-revision``)
let it put back the settings in force at the commit (``hold_back``, ``keep_pending``).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from auditstream.config.destinations import Destination
from auditstream.config.errors import ConfigError, SecretKeyError
from auditstream.config.secrets import SecretBox
from auditstream.config.stream import AccountSettings
from auditstream.config.wire import decode_settings
from auditstream.pipeline import metrics
from auditstream.pipeline.commit_metadata import CommitMetadata

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Unapplied:
    """Why an account's latest settings record was not applied. ``key_problem``: the process
    has no key (or not the key) that opens the record's secrets."""

    reason: str
    key_problem: bool


REVISION_HEADER = "settings.revision"
"""Header naming a settings change's revision, on its settings record and its audit events."""

PREVIOUS_HEADER = "settings.previous"
"""Header on a settings record with a revision: the value of the record it replaced, sealed
as values are (empty: the account had no settings). Compaction keeps only the newest record
of an account, so this is how a restarting router finds the settings before a change."""

PREVIOUS_REVISION_HEADER = "settings.previous-revision"
"""Header beside ``settings.previous``: the replaced record's revision (absent: it had none)."""

_SEEN_REVISIONS = 32
"""Revisions remembered per account once applied (an audit event routed again after a rewind
or a restart names one of them)."""


class Advance(Enum):
    """What routing an audit event that names a revision did to the table."""

    APPLIED = "applied"
    """The revision was pending and is now the account's settings (with the ones before it)."""
    CURRENT = "current"
    """The revision was already applied (or its record could not be decoded): no change."""
    UNKNOWN = "unknown"
    """No settings record with that revision was read yet."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A table's settings, pending revisions and seen revisions at one moment."""

    accounts: dict[str, AccountSettings]
    destinations: dict[str, tuple[str, Destination]]
    previous: dict[str, AccountSettings]
    pending: dict[str, list[tuple[str, AccountSettings | None]]]
    seen: dict[str, tuple[str, ...]]
    passed: dict[str, str]
    in_force: dict[str, str]
    pending_at: dict[tuple[str, str], tuple[int, int]]


@dataclass(frozen=True, slots=True)
class _Newest:
    """Where an account's newest settings record was read, and what it says it replaced
    (``previous``: None when the header is absent)."""

    partition: int
    offset: int
    revision: str | None
    previous_revision: str
    previous: bytes | None
    earlier_offset: int | None
    """Offset of the account's record read before this one (same partition), if any."""


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
        self._hold = False
        self._pending: dict[str, list[tuple[str, AccountSettings | None]]] = {}
        self._seen: dict[str, deque[str]] = {}
        self._passed: dict[str, str] = {}
        self._in_force: dict[str, str] = {}  # revision of the applied record ("" none)
        self._newest: dict[str, _Newest] = {}
        self._pending_at: dict[tuple[str, str], tuple[int, int]] = {}

    def hold_revisions(self) -> None:
        """From now on, keep records with a revision pending until ``advance`` names them
        (the router, once it has read the settings it starts with)."""
        self._hold = True

    def apply(
        self,
        key: bytes | None,
        value: bytes,
        revision: str | None = None,
        *,
        at: tuple[int, int] | None = None,
        previous: bytes | None = None,
        previous_revision: str = "",
    ) -> None:
        """Apply one settings record, or keep it pending (a table holding revisions, a record
        with ``revision``). A record without a key, or whose value cannot be decoded, is logged
        and ignored: the last good settings stay, a bad record must not stop the stream. Never
        raises for a bad record. A record without a revision applies at once and drops the
        account's pending ones (they are older). ``at``: the record's (partition, offset);
        ``previous`` and ``previous_revision``: its headers naming the record it replaced."""
        if key is None:
            log.warning("settings record without key ignored")
            return
        account_id = key.decode(errors="replace")
        if at is not None:
            before = self._newest.get(account_id)
            earlier = before.offset if before is not None and before.partition == at[0] else None
            self._newest[account_id] = _Newest(
                at[0], at[1], revision, previous_revision, previous, earlier
            )
        settings: AccountSettings | None = None
        if value:
            try:
                settings = decode_settings(value, self._box)
            except ConfigError as exc:
                log.error("settings for account %s not applied: %s", account_id, exc)
                key_problem = isinstance(exc, SecretKeyError)
                self._unapplied[account_id] = Unapplied(str(exc), key_problem)
                if revision is not None:
                    self._remember(account_id, revision)  # its audit event changes nothing
                return
        self._unapplied.pop(account_id, None)
        if revision is not None and self._hold and self._passed.get(account_id) != revision:
            self._pending.setdefault(account_id, []).append((revision, settings))
            if at is not None:
                self._pending_at[(account_id, revision)] = at
            return
        # At once: not held, no revision, or its audit event was routed before it was read.
        self._passed.pop(account_id, None)
        for older, _s in self._pending.pop(account_id, []):
            self._remember(account_id, older)  # their audit events change nothing now
            self._pending_at.pop((account_id, older), None)
        if revision is not None:
            self._remember(account_id, revision)
        self.put(account_id, settings, revision or "")

    def _remember(self, account_id: str, revision: str) -> None:
        self._seen.setdefault(account_id, deque(maxlen=_SEEN_REVISIONS)).append(revision)

    def pending(self, account_id: str) -> list[str]:
        """The account's revisions read but not applied yet, oldest first."""
        return [r for r, _s in self._pending.get(account_id, [])]

    def advance(self, account_id: str, revision: str) -> Advance:
        """The account's audit event naming ``revision`` is being routed: make that revision
        (and any pending one before it) the account's settings."""
        pending = self._pending.get(account_id, [])
        for i, (r, settings) in enumerate(pending):
            if r == revision:
                for earlier, _s in pending[: i + 1]:
                    self._remember(account_id, earlier)
                    self._pending_at.pop((account_id, earlier), None)
                if pending[i + 1 :]:
                    self._pending[account_id] = pending[i + 1 :]
                else:
                    del self._pending[account_id]
                self.put(account_id, settings, revision)
                return Advance.APPLIED
        if revision in self._seen.get(account_id, ()):
            return Advance.CURRENT
        return Advance.UNKNOWN

    def settle(self, account_id: str, revision: str) -> None:
        """The audit event naming ``revision`` is routed before its settings record was read
        (it was not read in time): apply what was read, and the record itself at once when
        it comes."""
        self._settle(account_id)
        self._passed[account_id] = revision

    def settle_all(self) -> None:
        """Apply every account's pending revisions at once (a router given partitions another
        router routed: their audit events may lie behind the committed offsets, never to be
        routed here again)."""
        for account_id in list(self._pending):
            self._settle(account_id)

    def settle_accounts(self, accounts: list[str]) -> None:
        """Apply these accounts' pending revisions at once (they do not fit in a commit's
        metadata, which must name every account whose revision is pending)."""
        for account_id in accounts:
            self._settle(account_id)

    def _settle(self, account_id: str) -> None:
        pending = self._pending.pop(account_id, None)
        if pending:
            for r, _s in pending:
                self._remember(account_id, r)
                self._pending_at.pop((account_id, r), None)
            self.put(account_id, pending[-1][1], pending[-1][0])

    def in_force(self) -> dict[str, str]:
        """For a commit's metadata: the revision in force ("" none) of each account with a
        revision pending, and the revision of each account whose audit event was routed
        before its record was read (that record is in force once read)."""
        out = {a: self._in_force.get(a, "") for a in self._pending}
        out.update(self._passed)
        return out

    def passed(self) -> set[str]:
        """Accounts whose audit event was routed before their settings record was read."""
        return set(self._passed)

    def hold_back(self, commits: list[CommitMetadata]) -> list[str]:
        """A router starts routing from ``commits`` (the metadata of each partition it was
        given that has a committed offset): put back, for each account whose newest record
        was written after every commit (or was pending at it, in force its previous one), the
        settings in force then, and hold the newest pending until its audit event. Returns the
        accounts held back. Two changes of an account after a commit: the newest stays."""
        held: list[str] = []
        if not commits:
            return held
        for account_id, newest in sorted(self._newest.items()):
            if (
                newest.revision is None
                or account_id in self._pending
                or account_id in self._unapplied
                or newest.previous is None
                or not all(_written_after(account_id, newest, c) for c in commits)
            ):
                continue
            usable, previous = self._previous_settings(account_id, newest.previous)
            if not usable:
                continue
            current = self._accounts.get(account_id)
            self.put(account_id, previous, newest.previous_revision)
            self._previous.pop(account_id, None)  # the one before it is not known
            if newest.previous_revision:
                self._remember(account_id, newest.previous_revision)
            self._pending[account_id] = [(newest.revision, current)]
            self._pending_at[(account_id, newest.revision)] = (newest.partition, newest.offset)
            held.append(account_id)
        return held

    def keep_pending(self, commits: list[CommitMetadata]) -> list[str]:
        """A router is given partitions whose commits are ``commits``: apply at once each
        pending revision those commits may have passed (its audit event may lie behind them,
        never to be routed here), keep the others. Returns the accounts applied."""
        settled: list[str] = []
        for account_id in sorted(self._pending):
            first = self._pending[account_id][0][0]
            at = self._pending_at.get((account_id, first))
            in_force = self._in_force.get(account_id, "")
            if at is None or not all(_still_ahead(account_id, at, in_force, c) for c in commits):
                self._settle(account_id)
                settled.append(account_id)
        return settled

    def _previous_settings(
        self, account_id: str, value: bytes
    ) -> tuple[bool, AccountSettings | None]:
        """(True, the settings in a ``settings.previous`` header, None: none), or (False,
        None), logged and counted, when it cannot be used."""
        if not value:
            return True, None
        try:
            settings = decode_settings(value, self._box)
        except ConfigError as exc:
            problem = f"cannot be decoded: {exc}"
        else:
            if settings.account_id == account_id:
                return True, settings
            problem = f"belongs to account {settings.account_id!r}"
        metrics.SETTINGS_APPLIED_AT_ONCE.labels(reason="previous_unreadable").inc()
        log.warning(
            "the settings before account %s's latest change %s; its change applies now, not "
            "at its audit event",
            account_id,
            problem,
        )
        return False, None

    def snapshot(self) -> Snapshot:
        """The table as it is now, to ``restore`` after routed records were rewound."""
        return Snapshot(
            dict(self._accounts),
            dict(self._destinations),
            dict(self._previous),
            {a: list(p) for a, p in self._pending.items()},
            {a: tuple(s) for a, s in self._seen.items()},
            dict(self._passed),
            dict(self._in_force),
            dict(self._pending_at),
        )

    def restore(self, snapshot: Snapshot) -> None:
        """Back to ``snapshot`` (the router: no record is read between the two)."""
        self._accounts = dict(snapshot.accounts)
        self._destinations = dict(snapshot.destinations)
        self._previous = dict(snapshot.previous)
        self._pending = {a: list(p) for a, p in snapshot.pending.items()}
        self._seen = {a: deque(s, maxlen=_SEEN_REVISIONS) for a, s in snapshot.seen.items()}
        self._passed = dict(snapshot.passed)
        self._in_force = dict(snapshot.in_force)
        self._pending_at = dict(snapshot.pending_at)
        self.version += 1

    def put(self, account_id: str, settings: AccountSettings | None, revision: str = "") -> None:
        """Make ``settings`` the account's settings (None: it has none any more), from the
        record with ``revision`` ("" none)."""
        self._in_force[account_id] = revision
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


def _written_after(account_id: str, newest: _Newest, commit: CommitMetadata) -> bool:
    """Whether the settings in force for the account at ``commit`` were the ones ``newest``
    replaced: it was pending then, or written after it with no other change in between."""
    if account_id in commit.in_force:
        return commit.in_force[account_id] == newest.previous_revision
    read = commit.settings_read.get(newest.partition, 0)
    return newest.offset >= read and (newest.earlier_offset is None or newest.earlier_offset < read)


def _still_ahead(
    account_id: str, at: tuple[int, int], in_force: str, commit: CommitMetadata
) -> bool:
    """Whether a revision pending since ``at`` (partition, offset) was not yet applied at
    ``commit``, where ``in_force`` is the revision in force here."""
    if account_id in commit.in_force:
        return commit.in_force[account_id] == in_force
    return at[1] >= commit.settings_read.get(at[0], 0)
