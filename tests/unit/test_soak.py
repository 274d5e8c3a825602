"""The soak's pure parts: reading RSS from /proc status text, lag from offsets, the memory
flatness verdict and the lag's recovery after each fault."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.soak import (
    FLAT_TOLERANCE,
    Readings,
    Recovery,
    lag,
    memory_verdict,
    recoveries,
    rss_mib,
)


@pytest.mark.parametrize(
    ("status", "mib"),
    [
        ("Name:\tpython\nVmRSS:\t  102400 kB\nThreads:\t4\n", 100.0),
        ("VmRSS:\t1024 kB", 1.0),
        ("Name:\tkworker\nThreads:\t1\n", None),  # a kernel thread has no VmRSS
        ("VmRSS:\n", None),  # cut short while the process ends
        ("VmRSS:\tlots kB\n", None),
        ("", None),
    ],
)
def test_rss_from_proc_status(status: str, mib: float | None) -> None:
    assert rss_mib(status) == mib


@pytest.mark.parametrize(
    ("end", "committed", "want"),
    [
        ({0: 10, 1: 5}, {0: 10, 1: 5}, 0),
        ({0: 10, 1: 5}, {0: 4}, 6 + 5),  # no commit yet on partition 1: all of it
        ({0: 10}, {0: 12}, 0),  # committed read after the end: never negative
        ({}, {0: 3}, 0),
    ],
)
def test_lag_sums_what_is_not_committed(
    end: dict[int, int], committed: dict[int, int], want: int
) -> None:
    assert lag(end, committed) == want


def _flat(values: list[float], step: float = 5.0) -> list[tuple[float, float]]:
    return [(i * step, v) for i, v in enumerate(values)]


@pytest.mark.parametrize(
    ("values", "flat"),
    [
        ([100.0] * 30, True),
        ([100.0] * 10 + [300.0] + [100.0] * 10 + [110.0] * 9, True),  # a spike is not growth
        ([100.0 + 2 * i for i in range(30)], False),  # steady growth: +58 % over the run
        ([100.0] * 20 + [100.0 * (1 + FLAT_TOLERANCE) + 1] * 10, False),
        ([150.0] * 10 + [100.0] * 20, True),  # shrinking is flat
    ],
)
def test_memory_is_flat_unless_the_last_median_grew(values: list[float], flat: bool) -> None:
    verdict = memory_verdict(_flat(values))
    assert verdict is not None
    assert verdict.flat is flat


def test_memory_windows_are_ten_minutes_on_a_long_run() -> None:
    samples = _flat([100.0] * 120 + [200.0] * 240 + [130.0] * 120)  # 40 minutes
    verdict = memory_verdict(samples)
    assert verdict is not None
    assert verdict.window_s == 600.0
    assert (verdict.first_mib, verdict.last_mib) == (100.0, 130.0)
    assert memory_verdict(samples[:1]) is None


def test_lag_recovery_is_measured_after_its_peak_and_before_the_next_fault() -> None:
    lags = [(0.0, 0), (5.0, 10), (10.0, 900), (15.0, 400), (20.0, 50), (25.0, 20),
            (30.0, 800), (35.0, 700), (40.0, 600)]  # fmt: skip
    faults_at = [(4.0, "kill9-router"), (28.0, "broker"), (50.0, "store")]
    assert recoveries(lags, faults_at, threshold=100) == [
        Recovery("kill9-router", 4.0, 900, 16.0),
        Recovery("broker", 28.0, 800, None),  # still 600 when the next fault came
        Recovery("store", 50.0, 0, None),  # no reading after it
    ]


def test_a_fault_the_lag_never_felt_is_back_at_the_first_reading() -> None:
    lags = [(0.0, 5), (5.0, 5), (10.0, 80), (15.0, 5)]
    assert recoveries(lags, [(2.0, "webhook503")], threshold=100) == [
        Recovery("webhook503", 2.0, 80, 3.0)
    ]


def test_readings_sum_a_role_per_reading_and_write_csv(tmp_path: Path) -> None:
    r = Readings()
    r.add(5.0, "rss_mib", "router-01", 80.0)
    r.add(5.0, "rss_mib", "worker-02", 120.0)
    r.add(5.0, "rss_mib", "worker-03", 30.0)
    r.add(10.0, "rss_mib", "worker-03", None)  # gone between listing and reading
    r.add(5.0, "lag", "auditstream-router", 12.0)
    r.fault(7.0, "kill9-worker")
    assert r.series("rss_mib", "worker") == [(5.0, 150.0)]
    assert r.series("rss_mib", "router") == [(5.0, 80.0)]
    assert r.series("lag", "auditstream-router") == [(5.0, 12.0)]
    r.write_csv(tmp_path / "soak.csv")
    lines = (tmp_path / "soak.csv").read_text().splitlines()
    assert lines[0] == "t_s,kind,name,value"
    assert "7.0,fault,kill9-worker," in lines
    assert "10.0,rss_mib,worker-03," in lines
