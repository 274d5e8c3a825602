"""The router: activity topic → destination topics, per account settings, exactly once.

Each step reads a batch, routes every record (``pipeline.routing.route``), and produces the
copies and dead letters together with the consumed offsets in one transaction (a Kafka
transaction; one SQLite transaction on the embedded log). If the transaction aborts, the
consumer rewinds to the committed offsets and the batch is routed again.

A record the log refuses for good (too large, invalid, a topic it may not write) must not
stop routing for everyone: it is isolated and dead-lettered, and the batch goes on without
it (see ``Router._commit`` and docs/adr/013-router-poison-records-and-watchdog.md).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from auditstream.config.secrets import SecretBox
from auditstream.config.stream import AccountSettings
from auditstream.pipeline import commit_metadata, metrics, topics
from auditstream.pipeline.commit_metadata import CommitMetadata
from auditstream.pipeline.dead_letters import dead_letter
from auditstream.pipeline.errors import (
    FencedError,
    LogError,
    LogFull,
    RecordRefused,
    Refusal,
)
from auditstream.pipeline.log import CommitOffset, Log, OutgoingRecord, Record, TopicPartition
from auditstream.pipeline.process_reports import ProcessReporter
from auditstream.pipeline.record_limits import MAX_RECORD_BYTES
from auditstream.pipeline.routing import SETTINGS_ACTIVITIES, Routed, route
from auditstream.pipeline.settings_table import REVISION_HEADER
from auditstream.pipeline.settings_view import Advance, SettingsView, Snapshot
from auditstream.pipeline.topic_setup import ensure_core_topics
from auditstream.pipeline.watchdog import Watchdog

log = logging.getLogger(__name__)

MAX_REFUSALS = 3
"""Refusals of one record, not known to be permanent, before it is dead-lettered."""
_REWIND_RETRY_S = 1.0
_RETRIES_WHILE_ISOLATING = 3
SETTINGS_WAIT_S = 5.0
SETTINGS_UNREADABLE_LIMIT_S = 60.0
"""How long a batch waits for the settings records its audit events name."""


def _revision(record: Record) -> tuple[str, str] | None:
    """(account id, revision) when ``record`` is a settings audit event naming a revision."""
    activity = (record.header("activity") or b"").decode(errors="replace")
    revision = record.header(REVISION_HEADER)
    if activity not in SETTINGS_ACTIVITIES or revision is None or record.key is None:
        return None
    return record.key.decode(errors="replace"), revision.decode(errors="replace")


@dataclass(frozen=True, slots=True)
class _Entry:
    """One consumed record and what to produce for it; ``level`` counts the times it was
    refused alone (0: as routed, 1: its dead letter, 2: its dead letter without body)."""

    record: Record
    routed: Routed
    level: int = 0


def _flatten(segment: list[_Entry]) -> tuple[list[OutgoingRecord], list[int]]:
    """The records to produce for ``segment``, and for each the index of its entry."""
    out: list[OutgoingRecord] = []
    owner: list[int] = []
    for i, entry in enumerate(segment):
        out.extend(entry.routed.out)
        owner.extend([i] * len(entry.routed.out))
    return out, owner


class Router:
    """Routes activity events. ``step`` is one batch; ``run`` loops until ``stop`` is set."""

    def __init__(
        self,
        log_backend: Log,
        *,
        transactional_id: str | None = None,
        batch_size: int = 2000,
        poll_timeout: float = 0.2,
        activity_partitions: int = 1,
        box: SecretBox | None = None,
        max_record_bytes: int | None = None,
        watchdog: Watchdog | None = None,
    ) -> None:
        self._log = log_backend
        self._watchdog = watchdog
        # The log's own limit unless told otherwise: a copy over it would be refused.
        self._max_record_bytes = max_record_bytes or int(
            getattr(log_backend, "max_record_bytes", MAX_RECORD_BYTES)
        )
        self._suspect_refusals: dict[tuple[TopicPartition, int], int] = {}
        self._rewind_pending: set[TopicPartition] | None = None
        ensure_core_topics(log_backend, activity_partitions)
        self.settings = SettingsView(log_backend, on_change=self._settings_changed, box=box)
        try:
            self.settings.catch_up()
            self.settings.require_keys()
            # From here on a change applies at its audit event (docs/adr/017-...); what was
            # written before this start applies now.
            self.settings.hold_revisions()
        except BaseException:
            self.settings.close()  # nothing else is open yet
            raise
        self._consumer = log_backend.consumer(topics.ROUTER_GROUP, [topics.ACTIVITY])
        self._owned: set[TopicPartition] | None = None  # None: no assignment seen yet
        self._settings_failing_since: float | None = None
        router_id = transactional_id or f"auditstream-router-{uuid.uuid4()}"
        self._producer = log_backend.transactional_producer(router_id)
        self._reporter = ProcessReporter(log_backend, "router", router_id)
        self._batch_size = batch_size
        self._poll_timeout = poll_timeout
        self.consumed = 0

    def _settings_changed(self, account_id: str, settings: AccountSettings | None) -> None:
        # Destination topics exist before the first copy is produced to them.
        if settings is not None:
            for d in settings.destinations:
                self._log.create_topic(topics.destination_topic(d.id))

    def step(self) -> int:
        """Route one batch; returns how many activity records it consumed (committed).

        Raises :class:`FencedError` when another router took over, and :class:`LogError`
        when a dead letter itself cannot be stored (the dead-letter topic refuses even a
        record without its body: a configuration to fix, not a record to skip)."""
        if self._rewind_pending is not None:
            self._beat("rewinding to the committed offsets")
            if not self._try_rewind(self._rewind_pending):
                time.sleep(_REWIND_RETRY_S)
                return 0
        self._beat("reading settings")
        try:
            self.settings.poll()
        except LogError as exc:  # a broker restarting: the settings are read again next step
            self._settings_unread(exc)
            log.warning("settings not read, trying again: %s", exc)
            time.sleep(_REWIND_RETRY_S)
            return 0
        self._reporter.maybe_publish(self.settings.unapplied())
        self._beat("polling the activity topic")
        records = self._consumer.poll(self._batch_size, self._poll_timeout)
        self._settle_on_new_partitions()
        if not records:
            self._settings_failing_since = None
            self._beat("idle")
            return 0
        if any(
            (r.header("activity") or b"").decode(errors="replace") in SETTINGS_ACTIVITIES
            for r in records
        ):
            # The settings API writes a change and its audit event in one transaction: read
            # the settings up to now, so the change is there when its audit event is routed.
            try:
                self.settings.catch_up(timeout=SETTINGS_WAIT_S)
            except LogError as exc:
                # Routing a change's audit event needs the settings it announces: read the
                # batch again once the log answers, instead of routing it with what was read.
                self._settings_unread(exc)
                log.warning("settings not read to their end, reading the batch again: %s", exc)
                self._rewind({r.tp: r.offset for r in records})
                return 0
            except TimeoutError:
                log.warning("settings not read to their end; routing with the current view")
        self._settings_failing_since = None
        revisions = [_revision(r) for r in records]
        snapshot = self.settings.snapshot() if any(revisions) else None
        entries = []
        for record, revision in zip(records, revisions, strict=True):
            if revision is not None:
                self._follow(*revision, record)
            entries.append(
                _Entry(
                    record,
                    route(
                        record,
                        self.settings.account,
                        self.settings.previous,
                        max_record_bytes=self._max_record_bytes,
                    ),
                )
            )
        done = self._commit(entries, self._commit_metadata())
        if snapshot is not None and done < len(entries):
            self._undo(snapshot, revisions[:done])
        return done

    def _follow(self, account_id: str, revision: str, record: Record) -> None:
        """Make ``revision`` the account's settings for its audit event ``record`` (and the
        records after it)."""
        if self.settings.advance(account_id, revision) is not Advance.UNKNOWN:
            return
        metrics.SETTINGS_REVISIONS_MISSING.inc()
        log.warning(
            "settings revision %s of account %s (audit event %s[%d]@%d) not read within %.0f s;"
            " routing with the settings read so far",
            revision,
            account_id,
            record.topic,
            record.partition,
            record.offset,
            SETTINGS_WAIT_S,
        )
        self.settings.settle(account_id, revision)

    def _undo(self, snapshot: Snapshot, committed: list[tuple[str, str] | None]) -> None:
        """The batch was committed only up to ``len(committed)`` records and the rest is read
        again: settings as they were after the committed ones."""
        self.settings.restore(snapshot)
        for revision in committed:
            if revision is not None and self.settings.advance(*revision) is Advance.UNKNOWN:
                self.settings.settle(*revision)

    def _commit_metadata(self) -> str:
        """What the batch's commit records beside its offsets: the settings read and the
        revisions in force where one is pending (``pipeline.commit_metadata``). Pending
        accounts that do not fit apply now; "" (a start from it applies every change at
        once, as a commit without metadata) when the accounts whose audit event passed
        before their record was read do not fit."""
        read = self.settings.settings_read()
        try:
            text, left_out = commit_metadata.encode(read, self.settings.in_force())
            if not left_out:
                return text
            passed = self.settings.passed()
            settle = [a for a in left_out if a not in passed]
            metrics.SETTINGS_APPLIED_AT_ONCE.labels(reason="metadata_full").inc(len(settle))
            log.warning(
                "%d account(s) with a settings change pending do not fit in the commit's "
                "%d-byte metadata; their changes apply now, not at their audit events: %s",
                len(left_out),
                commit_metadata.MAX_BYTES,
                ", ".join(repr(a[:64]) for a in left_out[:5]),
            )
            self.settings.settle_accounts(settle)
            text, left_out = commit_metadata.encode(read, self.settings.in_force())
            if not left_out:
                return text
        except ValueError as exc:
            log.warning("commit metadata not written: %s", exc)
        metrics.SETTINGS_APPLIED_AT_ONCE.labels(reason="metadata_full").inc()
        return ""

    def _commit(self, entries: list[_Entry], metadata: str = "") -> int:
        """Commit ``entries`` in as few transactions as the log allows; returns how many were
        committed. A record the log refuses is isolated (the records before it are committed
        first; a batch-level refusal naming several is halved) and, refused alone,
        dead-lettered: every refusal splits a segment or moves one record a level down
        (copies → dead letter → dead letter without body), so a batch takes a bounded number
        of transactions, about 2·log2(batch) per poison record."""
        segments = [entries]
        done = 0
        isolating = False
        retries = _RETRIES_WHILE_ISOLATING
        while segments:
            segment = segments.pop(0)
            out, owner = _flatten(segment)
            # Only the segment that ends the batch commits the settings after it.
            meta = "" if segments else metadata
            offsets: dict[TopicPartition, int] = {
                e.record.tp: CommitOffset(e.record.offset + 1, meta) for e in segment
            }
            self._beat("in the routing transaction")
            started = time.perf_counter()
            try:
                self._producer.produce_and_commit(out, self._consumer, offsets)
            except FencedError:
                raise
            except RecordRefused as exc:
                metrics.TRANSACTIONS.labels(outcome="aborted").inc()
                culprits = self._culprits(exc, owner, segment)
                if culprits is None:
                    # str(exc), not exc: a log record keeps its arguments, and the error's
                    # traceback would keep the Kafka client alive.
                    log.warning("routing transaction aborted, re-reading the batch: %s", str(exc))
                    self._rewind(offsets)
                    return done
                isolating = True
                first, named, refusal = culprits
                if len(segment) == 1:
                    segments.insert(0, [self._demote(segment[0], refusal)])
                elif first > 0:  # what comes before the first one named is not at fault
                    segments[:0] = [segment[:first], segment[first:]]
                elif named == 1:
                    segments[:0] = [segment[:1], segment[1:]]
                else:  # a broker names a whole batch: halve until one is refused alone
                    half = len(segment) // 2
                    segments[:0] = [segment[:half], segment[half:]]
                continue
            except LogError as exc:  # aborted, or refused (e.g. a destination topic just deleted)
                metrics.TRANSACTIONS.labels(outcome="aborted").inc()
                if isolating and retries:
                    # The transaction after an aborted refusal can fail once on the client's
                    # state (librdkafka: "skipped sequence numbers", "Erroneous state"):
                    # starting the batch over would meet the refusal again, forever.
                    retries -= 1
                    log.warning("routing transaction aborted, trying it again: %s", str(exc))
                    segments.insert(0, segment)
                    continue
                log.warning("routing transaction aborted, re-reading the batch: %s", str(exc))
                self._rewind(offsets)
                if isinstance(exc, LogFull):
                    # Room returns only when someone frees it: trying again at once would
                    # spin and log hundreds of lines a second.
                    time.sleep(_REWIND_RETRY_S)
                return done
            retries = _RETRIES_WHILE_ISOLATING
            metrics.TRANSACTION_SECONDS.observe(time.perf_counter() - started)
            metrics.TRANSACTIONS.labels(outcome="committed").inc()
            self._account(segment)
            done += len(segment)
        self._suspect_refusals.clear()
        return done

    def _culprits(
        self, exc: RecordRefused, owner: list[int], segment: list[_Entry]
    ) -> tuple[int, int, Refusal] | None:
        """Which entries of ``segment`` ``exc`` names: the first one, how many, and the first
        one's refusal. None to retry the segment as it is (a refusal that may pass, not yet
        seen often enough)."""
        first_of: dict[int, Refusal] = {}
        for r in exc.refusals:
            if 0 <= r.index < len(owner):
                first_of.setdefault(owner[r.index], r)
        permanent = sorted((i, r) for i, r in first_of.items() if r.permanent)
        if permanent:
            return permanent[0][0], len(permanent), permanent[0][1]
        # Not known to be permanent: retried, but never forever; a record refused a few
        # times is treated as refused for good.
        due = []
        for i, r in sorted(first_of.items()):
            rec = segment[i].record
            key = (rec.tp, rec.offset)
            self._suspect_refusals[key] = self._suspect_refusals.get(key, 0) + 1
            if self._suspect_refusals[key] >= MAX_REFUSALS:
                due.append((i, r))
        return (due[0][0], len(due), due[0][1]) if due else None

    def _demote(self, entry: _Entry, refusal: Refusal) -> _Entry:
        """``entry``, refused alone, one level down: its dead letter, then its dead letter
        without body. Raises :class:`LogError` when even that was refused."""
        rec = entry.record
        where = f"{rec.topic}[{rec.partition}]@{rec.offset}"
        if entry.level >= 2:
            raise LogError(
                f"router: the dead letter of {where} was refused even without its body "
                f"({refusal.reason}: {refusal.detail}); check the {topics.DEAD_LETTERS} topic"
            )
        level = entry.level + 1
        detail = f"the log refused the record: {refusal.detail}"
        letter = dead_letter(
            rec,
            stage="router",
            reason=refusal.reason,
            detail=detail,
            max_bytes=self._max_record_bytes,
            keep_value=level == 1,
        )
        log.warning("record %s refused by the log (%s); dead-lettering it", where, refusal.reason)
        return _Entry(rec, Routed((letter,), dead_letter_reason=refusal.reason), level)

    def _account(self, segment: list[_Entry]) -> None:
        routed = 0
        filtered: dict[str, int] = {}
        dead: dict[str, int] = {}
        for entry in segment:
            result, record = entry.routed, entry.record
            if result.dead_letter_reason is not None:
                reason = result.dead_letter_reason
                dead[reason] = dead.get(reason, 0) + 1
                log.warning(
                    "dead-lettered %s[%d]@%d: %s",
                    record.topic,
                    record.partition,
                    record.offset,
                    reason,
                )
            elif result.out:
                routed += len(result.out)
            elif result.decision is not None:
                filtered[result.decision.value] = filtered.get(result.decision.value, 0) + 1
        metrics.EVENTS_CONSUMED.inc(len(segment))
        metrics.EVENTS_ROUTED.inc(routed)
        for reason, n in filtered.items():
            metrics.EVENTS_FILTERED.labels(reason=reason).inc(n)
        for reason, n in dead.items():
            metrics.EVENTS_DEAD_LETTERED.labels(reason=reason).inc(n)
        self.consumed += len(segment)

    def _settings_unread(self, exc: LogError) -> None:
        """Raise ``exc`` once the settings have been unreadable for
        :data:`SETTINGS_UNREADABLE_LIMIT_S` in a row: a router that retries for ever routes
        nothing; ending it lets its supervisor start one with fresh clients."""
        now = time.monotonic()
        if self._settings_failing_since is None:
            self._settings_failing_since = now
        elif now - self._settings_failing_since > SETTINGS_UNREADABLE_LIMIT_S:
            raise LogError(
                f"the settings topic could not be read for {SETTINGS_UNREADABLE_LIMIT_S:g} s: {exc}"
            ) from exc

    def _settle_on_new_partitions(self) -> None:
        # A partition taken over from another router may hold accounts whose changes' audit
        # events that router already routed (before the committed offsets): such a revision
        # would wait here for ever. Its commit's metadata says which pending revisions it had
        # not applied yet; the others apply now. The first assignment is this router's start:
        # the changes written after the commits it starts from are held back to their audit
        # events (ADR 017: the restart and rebalance window).
        owned = self._consumer.assignment()
        if self._owned is None:
            if owned:
                self._owned = owned
                self._start_from_commits(owned)
            return
        new = owned - self._owned
        if new:
            commits = self._commits(new)
            if commits is None:
                self.settings.settle_all()
            else:
                self.settings.keep_pending(commits)
        self._owned = owned

    def _start_from_commits(self, owned: set[TopicPartition]) -> None:
        commits = self._commits(owned)
        if commits is None:
            return  # every change read at the start applies at once, as before
        self.settings.keep_pending(commits)
        held = self.settings.hold_back(commits)
        if held:
            log.info(
                "%d account(s) keep the settings in force at the committed offsets until "
                "their change's audit event: %s",
                len(held),
                ", ".join(repr(a[:64]) for a in held[:5]),
            )

    def _commits(self, partitions: set[TopicPartition]) -> list[CommitMetadata] | None:
        """The metadata of the commits of ``partitions`` (those never committed have none),
        or None when one cannot be used (not written by this version, or unreadable): then
        the settings cannot be put back as they were at it."""
        self._beat("reading the committed offsets' metadata")
        try:
            texts = self._consumer.committed_metadata(partitions)
        except LogError as exc:
            log.warning("committed offsets' metadata not read: %s", str(exc))
            metrics.SETTINGS_APPLIED_AT_ONCE.labels(reason="metadata_unreadable").inc()
            return None
        commits = []
        for tp, text in sorted(texts.items(), key=lambda kv: (kv[0].topic, kv[0].partition)):
            commit = commit_metadata.decode(text)
            if commit is None:
                metrics.SETTINGS_APPLIED_AT_ONCE.labels(reason="metadata_unreadable").inc()
                log.warning(
                    "the commit of %s[%d] carries no settings metadata this version reads "
                    "(%d chars); changes read now apply at once",
                    tp.topic,
                    tp.partition,
                    len(text),
                )
                return None
            commits.append(commit)
        return commits

    def _rewind(self, offsets: dict[TopicPartition, int]) -> None:
        self._beat("rewinding to the committed offsets")
        if not self._try_rewind(offsets.keys()):
            # Retried at the start of the next steps: polling on would skip the batch.
            self._rewind_pending = set(offsets)

    def _try_rewind(self, partitions: Iterable[TopicPartition]) -> bool:
        parts = list(partitions)
        try:
            committed = self._consumer.committed(parts)
            for tp in parts:
                self._consumer.seek(tp, committed.get(tp, 0))
        except FencedError:
            raise
        except LogError as exc:
            log.warning("cannot rewind to the committed offsets yet: %s", str(exc))
            return False
        self._rewind_pending = None
        return True

    def _beat(self, phase: str) -> None:
        if self._watchdog is not None:
            self._watchdog.beat(phase)

    def lag(self) -> int:
        """Activity records not yet routed (end offsets minus committed offsets)."""
        ends = self._log.end_offsets(topics.ACTIVITY)
        committed = self._consumer.committed(ends.keys())
        return sum(max(0, end - committed.get(tp, 0)) for tp, end in ends.items())

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.step()
        self._beat("stopping")

    def close(self) -> None:
        self._consumer.close()
        self._producer.close()
        self._reporter.close()
        self.settings.close()
