"""A bounded set of daemon threads that run delivery attempts (blocking SDK calls).

Daemon threads, not ``concurrent.futures``: a process told to stop must be able to exit while
an attempt still waits on a receiver that never answers; ``ThreadPoolExecutor`` joins its
threads at exit. Threads start on demand, up to the limit. The caller bounds how much it
submits (the worker never submits more attempts than there are threads), so nothing queues
behind a hanging call.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

_STOP = None


class DeliveryThreads:
    """Up to ``limit`` daemon threads taking tasks from one queue."""

    def __init__(self, limit: int, name: str = "delivery") -> None:
        if limit < 1:
            raise ValueError("delivery threads: the limit must be at least 1")
        self.limit = limit
        self._name = name
        self._tasks: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._closed = False

    def submit(self, task: Callable[[], None]) -> None:
        """Run ``task`` on a delivery thread. ``task`` must not raise (what it raises is
        logged and dropped). Raises ``RuntimeError`` once closed."""
        with self._lock:
            if self._closed:
                raise RuntimeError("delivery threads are closed")
            if self._idle == 0 and len(self._threads) < self.limit:
                self._start_thread()
            else:
                self._idle = max(0, self._idle - 1)
        self._tasks.put(task)

    @property
    def started(self) -> int:
        """Threads started so far."""
        with self._lock:
            return len(self._threads)

    def close(self) -> None:
        """Let every thread end after its current task; does not wait for them (a call that
        never returns keeps its daemon thread, which ends with the process)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            count = len(self._threads)
        for _ in range(count):
            self._tasks.put(_STOP)

    def _start_thread(self) -> None:
        thread = threading.Thread(
            target=self._run, name=f"{self._name}-{len(self._threads) + 1}", daemon=True
        )
        self._threads.append(thread)
        thread.start()

    def _run(self) -> None:
        while True:
            task = self._tasks.get()
            if task is _STOP:
                return
            try:
                task()
            except Exception:  # a task must not raise; keep the thread alive anyway
                log.exception("delivery task failed")
            with self._lock:
                self._idle += 1
