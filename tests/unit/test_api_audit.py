"""Audit events of settings changes (pure): which activity, which changes, nothing secret."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from auditstream.api import audit
from auditstream.api.audit import Actor, RequestInfo
from auditstream.config.destinations import Destination
from auditstream.config.stream import AccountSettings
from auditstream.producers.validation import validate_event
from auditstream.schemas import codec

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
ACTOR = Actor(user_id="u-ada", role="admin")
REQUEST = RequestInfo(ip="198.51.100.7", user_agent="curl/8", request_id="req-1")
SECRET = "s3cr3t-signing-value"


def _settings(**kw: Any) -> AccountSettings:
    return AccountSettings.model_validate({"account_id": "acme", **kw})


def _hook(**kw: Any) -> Destination:
    base = {
        "id": "acme-siem",
        "type": "webhook",
        "url": "https://collectors.example.com/receiver/v1/http/TOKEN123",
        "secret": SECRET,
        "headers": {"Authorization": "Splunk abc-token"},
    }
    settings = _settings(destinations=[{**base, **kw}])
    return settings.destinations[0]


def _ids() -> Any:
    n = iter(range(1000))
    return lambda: f"00000000-0000-4000-8000-{next(n):012d}"


def _changes(event: dict[str, Any]) -> dict[str, tuple[str | None, str | None]]:
    return {c["field"]: (c["old_value"], c["new_value"]) for c in event["changes"]}


@pytest.mark.parametrize(
    ("before", "after", "activities"),
    [
        ({}, {}, []),
        ({"streaming_enabled": False}, {"streaming_enabled": True}, ["audit_log_streaming"]),
        ({"streaming_enabled": True}, {"streaming_enabled": False}, ["audit_log_streaming"]),
        (
            {},
            {"include_categories": ["account"]},
            ["audit_log_streaming_data_inclusion"],
        ),
        (
            {"include_categories": ["account"]},
            {"include_categories": None},
            ["audit_log_streaming_data_inclusion"],
        ),
        ({}, {"exclude_activities": ["user_login"]}, ["audit_log_streaming_data_inclusion"]),
        ({}, {"include_activities": ["user_login"]}, ["audit_log_streaming_data_inclusion"]),
        (
            {"streaming_enabled": False},
            {"streaming_enabled": True, "include_categories": ["team"]},
            ["audit_log_streaming", "audit_log_streaming_data_inclusion"],
        ),
    ],
)
def test_stream_events(
    before: dict[str, Any], after: dict[str, Any], activities: list[str]
) -> None:
    events = audit.stream_events(
        _settings(**before), _settings(**after), actor=ACTOR, request=REQUEST, now=NOW
    )
    assert [e["activity"] for e in events] == activities
    for event in events:
        validate_event(event)
        codec.encode(event)  # the current schema takes it
        assert event["category"] == "account"
        assert event["actor"] == {
            "user_id": "u-ada",
            "name": None,
            "email": None,
            "role": "admin",
            "auth_method": "api_key",
        }
        assert event["resource"]["type"] == "audit_log_stream"
        assert event["resource"]["id"] == "acme"
        assert event["request"]["ip"] == "198.51.100.7"
        assert event["request"]["request_id"] == "req-1"
        assert event["occurred_at"] == NOW


def test_stream_change_values_are_strings() -> None:
    events = audit.stream_events(
        _settings(streaming_enabled=False),
        _settings(streaming_enabled=True, include_categories=["account", "team"]),
        actor=ACTOR,
        request=REQUEST,
        now=NOW,
    )
    assert _changes(events[0]) == {"streaming_enabled": ("false", "true")}
    assert events[0]["details"] == {"operation": "enabled"}
    assert _changes(events[1]) == {"include_categories": (None, '["account","team"]')}


@pytest.mark.parametrize(
    ("before", "after", "operation", "expected"),
    [
        (None, {}, "created", {"url": (None, "https://collectors.example.com/[redacted]")}),
        ({}, {"paused": True}, "paused", {"paused": ("false", "true")}),
        ({"paused": True}, {"paused": False}, "resumed", {"paused": ("true", "false")}),
        ({}, {"deleting": True}, "delete_requested", {"deleting": ("false", "true")}),
        ({}, {"secret": "rotated-value"}, "updated", {"secret": ("[redacted]", "[redacted]")}),
        (
            {},
            {"headers": {"Authorization": "Splunk new"}},
            "updated",
            {"headers.Authorization": ("[redacted]", "[redacted]")},
        ),
        (
            {},
            {"headers": {}},
            "updated",
            {"headers.Authorization": ("[redacted]", None)},
        ),
        ({}, {"timeout_s": 3}, "updated", {"timeout_s": ("10.0", "3.0")}),
        (
            {},
            {"batch": {"max_events": 5}},
            "updated",
            {"batch.max_events": ("1000", "5")},
        ),
        (
            {},
            {"url": "https://other.example.com/"},
            "updated",
            {
                "url": (
                    "https://collectors.example.com/[redacted]",
                    "https://other.example.com",
                )
            },
        ),
        (
            {},
            {"replay": {"id": "r-1", "from_time": "2026-11-26T00:00:00Z"}},
            "replay_requested",
            {"replay.id": (None, "r-1"), "replay.from_time": (None, "2026-11-26T00:00:00+00:00")},
        ),
    ],
)
def test_destination_events(
    before: dict[str, Any] | None,
    after: dict[str, Any],
    operation: str,
    expected: dict[str, tuple[str | None, str | None]],
) -> None:
    event = audit.destination_event(
        "acme",
        _hook(**before) if before is not None else None,
        _hook(**after),
        operation=operation,
        actor=ACTOR,
        request=REQUEST,
        now=NOW,
        new_id=_ids(),
    )
    validate_event(event)
    codec.encode(event)
    assert event["activity"] == "audit_log_streaming_destination_updated"
    assert event["resource"] == {
        "type": "audit_log_destination",
        "id": "acme-siem",
        "name": "acme-siem",
        "folder": None,
    }
    assert event["details"] == {"destination_type": "webhook", "operation": operation}
    changes = _changes(event)
    for field, values in expected.items():
        assert changes[field] == values
    if before is not None:
        assert set(changes) == set(expected)
    text = orjson.dumps(event, default=str).decode()
    for forbidden in (SECRET, "rotated-value", "abc-token", "Splunk new", "TOKEN123"):
        assert forbidden not in text


def test_removal_event_names_the_destination() -> None:
    event = audit.destination_event(
        "acme",
        _hook(),
        None,
        operation="removed",
        actor=audit.SYSTEM_ACTOR,
        request=None,
        now=NOW,
    )
    validate_event(event)
    assert _changes(event) == {"destination": ("acme-siem", None)}
    assert event["actor"]["auth_method"] == "system"
    assert event["request"] is None


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://siem.example.com", "https://siem.example.com"),
        ("https://siem.example.com/", "https://siem.example.com"),
        ("https://siem.example.com:8443/in", "https://siem.example.com:8443/[redacted]"),
        ("https://u:p@siem.example.com/?token=x", "https://siem.example.com/[redacted]"),
        ("not a url", "[redacted]"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert audit.redact_url(url) == shown


def test_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone"):
        audit.stream_events(
            _settings(streaming_enabled=False),
            _settings(streaming_enabled=True),
            actor=ACTOR,
            request=None,
            now=datetime(2026, 1, 1),
        )
