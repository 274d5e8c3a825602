"""What a routing commit records beside its offsets, so a router starting from it (after a
restart or a rebalance) can put back the settings in force at that commit
(docs/adr/017-settings-take-effect-at-their-audit-event.md).

The text is compact JSON, ``{"v":1,"s":{"0":812},"r":{"acct-all":"9f3c..."}}``: ``s`` the
settings topic read (next offset, by partition), ``r`` for each account with a revision
pending (or whose audit event was routed before its record was read) the revision in force
("" for a record without one, or none). Kafka brokers refuse more than
``offset.metadata.max.bytes`` (4,096 by default): accounts that do not fit are left out and
returned, for the router to apply at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import orjson

VERSION = 1
MAX_BYTES = 4096
"""Kafka's default ``offset.metadata.max.bytes``."""
_READ_LIMIT = 64 * 1024
"""Longer text is not parsed: no commit of ours writes it."""


@dataclass(frozen=True, slots=True)
class CommitMetadata:
    """The settings a routing commit saw: ``settings_read`` the next settings offset by
    partition, ``in_force`` the revision in force for accounts with one pending."""

    settings_read: dict[int, int]
    in_force: dict[str, str]


def encode(
    settings_read: Mapping[int, int], in_force: Mapping[str, str], max_bytes: int = MAX_BYTES
) -> tuple[str, list[str]]:
    """The metadata text, at most ``max_bytes`` UTF-8 bytes, and the accounts of
    ``in_force`` left out to stay within it (sorted; empty when all fit). Raises
    ``ValueError`` when not even the settings positions fit."""
    base = {"v": VERSION, "s": {str(p): o for p, o in sorted(settings_read.items())}, "r": {}}
    size = len(orjson.dumps(base))
    if size > max_bytes:
        raise ValueError(f"commit metadata needs {size} bytes, more than {max_bytes}")
    kept: dict[str, str] = {}
    left_out: list[str] = []
    for account in sorted(in_force):
        revision = in_force[account]
        # "key":"value", plus the comma before every entry but the first.
        entry = len(orjson.dumps(account)) + 1 + len(orjson.dumps(revision)) + (1 if kept else 0)
        if size + entry <= max_bytes:
            kept[account] = revision
            size += entry
        else:
            left_out.append(account)
    text = orjson.dumps({**base, "r": kept}).decode()
    return text, left_out


def decode(text: str) -> CommitMetadata | None:
    """The metadata in ``text``, or None when it is not metadata this version writes (empty,
    not JSON, another version, wrong shapes, too long). Never raises."""
    if not text or len(text) > _READ_LIMIT:
        return None
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict) or data.get("v") != VERSION:
        return None
    s, r = data.get("s"), data.get("r")
    if not isinstance(s, dict) or not isinstance(r, dict):
        return None
    settings_read: dict[int, int] = {}
    for p, o in s.items():
        if not (p.isascii() and p.isdigit()) or type(o) is not int or o < 0:
            return None
        settings_read[int(p)] = o
    if not all(isinstance(v, str) for v in r.values()):
        return None
    return CommitMetadata(settings_read, dict(r))
