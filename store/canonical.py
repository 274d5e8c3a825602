"""The canonical bytes of a stored event: what the hash chain hashes and the store keeps.

A decoded ``ActivityEvent`` (datetimes, a UUID) becomes JSON values -- timestamps as ISO-8601
UTC with six fractional digits and a ``Z``, ids as strings -- serialised with sorted keys and no
spaces, so the same event gives the same bytes on every machine and from either backend.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

_TIMESTAMPS = ("occurred_at", "recorded_at")


def canonical_bytes(event: Mapping[str, Any]) -> bytes:
    """The canonical JSON of ``event`` (decoded Avro values or its JSON values alike)."""
    return orjson.dumps(json_values(event), option=orjson.OPT_SORT_KEYS)


def json_values(event: Mapping[str, Any]) -> dict[str, Any]:
    """``event`` as plain JSON values (what ``StoredEvent.event`` holds)."""
    out = dict(event)
    for key in _TIMESTAMPS:
        value = out.get(key)
        if isinstance(value, datetime):
            out[key] = timestamp_text(value)
    if "event_id" in out:
        out["event_id"] = str(out["event_id"])
    return out


def timestamp_text(moment: datetime) -> str:
    """``2026-11-27T10:00:00.000000Z``: one spelling, whatever the microseconds (orjson would
    drop zero microseconds, and the chain needs the same bytes every time)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    # isoformat, not strftime: %Y does not pad years before 1000 ("1-01-01T..." is no ISO time).
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"
