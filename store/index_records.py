"""What the indexer does with each record of the activity topic (pure): store its event,
dead-letter it, or leave it to the router.

The router already dead-letters a record without a key, without category/activity headers, of
an unknown activity or schema, or too large to copy (``pipeline.routing``); the indexer counts
such a record and stores nothing, so the dead-letter topic holds it once and its replay reaches
both. What only the indexer finds -- a body that does not decode behind a valid header, an event
whose account is not its key -- it dead-letters itself, the router's way, as stage ``indexer``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from auditstream.pipeline.dead_letters import dead_letter
from auditstream.pipeline.log import OutgoingRecord, Record
from auditstream.pipeline.routing import route
from auditstream.schemas import codec
from auditstream.schemas.errors import CodecError

STAGE = "indexer"


@dataclass
class Sorted:
    events: list[tuple[Record, dict[str, Any]]] = field(default_factory=list)
    dead_letters: list[tuple[OutgoingRecord, str]] = field(default_factory=list)  # and reason
    left_to_router: list[str] = field(default_factory=list)  # the router's reasons


def sort_records(records: Sequence[Record]) -> Sorted:
    out = Sorted()
    for record in records:
        routed = route(record, lambda _account: None)
        if routed.dead_letter_reason is not None:
            out.left_to_router.append(routed.dead_letter_reason)
            continue
        try:
            event = codec.decode(record.value)
        except CodecError as exc:
            out.dead_letters.append(_letter(record, exc.reason, str(exc)))
            continue
        key = (record.key or b"").decode(errors="replace")
        if event.get("account_id") != key:
            detail = (
                f"the event's account_id {str(event.get('account_id'))[:100]!r} is not the "
                f"record's key {key[:100]!r}; producers key events by account id"
            )
            out.dead_letters.append(_letter(record, "account_mismatch", detail))
            continue
        out.events.append((record, event))
    return out


def _letter(record: Record, reason: str, detail: str) -> tuple[OutgoingRecord, str]:
    return dead_letter(record, stage=STAGE, reason=reason, detail=detail), reason
