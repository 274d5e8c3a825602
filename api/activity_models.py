"""What the activity audit log API answers with (pydantic models, for the OpenAPI document).

An event has the fields of the ``ActivityEvent`` schema, timestamps as ISO-8601 UTC text;
fields a later schema version adds come through as they are (``extra="allow"``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class ActorOut(_Open):
    user_id: str
    name: str | None = None
    email: str | None = None
    role: str | None = None
    auth_method: str


class ResourceOut(_Open):
    type: str
    id: str
    name: str | None = None
    folder: str | None = None


class OutcomeOut(_Open):
    status: Literal["success", "failure"]
    reason: str | None = None


class ChangeOut(_Open):
    field: str
    old_value: str | None = None
    new_value: str | None = None


class RequestOut(_Open):
    ip: str | None = None
    user_agent: str | None = None
    request_id: str | None = None
    session_id: str | None = None


class ActivityEventOut(_Open):
    event_id: str
    occurred_at: str = Field(description="ISO-8601 UTC, e.g. 2026-11-27T10:00:00.000000Z")
    recorded_at: str
    account_id: str
    category: str
    activity: str
    actor: ActorOut
    resource: ResourceOut | None = None
    outcome: OutcomeOut
    changes: list[ChangeOut] = []
    request: RequestOut | None = None
    details: dict[str, str] = {}


class ActivityPage(BaseModel):
    events: list[ActivityEventOut]
    next_cursor: str | None = Field(
        description="Pass as cursor (with the same filters) for the next page; null: no more "
        "events now. The Link header (rel=next) holds the whole next URL."
    )
    total: int | None = Field(
        default=None, description="Events matching the filters (only with include_total=true)."
    )


class CheckpointPageOut(BaseModel):
    events: list[ActivityEventOut] = Field(description="In the order the store received them.")
    checkpoint: str = Field(
        description="Pass as after= to continue; the same as sent when nothing new came."
    )


class FacetCount(BaseModel):
    key: str
    name: str = Field(description="Display name from the activity catalog.")
    count: int


class ActivityFacetCount(FacetCount):
    category: str


class FacetsOut(BaseModel):
    """Counts of the filtered events per category and per activity; each count ignores the
    filter's own category and activity conditions (the menus show what else could be
    picked). Catalog order; only what occurs."""

    categories: list[FacetCount]
    activities: list[ActivityFacetCount]
