"""The destination state the status endpoint reports (pure)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from auditstream.api.status import Reported, Waiting, derive_status
from auditstream.config.destinations import Destination, LocalDestination

NOW = 2_000_000_000.0
DAY = 86_400.0
SIX_DAYS = timedelta(days=6)
NONE_WAITING = Waiting(0, True, None)


def _dest(**kw: Any) -> Destination:
    return LocalDestination.model_validate({"id": "d1", "type": "local", "path": "p", **kw})


def _reported(state: str, streak_since: float | None = None, **kw: Any) -> Reported:
    return Reported(
        {"state": state, "reported_at": NOW - 5, "consecutive_failures": 3, **kw}, streak_since
    )


@pytest.mark.parametrize(
    ("destination", "reported", "waiting", "state"),
    [
        # settings win over whatever a worker last said
        (_dest(deleting=True), _reported("active"), NONE_WAITING, "deleting"),
        (_dest(deleting=True, paused=True), None, NONE_WAITING, "deleting"),
        (_dest(enabled=False), _reported("failing", NOW - 10), NONE_WAITING, "disabled"),
        (_dest(paused=True), _reported("active"), NONE_WAITING, "paused"),
        # worker states
        (_dest(), _reported("active"), NONE_WAITING, "active"),
        (_dest(), _reported("failing", NOW - 60), Waiting(5, True, None), "failing"),
        (_dest(), _reported("error", NOW - 60), Waiting(5, True, None), "error"),
        # failing longer than suspend_after: suspended (from the streak or the oldest event)
        (_dest(), _reported("failing", NOW - 7 * DAY), Waiting(5, True, None), "suspended"),
        (_dest(), _reported("error", NOW - 7 * DAY), Waiting(5, True, None), "suspended"),
        (
            _dest(),
            _reported("failing", NOW - 60),
            Waiting(5, True, int((NOW - 7 * DAY) * 1000)),
            "suspended",
        ),
        # ... but never counted from before the last success
        (
            _dest(),
            _reported("failing", NOW - 7 * DAY, last_success_at=NOW - DAY),
            Waiting(5, True, None),
            "failing",
        ),
        # no report yet, or a report from before the owner resumed it
        (_dest(), None, NONE_WAITING, "active"),
        (_dest(), None, Waiting(3, True, None), "waiting"),
        (_dest(), _reported("paused"), Waiting(3, True, None), "waiting"),
        (_dest(), _reported("disabled"), NONE_WAITING, "active"),
        (_dest(), _reported("waiting"), Waiting(1, True, None), "waiting"),
    ],
)
def test_state(
    destination: Destination, reported: Reported | None, waiting: Waiting, state: str
) -> None:
    body = derive_status(destination, reported, waiting, now=NOW, suspend_after=SIX_DAYS)
    assert body["state"] == state


def test_body_fields() -> None:
    body = derive_status(
        _dest(),
        _reported(
            "failing",
            NOW - 120,
            last_success_at=NOW - 300,
            last_error="could not connect to receiver x",
            last_cause="unreachable",
        ),
        Waiting(42, False, int((NOW - 90) * 1000)),
        now=NOW,
        suspend_after=SIX_DAYS,
    )
    assert body["destination_id"] == "d1"
    assert body["last_success_at"].timestamp() == NOW - 300
    assert body["last_cause"] == "unreachable"
    assert body["consecutive_failures"] == 3
    assert body["failing_since"].timestamp() == NOW - 120
    assert body["events_waiting"] == 42
    assert body["events_waiting_exact"] is False
    assert body["oldest_waiting_age_s"] == 90.0
    assert body["reported_at"].timestamp() == NOW - 5


def test_a_worker_that_suspended_a_destination_is_believed_at_once() -> None:
    reported = _reported(
        "suspended",
        NOW - 60,
        last_cause="bucket_missing",
        failing_since=NOW - 30,
        next_attempt_at=NOW + 900,
    )
    body = derive_status(_dest(), reported, NONE_WAITING, now=NOW, suspend_after=SIX_DAYS)
    assert body["state"] == "suspended"
    assert body["last_cause"] == "bucket_missing"
    assert body["failing_since"].timestamp() == NOW - 30  # the worker's own account of it
    assert body["next_attempt_at"].timestamp() == NOW + 900


def test_expired_events_are_reported() -> None:
    body = derive_status(
        _dest(),
        _reported("active", expired_events=12),
        NONE_WAITING,
        now=NOW,
        suspend_after=SIX_DAYS,
    )
    assert body["events_expired"] == 12
    assert body["next_attempt_at"] is None
    assert (
        derive_status(_dest(), None, NONE_WAITING, now=NOW, suspend_after=SIX_DAYS)[
            "events_expired"
        ]
        == 0
    )


@pytest.mark.parametrize(
    ("reported_account", "state", "last_error"),
    [
        ("acme", "error", "401 from the receiver"),  # this account's report
        (None, "error", "401 from the receiver"),  # a report from before accounts were named
        ("globex", "active", None),  # a deleted destination of another account, same id
    ],
)
def test_a_report_of_another_account_is_ignored(
    reported_account: str | None, state: str, last_error: str | None
) -> None:
    reported = _reported(
        "error", NOW - 60, account_id=reported_account, last_error="401 from the receiver"
    )
    body = derive_status(
        _dest(), reported, NONE_WAITING, now=NOW, suspend_after=SIX_DAYS, account_id="acme"
    )
    assert (body["state"], body["last_error"]) == (state, last_error)
