"""Assembles one ``ActivityEvent`` from an activity's parts and who performed it."""

from __future__ import annotations

import random
import uuid

from auditstream.producers.simulator import vocabulary as words
from auditstream.producers.simulator.activities import Spec
from auditstream.producers.simulator.clock import EventClock
from auditstream.producers.simulator.handlers.parts import Parts
from auditstream.producers.simulator.state import Account, Member
from auditstream.schemas.event import ActivityEvent, Actor, AuthMethod, Request

__all__ = ["SYSTEM_ACTOR", "build_event"]

SYSTEM_ACTOR: Actor = {
    "user_id": "system",
    "name": "System",
    "email": None,
    "role": None,
    "auth_method": "system",
}
"""The platform acting on its own (copied into each event)."""


def build_event(
    rng: random.Random,
    clock: EventClock,
    acct: Account,
    spec: Spec,
    member: Member | None,
    auth: AuthMethod,
    parts: Parts,
) -> ActivityEvent:
    """The event of ``spec`` in ``acct``, performed by ``member`` (None: the platform) with
    ``auth``, recorded now; starts the member's session if the activity needs one."""
    occurred, recorded = clock.timestamps(rng)
    actor: Actor
    request: Request | None
    if member is None:
        actor = SYSTEM_ACTOR.copy()
        request = None
    else:
        actor = _actor(member, auth)
        request = _request(rng, member, auth, sessionless=spec.profile.sessionless)
    reason = parts.reason
    return {
        "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "occurred_at": occurred,
        "recorded_at": recorded,
        "account_id": acct.account_id,
        "category": spec.category,
        "activity": spec.key,
        "actor": actor,
        "resource": parts.resource,
        "outcome": {"status": "failure" if reason else "success", "reason": reason},
        "changes": list(parts.changes),
        "request": request,
        "details": parts.details,
    }


def _actor(member: Member, auth: AuthMethod) -> Actor:
    person = member.person
    return {
        "user_id": person.user_id,
        "name": person.name,
        "email": person.email,
        "role": member.role,
        "auth_method": auth,
    }


def _request(rng: random.Random, member: Member, auth: AuthMethod, sessionless: bool) -> Request:
    person = member.person
    if auth == "api_key":
        # Derived from the person, so each person's API calls come from one client.
        user_agent = words.API_CLIENTS[len(person.name) % len(words.API_CLIENTS)]
        session_id = None
    else:
        user_agent = person.user_agent
        session_id = None if sessionless else _session(rng, member)
    ips = person.ips
    return {
        "ip": ips[0] if len(ips) == 1 or rng.random() < 0.8 else ips[1],
        "user_agent": user_agent,
        "request_id": f"{rng.getrandbits(128):032x}",
        "session_id": session_id,
    }


def _session(rng: random.Random, member: Member) -> str:
    """The member's session, started now if there is none."""
    if member.session is None:
        member.session = f"{rng.getrandbits(128):032x}"
    return member.session
