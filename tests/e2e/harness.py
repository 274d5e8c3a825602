"""End-to-end harness: five accounts with different settings, expected sets, and readers of
what the destinations really hold."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from auditstream.config.stream import AccountSettings
from auditstream.pipeline.inclusion import Decision, decide
from devservices.stored_objects import decode_object

SECRET = "e2e-signing-secret"
ACCOUNTS = ["acct-all", "acct-off", "acct-two", "acct-cats", "acct-excl"]


def five_accounts(webhook_url: str) -> list[AccountSettings]:
    """One account streams everything, one is disabled, one has two destinations (local and
    webhook), one includes only some categories, one excludes activities."""
    fast = {"max_events": 500, "max_age_s": 0.5}
    raw: list[dict[str, Any]] = [
        {
            "account_id": "acct-all",
            "destinations": [
                {"id": "all-local", "type": "local", "path": "all-local", "batch": fast}
            ],
        },
        {
            "account_id": "acct-off",
            "streaming_enabled": False,
            "destinations": [
                {"id": "off-local", "type": "local", "path": "off-local", "batch": fast}
            ],
        },
        {
            "account_id": "acct-two",
            "destinations": [
                {
                    "id": "two-local",
                    "type": "local",
                    "path": "two-local",
                    "compression": "zstd",
                    "batch": fast,
                },
                {
                    "id": "two-hook",
                    "type": "webhook",
                    "url": webhook_url,
                    "secret": SECRET,
                    "batch": {"max_events": 200, "max_age_s": 0.5},
                },
            ],
        },
        {
            "account_id": "acct-cats",
            "include_categories": ["account", "team", "recipe"],
            "destinations": [
                {
                    "id": "cats-local",
                    "type": "local",
                    "path": "cats-local",
                    "format": "avro",
                    "compression": "deflate",
                    "batch": fast,
                }
            ],
        },
        {
            "account_id": "acct-excl",
            "exclude_activities": ["user_login", "recipe_started"],
            "destinations": [
                {
                    "id": "excl-local",
                    "type": "local",
                    "path": "excl-local",
                    "compression": "none",
                    "batch": fast,
                }
            ],
        },
    ]
    return [AccountSettings.model_validate(a) for a in raw]


def expected_ids(
    events: Iterable[Mapping[str, Any]], accounts: list[AccountSettings]
) -> dict[str, set[str]]:
    by_account = {a.account_id: a for a in accounts}
    out: dict[str, set[str]] = {d.id: set() for a in accounts for d in a.destinations}
    for e in events:
        acct = by_account.get(e["account_id"])
        if decide(acct, e["category"], e["activity"]) is Decision.INCLUDED and acct:
            for d in acct.destinations:
                out[d.id].add(str(e["event_id"]))
    return out


def read_object(path: Path) -> list[dict[str, Any]]:
    """The events in one object written by a local-directory sink."""
    return decode_object(path.name, path.read_bytes())


def local_event_ids(root: Path) -> list[str]:
    """Every event id stored under ``root``, duplicates included."""
    ids: list[str] = []
    if not root.exists():
        return ids
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.name.startswith(".tmp-"):
            ids.extend(str(e["event_id"]) for e in read_object(path))
    return ids
