"""Token buckets and the export cap (pure, with a hand-moved clock)."""

from __future__ import annotations

import pytest

from auditstream.api.options import ApiOptions
from auditstream.api.rate_limits import ConcurrencyCap, TokenBuckets, retry_after


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_then_the_rate() -> None:
    clock = Clock()
    buckets = TokenBuckets(rate=20, burst=40, clock=clock)
    assert [buckets.take("t1") for _ in range(40)] == [0.0] * 40
    assert buckets.take("t1") == pytest.approx(0.05)
    clock.now += 0.05
    assert buckets.take("t1") == 0.0
    assert buckets.take("t1") == pytest.approx(0.05)
    clock.now += 10  # refills to the burst, never above it
    assert [buckets.take("t1") for _ in range(40)] == [0.0] * 40
    assert buckets.take("t1") > 0


def test_buckets_are_per_key() -> None:
    buckets = TokenBuckets(rate=1, burst=1, clock=Clock())
    assert buckets.take("t1") == 0.0
    assert buckets.take("t1") == pytest.approx(1.0)
    assert buckets.take("t2") == 0.0


def test_a_refused_request_takes_nothing() -> None:
    clock = Clock()
    buckets = TokenBuckets(rate=2, burst=1, clock=clock)
    buckets.take("t")
    for _ in range(100):
        assert buckets.take("t") == pytest.approx(0.5)
    clock.now += 0.5
    assert buckets.take("t") == 0.0


def test_a_clock_stepping_back_neither_refills_nor_drains() -> None:
    clock = Clock()
    buckets = TokenBuckets(rate=1, burst=2, clock=clock)
    buckets.take("t")
    clock.now -= 3600
    assert buckets.take("t") == 0.0
    assert buckets.take("t") > 0
    clock.now += 1  # still behind the last time seen: no refill yet
    assert buckets.take("t") > 0


def test_full_buckets_are_dropped_when_the_table_grows() -> None:
    clock = Clock()
    buckets = TokenBuckets(rate=100, burst=10, clock=clock)
    for i in range(10_000):
        buckets.take(f"t{i}")
    clock.now += 1  # every bucket is full again
    buckets.take("late")
    assert len(buckets) == 1


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (-1, 1), (1, 0)])
def test_bad_settings(rate: float, burst: int) -> None:
    with pytest.raises(ValueError, match="rate limit"):
        TokenBuckets(rate, burst, Clock())


def test_concurrency_cap() -> None:
    cap = ConcurrencyCap(2)
    assert cap.try_acquire("acme")
    assert cap.try_acquire("acme")
    assert not cap.try_acquire("acme")
    assert cap.try_acquire("globex")
    cap.release("acme")
    assert cap.held("acme") == 1
    assert cap.try_acquire("acme")
    cap.release("acme")
    cap.release("acme")
    cap.release("acme")  # one too many never goes below zero
    assert cap.held("acme") == 0
    assert cap.try_acquire("acme")
    assert cap.try_acquire("acme")
    with pytest.raises(ValueError, match="at least 1"):
        ConcurrencyCap(0)


@pytest.mark.parametrize(("seconds", "header"), [(0.0, 1), (0.05, 1), (1.0, 1), (1.01, 2)])
def test_retry_after(seconds: float, header: int) -> None:
    assert retry_after(seconds) == header


@pytest.mark.parametrize(
    "changes",
    [
        {"activity_reads_per_second": 0},
        {"activity_reads_per_second": float("nan")},
        {"activity_read_burst": 0},
        {"exports_per_account": 0},
        {"activity_read_threads": 0},
    ],
)
def test_activity_limits_are_checked_at_start_up(changes: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be"):
        ApiOptions(**changes)  # type: ignore[arg-type]


def test_activity_limit_defaults() -> None:
    options = ApiOptions()
    assert (options.activity_reads_per_second, options.activity_read_burst) == (20.0, 40)
    assert (options.exports_per_account, options.activity_read_threads) == (2, 8)
