"""Handlers of the team activities: invitations, members' roles and custom roles."""

from __future__ import annotations

from auditstream.producers.simulator import people, resources
from auditstream.producers.simulator import vocabulary as words
from auditstream.producers.simulator.handlers.parts import NO_CHANGES, Handler, Parts, change
from auditstream.producers.simulator.state import Account, AccountResource, Member
from auditstream.producers.simulator.world import World
from auditstream.schemas.event import Resource

__all__ = ["HANDLERS"]

_MAX_OPEN_INVITES = 30
_MAX_MEMBERS = 400
_MIN_MEMBERS = 6


def _roles(acct: Account) -> list[str]:
    return ["admin", "member", *(r.name for r in acct.custom_roles)]


def _invite_created(world: World, acct: Account, _member: Member | None, _key: str) -> Parts:
    invite = resources.new_resource(world, acct, "invitation")
    invite.value = world.rng.choice(_roles(acct))
    invites = resources.pool(world, acct, "invitation")
    invites.append(invite)
    if len(invites) > _MAX_OPEN_INVITES:
        del invites[0]
    return Parts(invite.as_resource(), NO_CHANGES, {"role": invite.value})


def _invite_modified(world: World, acct: Account, _member: Member | None, _key: str) -> Parts:
    invite = resources.pick(world, acct, "invitation")
    if not invite.value:
        invite.value = "member"
    old = invite.value
    invite.value = world.rng.choice([r for r in _roles(acct) if r != old])
    return Parts(invite.as_resource(), [change("role", old, invite.value)], {})


def _invite_canceled(world: World, acct: Account, _member: Member | None, _key: str) -> Parts:
    invite = resources.pick(world, acct, "invitation")
    resources.discard(world, acct, invite, keep=0)
    return Parts(invite.as_resource(), NO_CHANGES, {})


def _invite_accepted(world: World, acct: Account, _member: Member | None, _key: str) -> Parts:
    invite = resources.pick(world, acct, "invitation")
    resources.discard(world, acct, invite, keep=0)
    role = invite.value or "member"
    joined = people.new_member(world, acct, role)
    local = invite.name.split("@", 1)[0]
    first, _, last = local.partition(".")
    joined.person.email = invite.name
    joined.person.name = f"{first.title()} {last.title()}".strip()
    if len(acct.members) < _MAX_MEMBERS:
        acct.members.append(joined)
    # The person who accepts is the actor, not the member drawn for the event.
    return Parts(invite.as_resource(), NO_CHANGES, {"role": role}, actor=joined)


def _teammate(world: World, acct: Account, member: Member | None) -> Member:
    candidates = [m for m in acct.members if m.role != "owner" and m is not member]
    return world.rng.choice(candidates) if candidates else acct.members[-1]


def _user_resource(member: Member) -> Resource:
    person = member.person
    return {"type": "user", "id": person.user_id, "name": person.name, "folder": None}


def _member_updated(world: World, acct: Account, member: Member | None, _key: str) -> Parts:
    target = _teammate(world, acct, member)
    old = target.role
    if target.role != "owner":
        target.role = world.rng.choice([r for r in _roles(acct) if r != old])
    return Parts(_user_resource(target), [change("role", old, target.role)], {})


def _member_deleted(world: World, acct: Account, member: Member | None, _key: str) -> Parts:
    target = _teammate(world, acct, member)
    if len(acct.members) > _MIN_MEMBERS and target.role != "owner":
        acct.members.remove(target)
        if target in acct.switchers and len(acct.switchers) > 1:
            acct.switchers.remove(target)
    return Parts(_user_resource(target), NO_CHANGES, {"email": target.person.email})


def _role_created(world: World, acct: Account, _member: Member | None, _key: str) -> Parts:
    rng = world.rng
    taken = {r.name for r in acct.custom_roles}
    free = [n for n in words.CUSTOM_ROLES if n not in taken]
    name = rng.choice(free) if free else f"Custom role {rng.randint(2, 999)}"
    role = people.new_role(world, name)
    acct.custom_roles.append(role)
    return Parts(role.as_resource(), [change("privileges", None, role.value)], {})


def _some_custom_role(world: World, acct: Account) -> AccountResource:
    """A custom role of ``acct``, created first if it has none."""
    if not acct.custom_roles:
        acct.custom_roles.append(people.new_role(world, world.rng.choice(words.CUSTOM_ROLES)))
    return world.rng.choice(acct.custom_roles)


def _role_updated(world: World, acct: Account, _member: Member | None, _key: str) -> Parts:
    role = _some_custom_role(world, acct)
    old = role.value
    role.value = world.rng.choice([p for p in words.PRIVILEGE_SETS if p != old])
    return Parts(role.as_resource(), [change("privileges", old, role.value)], {})


def _role_deleted(world: World, acct: Account, _member: Member | None, _key: str) -> Parts:
    role = _some_custom_role(world, acct)
    if len(acct.custom_roles) > 1:
        acct.custom_roles.remove(role)
    return Parts(role.as_resource(), NO_CHANGES, {})


HANDLERS: dict[str, Handler] = {
    "invite_created": _invite_created,
    "invite_accepted": _invite_accepted,
    "invite_modified": _invite_modified,
    "invite_canceled": _invite_canceled,
    "member_updated": _member_updated,
    "member_deleted": _member_deleted,
    "role_created": _role_created,
    "role_updated": _role_updated,
    "role_deleted": _role_deleted,
}
