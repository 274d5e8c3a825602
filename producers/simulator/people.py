"""The accounts and their people: teams, members with roles and login methods, custom roles,
and collaborators who belong to several teams."""

from __future__ import annotations

from itertools import accumulate

from auditstream.producers.simulator import vocabulary as words
from auditstream.producers.simulator.state import (
    Account,
    AccountResource,
    LoginMethod,
    Member,
    Person,
)
from auditstream.producers.simulator.world import World

__all__ = ["login_method", "make_accounts", "new_member", "new_role"]


def make_accounts(world: World, account_ids: list[str]) -> tuple[list[Account], list[float]]:
    """The accounts of ``account_ids`` with their people, and the cumulative busyness weights
    to draw an account from (same order)."""
    rng = world.rng
    # Busyness follows a Zipf-like law over a shuffled order of the accounts.
    ranks = list(range(len(account_ids)))
    rng.shuffle(ranks)
    busy = [1.0 / (r + 1) ** 1.1 for r in ranks]
    top = max(busy)

    companies = list(words.COMPANIES)
    rng.shuffle(companies)
    accounts: list[Account] = []
    for i, account_id in enumerate(account_ids):
        company = companies[i % len(companies)]
        if i >= len(companies):
            company = f"{company} {i // len(companies) + 1}"
        n_extra_users = int(40 * busy[i] / top)
        accounts.append(_new_account(world, account_id, company, n_extra_users))
    for acct in accounts:
        _add_collaborations(world, acct, accounts)
    return accounts, list(accumulate(busy))


def _new_account(world: World, account_id: str, company: str, n_extra_users: int) -> Account:
    rng = world.rng
    team = f"{company} {rng.choice(words.TEAM_SUFFIXES)}"
    slug = company.lower().replace(" ", "-")
    acct = Account(account_id, team, slug, sso_enforced=rng.random() < 0.3)
    n_users = rng.randint(4, 10) + n_extra_users
    for j in range(n_users):
        if j == 0:
            role = "owner"
        elif rng.random() < 0.12:
            role = "admin"
        else:
            role = "member"
        acct.members.append(new_member(world, acct, role))
    for role_name in rng.sample(words.CUSTOM_ROLES, rng.randint(1, 3)):
        acct.custom_roles.append(new_role(world, role_name))
    for m in acct.members:
        if m.role == "member" and rng.random() < 0.3:
            m.role = rng.choice(acct.custom_roles).name
    if not any(m.role == "admin" for m in acct.members):
        acct.members[1].role = "admin"
    return acct


def _add_collaborations(world: World, acct: Account, accounts: list[Account]) -> None:
    """Make some members of ``acct`` collaborators of other teams: the other simulated accounts
    when there are some, otherwise teams outside the simulation."""
    rng = world.rng
    others = [a for a in accounts if a is not acct]
    n_switchers = max(1, len(acct.members) // 6)
    for member in rng.sample(acct.members, n_switchers):
        for _ in range(rng.randint(1, 2)):
            if others and rng.random() < 0.85:
                target = rng.choice(others)
                member.teams.append((target.team, target))
                if not any(m.person is member.person for m in target.members):
                    role = rng.choice(("member", "member", "admin"))
                    target.members.append(Member(member.person, role, login_method(target, member)))
            else:
                name = f"{rng.choice(words.COMPANIES)} {rng.choice(words.TEAM_SUFFIXES)}"
                if name == acct.team:
                    name = f"{name} EMEA"
                member.teams.append((name, None))
        acct.switchers.append(member)


def login_method(acct: Account, member: Member) -> LoginMethod:
    """How ``member`` logs in to ``acct``: SSO when the account enforces it or the person
    prefers it."""
    return "sso" if acct.sso_enforced or member.person.prefers_sso else "password"


def _new_person(world: World, domain: str) -> Person:
    rng = world.rng
    first, last = rng.choice(words.FIRST_NAMES), rng.choice(words.LAST_NAMES)
    local = f"{first}.{last}".lower().replace(" ", "").replace("-", "")
    if rng.random() < 0.3:
        local = f"{local}{rng.randint(2, 99)}"
    prefix = rng.choice(words.IP_PREFIXES)
    ips = tuple(f"{prefix}.{rng.randint(1, 254)}" for _ in range(rng.randint(1, 2)))
    return Person(
        user_id=world.new_id(),
        name=f"{first} {last}",
        email=f"{local}@{domain}",
        ips=ips,
        user_agent=rng.choice(words.BROWSERS),
        prefers_sso=rng.random() < 0.2,
    )


def new_member(world: World, acct: Account, role: str) -> Member:
    """A new person joining ``acct`` with ``role``."""
    member = Member(_new_person(world, acct.domain), role, "password")
    member.login_method = login_method(acct, member)
    return member


def new_role(world: World, name: str) -> AccountResource:
    """A custom role named ``name`` with a random set of privileges (its ``value``)."""
    role = AccountResource("role", world.new_id(), name, None)
    role.value = world.rng.choice(words.PRIVILEGE_SETS)
    return role
