"""JSON rendering of decoded events: schema field names, ISO-8601 UTC timestamps, ids as strings.

One function a SIEM's view of an event depends on; kept pure and table-tested. ``schema`` names
the event shape (``sinks.shapes``): ``native`` renders the event as recorded.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson

from auditstream.sinks.batch import Batch
from auditstream.sinks.shapes import render_document, shaped

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


def batch_documents(batch: Batch, schema: str = "native") -> list[bytes]:
    """Each event of ``batch`` as its JSON document of shape ``schema``: the documents the
    attempt rendered already (``Batch.documents``, each event rendered once), else rendered
    now."""
    rendered = batch.documents_for(schema)
    if rendered is not None:
        return rendered
    return [render_document(schema, e) for e in batch.events]


def ndjson_of(documents: Sequence[bytes]) -> bytes:
    """Rendered documents as newline-delimited JSON (the bytes of :func:`render_ndjson`)."""
    return b"".join(d + b"\n" for d in documents)


def json_array_of(documents: Sequence[bytes]) -> bytes:
    """Rendered documents as a JSON array (the bytes of :func:`render_json_array`)."""
    return b"[" + b",".join(documents) + b"]"
