"""JSON rendering of decoded events: schema field names, ISO-8601 UTC timestamps, ids as strings.

One function a SIEM's view of an event depends on; kept pure and table-tested. ``schema`` names
the event shape (``sinks.shapes``): ``native`` renders the event as recorded.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from auditstream.sinks.shapes import shaped

_OPTS = orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC


def render_ndjson(events: Iterable[Mapping[str, Any]], schema: str = "native") -> bytes:
    """Newline-delimited JSON: one event per line, each line ending in ``\\n``. Datetimes
    become ``2026-11-27T10:00:00.123456Z``; UUIDs become their canonical string."""
    return b"".join(
        orjson.dumps(e, option=_OPTS | orjson.OPT_APPEND_NEWLINE) for e in shaped(schema, events)
    )


def render_json_array(events: Iterable[Mapping[str, Any]], schema: str = "native") -> bytes:
    """A JSON array of events."""
    return orjson.dumps(list(shaped(schema, events)), option=_OPTS)
