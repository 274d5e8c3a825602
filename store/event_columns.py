"""The columns an event is filtered by, read from a decoded ``ActivityEvent`` (pure).

Both backends store the same values: the actor's e-mail lowercased (it matches whatever case a
reader types), timestamps as microseconds since the epoch, the canonical bytes and free text.
An event that lacks an indexed field is refused with the field's name, before anything is
stored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from auditstream.store.canonical import canonical_bytes
from auditstream.store.errors import InvalidEvent
from auditstream.store.query import micros
from auditstream.store.text_search import event_text


@dataclass(frozen=True, slots=True)
class EventColumns:
    account_id: str
    event_id: str
    occurred_at_us: int
    category: str
    activity: str
    actor_user_id: str
    actor_email: str | None
    resource_type: str | None
    resource_id: str | None
    outcome: str
    ip: str | None
    canonical: bytes
    text: str


def _text(
    value: object, where: str, index: int, *, optional: bool = False, key: bool = False
) -> str | None:
    """``value`` as text; ``key``: a part of the event's identity, never empty."""
    if value is None and optional:
        return None
    if not isinstance(value, str) or (key and not value):
        what = "a non-empty string" if key else "a string"
        raise InvalidEvent(f"event {index}: {where} must be {what}, got {type(value).__name__}")
    return value


def _mapping(event: Mapping[str, Any], key: str, index: int) -> Mapping[str, Any]:
    value = event.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidEvent(f"event {index}: {key} must be a record, got {type(value).__name__}")
    return value


def _with_times(event: Mapping[str, Any], index: int) -> dict[str, Any]:
    """``event`` with its timestamps as datetimes (JSON values carry ISO-8601 text), so an event
    gives the same canonical bytes in either form."""
    out = dict(event)
    for key in ("occurred_at", "recorded_at"):
        value = out.get(key)
        if isinstance(value, str):
            try:
                out[key] = datetime.fromisoformat(value)
            except ValueError:
                raise InvalidEvent(f"event {index}: {key} is not an ISO-8601 time") from None
        elif not isinstance(value, datetime):
            got = type(value).__name__
            raise InvalidEvent(f"event {index}: {key} must be a time, got {got}")
    return out


def columns_of(event: Mapping[str, Any], index: int = 0) -> EventColumns:
    """The indexed columns of ``event`` (the ``index``-th of a batch, named in errors).
    Raises ``InvalidEvent`` when a field the store needs is missing or mistyped."""
    if not isinstance(event, Mapping):
        raise InvalidEvent(f"event {index}: must be a record, got {type(event).__name__}")
    event = _with_times(event, index)
    actor = _mapping(event, "actor", index)
    resource = _mapping(event, "resource", index)
    outcome = _mapping(event, "outcome", index)
    request = _mapping(event, "request", index)
    raw_id = event.get("event_id")
    event_id = _text(None if raw_id is None else str(raw_id), "event_id", index, key=True)
    email = _text(actor.get("email"), "actor.email", index, optional=True)
    try:
        canonical = canonical_bytes(event)
    except TypeError as exc:
        raise InvalidEvent(f"event {index}: a value is not JSON ({exc})") from None
    return EventColumns(
        account_id=_text(event.get("account_id"), "account_id", index, key=True) or "",
        event_id=event_id or "",
        occurred_at_us=micros(event["occurred_at"]),
        category=_text(event.get("category"), "category", index) or "",
        activity=_text(event.get("activity"), "activity", index) or "",
        actor_user_id=_text(actor.get("user_id"), "actor.user_id", index) or "",
        actor_email=email.lower() if email else None,
        resource_type=_text(resource.get("type"), "resource.type", index, optional=True),
        resource_id=_text(resource.get("id"), "resource.id", index, optional=True),
        outcome=_text(outcome.get("status"), "outcome.status", index) or "",
        ip=_text(request.get("ip"), "request.ip", index, optional=True),
        canonical=canonical,
        text=event_text(event),
    )
