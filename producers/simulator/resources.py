"""The resources of each account, by type: created on first use, picked, added and removed by
the activities."""

from __future__ import annotations

from auditstream.producers.simulator import vocabulary as words
from auditstream.producers.simulator.naming import resource_name
from auditstream.producers.simulator.state import Account, AccountResource
from auditstream.producers.simulator.world import World

__all__ = [
    "FOLDER_TYPES",
    "discard",
    "folder",
    "new_resource",
    "pick",
    "pool",
    "resource_type",
]

FOLDER_TYPES = frozenset({"recipe", "connection", "folder", "manifest", "package"})
"""Resource types kept in folders (their events carry the folder path)."""

_CATEGORY_RESOURCE = {
    "connector_sdk": "custom_connector",
    "properties": "property",
}
"""Categories whose resource type is not the category key itself."""

_TEAM_RESOURCE = {"invite": "invitation", "member": "user", "role": "role"}
"""Resource type of a team activity, by the first word of its key."""


def resource_type(category: str, key: str) -> str:
    """The type of the resource the activity ``key`` of ``category`` acts on."""
    if category == "package":
        return "manifest" if key.startswith("manifest_") else "package"
    if category == "team":
        return _TEAM_RESOURCE[key.split("_", 1)[0]]
    return _CATEGORY_RESOURCE.get(category, category)


def pool(world: World, acct: Account, rtype: str) -> list[AccountResource]:
    """The resources of type ``rtype`` of ``acct``, created on first use: folders under a
    ``Home`` root, no invitations, a few of every other type (more recipes)."""
    found = acct.pools.get(rtype)
    if found is not None:
        return found
    created: list[AccountResource] = []
    acct.pools[rtype] = created
    rng = world.rng
    if rtype == "folder":
        created.append(AccountResource("folder", world.new_id(), "Home", None))
        for name in rng.sample(words.FOLDER_NAMES, rng.randint(3, 8)):
            created.append(AccountResource("folder", world.new_id(), name, rng.choice(created)))
    elif rtype != "invitation":
        low, high = (5, 40) if rtype == "recipe" else (2, 8)
        for _ in range(rng.randint(low, high)):
            created.append(new_resource(world, acct, rtype))
    return created


def folder(world: World, acct: Account) -> AccountResource:
    """A random folder of ``acct``."""
    folders = pool(world, acct, "folder")
    return folders[int(world.rng.random() * len(folders))]


def new_resource(world: World, acct: Account, rtype: str) -> AccountResource:
    """A new resource of ``acct`` (not yet in its pool) with a random version and state."""
    rng = world.rng
    name = resource_name(rng, rtype, acct.domain)
    parent = folder(world, acct) if rtype in FOLDER_TYPES else None
    res = AccountResource(rtype, world.new_id(), name, parent)
    res.version = rng.randint(1, 30)
    res.flag = rng.random() < 0.6
    if rtype == "property":
        res.value = rng.choice(words.PROPERTY_VALUES)
    elif rtype == "api_policy":
        res.value = rng.choice(words.RATE_LIMITS)
    return res


def pick(world: World, acct: Account, rtype: str) -> AccountResource:
    """A random resource of type ``rtype`` of ``acct`` (one is created if there is none);
    never the root folder."""
    resources = pool(world, acct, rtype)
    if not resources:
        resources.append(new_resource(world, acct, rtype))
    if rtype == "folder" and len(resources) > 1:
        # The root folder is never renamed, moved or deleted.
        return resources[1 + int(world.rng.random() * (len(resources) - 1))]
    return resources[int(world.rng.random() * len(resources))]


def discard(world: World, acct: Account, res: AccountResource, keep: int = 2) -> None:
    """Remove ``res`` from its pool unless only ``keep`` resources are left."""
    resources = pool(world, acct, res.rtype)
    if len(resources) > keep and res in resources:
        resources.remove(res)
