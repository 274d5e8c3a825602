"""The API's request and response bodies.

Destination bodies are derived from the destination settings models (``config.destinations``),
so a field and its constraints are defined once:

- ``<Type>DestinationCreate``: every field but the read-only ones (``paused``, ``deleting``,
  ``replay``: set through their own endpoints); ``type`` selects the model.
- ``<Type>DestinationPatch``: the same fields, all optional; ``type`` is required and must be
  the destination's type. Omitted fields keep their values; a secret given as ``********``
  keeps its value too (so a body read with GET can be sent back, without its read-only fields
  ``id``, ``paused``, ``deleting`` and ``replay``: ``destinations update`` leaves them out).
- ``<Type>DestinationOut``: every field; secrets are ``********`` when set and null when not,
  and webhook header values are masked the same way (they often carry credentials).
"""

from __future__ import annotations

import copy
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union, get_args

from fastapi import Body
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    WithJsonSchema,
    create_model,
)
from pydantic.fields import FieldInfo

from auditstream.config.destinations import Replay
from auditstream.config.fields import is_secret
from auditstream.schemas import catalog
from auditstream.sinks.registry import KINDS

MASK = "********"
READ_ONLY_FIELDS = frozenset({"paused", "deleting", "replay"})

SOURCES: dict[str, type[BaseModel]] = {t: kind.model for t, kind in KINDS.items()}
"""Each destination type's settings model, from the destination registry."""


def _schema_name(type_key: str) -> str:
    """``azure_blob`` -> ``AzureBlob``: the prefix of the type's OpenAPI schema names."""
    return "".join(part.capitalize() for part in type_key.split("_"))


RedactField = Literal["actor_email", "ip_address", "user_agent"]
REDACT_FIELDS: tuple[str, ...] = get_args(RedactField)

_CATEGORY_KEYS = tuple(c.key for c in catalog.CATEGORIES)
_ACTIVITY_KEYS = tuple(a.key for a in catalog.ACTIVITIES)


# The messages name the rule, not the value: validation errors never echo input (ADR 005).
def _known_category(value: str) -> str:
    if value not in _CATEGORY_KEYS:
        raise ValueError("not a category key; `auditstream catalog` lists them")
    return value


def _known_activity(value: str) -> str:
    if value not in _ACTIVITY_KEYS:
        raise ValueError("not an activity key; `auditstream catalog` lists them")
    return value


CategoryKey = Annotated[
    str,
    AfterValidator(_known_category),
    WithJsonSchema({"type": "string", "enum": list(_CATEGORY_KEYS)}),
]
ActivityKey = Annotated[
    str,
    AfterValidator(_known_activity),
    WithJsonSchema({"type": "string", "enum": list(_ACTIVITY_KEYS)}),
]


# -- stream settings ---------------------------------------------------------------------------


class StreamSettingsIn(BaseModel):
    """What the account streams. PUT replaces all of it: omitted lists are reset."""

    model_config = ConfigDict(extra="forbid")

    streaming_enabled: bool = Field(description="Stream this account's events at all.")
    include_categories: list[CategoryKey] | None = Field(
        default=None,
        max_length=len(_CATEGORY_KEYS),
        description="Categories to stream; null = all.",
    )
    include_activities: list[ActivityKey] = Field(
        default_factory=list,
        max_length=len(_ACTIVITY_KEYS),
        description="If not empty, only these activities are streamed.",
    )
    exclude_activities: list[ActivityKey] = Field(
        default_factory=list,
        max_length=len(_ACTIVITY_KEYS),
        description="Never streamed (wins over the inclusions).",
    )
    redact: list[RedactField] = Field(
        default_factory=list,
        max_length=len(REDACT_FIELDS),
        description="Event fields removed before delivery.",
    )


class StreamSettingsOut(BaseModel):
    account_id: str
    streaming_enabled: bool
    include_categories: list[str] | None
    include_activities: list[str]
    exclude_activities: list[str]
    redact: list[str]


# -- destinations ------------------------------------------------------------------------------


def _described(info: FieldInfo, default: Any) -> Any:
    return Field(default, description=info.description)


def _create_model(type_key: str, source: type[BaseModel]) -> type[BaseModel]:
    fields: dict[str, Any] = {}
    for name, info in source.model_fields.items():
        if name in READ_ONLY_FIELDS:
            continue
        if name == "type":
            fields[name] = (info.annotation, Field(description="The destination type."))
        else:
            fields[name] = (info.annotation, copy.copy(info))
    model: type[BaseModel] = create_model(
        f"{_schema_name(type_key)}DestinationCreate",
        __config__=ConfigDict(extra="forbid"),
        __doc__=source.__doc__,
        **fields,
    )
    return model


