"""The sink worker's offset commits, one at a time on a thread of their own.

A consumer's synchronous commit has no timeout: on Kafka it waits for the group coordinator as
long as there is none (a broker down or restarting: "Waiting for coordinator"). Made on the
poll loop, such a commit held the whole worker, and its destinations went on reporting
``active``. The loop hands each commit to :class:`Committer` and waits for it only briefly; a
commit still running after that is a stalled commit, which the loop reports and checks again
each step, starting no other commit until it has ended.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from auditstream.pipeline.errors import LogError
from auditstream.pipeline.log import TopicPartition

Offsets = Mapping[TopicPartition, int]


@dataclass(slots=True)
class CommitOutcome:
    offsets: Offsets
    error: LogError | None


class Committer:
    """Runs ``commit`` for one set of offsets at a time on a daemon thread."""

    def __init__(self, commit: Callable[[Offsets], None]) -> None:
        self._commit = commit
        self._requests: queue.SimpleQueue[Offsets | None] = queue.SimpleQueue()
        self._outcomes: queue.SimpleQueue[CommitOutcome] = queue.SimpleQueue()
        self._running: Offsets | None = None
        self.started_at: float | None = None
        """When the commit under way started (``time.monotonic``), None when idle."""
        self._thread = threading.Thread(target=self._serve, name="offset-commits", daemon=True)
        self._thread.start()

    @property
    def busy(self) -> bool:
        return self._running is not None

    @property
    def running(self) -> Offsets | None:
        """The offsets of the commit under way."""
        return self._running

    def start(self, offsets: Offsets) -> None:
        """Commit ``offsets``. Raises ``RuntimeError`` if a commit is under way."""
        if self._running is not None:
            raise RuntimeError("a commit is under way")
        self._running = dict(offsets)
        self.started_at = time.monotonic()
        self._requests.put(self._running)

    def outcome(self, wait: float) -> CommitOutcome | None:
        """The outcome of the commit under way, waiting up to ``wait`` seconds of real time
        for it; None if it has not ended (or none was started)."""
        if self._running is None:
            return None
        try:
            done = self._outcomes.get(timeout=wait) if wait > 0 else self._outcomes.get_nowait()
        except queue.Empty:
            return None
        self._running = None
        self.started_at = None
        return done

    def close(self, timeout: float = 5.0) -> None:
        """Stop the thread once the commit under way (if any) has ended, waiting at most
        ``timeout`` seconds (a commit stuck on a broker that is gone is left to the process
        exit: the thread is a daemon)."""
        self._requests.put(None)
        self._thread.join(timeout)

    def _serve(self) -> None:
        while (offsets := self._requests.get()) is not None:
            try:
                self._commit(offsets)
            except LogError as exc:
                self._outcomes.put(CommitOutcome(offsets, exc))
            except Exception as exc:  # a broken commit must not kill the thread unseen
                self._outcomes.put(CommitOutcome(offsets, LogError(f"commit failed: {exc!r}")))
            else:
                self._outcomes.put(CommitOutcome(offsets, None))
