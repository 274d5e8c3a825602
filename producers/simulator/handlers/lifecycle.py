"""Handlers of the resource life cycle: create, update, rename, move and delete, for every
resource type; the verb is the last word of the activity key (``recipe_renamed``)."""

from __future__ import annotations

from auditstream.producers.simulator import resources
from auditstream.producers.simulator import vocabulary as words
from auditstream.producers.simulator.handlers.parts import NO_CHANGES, Handler, Parts, change
from auditstream.producers.simulator.naming import resource_name
from auditstream.producers.simulator.state import Account, AccountResource, within
from auditstream.producers.simulator.world import World
from auditstream.schemas.event import Change

__all__ = ["VERBS", "lifecycle_handler"]

_MAX_POOL = 300
"""Resources kept per type and account; beyond it the oldest after the first (the root of the
folders) is forgotten."""


def _created(world: World, acct: Account, rtype: str) -> Parts:
    res = resources.new_resource(world, acct, rtype)
    res.version = 1
    pool = resources.pool(world, acct, rtype)
    pool.append(res)
    if len(pool) > _MAX_POOL:
        del pool[1]
    return Parts(res.as_resource(), NO_CHANGES, {})


def _deleted(world: World, acct: Account, rtype: str) -> Parts:
    res = resources.pick(world, acct, rtype)
    resources.discard(world, acct, res)
    return Parts(res.as_resource(), NO_CHANGES, {})


def _renamed(world: World, acct: Account, rtype: str) -> Parts:
    res = resources.pick(world, acct, rtype)
    old = res.name
    new = resource_name(world.rng, rtype, acct.domain)
    if new == old:
        new = f"{old} (v2)"
    res.name = new
    return Parts(res.as_resource(), [change("name", old, new)], {})


def _moved(world: World, acct: Account, rtype: str) -> Parts:
    res = resources.pick(world, acct, rtype)
    old = res.parent.path() if res.parent is not None else None
    folders = resources.pool(world, acct, "folder")
    candidates = [f for f in folders if not within(f, res) and f.path() != old]
    if candidates:
        res.parent = world.rng.choice(candidates)
    else:  # Every other folder lies inside the one moved: move it into a new one.
        res.parent = AccountResource("folder", world.new_id(), f"Moved {res.name}", folders[0])
        folders.append(res.parent)
    new = res.parent.path()
    return Parts(res.as_resource(), [change("folder", old, new)], {})


def _updated(world: World, acct: Account, rtype: str) -> Parts:
    res = resources.pick(world, acct, rtype)
    rng = world.rng
    updated: Change
    if rtype == "property":
        old = res.value
        res.value = rng.choice([v for v in words.PROPERTY_VALUES if v != old])
        updated = change("value", old, res.value)
    elif rtype == "api_policy":
        old = res.value
        res.value = rng.choice([v for v in words.RATE_LIMITS if v != old])
        updated = change("rate_limit", old, res.value)
    elif rtype == "lookup_table":
        old = str(res.version)
        res.version += rng.randint(1, 50)
        updated = change("row_count", old, str(res.version))
    else:
        old = str(res.version)
        res.version += 1
        updated = change("version", old, str(res.version))
    return Parts(res.as_resource(), [updated], {})


VERBS = {
    "created": _created,
    "deleted": _deleted,
    "renamed": _renamed,
    "moved": _moved,
    "updated": _updated,
}
"""Life-cycle step by the last word of the activity key; any other word is an update."""


def lifecycle_handler(category: str, key: str) -> Handler:
    """The handler of the life-cycle activity ``key`` of ``category``."""
    rtype = resources.resource_type(category, key)
    step = VERBS.get(key.rsplit("_", 1)[1], _updated)
    return lambda world, acct, _member, _key: step(world, acct, rtype)
