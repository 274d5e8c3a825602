"""What the indexer does with each record of the activity topic (pure): store its event,
dead-letter it, or leave it to the router.

Every record whose body decodes to an event of its key's account is stored, whether or not the
router can route it (a record too large to copy, or of an activity missing from the catalog, is
still an event that happened). A record that is not such an event is dead-lettered once: by the
router when the router dead-letters it too (no key, an unknown schema, ...: the indexer counts
it and its replay reaches both), otherwise by the indexer, the router's way, as stage
``indexer`` (a body that does not decode behind a valid header, an account that is not the key).
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


def _problem(record: Record) -> tuple[dict[str, Any] | None, str, str]:
    """The event of ``record``, or ``None`` with a reason code and a sentence."""
    try:
        event = codec.decode(record.value)
    except CodecError as exc:
        return None, exc.reason, str(exc)
    key = (record.key or b"").decode(errors="replace")
    if event.get("account_id") != key:
        detail = (
            f"the event's account_id {str(event.get('account_id'))[:100]!r} is not the "
            f"record's key {key[:100]!r}; producers key events by account id"
        )
        return None, "account_mismatch", detail
    return event, "", ""


def sort_records(records: Sequence[Record]) -> Sorted:
    out = Sorted()
    for record in records:
        event, reason, detail = _problem(record)
        if event is not None:
            out.events.append((record, event))
            continue
        router_reason = route(record, lambda _account: None).dead_letter_reason
        if router_reason is not None:
            out.left_to_router.append(router_reason)
        else:
            letter = dead_letter(record, stage=STAGE, reason=reason, detail=detail)
            out.dead_letters.append((letter, reason))
    return out
