"""What an activity handler returns, and the signature every handler has."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from auditstream.producers.simulator.state import Account, Member
from auditstream.producers.simulator.world import World
from auditstream.schemas.event import Change, Resource

__all__ = ["NO_CHANGES", "Handler", "Parts", "change", "enabled"]


class Parts(NamedTuple):
    """The activity-specific parts of an event."""

    resource: Resource | None
    changes: list[Change]
    details: dict[str, str]
    reason: str | None = None
    """Why the activity failed; None: it succeeded."""
    actor: Member | None = None
    """Who performed it instead of the member drawn (e.g. the person accepting an invite)."""


Handler = Callable[[World, Account, Member | None, str], Parts]
"""Builds the parts of an activity and updates the account's state:
(world, account, actor drawn or None for the platform, activity key) -> parts."""

NO_CHANGES: list[Change] = []
"""Shared and never mutated: the event assembly copies ``changes`` into each event."""


def change(field: str, old: str | None, new: str | None) -> Change:
    return {"field": field, "old_value": old, "new_value": new}


def enabled(flag: bool) -> str:
    """How a setting that is on or off reads in a change."""
    return "enabled" if flag else "disabled"
