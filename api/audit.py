"""Audit events for changes to the streaming settings (pure).

Every settings change made through the API is itself an activity of the account, written in
the same transaction as the settings record:

- ``audit_log_streaming``: streaming enabled or disabled;
- ``audit_log_streaming_data_inclusion``: what is streamed changed (categories, activities,
  redaction);
- ``audit_log_streaming_destination_updated``: a destination was created, changed, paused,
  resumed, replayed, deleted or removed.

``changes`` lists each changed field as strings. Values that could carry credentials are never
written: secrets and webhook header values become ``[redacted]`` (so a rotation still shows),
and URLs keep only their scheme and host (a SIEM collector URL often carries its token).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, get_args
from urllib.parse import urlsplit

import orjson
from pydantic import BaseModel, SecretStr

from auditstream.config.destinations import Destination
from auditstream.config.fields import RoleKind, fields_with_role
from auditstream.config.stream import AccountSettings

STREAMING = "audit_log_streaming"
DATA_INCLUSION = "audit_log_streaming_data_inclusion"
DESTINATION_UPDATED = "audit_log_streaming_destination_updated"
CATEGORY = "account"

REDACTED = "[redacted]"
STREAM_RESOURCE = "audit_log_stream"
DESTINATION_RESOURCE = "audit_log_destination"

INCLUSION_FIELDS = ("include_categories", "include_activities", "exclude_activities", "redact")

IdFactory = Callable[[], str]


@dataclass(frozen=True, slots=True)
class Actor:
    user_id: str
    role: str | None
    auth_method: str = "api_key"


SYSTEM_ACTOR = Actor(user_id="auditstream", role=None, auth_method="system")


@dataclass(frozen=True, slots=True)
class RequestInfo:
    ip: str | None = None
    user_agent: str | None = None
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class Change:
    field: str
    old_value: str | None
    new_value: str | None


def _new_id() -> str:
    return str(uuid.uuid4())


def redact_url(url: str) -> str:
    """``scheme://host[:port]``, plus ``/[redacted]`` if the URL had a path or query."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port is not None else ""
    except ValueError:
        return REDACTED
    if not parts.scheme or not host:
        return REDACTED
    shown = f"{parts.scheme}://{host}{port}"
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        shown += "/" + REDACTED
    return shown


def render(field: str, value: Any, *, address: bool = False) -> str | None:
    """One value as the string a change shows; an ``address`` shows only its origin."""
    if value is None:
        return None
    if isinstance(value, SecretStr):
        return REDACTED
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str):
        return redact_url(value) if address else value
    if isinstance(value, int | float):
        return str(value)
    return orjson.dumps(value).decode()


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, BaseModel):
        for name in type(value).model_fields:
            _flatten(f"{prefix}{name}", getattr(value, name), out)
        return
    out[prefix] = value


def flatten_destination(destination: Destination) -> dict[str, Any]:
    """Field name (``batch.max_events``, ``headers.Authorization``) → value; header values
    are wrapped as secrets."""
    out: dict[str, Any] = {}
    for name in type(destination).model_fields:
        value = getattr(destination, name)
        if name == "headers":
            for header, header_value in sorted(value.items()):
                plain = (
                    header_value.get_secret_value()
                    if isinstance(header_value, SecretStr)
                    else header_value
                )
                out[f"headers.{header}"] = SecretStr(plain)
        elif isinstance(value, BaseModel):
            _flatten(f"{name}.", value, out)
        else:
            out[name] = value
    return out


def address_paths(model: type[BaseModel], prefix: str = "") -> set[str]:
    """Flattened names (``url``, ``batch.x``) of ``model``'s ``Address``-typed fields, nested
    models included: found by type, so a new address field is redacted without a list here."""
    out = {prefix + name for name in fields_with_role(model, RoleKind.ADDRESS)}
    for name, info in model.model_fields.items():
        for leaf in (info.annotation, *get_args(info.annotation)):
            if isinstance(leaf, type) and issubclass(leaf, BaseModel):
                out |= address_paths(leaf, f"{prefix}{name}.")
    return out