def _patch_model(type_key: str, source: type[BaseModel]) -> type[BaseModel]:
    fields: dict[str, Any] = {}
    for name, info in source.model_fields.items():
        if name in READ_ONLY_FIELDS or name == "id":
            continue
        if name == "type":
            fields[name] = (
                info.annotation,
                Field(description="The destination's type (it cannot change)."),
            )
            continue
        constrained: Any = (
            Annotated[info.annotation, *info.metadata] if info.metadata else info.annotation
        )
        fields[name] = (constrained | None, _described(info, None))
    model: type[BaseModel] = create_model(
        f"{_schema_name(type_key)}DestinationPatch",
        __config__=ConfigDict(extra="forbid"),
        __doc__=f"Changes to a {type_key} destination; omitted fields keep their values.",
        **fields,
    )
    return model


def _out_model(type_key: str, source: type[BaseModel]) -> type[BaseModel]:
    fields: dict[str, Any] = {}
    for name, info in source.model_fields.items():
        if is_secret(info.annotation):
            fields[name] = (
                str | None,
                Field(None, description=f"{MASK} when set, null when not (never shown)."),
            )
        elif name == "headers":
            fields[name] = (
                dict[str, str],
                Field(default_factory=dict, description=f"Header names; values are {MASK}."),
            )
        elif name == "replay":
            fields[name] = (Replay | None, _described(info, None))
        else:
            fields[name] = (info.annotation, _described(info, ...))
    model: type[BaseModel] = create_model(
        f"{_schema_name(type_key)}DestinationOut", __doc__=source.__doc__, **fields
    )
    return model


CREATE_MODELS: dict[str, type[BaseModel]] = {k: _create_model(k, s) for k, s in SOURCES.items()}
PATCH_MODELS: dict[str, type[BaseModel]] = {k: _patch_model(k, s) for k, s in SOURCES.items()}
OUT_MODELS: dict[str, type[BaseModel]] = {k: _out_model(k, s) for k, s in SOURCES.items()}

if TYPE_CHECKING:
    DestinationCreate = BaseModel
    DestinationPatch = BaseModel
    DestinationOut = BaseModel
else:
    DestinationCreate = Annotated[
        Union[tuple(CREATE_MODELS.values())],  # noqa: UP007
        Body(discriminator="type"),
    ]
    DestinationPatch = Annotated[
        Union[tuple(PATCH_MODELS.values())],  # noqa: UP007
        Body(discriminator="type"),
    ]
    DestinationOut = Annotated[
        Union[tuple(OUT_MODELS.values())],  # noqa: UP007
        Field(discriminator="type"),
    ]


class DestinationList(BaseModel):
    destinations: list[DestinationOut]


# -- actions and status ------------------------------------------------------------------------


class ReplayIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    from_time: datetime = Field(
        description="Deliver again every event recorded since this time (ISO-8601 with a "
        "time zone), within the retained window."
    )


class CheckOut(BaseModel):
    ok: bool
    cause: str | None
    message: str
    steps: list[str]


DestinationState = Literal[
    "active", "failing", "error", "suspended", "disabled", "paused", "waiting", "deleting"
]


class StatusOut(BaseModel):
    destination_id: str
    state: DestinationState
    last_success_at: datetime | None = Field(description="Last batch delivered.")
    last_error: str | None
    last_cause: str | None
    consecutive_failures: int
    failing_since: datetime | None = Field(
        description="Since when deliveries fail (as far as known)."
    )
    events_waiting: int = Field(description="Events in the destination's topic not delivered.")
    events_waiting_exact: bool = Field(
        description="False when events_waiting is an upper bound (large Kafka backlogs: "
        "transaction markers take offsets too)."
    )
    oldest_waiting_event_at: datetime | None
    oldest_waiting_age_s: float | None
    reported_at: datetime | None = Field(description="When a sink worker last reported.")
    events_expired: int = Field(
        0,
        description="Events the topic's retention removed before they could be delivered "
        "(counted by the sink workers; on Kafka an upper bound).",
    )
    next_attempt_at: datetime | None = Field(
        None, description="When a failing, error or suspended destination is tried next."
    )
    settings_applied: bool = Field(
        True,
        description="False when a running router or sink worker could not apply the account's "
        "latest settings (the state is then error, cause settings_not_applied).",
    )
    settings_problems: list[str] = Field(
        default_factory=list, description="Which process, and why (never a secret)."
    )


class ExternalIdOut(BaseModel):
    account_id: str
    external_id: str = Field(
        description="Require it as sts:ExternalId in the trust policy of the role the "
        "destination names in role_arn."
    )


class MeOut(BaseModel):
    account_id: str
    user_id: str
    role: str
    privileges: list[str]


class ErrorMessage(BaseModel):
    detail: str


class FieldError(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ValidationErrors(BaseModel):
    detail: list[FieldError]
