"""A loop that cannot hang silently: a watchdog on its progress, and a bounded stop.

The loop (the router's steps) runs in a thread of its own; the main thread stays free to take
signals and checks, every second, that the loop made progress within ``stall_timeout``
seconds. A Kafka client call can block past its own timeout (seen after a broker restart,
inside ``send_offsets_to_transaction``/``commit_transaction``), and a Python signal handler
only runs once the main thread is back from such a call: with the loop elsewhere, SIGTERM is
always seen.

When the loop stalls, or does not end within ``stop_grace`` seconds of a stop request, the
process logs one line and ends with :data:`EXIT_STALLED` or :data:`EXIT_STOP_TIMEOUT` (via
``os._exit``: the stuck thread cannot be joined, and its open transaction is fenced or
expires on the broker); its supervisor restarts it.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn

log = logging.getLogger(__name__)

EXIT_STALLED = 75
"""Exit status when the loop made no progress for the stall timeout (EX_TEMPFAIL: restart)."""
EXIT_STOP_TIMEOUT = 143
"""Exit status when the loop did not end within the grace after SIGTERM (as if killed by it)."""

DEFAULT_STALL_TIMEOUT_S = 120.0
DEFAULT_STOP_GRACE_S = 20.0


@dataclass(frozen=True, slots=True)
class Stall:
    seconds: float
    phase: str


class Watchdog:
    """Progress of a loop: ``beat(phase)`` says a step completed and names what it does next;
    ``stalled()`` says whether the last beat is older than ``stall_timeout``. ``clock`` is
    monotonic seconds (a fake one in tests)."""

    def __init__(self, stall_timeout: float, clock: Callable[[], float] = time.monotonic) -> None:
        if stall_timeout <= 0:
            raise ValueError("the stall timeout must be positive")
        self.stall_timeout = stall_timeout
        self._clock = clock
        # One tuple, replaced whole: read from another thread without a lock.
        self._last: tuple[float, str] = (clock(), "starting")

    def beat(self, phase: str) -> None:
        self._last = (self._clock(), phase)

    def idle(self) -> Stall:
        """Seconds since the last beat, and the phase it named."""
        at, phase = self._last
        return Stall(self._clock() - at, phase)

    def stalled(self) -> Stall | None:
        idle = self.idle()
        return idle if idle.seconds > self.stall_timeout else None


class Supervisor:
    """The decisions of the main thread, one ``check`` per tick (pure given the clock):
    None to go on, or the exit status and the line to log before ending the process."""

    def __init__(self, name: str, watchdog: Watchdog, stop_grace: float) -> None:
        self._name = name
        self._watchdog = watchdog
        self._grace = stop_grace
        self._stop_at: float | None = None

    def check(self, *, stop_requested: bool, now: float) -> tuple[int, str] | None:
        if stop_requested:
            if self._stop_at is None:
                self._stop_at = now
            if now - self._stop_at > self._grace:
                idle = self._watchdog.idle()
                return (
                    EXIT_STOP_TIMEOUT,
                    f"{self._name} did not stop within {self._grace:g} s of the stop request "
                    f"(no progress for {idle.seconds:.0f} s while {idle.phase}); exiting with "
                    f"status {EXIT_STOP_TIMEOUT}",
                )
            return None
        stall = self._watchdog.stalled()
        if stall is not None:
            return (
                EXIT_STALLED,
                f"{self._name} stalled: no progress for {stall.seconds:.1f} s (limit "
                f"{self._watchdog.stall_timeout:g} s) while {stall.phase}; exiting with status "
                f"{EXIT_STALLED} to be restarted",
            )
        return None


def _exit_now(code: int) -> NoReturn:
    logging.shutdown()  # flush the handlers: os._exit skips every cleanup
    sys.stderr.flush()
    os._exit(code)


def supervise(
    name: str,
    loop: Callable[[threading.Event], None],
    stop: threading.Event,
    watchdog: Watchdog,
    *,
    stop_grace: float = DEFAULT_STOP_GRACE_S,
    tick: float = 1.0,
    exit_process: Callable[[int], NoReturn] = _exit_now,
) -> None:
    """Run ``loop(stop)`` in a thread until it returns; re-raises what it raised. Ends the
    process (``exit_process``) with :data:`EXIT_STALLED` when ``watchdog`` sees a stall, or
    with :data:`EXIT_STOP_TIMEOUT` when the loop outlives ``stop`` by ``stop_grace``."""
    failure: list[BaseException] = []

    def body() -> None:
        try:
            loop(stop)
        except BaseException as exc:  # handed to the main thread, raised there
            failure.append(exc)

    thread = threading.Thread(target=body, name=name, daemon=True)
    supervisor = Supervisor(name, watchdog, stop_grace)
    thread.start()
    while thread.is_alive():
        thread.join(tick)
        if not thread.is_alive():
            break
        verdict = supervisor.check(stop_requested=stop.is_set(), now=time.monotonic())
        if verdict is not None:
            code, line = verdict
            log.error("%s", line)
            exit_process(code)
    if failure:
        raise failure[0]
