"""librdkafka's log lines through Python logging, each repeated line at most once per window.

A Kafka client that cannot reach its brokers logs every reconnect attempt, several lines a
second per client, and each process has a few clients. Given as a client's ``logger`` option,
:class:`KafkaClientLog` passes the first line of each kind to the ``auditstream.kafka`` logger
and holds back its repeats for a window; the next line of that kind after the window says how
many were held back. Lines differ only in timings and client names count as one kind
(:func:`repeat_key`).

confluent-kafka queues a client's log lines and hands them over when the client is polled, so
every line arrives in a thread that called the client; :class:`Repeats` takes a lock.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["DEFAULT_WINDOW_S", "KafkaClientLog", "LastProblem", "Repeats", "brief", "repeat_key"]

DEFAULT_WINDOW_S = 30.0
"""How long repeats of a line are held back after the line was logged."""

_MAX_KINDS = 1000
"""Kinds of lines remembered; past this, kinds not logged within the window are forgotten."""

# "(after 12ms in state CONNECT, 3 identical error(s) suppressed)" and its parts.
_TIMING = re.compile(r"\s*\(after \d+ms in state \w+(?:, \d+ identical error\(s\) suppressed)?\)")
_SUPPRESSED = re.compile(r"\s*\(?\d+ identical error\(s\) suppressed\)?")
# "[rdkafka#producer-3]": every client has its own name.
_CLIENT_NAME = re.compile(r"\[rdkafka#\w+-\d+\]")
# "FAIL [rdkafka#producer-1] [thrd:127.0.0.1:9092/bootstrap]: 127.0.0.1:9092/bootstrap: "
# before the message itself: facility, client, thread and broker.
_PREFIX = re.compile(r"^\w+ \[[^\]]*\] \[thrd:[^\]]*\]: (?:\S+/\w+: )?")


def repeat_key(line: str) -> str:
    """The kind of a log line: the line without the parts that change between repeats (the
    time spent in a connection state, librdkafka's own count of suppressed errors, the name of
    the client)."""
    key = _TIMING.sub("", line)
    key = _SUPPRESSED.sub("", key)
    return _CLIENT_NAME.sub("[rdkafka]", key)


def brief(line: str) -> str:
    """The message of a log line without its facility, client, thread and broker prefix and
    without timings, for quoting in an error message."""
    return _SUPPRESSED.sub("", _TIMING.sub("", _PREFIX.sub("", line))).strip()


@dataclass(slots=True)
class _Kind:
    logged_at: float
    held: int = 0


class Repeats:
    """Which lines of a stream to log: the first of each kind, then at most one per
    ``window_s`` seconds, each telling how many of its kind were held back before it."""

    def __init__(self, window_s: float = DEFAULT_WINDOW_S) -> None:
        if window_s < 0:
            raise ValueError(f"window_s must be >= 0, not {window_s}")
        self.window_s = window_s
        self._kinds: dict[str, _Kind] = {}
        self._lock = threading.Lock()

    def admit(self, key: str, now: float) -> int | None:
        """``None`` if a line of kind ``key`` seen at ``now`` is to be held back; otherwise the
        number of lines of that kind held back since one was last logged (0 for a new kind)."""
        with self._lock:
            kind = self._kinds.get(key)
            if kind is not None and now - kind.logged_at < self.window_s:
                kind.held += 1
                return None
            held = kind.held if kind is not None else 0
            if kind is None and len(self._kinds) >= _MAX_KINDS:
                self._forget(now)
            self._kinds[key] = _Kind(now)
            return held

    def _forget(self, now: float) -> None:
        """Drop the kinds whose window has passed (their held-back count is lost)."""
        for key in [k for k, v in self._kinds.items() if now - v.logged_at >= self.window_s]:
            del self._kinds[key]


class KafkaClientLog:
    """A client's ``logger`` option: confluent-kafka calls :meth:`log` like
    :meth:`logging.Logger.log` with the Python level of each librdkafka line."""

    def __init__(
        self,
        target: logging.Logger | None = None,
        repeats: Repeats | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._target = target if target is not None else logging.getLogger("auditstream.kafka")
        self._repeats = repeats if repeats is not None else Repeats()
        self._clock = clock

    def log(self, level: int, msg: str, *args: object) -> None:
        """Log one librdkafka line unless it repeats one logged within the window. Never
        raises: a line that cannot be formatted is logged as its parts."""
        if not self._target.isEnabledFor(level):
            return
        try:
            line = msg % args if args else msg
        except (TypeError, ValueError):
            line = " ".join(str(a) for a in (msg, *args))
        held = self._repeats.admit(repeat_key(line), self._clock())
        if held is None:
            return
        if held:
            window = self._repeats.window_s
            line = f"{line} ({held} more like it in the last {window:g} s)"
        self._target.log(level, "%s", line)


class LastProblem:
    """A client's ``logger`` option that logs nothing and keeps the last warning or error, so
    a failure can be reported as one message that names its cause."""

    def __init__(self) -> None:
        self.line: str | None = None

    def log(self, level: int, msg: str, *args: object) -> None:
        """Remember the line if it is a warning or worse. Never raises."""
        if level < logging.WARNING:
            return
        try:
            self.line = msg % args if args else msg
        except (TypeError, ValueError):
            self.line = " ".join(str(a) for a in (msg, *args))