def destination_changes(before: Destination | None, after: Destination | None) -> list[Change]:
    old = flatten_destination(before) if before is not None else {}
    new = flatten_destination(after) if after is not None else {}
    addresses: set[str] = set()
    for d in (before, after):
        if d is not None:
            addresses |= address_paths(type(d))
    changes: list[Change] = []
    for name in sorted(old.keys() | new.keys()):
        a, b = old.get(name), new.get(name)
        if a != b:
            address = name in addresses
            changes.append(
                Change(name, render(name, a, address=address), render(name, b, address=address))
            )
    return changes


def stream_changes(
    before: AccountSettings, after: AccountSettings, fields: tuple[str, ...]
) -> list[Change]:
    changes: list[Change] = []
    for name in fields:
        a, b = getattr(before, name, None), getattr(after, name, None)
        if a != b:
            changes.append(Change(name, render(name, a), render(name, b)))
    return changes


def _event(
    *,
    account_id: str,
    activity: str,
    actor: Actor,
    request: RequestInfo | None,
    resource: Mapping[str, Any],
    changes: list[Change],
    details: Mapping[str, str],
    now: datetime,
    event_id: str,
) -> dict[str, Any]:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return {
        "event_id": event_id,
        "occurred_at": now,
        "recorded_at": now,
        "account_id": account_id,
        "category": CATEGORY,
        "activity": activity,
        "actor": {
            "user_id": actor.user_id,
            "name": None,
            "email": None,
            "role": actor.role,
            "auth_method": actor.auth_method,
        },
        "resource": {"folder": None, **resource},
        "outcome": {"status": "success", "reason": None},
        "changes": [
            {"field": c.field, "old_value": c.old_value, "new_value": c.new_value} for c in changes
        ],
        "request": None
        if request is None
        else {
            "ip": request.ip,
            "user_agent": request.user_agent,
            "request_id": request.request_id,
            "session_id": None,
        },
        "details": dict(details),
    }


def stream_events(
    before: AccountSettings,
    after: AccountSettings,
    *,
    actor: Actor,
    request: RequestInfo | None,
    now: datetime,
    new_id: IdFactory = _new_id,
) -> list[dict[str, Any]]:
    """The events for a change of the stream settings: one for enabling or disabling, one for
    a change of what is included; none when nothing changed."""
    account_id = after.account_id
    resource = {"type": STREAM_RESOURCE, "id": account_id, "name": "Audit log streaming"}
    events: list[dict[str, Any]] = []
    toggled = stream_changes(before, after, ("streaming_enabled",))
    if toggled:
        events.append(
            _event(
                account_id=account_id,
                activity=STREAMING,
                actor=actor,
                request=request,
                resource=resource,
                changes=toggled,
                details={"operation": "enabled" if after.streaming_enabled else "disabled"},
                now=now,
                event_id=new_id(),
            )
        )
    inclusion = stream_changes(before, after, INCLUSION_FIELDS)
    if inclusion:
        events.append(
            _event(
                account_id=account_id,
                activity=DATA_INCLUSION,
                actor=actor,
                request=request,
                resource=resource,
                changes=inclusion,
                details={"operation": "updated"},
                now=now,
                event_id=new_id(),
            )
        )
    return events


def destination_event(
    account_id: str,
    before: Destination | None,
    after: Destination | None,
    *,
    operation: str,
    actor: Actor,
    request: RequestInfo | None,
    now: datetime,
    details: Mapping[str, str] | None = None,
    new_id: IdFactory = _new_id,
) -> dict[str, Any]:
    """The event for one destination change. ``operation``: created, updated, paused, resumed,
    replay_requested, delete_requested, deleted (at once, forced) or removed (drained)."""
    current = after if after is not None else before
    if current is None:
        raise ValueError("a destination event needs the destination before or after")
    if after is None:
        changes = [Change("destination", current.id, None)]
    else:
        changes = destination_changes(before, after)
    return _event(
        account_id=account_id,
        activity=DESTINATION_UPDATED,
        actor=actor,
        request=request,
        resource={"type": DESTINATION_RESOURCE, "id": current.id, "name": current.id},
        changes=changes,
        details={
            "destination_type": current.type,
            "operation": operation,
            **(details or {}),
        },
        now=now,
        event_id=new_id(),
    )
