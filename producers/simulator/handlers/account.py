"""Handlers of the account activities: logins, team switches, identity and security settings.

Account activities without state of their own (logout, password change, ...) use ``plain``.
"""

from __future__ import annotations

from auditstream.producers.simulator import vocabulary as words
from auditstream.producers.simulator.handlers.parts import (
    NO_CHANGES,
    Handler,
    Parts,
    change,
    enabled,
)
from auditstream.producers.simulator.state import Account, Member
from auditstream.producers.simulator.world import World

__all__ = ["HANDLERS", "plain"]


def plain(_world: World, _acct: Account, _member: Member | None, _key: str) -> Parts:
    return Parts(None, NO_CHANGES, {})


def _login(world: World, _acct: Account, member: Member | None, _key: str) -> Parts:
    assert member is not None
    member.session = f"{world.rng.getrandbits(128):032x}"
    return Parts(None, NO_CHANGES, {"login_method": member.login_method})


def _login_failed(world: World, _acct: Account, member: Member | None, _key: str) -> Parts:
    assert member is not None
    method = member.login_method
    table = words.SSO_FAILURES if method == "sso" else words.PASSWORD_FAILURES
    r = world.rng.random() * 100
    reason = table[-1][0]
    for candidate, weight in table:
        r -= weight
        if r < 0:
            reason = candidate
            break
    return Parts(None, NO_CHANGES, {"login_method": method}, reason)


def _switch_team(world: World, acct: Account, _member: Member | None, _key: str) -> Parts:
    rng = world.rng
    switcher = rng.choice(acct.switchers)
    team, target = rng.choice(switcher.teams)
    if target is not None:
        joined = next((m for m in target.members if m.person is switcher.person), None)
        if joined is not None:
            world.pending_logins.append((target, joined))
    details = {"activity": "switch_team", "team": team}
    return Parts(None, NO_CHANGES, details, actor=switcher)


def _email_updated(world: World, acct: Account, member: Member | None, _key: str) -> Parts:
    assert member is not None
    person = member.person
    old = person.email
    local, _, domain = old.partition("@")
    if domain != acct.domain:
        new = f"{local}@{acct.domain}"
    else:
        new = f"{local.rstrip('0123456789')}{world.rng.randint(100, 999)}@{domain}"
    person.email = new
    return Parts(None, [change("email", old, new)], {})


def _name_updated(world: World, _acct: Account, member: Member | None, _key: str) -> Parts:
    assert member is not None
    rng = world.rng
    person = member.person
    old = person.name
    first = old.split(" ", 1)[0]
    new = f"{first} {rng.choice(words.LAST_NAMES)}"
    if new == old:
        new = f"{first} {old.split(' ', 1)[-1]}-{rng.choice(words.LAST_NAMES)}"
    person.name = new
    return Parts(None, [change("name", old, new)], {})


def _password_reset(_world: World, _acct: Account, member: Member | None, _key: str) -> Parts:
    assert member is not None
    return Parts(None, NO_CHANGES, {"email": member.person.email})


def _delegated_admin(world: World, acct: Account, _member: Member | None, key: str) -> Parts:
    rng = world.rng
    delegate = rng.choice(acct.members).person.email
    if rng.random() < 0.5:
        delegate = f"delegate.{rng.randint(1, 99)}@{acct.slug}-partner.example"
    added = key == "delegated_admin_added"
    old, new = (None, delegate) if added else (delegate, None)
    return Parts(None, [change("delegated_admin", old, new)], {"delegate_email": delegate})


def _two_factor(_world: World, _acct: Account, _member: Member | None, key: str) -> Parts:
    turned_on = key == "enabled_two_factor_authentication"
    old, new = enabled(not turned_on), enabled(turned_on)
    return Parts(None, [change("two_factor_authentication", old, new)], {})


def _error_emails(world: World, acct: Account, _member: Member | None, _key: str) -> Parts:
    old = acct.error_emails
    chosen = world.rng.sample(acct.members, min(2, len(acct.members)))
    emails = {m.person.email for m in chosen}
    new = ",".join(sorted(emails | {f"alerts@{acct.domain}"}))
    if new == old:
        new = f"alerts@{acct.domain}"
    acct.error_emails = new
    return Parts(None, [change("error_notification_emails", old, new)], {})


def _throttling(_world: World, acct: Account, _member: Member | None, _key: str) -> Parts:
    old = acct.throttling
    acct.throttling = not old
    changes = [change("error_notification_throttling", enabled(old), enabled(not old))]
    return Parts(None, changes, {})


HANDLERS: dict[str, Handler] = {
    "user_login": _login,
    "user_login_failed": _login_failed,
    "user_switched_team": _switch_team,
    "account_email_updated": _email_updated,
    "user_name_updated": _name_updated,
    "password_reset_requested": _password_reset,
    "delegated_admin_added": _delegated_admin,
    "delegated_admin_removed": _delegated_admin,
    "enabled_two_factor_authentication": _two_factor,
    "disabled_two_factor_authentication": _two_factor,
    "error_notifications_email_updated": _error_emails,
    "error_notification_throttling": _throttling,
}
