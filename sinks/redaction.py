"""Field redaction (pure): personal data an account chose not to stream is removed from each
decoded event before it is rendered, whatever the destination."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

# field name in the settings -> (top-level field, nested field)
_PATHS = {
    "actor_email": ("actor", "email"),
    "ip_address": ("request", "ip"),
    "user_agent": ("request", "user_agent"),
}


def redact(event: dict[str, Any], fields: Iterable[str]) -> dict[str, Any]:
    """Set each named field to None in ``event`` (in place) and return it. Unknown names are
    ignored: the settings model validates them."""
    for name in fields:
        path = _PATHS.get(name)
        if path is None:
            continue
        parent = event.get(path[0])
        if isinstance(parent, dict) and parent.get(path[1]) is not None:
            parent[path[1]] = None
    return event
