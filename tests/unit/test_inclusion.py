"""The inclusion filter, table-driven."""

from __future__ import annotations

from typing import Any

import pytest

from auditstream.config.stream import AccountSettings
from auditstream.pipeline.inclusion import Decision, decide

LOCAL = [{"id": "d1", "type": "local", "path": "x"}]


def settings(**kw: Any) -> AccountSettings:
    kw.setdefault("destinations", LOCAL)
    return AccountSettings.model_validate({"account_id": "a", **kw})


CASES = [
    ("no settings", None, "account", "user_login", Decision.NO_SETTINGS),
    ("all", settings(), "recipe", "recipe_started", Decision.INCLUDED),
    (
        "disabled",
        settings(streaming_enabled=False),
        "account",
        "user_login",
        Decision.STREAMING_DISABLED,
    ),
    (
        "category in",
        settings(include_categories=["account"]),
        "account",
        "user_login",
        Decision.INCLUDED,
    ),
    (
        "category out",
        settings(include_categories=["account"]),
        "recipe",
        "recipe_started",
        Decision.CATEGORY_NOT_INCLUDED,
    ),
    (
        "empty categories",
        settings(include_categories=[]),
        "account",
        "user_login",
        Decision.CATEGORY_NOT_INCLUDED,
    ),
    (
        "activity allow-list hit",
        settings(include_activities=["user_login"]),
        "account",
        "user_login",
        Decision.INCLUDED,
    ),
    (
        "activity allow-list miss",
        settings(include_activities=["user_login"]),
        "account",
        "user_logout",
        Decision.ACTIVITY_NOT_INCLUDED,
    ),
    (
        "excluded wins over included",
        settings(include_activities=["user_login"], exclude_activities=["user_login"]),
        "account",
        "user_login",
        Decision.ACTIVITY_EXCLUDED,
    ),
    (
        "excluded",
        settings(exclude_activities=["user_logout"]),
        "account",
        "user_logout",
        Decision.ACTIVITY_EXCLUDED,
    ),
    (
        "no destinations",
        settings(destinations=[]),
        "account",
        "user_login",
        Decision.NO_DESTINATIONS,
    ),
    (
        "only disabled destinations",
        settings(destinations=[{"id": "d1", "type": "local", "path": "x", "enabled": False}]),
        "account",
        "user_login",
        Decision.NO_DESTINATIONS,
    ),
]


@pytest.mark.parametrize(
    ("settings_", "category", "activity", "expected"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_decide(
    settings_: AccountSettings | None, category: str, activity: str, expected: Decision
) -> None:
    assert decide(settings_, category, activity) is expected


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("include_categories", ["nope"], "unknown categories"),
        ("include_activities", ["nope"], "unknown activities"),
        ("exclude_activities", ["nope"], "unknown activities"),
    ],
)
def test_unknown_keys_are_refused(field: str, value: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        settings(**{field: value})
