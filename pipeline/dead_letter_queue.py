"""The dead-letter topic for operators: read it, filter it, show a record safely, replay.

A dead letter (``pipeline.dead_letters``) carries the original value, key and headers plus the
``dlq.*`` headers saying why and where from. Everything shown here is escaped: values and
headers come from producers nobody vetted, so bytes that are not printable text (terminal
escape sequences, bidirectional overrides, NULs) never reach a terminal raw.

A replay sends a dead letter back to the activity topic, and only there: the router checks it
again like any new event and routes it to the destinations the account's settings include at
that time. A sink-stage dead letter is re-routed too, never written to its destination topic
behind the router's back; one whose event decodes failed for that destination only (the
others have it), so it is refused unless forced. A replayed record carries ``replayed.from``
(the DLQ position it came from) and ``replayed.count``; these headers are not in the ``dlq.``
namespace, so a record that fails again keeps them in its new dead letter, and a record
replayed ``max_replays`` times is refused unless forced: nothing loops silently. The replayed
records and one record describing the replay (who, when, which positions) on
:data:`REPLAYS_TOPIC` are stored in one transaction (docs/adr/014-dead-letter-replay.md).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from auditstream.errors import AuditstreamError
from auditstream.pipeline import dead_letters, topics
from auditstream.pipeline.errors import LogError
from auditstream.pipeline.log import (
    Consumer,
    Headers,
    Log,
    OutgoingRecord,
    Record,
    TopicPartition,
)
from auditstream.schemas import codec
from auditstream.schemas.errors import CodecError

REPLAYS_TOPIC = "auditstream.dlq.replays"
"""Plain (not compacted) topic: one JSON record per replay, kept like any audit trail."""

REPLAY_TARGET = topics.ACTIVITY
"""The only topic a replay writes dead letters to."""

REPLAYED_FROM = "replayed.from"
"""Header of a replayed record: the DLQ position (``partition:offset``) it was replayed from."""

REPLAYED_COUNT = "replayed.count"
"""Header of a replayed record: how many times it has been replayed, this time included."""

CUT_HEADERS = {
    dead_letters.VALUE_SIZE: "value",
    dead_letters.KEY_SIZE: "key",
    dead_letters.HEADERS_DROPPED: "headers",
}
"""Headers ``pipeline.dead_letters`` sets when it kept only part of an original too large to
keep whole (the value's or key's full size, how many headers were dropped), and the part."""

DEFAULT_MAX_REPLAYS = 3
PREVIEW_BYTES = 32

_STALL_S = 30.0
_POLL_RECORDS = 500
_POLL_S = 0.5


class ReplayRefused(AuditstreamError):
    """A dead letter that must not be replayed as asked (the message says why)."""


# -- positions ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, order=True)
class Position:
    """Where a dead letter is in the dead-letter topic."""

    partition: int
    offset: int

    def __str__(self) -> str:
        return f"{self.partition}:{self.offset}"


def parse_position(text: str) -> Position:
    """``PARTITION:OFFSET`` or ``OFFSET`` (partition 0). Raises ``ValueError``."""
    part, sep, off = text.strip().rpartition(":")
    try:
        position = Position(int(part) if sep else 0, int(off))
    except ValueError:
        raise ValueError(f"{text!r} is not a DLQ position (PARTITION:OFFSET or OFFSET)") from None
    if position.partition < 0 or position.offset < 0:
        raise ValueError(f"{text!r}: partition and offset are never negative")
    return position


# -- safe text ---------------------------------------------------------------------------------


def escape_bytes(data: bytes, limit: int | None = None) -> str:
    """``data`` as printable ASCII: printable characters as they are (``\\`` doubled), ``\\n``,
    ``\\r``, ``\\t``, everything else ``\\xNN``; cut after ``limit`` bytes with ``...``."""
    shown = data if limit is None else data[:limit]
    out: list[str] = []
    for b in shown:
        if b == 0x5C:
            out.append("\\\\")
        elif 0x20 <= b < 0x7F:
            out.append(chr(b))
        elif b == 0x0A:
            out.append("\\n")
        elif b == 0x0D:
            out.append("\\r")
        elif b == 0x09:
            out.append("\\t")
        else:
            out.append(f"\\x{b:02x}")
    if limit is not None and len(data) > limit:
        out.append("...")
    return "".join(out)


def safe_text(text: str, limit: int | None = None) -> str:
    """``text`` with every character that is not printable (controls, escape sequences,
    bidirectional and other format characters, separators) escaped as ``\\xNN``/``\\uNNNN``;
    cut after ``limit`` characters with ``...``."""
    shown = text if limit is None else text[:limit]
    out: list[str] = []
    for ch in shown:
        if ch == "\\":
            out.append("\\\\")
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x100:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    if limit is not None and len(text) > limit:
        out.append("...")
    return "".join(out)


def header_text(value: bytes | None, limit: int | None = None) -> str | None:
    """A header value for display: UTF-8 text escaped by :func:`safe_text`, other bytes by
    :func:`escape_bytes`; None stays None."""
    if value is None:
        return None
    try:
        return safe_text(value.decode("utf-8"), limit)
    except UnicodeDecodeError:
        return escape_bytes(value, limit)


def hex_dump(data: bytes, limit: int) -> list[str]:
    """The first ``limit`` bytes of ``data`` as ``offset  hex  |ascii|`` lines of 16 bytes."""
    lines: list[str] = []
    shown = data[: max(0, limit)]
    for start in range(0, len(shown), 16):
        chunk = shown[start : start + 16]
        hexed = " ".join(f"{b:02x}" for b in chunk)
        text = "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in chunk)
        lines.append(f"{start:08x}  {hexed:<47}  |{text}|")
    if len(data) > len(shown):
        lines.append(f"... {len(data) - len(shown)} more bytes")
    return lines


# -- dead letters ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One record of the dead-letter topic, with its ``dlq.*`` headers read."""

    record: Record

    @property
    def position(self) -> Position:
        return Position(self.record.partition, self.record.offset)

    def _text(self, name: str) -> str | None:
        return header_text(self.record.header(name))

    @property
    def reason(self) -> str:
        return self._text(dead_letters.REASON) or "unknown"

    @property
    def detail(self) -> str:
        return self._text(dead_letters.DETAIL) or ""

    @property
    def stage(self) -> str:
        return self._text(dead_letters.STAGE) or "unknown"

    @property
    def source(self) -> str:
        """``topic@partition:offset`` of the record that was dead-lettered."""
        topic = self._text(dead_letters.SOURCE_TOPIC) or "?"
        partition = self._text(dead_letters.SOURCE_PARTITION) or "?"
        offset = self._text(dead_letters.SOURCE_OFFSET) or "?"
        return f"{topic}@{partition}:{offset}"

    @property
    def source_topic(self) -> str | None:
        raw = self.record.header(dead_letters.SOURCE_TOPIC)
        return None if raw is None else raw.decode("utf-8", errors="replace")

    @property
    def account(self) -> str | None:
        """The account id: producers key every event by it. None when there is no key; a key
        that is not UTF-8 is shown escaped."""
        key = self.record.key
        if not key:
            return None
        return header_text(key)

    @property
    def replay_count(self) -> int:
        """How many times this record was replayed before it failed again (0: never). A
        header that is not a number counts as too many."""
        raw = self.record.header(REPLAYED_COUNT)
        if raw is None:
            return 0
        try:
            count = int(raw.decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            return 1 << 30
        return max(count, 0)

    @property
    def replayed_from(self) -> str | None:
        return self._text(REPLAYED_FROM)

    @property
    def cut(self) -> tuple[str, ...]:
        """The parts of the original this dead letter does not hold whole (``value``,
        ``key``, ``headers``): such a record is replayed only with a fixed value."""
        return tuple(part for name, part in CUT_HEADERS.items() if self.record.header(name))

    @property
    def size(self) -> int:
        """The size of the original value (more than the stored one when it was cut)."""
        raw = self.record.header(dead_letters.VALUE_SIZE)
        try:
            return int(raw.decode("ascii")) if raw else len(self.record.value)
        except (UnicodeDecodeError, ValueError):
            return len(self.record.value)

    @property
    def time(self) -> str:
        return iso_time(self.record.timestamp_ms)


def iso_time(timestamp_ms: int) -> str:
    return (
        datetime.fromtimestamp(timestamp_ms / 1000, UTC)
        .isoformat(timespec="seconds")
        .replace("+00:00", "Z")
    )


@dataclass(frozen=True, slots=True)
class Selection:
    """Which dead letters a command acts on; empty fields select everything."""

    positions: frozenset[Position] = frozenset()
    reasons: frozenset[str] = frozenset()
    accounts: frozenset[str] = frozenset()
    stages: frozenset[str] = frozenset()
    since_ms: int | None = None
    until_ms: int | None = None
    min_offset: int | None = None
    max_offset: int | None = None

    def matches(self, dl: DeadLetter) -> bool:
        r = dl.record
        return (
            (not self.positions or dl.position in self.positions)
            and (not self.reasons or dl.reason in self.reasons)
            and (not self.accounts or dl.account in self.accounts)
            and (not self.stages or dl.stage in self.stages)
            and (self.since_ms is None or r.timestamp_ms >= self.since_ms)
            and (self.until_ms is None or r.timestamp_ms < self.until_ms)
            and (self.min_offset is None or r.offset >= self.min_offset)
            and (self.max_offset is None or r.offset <= self.max_offset)
        )

    @property
    def narrowed(self) -> bool:
        """True when anything narrows the selection (a replay of everything is refused
        unless asked for)."""
        return self != Selection()


def listing_row(dl: DeadLetter, preview: int = PREVIEW_BYTES) -> dict[str, Any]:
    """One line of ``dlq list`` as a dict (also its ``--json`` form); every string is safe
    to print."""
    return {
        "dlq": str(dl.position),
        "time": dl.time,
        "stage": dl.stage,
        "reason": dl.reason,
        "account": dl.account,
        "source": dl.source,
        "size": dl.size,
        "cut": list(dl.cut),
        "first_bytes": escape_bytes(dl.record.value, preview),
        "replays": dl.replay_count,
    }


def json_value(value: Any) -> Any:
    """``value`` (a decoded event) with datetimes, UUIDs and bytes as JSON-able strings."""
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_value(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return escape_bytes(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def details(dl: DeadLetter, dump_bytes: int = 256) -> dict[str, Any]:
    """Everything ``dlq show`` prints: the listing fields, every header (escaped), the
    detail, a hex dump of the first ``dump_bytes`` bytes, and the decoded event or why it
    does not decode."""
    out = listing_row(dl)
    out["detail"] = dl.detail
    out["replayed_from"] = dl.replayed_from
    out["key"] = None if dl.record.key is None else escape_bytes(dl.record.key, 200)
    out["headers"] = [[safe_text(k, 200), header_text(v, 1000)] for k, v in dl.record.headers]
    out["hex"] = hex_dump(dl.record.value, dump_bytes)
    try:
        out["event"] = json_value(codec.decode(dl.record.value))
        out["decode_error"] = None
    except CodecError as exc:
        out["event"] = None
        out["decode_error"] = safe_text(str(exc), 500)
    return out


# -- replay ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Fix:
    """A corrected record to send instead of a dead letter's value: a valid encoded event with
    the key and ``category``/``activity`` headers it needs (built by the command from a file)."""

    value: bytes
    key: bytes
    headers: Headers


_REPLACED_BY_FIX = frozenset({"category", "activity"})


def replay_record(
    dl: DeadLetter,
    fix: Fix | None = None,
    *,
    max_replays: int = DEFAULT_MAX_REPLAYS,
    force: bool = False,
) -> OutgoingRecord:
    """The record that replays ``dl`` to the activity topic: its original value (or
    ``fix``'s), key and headers without the ``dlq.*`` and ``replayed.*`` ones, plus
    ``replayed.from`` and ``replayed.count``. Raises :class:`ReplayRefused` when ``dl`` was
    already replayed ``max_replays`` times, or is a sink-stage dead letter whose event
    decodes (one destination could not take it, e.g. ``render_failed``: the others have it),
    unless ``force``; or holds only part of the original and there is no ``fix`` (even with
    ``force``: a prefix is not the event)."""
    if dl.replay_count >= max_replays and not force:
        raise ReplayRefused(
            f"{dl.position} was replayed {dl.replay_count} times already and failed again "
            f"(last from {dl.replayed_from}); fix it or pass --force"
        )
    if dl.cut and fix is None:
        raise ReplayRefused(
            f"{dl.position} holds only part of the original ({', '.join(dl.cut)} cut: the "
            f"value was {dl.size} bytes, {len(dl.record.value)} kept); replay it with a fixed "
            "value (--value-file)"
        )
    if dl.stage == "sink" and not force and _decodes(dl.record.value):
        raise ReplayRefused(
            f"{dl.position} was dead-lettered by the sink of {dl.source_topic} only "
            f"({dl.reason}): its event decodes, so the account's other destinations have it, "
            "and a replay through the activity topic would deliver it to them again; fix the "
            "destination and replay it there (`destinations replay`), or pass --force"
        )
    dropped = {REPLAYED_FROM, REPLAYED_COUNT} | (_REPLACED_BY_FIX if fix else set())
    kept = tuple(
        (k, v) for k, v in dl.record.headers if not k.startswith("dlq.") and k not in dropped
    )
    if fix is not None:
        kept = (*fix.headers, *kept)
    headers = (
        *kept,
        (REPLAYED_FROM, str(dl.position).encode()),
        (REPLAYED_COUNT, str(min(dl.replay_count, 1 << 20) + 1).encode()),
    )
    return OutgoingRecord(
        topic=REPLAY_TARGET,
        value=dl.record.value if fix is None else fix.value,
        key=dl.record.key if fix is None else fix.key,
        headers=headers,
    )


@dataclass(slots=True)
class ReplayPlan:
    """What a replay sends (``sends``: the dead letter and its record) and refuses."""

    sends: list[tuple[DeadLetter, OutgoingRecord]] = field(default_factory=list)
    refused: list[tuple[DeadLetter, str]] = field(default_factory=list)
    fixed: set[Position] = field(default_factory=set)


def plan_replay(
    selected: Iterable[DeadLetter],
    fixes: Mapping[Position, Fix] | None = None,
    *,
    max_replays: int = DEFAULT_MAX_REPLAYS,
    force: bool = False,
) -> ReplayPlan:
    """The replay of ``selected``. A sink stage dead-letters one copy of an event per
    destination that could not take it: unfixed copies of the same event (same key, value and
    source partition of the activity topic unknown) are replayed once, the router copies it
    to every destination again."""
    fixes = fixes or {}
    plan = ReplayPlan()
    seen_sink: dict[bytes, Position] = {}
    for dl in sorted(selected, key=lambda d: d.position):
        fix = fixes.get(dl.position)
        if dl.stage == "sink" and fix is None:
            digest = _digest(dl.record.key, dl.record.value)
            first = seen_sink.get(digest)
            if first is not None:
                plan.refused.append(
                    (dl, f"the same event as {first} (dead-lettered by another destination)")
                )
                continue
            seen_sink[digest] = dl.position
        try:
            record = replay_record(dl, fix, max_replays=max_replays, force=force)
        except ReplayRefused as exc:
            plan.refused.append((dl, str(exc)))
            continue
        plan.sends.append((dl, record))
        if fix is not None:
            plan.fixed.add(dl.position)
    return plan


def _decodes(value: bytes) -> bool:
    try:
        codec.decode(value)
    except CodecError:
        return False
    return True


def _digest(key: bytes | None, value: bytes) -> bytes:
    h = hashlib.sha256()
    h.update(len(key or b"").to_bytes(8, "big"))
    h.update(key or b"")
    h.update(value)
    return h.digest()


def replay_audit_record(
    plan: ReplayPlan, *, actor: str, now: datetime, replay_id: str
) -> OutgoingRecord:
    """The record on :data:`REPLAYS_TOPIC` that says who replayed which dead letters when."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    doc = {
        "replay_id": replay_id,
        "actor": actor,
        "at": now.isoformat(),
        "target_topic": REPLAY_TARGET,
        "records": [
            {
                "dlq": str(dl.position),
                "stage": dl.stage,
                "reason": dl.reason,
                "account": dl.account,
                "source": dl.source,
                "fixed": dl.position in plan.fixed,
                "replay_count": dl.replay_count + 1,
                "value_sha256": hashlib.sha256(record.value).hexdigest(),
            }
            for dl, record in plan.sends
        ],
        "refused": [{"dlq": str(dl.position), "why": why} for dl, why in plan.refused],
    }
    return OutgoingRecord(
        topic=REPLAYS_TOPIC,
        value=json.dumps(doc, sort_keys=True).encode(),
        key=replay_id.encode(),
        headers=(("actor", actor.encode("utf-8", "replace")),),
    )


def send_replay(log_backend: Log, plan: ReplayPlan, audit: OutgoingRecord) -> None:
    """Store the plan's records on the activity topic and ``audit`` on :data:`REPLAYS_TOPIC`
    in one transaction: all of them or none. Raises :class:`LogError` (nothing stored)."""
    for _dl, record in plan.sends:
        if record.topic != REPLAY_TARGET:  # replay_record never builds one; refuse anyway
            raise ReplayRefused(f"a replay writes to {REPLAY_TARGET} only, not {record.topic}")
    if audit.topic != REPLAYS_TOPIC:
        raise ReplayRefused(f"a replay is recorded on {REPLAYS_TOPIC} only")
    log_backend.create_topic(REPLAYS_TOPIC)
    producer = log_backend.transactional_producer(f"auditstream-dlq-replay-{uuid.uuid4()}")
    try:
        producer.produce_atomically([*(r for _dl, r in plan.sends), audit])
    finally:
        producer.close()


# -- reading -----------------------------------------------------------------------------------

Progress = Callable[[int, int], None]
"""Called now and then with (records read, records in the topic when reading began)."""


def scan(
    log_backend: Log,
    *,
    start: Mapping[int, int] | None = None,
    progress: Progress | None = None,
    stall_timeout: float = _STALL_S,
) -> Iterator[DeadLetter]:
    """Every dead letter from ``start`` (partition → first offset; default the beginning) to
    the end offsets as they are when reading begins, in offset order per partition. Yields
    nothing when the topic does not exist. Raises :class:`LogError` if the log cannot be read
    or nothing comes for ``stall_timeout`` seconds while records remain."""
    topic = topics.DEAD_LETTERS
    if topic not in log_backend.list_topics():
        return
    ends = log_backend.end_offsets(topic)
    first = {tp: (start or {}).get(tp.partition, 0) for tp in ends}
    total = sum(max(0, ends[tp] - first[tp]) for tp in ends)
    pending = {tp for tp in ends if first[tp] < ends[tp]}
    if not pending:
        return
    reader = log_backend.reader(topic)
    try:
        for tp in pending:
            if first[tp] > 0:
                # Refused while not fetching yet (Kafka): read from the beginning, skip below.
                with contextlib.suppress(LogError):
                    reader.seek(tp, first[tp])
        read_to = dict(first)
        count = 0
        reported = 0
        last_progress = time.monotonic()
        while pending:
            records = reader.poll(_POLL_RECORDS, _POLL_S)
            for record in records:
                tp = record.tp
                if tp not in pending or record.offset < first[tp] or record.offset >= ends[tp]:
                    continue
                read_to[tp] = record.offset + 1
                count += 1
                yield DeadLetter(record)
            if records:
                last_progress = time.monotonic()
            if progress is not None and count - reported >= 10_000:
                reported = count
                progress(count, total)
            pending -= _finished(log_backend, reader, pending, read_to, ends, bool(records))
            if pending and time.monotonic() - last_progress > stall_timeout:
                raise LogError(
                    f"{topic}: nothing read for {stall_timeout:.0f} s with "
                    f"{sum(ends[tp] - read_to[tp] for tp in pending)} offsets left"
                )
        if progress is not None and count != reported:
            progress(count, total)
    finally:
        reader.close()


def _finished(
    log_backend: Log,
    reader: Consumer,
    pending: set[TopicPartition],
    read_to: Mapping[TopicPartition, int],
    ends: Mapping[TopicPartition, int],
    polled_any: bool,
) -> set[TopicPartition]:
    """The partitions of ``pending`` read to their end (see ``pipeline.compacted_view``)."""
    done: set[TopicPartition] = set()
    for tp in pending:
        position = reader.position(tp)
        if read_to[tp] >= ends[tp] or position >= ends[tp]:
            done.add(tp)  # past the last record and any marker after it
        elif not polled_any and position < 0 and log_backend.timestamp_at(tp, read_to[tp]) is None:
            done.add(tp)  # only transaction markers left
    return done


def select(
    log_backend: Log,
    selection: Selection,
    *,
    limit: int | None = None,
    progress: Progress | None = None,
) -> tuple[list[DeadLetter], int]:
    """The dead letters ``selection`` matches (the newest ``limit`` of them, in offset order)
    and how many were read. Starts at the earliest position it names, or at the first record
    at or after ``since_ms``."""
    start: dict[int, int] = {}
    if selection.positions:
        for p in selection.positions:
            start[p.partition] = min(start.get(p.partition, p.offset), p.offset)
        # Partitions no position names are skipped entirely.
        start.update(
            {
                tp.partition: 1 << 62
                for tp in _partitions(log_backend)
                if tp.partition not in {p.partition for p in selection.positions}
            }
        )
    elif selection.since_ms is not None:
        for tp in _partitions(log_backend):
            start[tp.partition] = log_backend.offset_for_time(tp, selection.since_ms)
    if selection.min_offset is not None:
        for tp in _partitions(log_backend):
            start[tp.partition] = max(start.get(tp.partition, 0), selection.min_offset)
    found: list[DeadLetter] = []
    read = 0
    for dl in scan(log_backend, start=start, progress=progress):
        read += 1
        if selection.matches(dl):
            found.append(dl)
            if limit is not None and len(found) > limit:
                del found[0]
    found.sort(key=lambda d: d.position)
    return found, read


def _partitions(log_backend: Log) -> Sequence[TopicPartition]:
    if topics.DEAD_LETTERS not in log_backend.list_topics():
        return ()
    return sorted(log_backend.end_offsets(topics.DEAD_LETTERS), key=lambda tp: tp.partition)


def end_offsets(log_backend: Log) -> dict[int, int]:
    """Partition → end offset of the dead-letter topic (empty when it does not exist)."""
    if topics.DEAD_LETTERS not in log_backend.list_topics():
        return {}
    return {tp.partition: end for tp, end in log_backend.end_offsets(topics.DEAD_LETTERS).items()}
