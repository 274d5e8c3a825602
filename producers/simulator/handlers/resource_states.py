"""Handlers of the activities with their own effect on a resource: recipe runs, clones and
scope, connection status, package export and import, connector releases, endpoint status and
access-profile tokens."""

from __future__ import annotations

from auditstream.producers.simulator import resources
from auditstream.producers.simulator import vocabulary as words
from auditstream.producers.simulator.handlers.parts import NO_CHANGES, Handler, Parts, change
from auditstream.producers.simulator.state import Account, AccountResource, Member
from auditstream.producers.simulator.world import World

__all__ = ["HANDLERS"]


def _recipe_started(world: World, acct: Account, _member: Member | None, _key: str) -> Parts:
    res = resources.pick(world, acct, "recipe")
    res.flag = True
    return Parts(res.as_resource(), NO_CHANGES, {"recipe_version": str(res.version)})


def _recipe_stopped(world: World, acct: Account, member: Member | None, _key: str) -> Parts:
    res = resources.pick(world, acct, "recipe")
    res.flag = False
    details = {"recipe_version": str(res.version)}
    if member is None:
        details["stop_reason"] = world.rng.choice(words.SYSTEM_STOP_REASONS)
    return Parts(res.as_resource(), NO_CHANGES, details)


def _recipe_cloned(world: World, acct: Account, _member: Member | None, _key: str) -> Parts:
    src = resources.pick(world, acct, "recipe")
    copy = AccountResource("recipe", world.new_id(), f"Copy of {src.name}", src.parent)
    resources.pool(world, acct, "recipe").append(copy)
    details = {"copy_id": copy.rid, "copy_name": copy.name}
    return Parts(src.as_resource(), NO_CHANGES, details)


def _access_scope(world: World, acct: Account, _member: Member | None, _key: str) -> Parts:
    res = resources.pick(world, acct, "recipe")
    old = "public" if res.value == "public" else "private"
    res.value = "private" if old == "public" else "public"
    return Parts(res.as_resource(), [change("access_scope", old, res.value)], {})


def _connected(flag: bool) -> str:
    return "connected" if flag else "disconnected"


def _connection_connected(world: World, acct: Account, _member: Member | None, _key: str) -> Parts:
    res = resources.pick(world, acct, "connection")
    if world.rng.random() < 0.05:
        return Parts(res.as_resource(), NO_CHANGES, {}, world.rng.choice(words.CONNECT_FAILURES))
    old = _connected(res.flag)
    res.flag = True
    return Parts(res.as_resource(), [change("status", old, "connected")], {})


def _connection_disconnected(
    world: World, acct: Account, member: Member | None, _key: str
) -> Parts:
    res = resources.pick(world, acct, "connection")
    old = _connected(res.flag)
    res.flag = False
    details = {"trigger": "credentials_expired"} if member is None else {}
    return Parts(res.as_resource(), [change("status", old, "disconnected")], details)


def _package_exported(world: World, acct: Account, _member: Member | None, _key: str) -> Parts:
    manifest = resources.pick(world, acct, "manifest")
    name = f"{manifest.name.lower().replace(' ', '_')}_{manifest.version}.zip"
    package = AccountResource("package", world.new_id(), name, manifest.parent)
    details = {"manifest_id": manifest.rid, "manifest_name": manifest.name}
    return Parts(package.as_resource(), NO_CHANGES, details)


def _package_imported(world: World, acct: Account, _member: Member | None, _key: str) -> Parts:
    rng = world.rng
    name = f"{rng.choice(words.FOLDER_NAMES).lower().replace(' ', '_')}_{rng.randint(1, 60)}.zip"
    package = AccountResource("package", world.new_id(), name, resources.folder(world, acct))
    if rng.random() < 0.04:
        return Parts(package.as_resource(), NO_CHANGES, {}, rng.choice(words.IMPORT_FAILURES))
    details = {"assets": str(rng.randint(1, 40))}
    return Parts(package.as_resource(), NO_CHANGES, details)


def _connector_released(world: World, acct: Account, _member: Member | None, _key: str) -> Parts:
    res = resources.pick(world, acct, "custom_connector")
    old = str(res.version)
    res.version += 1
    return Parts(res.as_resource(), [change("released_version", old, str(res.version))], {})


def _active(flag: bool) -> str:
    return "active" if flag else "inactive"


def _endpoint_toggled(world: World, acct: Account, _member: Member | None, key: str) -> Parts:
    res = resources.pick(world, acct, "api_endpoint")
    active = key == "api_endpoint_activated"
    old = _active(res.flag)
    res.flag = active
    return Parts(res.as_resource(), [change("status", old, _active(active))], {})


def _token_refreshed(world: World, acct: Account, _member: Member | None, _key: str) -> Parts:
    res = resources.pick(world, acct, "api_access_profile")
    details = {"token_suffix": f"{world.rng.getrandbits(16):04x}"}
    return Parts(res.as_resource(), NO_CHANGES, details)


HANDLERS: dict[str, Handler] = {
    "recipe_started": _recipe_started,
    "recipe_stopped": _recipe_stopped,
    "recipe_cloned": _recipe_cloned,
    "recipe_access_scope_updated": _access_scope,
    "connection_connected": _connection_connected,
    "connection_disconnected": _connection_disconnected,
    "package_exported": _package_exported,
    "package_imported": _package_imported,
    "custom_connector_released": _connector_released,
    "api_endpoint_activated": _endpoint_toggled,
    "api_endpoint_deactivated": _endpoint_toggled,
    "api_access_profile_token_refreshed": _token_refreshed,
}
