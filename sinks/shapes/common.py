"""Reading a decoded event defensively, for the shapes.

Events come from the codec, so their fields have the schema's types; a shape still reads every
value through these helpers, so that a value of another type (an older producer, a bug) gives
a field left out, never an exception or an invalid document.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from auditstream.schemas import catalog

PRODUCT = "auditstream"
"""The product name the shapes give as the events' producer."""

MAX_IP_LENGTH = 40
"""The longest IP address text OCSF accepts (its ``ip_t`` type)."""


def text(value: object) -> str | None:
    """``value`` when it is a non-empty string, else None."""
    return value if isinstance(value, str) and value else None


def part(event: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    """The record ``name`` of ``event`` (actor, resource, outcome, request), ``{}`` when absent."""
    value = event.get(name)
    return value if isinstance(value, Mapping) else {}


def when(value: object) -> datetime | None:
    """``value`` as an aware datetime (a naive one is UTC), None when it is not a datetime."""
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def epoch_ms(value: object) -> int | None:
    """Milliseconds since the epoch of a datetime ``value``; None when it is not one."""
    moment = when(value)
    return None if moment is None else int(moment.timestamp() * 1000)


def ip(value: object) -> str | None:
    """``value`` when it is an IPv4 or IPv6 address (a zone allowed) of at most 40 characters,
    in its canonical spelling; None for anything else (a host name, garbage, a huge string)."""
    if not isinstance(value, str) or not value or len(value) > MAX_IP_LENGTH:
        return None
    try:
        address = str(ipaddress.ip_address(value))
    except ValueError:
        return None
    return address if len(address) <= MAX_IP_LENGTH and address.isascii() else None


def activity_name(key: object) -> str:
    """The catalog's display name of activity ``key``; the key itself when the catalog does
    not know it (``"unknown"`` when there is none)."""
    if isinstance(key, str) and key:
        try:
            return catalog.activity(key).name
        except KeyError:
            return key
    return "unknown"


def changes(event: Mapping[str, Any]) -> list[dict[str, str | None]]:
    """The event's changes as plain records (entries that are not records are left out)."""
    found = event.get("changes")
    if not isinstance(found, list):
        return []
    return [
        {
            "field": str(c.get("field", "")),
            "old_value": text(c.get("old_value")),
            "new_value": text(c.get("new_value")),
        }
        for c in found
        if isinstance(c, Mapping)
    ]


def details(event: Mapping[str, Any]) -> dict[str, str]:
    """The event's details map with text values only."""
    found = event.get("details")
    if not isinstance(found, Mapping):
        return {}
    return {str(k): v for k, v in found.items() if isinstance(v, str)}


def compact(record: Mapping[str, Any]) -> dict[str, Any]:
    """``record`` without its None values and empty records or lists."""
    return {k: v for k, v in record.items() if v is not None and v != {} and v != []}
