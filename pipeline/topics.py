"""Topic names. One topic per destination gives each destination its own offset (DESIGN.md)."""

import re

ACTIVITY = "auditstream.activity"
SETTINGS = "auditstream.settings"
DEAD_LETTERS = "auditstream.dlq"
STATUS = "auditstream.status"
TOKENS = "auditstream.tokens"
SINK_BATCHES = "auditstream.sink-batches"
"""Sent batch boundaries of the sink workers (compacted; ADR 018)."""
DESTINATION_PREFIX = "auditstream.dest."
DESTINATION_PATTERN = re.compile(r"^auditstream\.dest\..+$")

ROUTER_GROUP = "auditstream-router"
SINK_GROUP = "auditstream-sinks"


def destination_topic(destination_id: str) -> str:
    return DESTINATION_PREFIX + destination_id


def destination_of(topic: str) -> str | None:
    """The destination id a destination topic belongs to, or None for any other topic."""
    if topic.startswith(DESTINATION_PREFIX):
        return topic[len(DESTINATION_PREFIX) :]
    return None
