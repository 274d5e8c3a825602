"""Small builders of valid events for tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any


def make_event(
    *,
    account_id: str = "acme",
    category: str = "account",
    activity: str = "user_login",
    occurred_at: datetime | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A valid event of the current schema."""
    when = occurred_at or datetime(2026, 11, 27, 10, 0, 0, 123456, tzinfo=UTC)
    event: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "occurred_at": when,
        "recorded_at": when + timedelta(milliseconds=40),
        "account_id": account_id,
        "category": category,
        "activity": activity,
        "actor": {
            "user_id": "u-1",
            "name": "Ada",
            "email": "ada@example.com",
            "role": "admin",
            "auth_method": "password",
        },
        "resource": None,
        "outcome": {"status": "success", "reason": None},
        "changes": [],
        "request": {
            "ip": "192.0.2.10",
            "user_agent": "Mozilla/5.0",
            "request_id": "r-1",
            "session_id": "s-1",
        },
        "details": {},
    }
    event.update(extra)
    return event
