"""A destination whose account's settings a running process could not apply never reads as
quietly active."""

from __future__ import annotations

from typing import Any

import pytest

from auditstream.api.status import with_settings_problems


@pytest.mark.parametrize(
    ("state", "problems", "shown_state", "cause"),
    [
        ("active", [], "active", None),
        ("active", ["router r: no key"], "error", "settings_not_applied"),
        ("waiting", ["router r: no key"], "error", "settings_not_applied"),
        ("paused", ["router r: no key"], "paused", None),
        ("failing", ["router r: no key"], "failing", "http_503"),
    ],
)
def test_with_settings_problems(
    state: str, problems: list[str], shown_state: str, cause: str | None
) -> None:
    body: dict[str, Any] = {
        "state": state,
        "last_cause": "http_503" if state == "failing" else None,
        "last_error": None,
    }
    out = with_settings_problems(body, problems)
    assert out["state"] == shown_state
    assert out["settings_applied"] is (not problems)
    assert out["settings_problems"] == problems
    assert out["last_cause"] == cause
