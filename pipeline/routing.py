"""Routing decisions for one activity record (pure): dead-letter, filter, or copies.

The router reads only the key (account), the headers (category, activity) and the 10-byte
single-object header (a known schema fingerprint); the body is forwarded untouched.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from auditstream.config.stream import AccountSettings
from auditstream.pipeline import topics
from auditstream.pipeline.dead_letters import dead_letter
from auditstream.pipeline.inclusion import Decision, decide
from auditstream.pipeline.log import OutgoingRecord, Record
from auditstream.pipeline.record_limits import MAX_RECORD_BYTES, record_size
from auditstream.schemas import catalog, codec
from auditstream.schemas.errors import CodecError


@dataclass(frozen=True, slots=True)
class Routed:
    """What to do with one record: ``out`` are the records to produce (destination copies or
    one dead letter); ``decision`` says why; ``dead_letter_reason`` is set for dead letters."""

    out: tuple[OutgoingRecord, ...]
    decision: Decision | None = None
    dead_letter_reason: str | None = None


# A change of the stream settings is announced to the destinations that streamed before it as
# well as to those that stream after it: a SIEM sees its stream being switched off.
SETTINGS_ACTIVITIES = frozenset(
    {
        "audit_log_streaming",
        "audit_log_streaming_data_inclusion",
        "audit_log_streaming_destination_updated",
    }
)


def route(
    record: Record,
    settings_of: Callable[[str], AccountSettings | None],
    previous_of: Callable[[str], AccountSettings | None] | None = None,
    *,
    max_record_bytes: int = MAX_RECORD_BYTES,
) -> Routed:
    """Route ``record``; ``settings_of`` looks up an account's settings, ``previous_of`` its
    settings before the latest change (used for the settings activities only). A record
    whose copy would exceed ``max_record_bytes`` is dead-lettered (``too_large``)."""

    def dlq(reason: str, detail: str) -> Routed:
        letter = dead_letter(
            record, stage="router", reason=reason, detail=detail, max_bytes=max_record_bytes
        )
        return Routed((letter,), dead_letter_reason=reason)

    # A copy has the same key, value and headers: if the record is over the limit, so is
    # every copy, and producing one would fail the whole routing transaction.
    size = record_size(record.key, record.value, record.headers)
    if size > max_record_bytes:
        return dlq(
            "too_large",
            f"record is {size} bytes, over the {max_record_bytes} byte limit of a copy",
        )
    if not record.key:
        return dlq("missing_key", "record has no key; producers key events by account id")
    category_b, activity_b = record.header("category"), record.header("activity")
    if category_b is None or activity_b is None:
        return dlq("missing_header", "record lacks the category/activity headers")
    try:
        category, activity = category_b.decode(), activity_b.decode()
        account_id = record.key.decode()
    except UnicodeDecodeError:
        return dlq("malformed_header", "key or headers are not UTF-8")
    if not catalog.is_known(category, activity):
        return dlq("unknown_activity", f"{category}/{activity} is not in the activity catalog")
    try:
        codec.writer_of(record.value)
    except CodecError as exc:
        return dlq(exc.reason, str(exc))

    settings = settings_of(account_id)
    decision = decide(settings, category, activity)
    targets: list[str] = []
    if decision is Decision.INCLUDED and settings is not None:
        targets = [d.id for d in settings.destinations if d.enabled and not d.deleting]
    if activity in SETTINGS_ACTIVITIES and previous_of is not None and settings is not None:
        before = previous_of(account_id)
        if decide(before, category, activity) is Decision.INCLUDED and before is not None:
            live = {d.id for d in settings.destinations if d.enabled and not d.deleting}
            targets += [d.id for d in before.destinations if d.id in live and d.id not in targets]
            if targets:
                decision = Decision.INCLUDED
    if not targets:
        return Routed((), decision=decision)
    copies = tuple(
        OutgoingRecord(
            topic=topics.destination_topic(dest_id),
            value=record.value,
            key=record.key,
            headers=record.headers,
        )
        for dest_id in targets
    )
    return Routed(copies, decision=decision)
