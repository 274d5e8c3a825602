"""The router's watchdog and supervisor decisions, on a fake clock (no waiting)."""

from __future__ import annotations

import threading

import pytest

from auditstream.pipeline.watchdog import (
    EXIT_STALLED,
    EXIT_STOP_TIMEOUT,
    Supervisor,
    Watchdog,
    supervise,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_no_stall_while_beats_come_within_the_timeout() -> None:
    clock = FakeClock()
    dog = Watchdog(10.0, clock)
    for _ in range(5):
        clock.now += 9.0
        assert dog.stalled() is None
        dog.beat("polling the activity topic")


def test_stall_names_the_phase_the_loop_is_stuck_in() -> None:
    clock = FakeClock()
    dog = Watchdog(10.0, clock)
    dog.beat("in the routing transaction")
    clock.now += 10.0
    assert dog.stalled() is None  # exactly the timeout is not yet a stall
    clock.now += 0.5
    stall = dog.stalled()
    assert stall is not None
    assert stall.phase == "in the routing transaction"
    assert stall.seconds == pytest.approx(10.5)


def test_supervisor_exits_stalled_with_one_line_saying_why() -> None:
    clock = FakeClock()
    dog = Watchdog(30.0, clock)
    sup = Supervisor("router", dog, stop_grace=5.0)
    dog.beat("in the routing transaction")
    clock.now += 29.0
    assert sup.check(stop_requested=False, now=clock.now) is None
    clock.now += 2.0
    verdict = sup.check(stop_requested=False, now=clock.now)
    assert verdict is not None
    code, line = verdict
    assert code == EXIT_STALLED
    assert "router stalled: no progress for 31.0 s (limit 30 s)" in line
    assert "in the routing transaction" in line
    assert "\n" not in line


def test_stop_request_is_bounded_by_the_grace_even_when_not_stalled() -> None:
    clock = FakeClock()
    dog = Watchdog(120.0, clock)
    sup = Supervisor("router", dog, stop_grace=5.0)
    dog.beat("in the routing transaction")
    assert sup.check(stop_requested=True, now=clock.now) is None
    clock.now += 5.0
    assert sup.check(stop_requested=True, now=clock.now) is None
    clock.now += 0.1
    verdict = sup.check(stop_requested=True, now=clock.now)
    assert verdict is not None
    assert verdict[0] == EXIT_STOP_TIMEOUT
    assert "did not stop within 5 s" in verdict[1]


def test_a_stop_request_replaces_the_stall_verdict() -> None:
    # Once asked to stop, the stop grace decides: a stalled loop is not also "restarted".
    clock = FakeClock()
    dog = Watchdog(1.0, clock)
    sup = Supervisor("router", dog, stop_grace=5.0)
    clock.now += 2.0
    assert sup.check(stop_requested=True, now=clock.now) is None


def test_timeout_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        Watchdog(0.0)


def test_supervise_returns_when_the_loop_ends_and_raises_what_it_raised() -> None:
    stop = threading.Event()
    stop.set()
    ran: list[bool] = []

    def loop(s: threading.Event) -> None:
        ran.append(s.is_set())

    def no_exit(code: int) -> None:
        raise AssertionError(f"exit {code}")

    supervise("router", loop, stop, Watchdog(60.0), exit_process=no_exit)  # type: ignore[arg-type]
    assert ran == [True]

    def failing(_s: threading.Event) -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        supervise("router", failing, stop, Watchdog(60.0), exit_process=no_exit)  # type: ignore[arg-type]
