"""The simulation's shared state between events: the random sequence, the id counter and the
logins that team switches owe to the accounts switched to."""

from __future__ import annotations

import random
from collections import deque

from auditstream.producers.simulator.state import Account, Member

__all__ = ["World"]


class World:
    """Shared by the account builder, the resource pools and the activity handlers: every
    random draw goes through ``rng``, so one seed reproduces the whole sequence."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self._next_id = rng.randrange(100_000, 900_000)
        self.pending_logins: deque[tuple[Account, Member]] = deque()
        """Logins into the accounts users switched to, emitted before the next activity."""

    def new_id(self) -> str:
        """A new numeric id, unique within the simulation and increasing."""
        self._next_id += self.rng.randint(1, 40)
        return str(self._next_id)
