"""What the simulator remembers about each account: its people, their memberships and its
resources, all changed by the activities as they happen."""

from __future__ import annotations

from typing import Literal

from auditstream.schemas.event import Resource

__all__ = ["Account", "AccountResource", "LoginMethod", "Member", "Person", "within"]

LoginMethod = Literal["password", "sso"]


class Person:
    """A human identity, possibly a collaborator in several teams."""

    __slots__ = ("email", "ips", "name", "prefers_sso", "user_agent", "user_id")

    def __init__(
        self,
        user_id: str,
        name: str,
        email: str,
        ips: tuple[str, ...],
        user_agent: str,
        prefers_sso: bool,
    ) -> None:
        self.user_id = user_id
        self.name = name
        self.email = email
        self.ips = ips
        self.user_agent = user_agent
        self.prefers_sso = prefers_sso


class Member:
    """A person's membership of one account."""

    __slots__ = ("login_method", "person", "role", "session", "teams")

    def __init__(self, person: Person, role: str, login_method: LoginMethod) -> None:
        self.person = person
        self.role = role
        self.login_method: LoginMethod = login_method
        self.session: str | None = None
        self.teams: list[tuple[str, Account | None]] = []
        """Other teams this member switches to: (team name, simulated account or None)."""


class AccountResource:
    """A resource of an account (recipe, folder, connection, ...)."""

    __slots__ = ("flag", "name", "parent", "rid", "rtype", "value", "version")

    def __init__(self, rtype: str, rid: str, name: str, parent: AccountResource | None) -> None:
        self.rtype = rtype
        self.rid = rid
        self.name = name
        self.parent = parent
        """The containing folder, for the types kept in folders."""
        self.version = 1
        self.flag = False
        """Running (recipe), connected (connection), active (endpoint), public (...)."""
        self.value = ""
        """Type-specific: the role of an invitation, the value of a property, ..."""

    def path(self) -> str:
        """Full folder path of this folder, e.g. ``Home/Finance/Invoices``."""
        parts = [self.name]
        node = self.parent
        while node is not None:
            parts.append(node.name)
            node = node.parent
        parts.reverse()
        return "/".join(parts)

    def as_resource(self) -> Resource:
        """This resource as the event's ``resource`` field."""
        parent = self.parent
        return {
            "type": self.rtype,
            "id": self.rid,
            "name": self.name,
            "folder": parent.path() if parent is not None else None,
        }


def within(folder: AccountResource, ancestor: AccountResource) -> bool:
    """Whether ``folder`` is ``ancestor`` or lies inside it."""
    node: AccountResource | None = folder
    while node is not None:
        if node is ancestor:
            return True
        node = node.parent
    return False


class Account:
    """Everything the simulator remembers about one account."""

    __slots__ = (
        "account_id",
        "custom_roles",
        "domain",
        "error_emails",
        "members",
        "pools",
        "slug",
        "sso_enforced",
        "stream_contents",
        "stream_destination",
        "streaming",
        "switchers",
        "team",
        "throttling",
    )

    def __init__(self, account_id: str, team: str, slug: str, sso_enforced: bool) -> None:
        self.account_id = account_id
        self.team = team
        self.slug = slug
        self.domain = f"{slug}.example"
        self.sso_enforced = sso_enforced
        self.members: list[Member] = []
        self.switchers: list[Member] = []
        """Members who also belong to other teams and switch to them."""
        self.custom_roles: list[AccountResource] = []
        self.pools: dict[str, list[AccountResource]] = {}
        """The account's resources by type, filled on first use (see ``resources.pool``)."""
        self.error_emails = f"alerts@{self.domain}"
        self.throttling = True
        self.streaming = True
        self.stream_contents = "user_activity,recipe_activity"
        self.stream_destination = f"s3://{slug}-audit/activity"

    def admins(self) -> list[Member]:
        return [m for m in self.members if m.role in ("owner", "admin")]
