"""Activity handlers: one per catalog activity, building the activity-specific parts of its
event (resource, changes, details, failure) and updating the simulated account.

Activities with their own recipe are registered by key in the modules of this package; every
other activity is an account setting without state (category ``account``) or a step of a
resource's life cycle named by the key's last word.
"""

from __future__ import annotations

from auditstream.producers.simulator.handlers import (
    account,
    lifecycle,
    resource_states,
    streaming,
    team,
)
from auditstream.producers.simulator.handlers.parts import Handler, Parts

__all__ = ["SPECIFIC", "Handler", "Parts", "handler_for"]

SPECIFIC: dict[str, Handler] = {
    **account.HANDLERS,
    **streaming.HANDLERS,
    **team.HANDLERS,
    **resource_states.HANDLERS,
}
"""The handlers of the activities with their own recipe, by activity key."""


def handler_for(category: str, key: str) -> Handler:
    """The handler of the catalog activity ``key`` of ``category``."""
    specific = SPECIFIC.get(key)
    if specific is not None:
        return specific
    if category == "account":
        return account.plain
    return lifecycle.lifecycle_handler(category, key)
