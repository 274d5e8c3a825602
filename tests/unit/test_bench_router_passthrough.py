"""The pure helpers of bench/router_passthrough.py."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest

from bench.router_passthrough import (
    BATCH_SIZE,
    RouterProcess,
    Spread,
    balanced,
    exited,
    next_offsets,
    parse_args,
    round_ratios,
    routed_to_end,
    spread_partition,
)


@pytest.mark.parametrize(
    ("values", "median", "low", "high", "spread_pct"),
    [
        ([10.0], 10.0, 10.0, 10.0, 0.0),
        ([9.0, 10.0, 12.0], 10.0, 9.0, 12.0, 30.0),
        ([4.0, 2.0], 3.0, 2.0, 4.0, 200.0 / 3.0),
    ],
)
def test_spread(
    values: list[float], median: float, low: float, high: float, spread_pct: float
) -> None:
    s = Spread.of(values)
    assert (s.median, s.low, s.high) == (median, low, high)
    assert s.spread_pct == pytest.approx(spread_pct)


def test_spread_of_nothing_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one"):
        Spread.of([])


def test_spread_of_zeros_has_no_percentage() -> None:
    assert math.isnan(Spread.of([0.0, 0.0]).spread_pct)


@pytest.mark.parametrize(
    ("ours", "raw", "expected"),
    [
        ([8.0, 9.0], [10.0, 10.0], [0.8, 0.9]),
        ([], [], []),
    ],
)
def test_round_ratios(ours: list[float], raw: list[float], expected: list[float]) -> None:
    assert round_ratios(ours, raw) == pytest.approx(expected)


def test_round_ratio_against_zero_is_nan_and_uneven_rounds_are_refused() -> None:
    assert math.isnan(round_ratios([1.0], [0.0])[0])
    with pytest.raises(ValueError, match="rounds"):
        round_ratios([1.0], [1.0, 2.0])


@pytest.mark.parametrize(
    ("index", "partitions", "expected"),
    [(0, 1, 0), (5, 1, 0), (0, 2, 0), (1, 2, 1), (7, 2, 1), (9, 4, 1)],
)
def test_spread_partition(index: int, partitions: int, expected: int) -> None:
    assert spread_partition(index, partitions) == expected


def test_spread_partition_needs_a_partition() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        spread_partition(0, 0)


@pytest.mark.parametrize(
    ("positions", "expected"),
    [
        ([], {}),
        ([("t", 0, 4)], {("t", 0): 5}),
        ([("t", 0, 4), ("t", 1, 2), ("t", 0, 9), ("t", 0, 7)], {("t", 0): 10, ("t", 1): 3}),
    ],
)
def test_next_offsets(
    positions: list[tuple[str, int, int]], expected: dict[tuple[str, int], int]
) -> None:
    assert next_offsets(positions) == expected


@pytest.mark.parametrize(
    ("committed", "targets", "expected"),
    [
        ({}, {}, True),
        ({0: 10, 1: 10}, {0: 10, 1: 10}, True),
        ({0: 10, 1: 9}, {0: 10, 1: 10}, False),
        ({0: 10}, {0: 10, 1: 1}, False),
        ({0: 11, 1: 12}, {0: 10, 1: 10}, True),
    ],
)
def test_routed_to_end(committed: dict[int, int], targets: dict[int, int], expected: bool) -> None:
    assert routed_to_end(committed, targets) is expected


@pytest.mark.parametrize(
    ("assignments", "members", "partitions", "expected"),
    [
        ([[0, 1]], 1, 2, True),
        ([[0], [1]], 2, 2, True),
        ([[0, 1], []], 2, 2, False),  # the second member owns nothing yet
        ([[0, 1]], 2, 2, False),  # only one member joined
        ([[0], [0]], 2, 2, False),  # a partition twice, another none
        ([], 1, 1, False),
    ],
)
def test_balanced(
    assignments: list[list[int]], members: int, partitions: int, expected: bool
) -> None:
    assert balanced(assignments, members, partitions) is expected


@pytest.mark.parametrize(
    "argv",
    [
        ["--events", str(2 * BATCH_SIZE - 1)],
        ["--events", "-5"],
        ["--rounds", "0"],
        ["--partitions", "0"],
        ["--partitions", "9"],
        ["--events", "1e9"],
        ["--events", "'; DROP TABLE x; --"],
    ],
)
def test_bad_arguments_are_refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        parse_args(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--" in err or "invalid" in err


def test_defaults() -> None:
    args = parse_args([])
    assert (args.events, args.rounds, args.partitions) == (50_000, 3, 1)


def test_an_ended_router_process_says_its_status_and_output(tmp_path: Path) -> None:
    log = tmp_path / "router.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "print('kafka: no answer from 127.0.0.1:1'); raise SystemExit(3)",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    proc.wait()
    why = exited([RouterProcess(proc, log)])
    assert why is not None
    assert "exited with status 3" in why
    assert "no answer from 127.0.0.1:1" in why


def test_a_running_router_process_has_not_ended(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )
    try:
        assert exited([RouterProcess(proc, tmp_path / "missing.log")]) is None
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait()
    assert "(no output)" in (exited([RouterProcess(proc, tmp_path / "missing.log")]) or "")
