"""Topics of removed destinations, waiting out a grace period before they are deleted (routers
and workers must have seen the removal first). Thread-safe."""

from __future__ import annotations

import threading
import time


class TopicDeletions:
    """Topic names with the monotonic time each is due for deletion."""

    def __init__(self) -> None:
        self._due: dict[str, float] = {}
        self._accounts: dict[str, str] = {}
        self._lock = threading.Lock()

    def schedule(self, topic: str, grace: float, account_id: str | None = None) -> None:
        """Delete ``topic`` (of a destination of ``account_id``) ``grace`` seconds from now."""
        with self._lock:
            self._due[topic] = time.monotonic() + grace
            if account_id is not None:
                self._accounts[topic] = account_id

    def count_for(self, account_id: str) -> int:
        """How many topics of ``account_id``'s removed destinations wait for deletion."""
        with self._lock:
            return sum(1 for topic in self._due if self._accounts.get(topic) == account_id)

    def due(self) -> list[str]:
        """The topics whose grace period is over."""
        now = time.monotonic()
        with self._lock:
            return [topic for topic, at in self._due.items() if at <= now]

    def done(self, topic: str) -> None:
        """``topic`` was deleted, or is kept after all: forget it."""
        with self._lock:
            self._due.pop(topic, None)
            self._accounts.pop(topic, None)

    def pending(self) -> set[str]:
        with self._lock:
            return set(self._due)

    def __contains__(self, topic: object) -> bool:
        with self._lock:
            return topic in self._due
