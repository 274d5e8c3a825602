"""``ActivityEvent`` as Python values: the shape ``schemas.codec`` encodes and decodes.

One ``TypedDict`` per Avro record of the current schema (``schemas/avro/``), named like the
record. Every key is required: the decoder always returns every field, and the Avro defaults
exist so that readers can resolve data written by older versions, not so that producers can
leave fields out. A nullable Avro field (a union with ``null``) is ``X | None``; an enum is a
``Literal`` of its symbols. A unit test compares these types with the schema, field by field.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal, TypedDict
from uuid import UUID

__all__ = [
    "ActivityEvent",
    "Actor",
    "AuthMethod",
    "Change",
    "Outcome",
    "OutcomeStatus",
    "Request",
    "Resource",
]

AuthMethod = Literal["password", "sso", "api_key", "system"]
OutcomeStatus = Literal["success", "failure"]


class Actor(TypedDict):
    """Who performed the activity; ``user_id`` is ``"system"`` for the platform itself."""

    user_id: str
    name: str | None
    email: str | None
    role: str | None
    auth_method: AuthMethod


class Resource(TypedDict):
    """What the activity acted on; ``folder`` is the folder path for folder-kept types."""

    type: str
    id: str
    name: str | None
    folder: str | None


class Outcome(TypedDict):
    """Whether the activity succeeded; ``reason`` says why it failed."""

    status: OutcomeStatus
    reason: str | None


class Change(TypedDict):
    """One changed field, as text; ``None`` where there was no old or is no new value."""

    field: str
    old_value: str | None
    new_value: str | None


class Request(TypedDict):
    """The request that carried the activity (absent for the platform's own actions)."""

    ip: str | None
    user_agent: str | None
    request_id: str | None
    session_id: str | None


class ActivityEvent(TypedDict):
    """One user action in an account.

    ``event_id`` is written as a UUID string (a ``uuid.UUID`` is accepted too) and decoded as
    ``uuid.UUID`` (fastavro reads the ``uuid`` logical type so); ``str()`` gives the canonical
    text of either. ``occurred_at`` and ``recorded_at`` (``timestamp-micros``) are
    timezone-aware datetimes, decoded in UTC.
    """

    event_id: str | UUID
    occurred_at: datetime
    recorded_at: datetime
    account_id: str
    category: str
    activity: str
    actor: Actor
    resource: Resource | None
    outcome: Outcome
    changes: list[Change]
    request: Request | None
    details: dict[str, str]
