"""The simulator: draws each event's activity, account and actor, lets the activity's handler
build its parts, and assembles the event."""

from __future__ import annotations

import random
from bisect import bisect
from collections.abc import Iterator
from datetime import UTC, datetime
from itertools import accumulate

from auditstream.producers.simulator import activities, people
from auditstream.producers.simulator.activities import Spec
from auditstream.producers.simulator.assembly import build_event
from auditstream.producers.simulator.clock import Clock, EventClock, WallClock
from auditstream.producers.simulator.config import SimulatorConfig
from auditstream.producers.simulator.handlers import Parts, handler_for
from auditstream.producers.simulator.handlers.parts import NO_CHANGES
from auditstream.producers.simulator.state import Account, Member
from auditstream.producers.simulator.world import World
from auditstream.schemas.event import ActivityEvent, AuthMethod

__all__ = ["Simulator"]


class Simulator:
    """Generates a reproducible stream of realistic audit events (see the package doc).

    Raises ``ValueError`` for a config without accounts, with an empty account id, with a
    ``late_fraction`` outside [0, 1], with an unknown ``clock``, or with a ``start`` for the
    wall clock.
    """

    def __init__(self, config: SimulatorConfig) -> None:
        accounts = list(dict.fromkeys(config.accounts))
        if not accounts:
            raise ValueError("SimulatorConfig.accounts must name at least one account")
        if any(not isinstance(a, str) or not a for a in accounts):
            raise ValueError("account ids must be non-empty strings")
        if not 0.0 <= config.late_fraction <= 1.0:
            raise ValueError(f"late_fraction must be within [0, 1], not {config.late_fraction}")
        self.config = config
        self._rng = random.Random(config.seed)
        self._clock = _make_clock(config)
        self._world = World(self._rng)

        self._specs = activities.specs()
        self._activity_cum = list(accumulate(s.profile.weight for s in self._specs))
        self._handlers = {s.key: handler_for(s.category, s.key) for s in self._specs}
        self._login_spec = next(s for s in self._specs if s.key == "user_login")

        self._accounts, self._account_cum = people.make_accounts(self._world, accounts)

    def events(self, count: int) -> Iterator[ActivityEvent]:
        """Yield the next ``count`` events; successive calls continue the same sequence.

        Raises ``ValueError`` if ``count`` is negative.
        """
        if count < 0:
            raise ValueError("count must be >= 0")
        rng = self._rng
        rand = rng.random
        clock = self._clock
        pending = self._world.pending_logins
        specs = self._specs
        act_cum = self._activity_cum
        act_total = act_cum[-1]
        accounts = self._accounts
        acct_cum = self._account_cum
        acct_total = acct_cum[-1]
        for _ in range(count):
            if pending:
                target, joined = pending.popleft()
                clock.tick_switch_login(rng)
                yield self._switch_login(target, joined)
                continue
            clock.tick(rng)
            spec = specs[bisect(act_cum, rand() * act_total)]
            acct = accounts[bisect(acct_cum, rand() * acct_total)]
            yield self._activity(spec, acct)

    def _activity(self, spec: Spec, acct: Account) -> ActivityEvent:
        member, auth = self._draw_actor(spec, acct)
        parts = self._handlers[spec.key](self._world, acct, member, spec.key)
        if parts.actor is not None and parts.actor is not member:
            member = parts.actor
            auth = member.login_method
        event = build_event(self._rng, self._clock, acct, spec, member, auth, parts)
        if spec.profile.ends_session and member is not None:
            member.session = None
        return event

    def _draw_actor(self, spec: Spec, acct: Account) -> tuple[Member | None, AuthMethod]:
        """Who performs ``spec`` in ``acct`` (None: the platform) and how they authenticate."""
        rand = self._rng.random
        profile = spec.profile
        if profile.system_share and rand() < profile.system_share:
            return None, "system"
        pool = acct.admins() if profile.admin_only else acct.members
        member = pool[int(rand() * len(pool))]
        if profile.api_key_share and rand() < profile.api_key_share:
            return member, "api_key"
        return member, member.login_method

    def _switch_login(self, acct: Account, member: Member) -> ActivityEvent:
        """The ``user_login`` a team switch produces in the account switched to."""
        member.session = f"{self._rng.getrandbits(128):032x}"
        method = member.login_method
        parts = Parts(None, NO_CHANGES, {"activity": "switch_team", "login_method": method})
        return build_event(self._rng, self._clock, acct, self._login_spec, member, method, parts)


def _make_clock(config: SimulatorConfig) -> EventClock:
    """The clock ``config`` asks for. Raises ``ValueError`` for an unknown clock, or for a
    ``start`` with the wall clock (which always reads the present)."""
    if config.clock == "wall":
        if config.start is not None:
            raise ValueError("start applies to the synthetic clock only: the wall clock is now")
        return WallClock(config.late_fraction)
    if config.clock != "synthetic":
        raise ValueError(f"clock must be 'synthetic' or 'wall', not {config.clock!r}")
    start = config.start if config.start is not None else datetime.now(UTC)
    return Clock(start, config.late_fraction)
