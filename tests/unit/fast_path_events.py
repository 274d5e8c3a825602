"""Events the fast-path tests compare the ordinary path with: one of every activity in the
catalog, with optional parts filled in some and hostile text in others."""

from __future__ import annotations

from typing import Any

from auditstream.schemas import catalog
from tests.factories import make_event

HOSTILE_TEXT = 'Robert\'); DROP TABLE events;-- \u00e9\u4e2d\u6587 \U0001f600 "q" \\ \x00'


def catalog_events() -> list[dict[str, Any]]:
    """One event of every activity in the catalog, with every optional part filled in some
    of them and hostile text in others."""
    events = []
    for n, category in enumerate(catalog.CATEGORIES):
        for m, act in enumerate(catalog.activities_in(category.key)):
            odd = (n + m) % 2 == 1
            events.append(
                make_event(
                    category=category.key,
                    activity=act.key,
                    resource={
                        "type": "connection",
                        "id": f"c-{m}",
                        "name": HOSTILE_TEXT if odd else "",
                        "folder": None,
                    },
                    changes=[{"field": "name", "old_value": None, "new_value": HOSTILE_TEXT}]
                    if odd
                    else [],
                    request=None if odd else make_event()["request"],
                    details={"k": HOSTILE_TEXT, "": ""} if odd else {},
                )
            )
    return events
