"""Redaction of personal data, table-driven."""

from __future__ import annotations

import pytest

from auditstream.sinks.redaction import redact
from tests.factories import make_event


@pytest.mark.parametrize(
    ("fields", "email", "ip", "agent"),
    [
        ([], "ada@example.com", "192.0.2.10", "Mozilla/5.0"),
        (["actor_email"], None, "192.0.2.10", "Mozilla/5.0"),
        (["ip_address"], "ada@example.com", None, "Mozilla/5.0"),
        (["user_agent"], "ada@example.com", "192.0.2.10", None),
        (["actor_email", "ip_address", "user_agent"], None, None, None),
        (["unknown"], "ada@example.com", "192.0.2.10", "Mozilla/5.0"),
    ],
)
def test_redact(fields: list[str], email: str | None, ip: str | None, agent: str | None) -> None:
    event = redact(make_event(), fields)
    assert event["actor"]["email"] == email
    assert event["request"]["ip"] == ip
    assert event["request"]["user_agent"] == agent


def test_redact_without_request() -> None:
    event = redact(make_event(request=None), ["ip_address", "user_agent"])
    assert event["request"] is None
