"""Event shapes: how one decoded event becomes the JSON document a destination receives.

Each shape is a module with a pure ``render(event) -> dict`` (docs/event-shapes.md describes
each mapping); :data:`SHAPES` registers them by the name a destination's ``schema`` setting
uses. A new shape is one module and one line in :data:`SHAPES` (plus its name in
``config.destinations.EventSchema``; a unit test checks that every facet is there).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from auditstream.sinks.shapes import cloudevents, ecs, ocsf

Render = Callable[[Mapping[str, Any]], Mapping[str, Any]]


def _native(event: Mapping[str, Any]) -> Mapping[str, Any]:
    return event


@dataclass(frozen=True, slots=True)
class Shape:
    name: str
    """The value of a destination's ``schema`` setting."""
    title: str
    """What the shape is, for people."""
    render: Render
    """One decoded event → its document (pure; never raises for a decoded event)."""
    batch_media_type: str
    """The Content-Type of a JSON array of documents (the webhook's ``json_array`` body)."""
    carries_message: bool
    """Whether a document has its own top-level ``message`` (a collector's summary gives way)."""
    nest_as: str | None = None
    """The attribute under which a collector that splices a document into its own attributes
    (Datadog Logs) carries it; None splices it at the top level. OCSF goes under ``ocsf``, as
    Datadog keeps OCSF values, so its ``status`` and ``severity`` are not read as the log's
    status; CloudEvents under ``cloudevents`` (its ``source`` and ``time`` are its own)."""

    @property
    def spliced_message(self) -> bool:
        """Whether a collector's log gets its ``message`` from the document."""
        return self.carries_message and self.nest_as is None


SHAPES: dict[str, Shape] = {
    s.name: s
    for s in (
        Shape("native", "the event as recorded", _native, "application/json", False),
        Shape("ocsf", "OCSF 1.5.0", ocsf.render, "application/json", True, "ocsf"),
        Shape("ecs", "Elastic Common Schema", ecs.render, "application/json", True),
        Shape(
            "cloudevents",
            "CloudEvents 1.0 structured JSON",
            cloudevents.render,
            cloudevents.BATCH_MEDIA_TYPE,
            False,
            "cloudevents",
        ),
    )
}

RENDER_FAILED = "render_failed"
"""The dead-letter reason of an event its destination's shape cannot render."""

_OPTS = orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC


def shape(name: str) -> Shape:
    """The shape registered as ``name``; raises ``ValueError`` naming the known ones."""
    try:
        return SHAPES[name]
    except KeyError:
        raise ValueError(f"unknown schema {name!r}: use one of {', '.join(SHAPES)}") from None


def shaped(name: str, events: Iterable[Mapping[str, Any]]) -> Iterable[Mapping[str, Any]]:
    """``events`` as documents of shape ``name`` (the events themselves for ``native``)."""
    if name == "native":
        return events
    render = shape(name).render
    return (render(e) for e in events)


def render_document(name: str, event: Mapping[str, Any]) -> bytes:
    """``event`` as the JSON document of shape ``name`` (datetimes in UTC with ``Z``, UUIDs as
    text). Raises whatever the shape or the JSON encoder raises for an event they cannot
    render."""
    document = event if name == "native" else shape(name).render(event)
    return orjson.dumps(document, option=_OPTS)


def try_render(name: str, event: Mapping[str, Any]) -> tuple[bytes | None, str | None]:
    """``(document, None)`` for an event shape ``name`` renders, ``(None, why)`` for one it
    cannot. A sink renders a batch whole, so an event that fails here is dead-lettered before
    the batch is written (``sinks.attempts``) instead of failing every attempt at its batch."""
    try:
        return render_document(name, event), None
    except Exception as exc:  # any failure of one event's rendering: that event is rejected
        return None, f"schema {name}: {type(exc).__name__}: {exc}"[:1000]


def render_problem(name: str, event: Mapping[str, Any]) -> str | None:
    """Why shape ``name`` cannot render ``event`` as JSON, or None when it can (the native
    event is never screened: the codec decoded it)."""
    if name == "native":
        return None
    return try_render(name, event)[1]
