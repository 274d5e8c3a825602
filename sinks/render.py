"""JSON rendering of decoded events: schema field names, ISO-8601 UTC timestamps, ids as strings.

One function a SIEM's view of an event depends on; kept pure and table-tested.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson

_OPTS = orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC


def render_ndjson(events: Iterable[Mapping[str, Any]]) -> bytes:
    """Newline-delimited JSON: one event per line, each line ending in ``\\n``. Datetimes
    become ``2026-11-27T10:00:00.123456Z``; UUIDs become their canonical string."""
    return b"".join(orjson.dumps(e, option=_OPTS | orjson.OPT_APPEND_NEWLINE) for e in events)


def render_json_array(events: Iterable[Mapping[str, Any]]) -> bytes:
    """A JSON array of events."""
    return orjson.dumps(list(events), option=_OPTS)
