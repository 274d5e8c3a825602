"""Free text of an event and the full-text query of a reader's ``text`` (pure).

The reader's text never reaches the full-text engine as query syntax: every whitespace-separated
term becomes one quoted phrase (inner quotes doubled), and the phrases must all match. So ``"``,
``*``, ``NEAR(``, ``OR``, ``-`` or SQL in a search box are searched for as words, never parsed.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from typing import Any

MAX_TERMS = 32
"""Terms beyond this many are ignored: a search box is a few words, not a document."""


def event_text(event: Mapping[str, Any]) -> str:
    """The searchable text of an event: actor name and e-mail, resource name and id, the
    activity, and every detail value, one per line."""
    parts: list[str] = [str(event.get("activity") or "")]
    actor = event.get("actor") or {}
    parts += [str(actor.get("name") or ""), str(actor.get("email") or "")]
    resource = event.get("resource") or {}
    parts += [str(resource.get("name") or ""), str(resource.get("id") or "")]
    details = event.get("details") or {}
    parts += [str(value) for value in details.values()]
    return "\n".join(part for part in parts if part)


def search_terms(text: str | None) -> list[str]:
    """The terms of a reader's text (empty: no text condition)."""
    if text is None:
        return []
    # Control characters separate words like spaces (a NUL would end the engine's string).
    cleaned = "".join(" " if unicodedata.category(ch) == "Cc" else ch for ch in text)
    return cleaned.split()[:MAX_TERMS]


def fts5_query(terms: list[str]) -> str:
    """An FTS5 query matching rows that hold every term as a phrase of whole tokens. A term
    without letters or digits has no tokens: beside other terms it is ignored, alone it matches
    nothing."""
    return " ".join('"' + term.replace('"', '""') + '"' for term in terms)
