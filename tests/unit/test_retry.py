"""The retry predicate and policy, table-driven."""

from __future__ import annotations

import pytest

from auditstream.sinks import retry
from auditstream.sinks.errors import DeliveryError, PermanentError, TransientError


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (TransientError("timeout", cause="timeout"), True),
        (TransientError("429", retry_after=3), True),
        (PermanentError("403"), False),
        (DeliveryError("generic"), False),
        (ValueError("bug"), False),
        (KeyboardInterrupt(), False),
    ],
)
def test_is_retryable(exc: BaseException, expected: bool) -> None:
    assert retry.is_retryable(exc) is expected


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (200, False),
        (400, False),
        (401, False),
        (403, False),
        (404, False),
        (408, True),
        (413, False),
        (429, True),
        (500, True),
        (502, True),
        (503, True),
        (504, True),
    ],
)
def test_is_retryable_status(status: int, expected: bool) -> None:
    assert retry.is_retryable_status(status) is expected


def test_wait_is_full_jitter_and_capped() -> None:
    policy = retry.RetryPolicy(base=1.0, max_wait=4.0)
    for attempt in range(1, 10):
        ceiling = min(4.0, 2 ** (attempt - 1))
        waits = [policy.wait_seconds(attempt, TransientError("x")) for _ in range(200)]
        assert all(0 <= w <= ceiling for w in waits)
        assert max(waits) > ceiling / 2  # spread over the range, not a constant


@pytest.mark.parametrize(("asked", "expected"), [(2.5, 2.5), (0, 0.0), (500, 60.0)])
def test_retry_after_is_honoured_and_capped(asked: float, expected: float) -> None:
    exc = TransientError("slow down", retry_after=asked)
    assert retry.RetryPolicy(max_retry_after=60).wait_seconds(1, exc) == expected


def test_call_stops_after_bounded_attempts_and_reraises() -> None:
    calls: list[int] = []
    slept: list[float] = []

    def always_down() -> None:
        calls.append(1)
        raise TransientError("down")

    with pytest.raises(TransientError):
        retry.call(always_down, policy=retry.RetryPolicy(attempts=4), sleep=slept.append)
    assert len(calls) == 4
    assert len(slept) == 3


def test_call_does_not_retry_permanent_errors() -> None:
    calls: list[int] = []

    def refused() -> None:
        calls.append(1)
        raise PermanentError("401")

    with pytest.raises(PermanentError):
        retry.call(refused, policy=retry.RetryPolicy(), sleep=lambda _s: None)
    assert calls == [1]


def test_call_reports_retries() -> None:
    seen: list[str] = []
    state = {"n": 0}

    def flaky() -> str:
        state["n"] += 1
        if state["n"] < 3:
            raise TransientError("x", cause="http_503")
        return "ok"

    result = retry.call(
        flaky,
        policy=retry.RetryPolicy(),
        on_retry=lambda exc, _s: seen.append(getattr(exc, "cause", "")),
        sleep=lambda _s: None,
    )
    assert result == "ok"
    assert seen == ["http_503", "http_503"]
