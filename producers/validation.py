"""Validation of an event against the activity catalog and the current schema (pure)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from fastavro.validation import ValidationError as _AvroValidationError
from fastavro.validation import validate as _avro_validate

from auditstream.producers.errors import ValidationError
from auditstream.schemas import catalog, codec

_REQUIRED_TEXT = ("account_id", "category", "activity")


def validate_event(event: Mapping[str, Any]) -> None:
    """Raise :class:`ValidationError` naming the first offending field, or return None.

    Checks, in order: required identifiers, the catalog pair (category, activity), the event id
    is a UUID, timestamps are timezone-aware, and the whole record against the Avro schema.
    """
    for name in _REQUIRED_TEXT:
        value = event.get(name)
        if not isinstance(value, str) or not value:
            raise ValidationError(name, "required, a non-empty string")
    category, activity = event["category"], event["activity"]
    if category not in {c.key for c in catalog.CATEGORIES}:
        raise ValidationError("category", f"unknown category {category!r}")
    if not catalog.is_known(category, activity):
        raise ValidationError(
            "activity", f"{activity!r} is not an activity of category {category!r}"
        )
    try:
        uuid.UUID(str(event.get("event_id")))
    except ValueError as exc:
        raise ValidationError("event_id", "must be a UUID string") from exc
    for name in ("occurred_at", "recorded_at"):
        ts = event.get(name)
        if not isinstance(ts, datetime) or ts.tzinfo is None:
            raise ValidationError(name, "must be a timezone-aware datetime")
    record = dict(event)
    # The boolean check is cheap; building fastavro's error messages is not (it formats one
    # for every union branch it tries), so ask for them only when the event is invalid.
    if _avro_validate(record, codec.current().parsed, raise_errors=False):
        return
    try:
        _avro_validate(record, codec.current().parsed, raise_errors=True)
    except _AvroValidationError as exc:
        detail = str(exc.errors[0]) if exc.errors else str(exc)
        field = detail.split(" is not a ", 1)[0].strip()
        raise ValidationError(field or "event", f"does not match the schema: {detail}") from exc
