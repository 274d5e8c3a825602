"""Validation of an event against the activity catalog and the current schema (pure)."""

from __future__ import annotations

import uuid
from array import array
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from fastavro.validation import ValidationError as _AvroValidationError
from fastavro.validation import validate as _avro_validate

from auditstream.producers.errors import ValidationError
from auditstream.schemas import catalog, codec

_REQUIRED_TEXT = ("account_id", "category", "activity")
_CATEGORY_KEYS = frozenset(c.key for c in catalog.CATEGORIES)


def validate_event(event: Mapping[str, Any]) -> None:
    """Raise :class:`ValidationError` naming the first offending field, or return None.

    Checks, in order: required identifiers, the catalog pair (category, activity), the event id
    is a UUID, timestamps are timezone-aware, and the whole record against the Avro schema.
    """
    check_fields(event)
    problem = schema_problem(event)
    if problem is not None:
        raise problem


def check_fields(event: Mapping[str, Any]) -> None:
    """The checks of :func:`validate_event` that the Avro encoder does not make: required
    identifiers, the catalog pair, the event id, timezone-aware timestamps. Raises
    :class:`ValidationError`."""
    for name in _REQUIRED_TEXT:
        value = event.get(name)
        if not isinstance(value, str) or not value:
            raise ValidationError(name, "required, a non-empty string")
    category, activity = event["category"], event["activity"]
    if category not in _CATEGORY_KEYS:
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
    # The encoder writes any iterable as an array and anything empty as an empty map (an
    # empty dict or string as no changes, an empty list as no details); the schema check, like
    # fastavro's, takes only a sequence that is not text, and only a mapping.
    changes = event.get("changes")
    if not isinstance(changes, Sequence | array) or isinstance(changes, str):
        raise ValidationError("changes", "must be a list of changes")
    if not isinstance(event.get("details"), Mapping):
        raise ValidationError("details", "must be a mapping of text to text")


def schema_problem(
    event: Mapping[str, Any], encoder_error: Exception | None = None
) -> ValidationError | None:
    """What makes ``event`` not match the Avro schema, or None. ``encoder_error`` is what the
    encoder raised for it, if it did: named when the schema check finds nothing else (e.g. text
    that cannot be UTF-8 encoded)."""
    record = dict(event)
    # The boolean check is cheap; building fastavro's error messages is not (it formats one
    # for every union branch it tries), so ask for them only when the event is invalid.
    try:
        valid = _avro_validate(record, codec.current().parsed, raise_errors=False)
    except (TypeError, ValueError, AttributeError, KeyError, IndexError) as exc:
        # fastavro's check itself fails on some shapes (a one-item tuple for a record)
        return ValidationError("event", f"does not match the schema: {exc!r}")
    if valid:
        if encoder_error is None:
            return None
        return ValidationError("event", f"cannot be encoded: {encoder_error}")
    try:
        _avro_validate(record, codec.current().parsed, raise_errors=True)
    except _AvroValidationError as exc:
        detail = str(exc.errors[0]) if exc.errors else str(exc)
        field = detail.split(" is not a ", 1)[0].strip()
        return ValidationError(field or "event", f"does not match the schema: {detail}")
    return ValidationError("event", "does not match the schema")  # pragma: no cover
