"""Realistic activity audit-log traffic for a multi-tenant SaaS.

:class:`Simulator` yields ``ActivityEvent`` dicts valid for the current schema, shaped the way
``schemas.codec.encode`` expects them. The traffic looks like a real platform's:

* a few accounts are much busier than the rest, and each account has a stable pool of users
  (one owner, some admins, members and custom roles) and of resources (folders, recipes,
  connections, lookup tables, API endpoints, ...) that the activities create, rename, move and
  delete as they go;
* logins dominate (about a third of all events), failed logins carry the reason and the login
  method, recipes are started and stopped all the time, and audit-log streaming settings change
  rarely; every activity of the catalog has a weight above zero;
* a user who switches team produces ``user_switched_team`` with ``details.activity ==
  "switch_team"`` in the account left and, when the target team is simulated too, a
  ``user_login`` carrying the same detail in the account joined;
* ``recorded_at`` never goes backwards; ``occurred_at`` is milliseconds earlier, except for
  ``late_fraction`` of the events which are recorded minutes to hours late.

With a seed the sequence is reproducible, event ids included; give ``start`` too to reproduce
the timestamps. IP addresses come from the documentation ranges (RFC 5737) and domains end in
``.example``.
"""

from __future__ import annotations

import math
import random
import uuid
from bisect import bisect
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from typing import Any

from auditstream.schemas import catalog

__all__ = ["ACTIVITY_WEIGHTS", "Simulator", "SimulatorConfig"]

# --------------------------------------------------------------------------------------------
# Distribution
# --------------------------------------------------------------------------------------------

ACTIVITY_WEIGHTS: dict[str, float] = {
    # account
    "user_login": 27.0,
    "user_login_failed": 6.0,
    "user_logout": 6.0,
    "password_changed": 0.4,
    "user_switched_team": 1.5,
    "account_email_updated": 0.1,
    "user_name_updated": 0.1,
    "password_reset_requested": 0.4,
    "delegated_admin_added": 0.06,
    "delegated_admin_password_updated": 0.06,
    "delegated_admin_removed": 0.06,
    "enabled_two_factor_authentication": 0.2,
    "disabled_two_factor_authentication": 0.06,
    "viewed_two_factor_authentication_recovery_codes": 0.1,
    "api_key_refreshed": 0.1,
    "error_notifications_email_updated": 0.1,
    "error_notification_throttling": 0.08,
    "audit_log_streaming": 0.06,
    "audit_log_streaming_data_inclusion": 0.06,
    "audit_log_streaming_destination_updated": 0.06,
    # team
    "invite_created": 0.6,
    "invite_accepted": 0.45,
    "invite_modified": 0.1,
    "invite_canceled": 0.1,
    "member_updated": 0.3,
    "member_deleted": 0.15,
    "role_created": 0.08,
    "role_updated": 0.15,
    "role_deleted": 0.06,
    # recipe
    "recipe_started": 9.0,
    "recipe_stopped": 7.0,
    "recipe_created": 2.0,
    "recipe_updated": 8.0,
    "recipe_renamed": 0.8,
    "recipe_moved": 0.6,
    "recipe_cloned": 0.6,
    "recipe_access_scope_updated": 0.2,
    "recipe_deleted": 0.5,
    # connection
    "connection_created": 1.0,
    "connection_updated": 1.2,
    "connection_connected": 1.5,
    "connection_disconnected": 0.8,
    "connection_deleted": 0.3,
    # folder
    "folder_created": 0.8,
    "folder_deleted": 0.3,
    "folder_renamed": 0.3,
    "folder_moved": 0.3,
    # package
    "manifest_created": 0.3,
    "manifest_updated": 0.4,
    "manifest_deleted": 0.1,
    "package_exported": 0.6,
    "package_imported": 0.5,
    # connector SDK
    "custom_connector_created": 0.1,
    "custom_connector_updated": 0.6,
    "custom_connector_released": 0.2,
    "custom_connector_deleted": 0.06,
    # common data model
    "common_data_model_created": 0.15,
    "common_data_model_updated": 0.3,
    "common_data_model_deleted": 0.06,
    # lookup table
    "lookup_table_created": 0.3,
    "lookup_table_updated": 1.2,
    "lookup_table_deleted": 0.1,
    # message template
    "message_template_created": 0.15,
    "message_template_updated": 0.3,
    "message_template_deleted": 0.06,
    # properties
    "property_created": 0.3,
    "property_updated": 0.6,
    "property_deleted": 0.1,
    # Pub/Sub topic
    "pubsub_topic_created": 0.1,
    "pubsub_topic_updated": 0.2,
    # API platform
    "api_collection_created": 0.15,
    "api_collection_updated": 0.3,
    "api_collection_deleted": 0.06,
    "api_endpoint_created": 0.3,
    "api_endpoint_updated": 0.5,
    "api_endpoint_deleted": 0.08,
    "api_endpoint_activated": 0.3,
    "api_endpoint_deactivated": 0.15,
    "api_customer_created": 0.1,
    "api_customer_updated": 0.15,
    "api_customer_deleted": 0.06,
    "api_access_profile_created": 0.1,
    "api_access_profile_updated": 0.15,
    "api_access_profile_deleted": 0.06,
    "api_access_profile_token_refreshed": 0.2,
    "api_policy_created": 0.06,
    "api_policy_updated": 0.1,
    "api_policy_deleted": 0.06,
}
"""Relative weight of each activity (they sum to about 90). An activity the catalog gains later
and this table lacks gets ``DEFAULT_WEIGHT``, so every catalog activity always occurs."""

DEFAULT_WEIGHT = 0.1

_API_KEY_SHARE: dict[str, float] = {
    "recipe_started": 0.15,
    "recipe_stopped": 0.15,
    "recipe_created": 0.05,
    "recipe_updated": 0.05,
    "connection_updated": 0.05,
    "manifest_created": 0.1,
    "package_exported": 0.3,
    "package_imported": 0.3,
    "lookup_table_updated": 0.3,
    "property_updated": 0.2,
    "api_access_profile_token_refreshed": 0.3,
}
"""Share of an activity performed through the platform API (auth method ``api_key``)."""

_SYSTEM_SHARE: dict[str, float] = {
    "recipe_stopped": 0.12,
    "connection_disconnected": 0.35,
}
"""Share of an activity performed by the platform itself (actor ``system``, no request)."""

_ADMIN_ONLY = frozenset(
    {
        "delegated_admin_added",
        "delegated_admin_removed",
        "error_notifications_email_updated",
        "error_notification_throttling",
        "audit_log_streaming",
        "audit_log_streaming_data_inclusion",
        "audit_log_streaming_destination_updated",
        "invite_created",
        "invite_modified",
        "invite_canceled",
        "member_updated",
        "member_deleted",
        "role_created",
        "role_updated",
        "role_deleted",
    }
)
"""Activities only the owner or an admin performs."""

_SESSIONLESS = frozenset({"user_login_failed", "password_reset_requested", "invite_accepted"})
_ENDS_SESSION = frozenset({"user_logout", "password_changed"})

_MEAN_INTERVAL_US = 50_000
"""Mean time between two recorded events over all accounts (20 events a second)."""

_LATE_MIN_S = 120.0
_LATE_MAX_S = 6 * 3600.0

# --------------------------------------------------------------------------------------------
# Vocabulary
# --------------------------------------------------------------------------------------------

_COMPANIES = (
    "Acme", "Globex", "Initech", "Umbrella", "Hooli", "Soylent", "Vandelay", "Wonka",
    "Cyberdyne", "Tyrell", "Oscorp", "Aperture", "Monarch", "Stark", "Wayne", "Dunder Mifflin",
    "Pied Piper", "Massive Dynamic", "Gringotts", "Nakatomi", "Prestige", "Sirius", "Zorg",
    "Bluth", "Krusty", "Duff", "Gekko", "Ollivander", "Wernham Hogg", "Los Pollos",
)  # fmt: skip
_TEAM_SUFFIXES = ("Inc", "Corp", "Group", "Labs", "Holdings", "Ltd", "Co", "Systems")
_FIRST_NAMES = (
    "Ada", "Alan", "Grace", "Linus", "Margaret", "Ken", "Barbara", "Dennis", "Frances", "Edsger",
    "Radia", "Tim", "Hedy", "Donald", "Katherine", "John", "Sophie", "Guido", "Anita", "Bjarne",
    "Joan", "Niklaus", "Shafi", "Leslie", "Adele", "Yukihiro", "Carol", "Rasmus", "Lynn",
    "Whitfield", "Priya", "Mateo", "Aisha", "Kenji", "Olga", "Tariq", "Ingrid", "Chen", "Amara",
    "Diego",
)  # fmt: skip
_LAST_NAMES = (
    "Lovelace", "Turing", "Hopper", "Torvalds", "Hamilton", "Thompson", "Liskov", "Ritchie",
    "Allen", "Dijkstra", "Perlman", "Berners-Lee", "Lamarr", "Knuth", "Johnson", "McCarthy",
    "Wilson", "van Rossum", "Borg", "Stroustrup", "Clarke", "Wirth", "Goldwasser", "Lamport",
    "Goldberg", "Matsumoto", "Shaw", "Lerdorf", "Conway", "Diffie", "Raman", "Silva", "Okafor",
    "Tanaka", "Petrova", "Haddad", "Nilsson", "Wei", "Mensah", "Ortega",
)  # fmt: skip
_CUSTOM_ROLES = (
    "Integration Developer", "Recipe Operator", "Auditor", "Analyst", "Support Engineer",
    "Release Manager", "Read Only", "Data Steward", "API Product Owner",
)  # fmt: skip
_PRIVILEGE_SETS = (
    "recipes:view",
    "recipes:view,recipes:run",
    "recipes:edit,connections:view",
    "recipes:edit,connections:edit,folders:edit",
    "recipes:edit,connections:edit,lookup_tables:edit,properties:edit",
    "activity_audit:view",
    "api_platform:edit,recipes:view",
    "recipe_lifecycle:export,recipe_lifecycle:import,recipes:view",
)
_APPS = (
    "Salesforce", "NetSuite", "Zendesk", "Jira", "Slack", "Workday", "ServiceNow", "HubSpot",
    "Snowflake", "Google Sheets", "SAP", "Marketo", "Shopify", "Stripe", "Box", "Okta",
    "Microsoft Teams", "Coupa", "Greenhouse", "BambooHR", "PostgreSQL", "Amazon S3",
)  # fmt: skip
_OBJECTS = (
    "accounts", "contacts", "invoices", "orders", "tickets", "leads", "employees",
    "opportunities", "payments", "purchase orders", "candidates", "shipments", "incidents",
)  # fmt: skip
_RECIPE_VERBS = ("Sync new", "Create", "Update", "Upsert", "Archive", "Enrich", "Route")
_ENVIRONMENTS = ("Production", "Sandbox", "Staging", "Dev")
_FOLDER_NAMES = (
    "Sales Ops", "Finance", "HR Onboarding", "Support", "Marketing", "Data Pipelines",
    "IT Automation", "Shared", "Archive", "Customer Success", "Procurement", "Security",
    "Experiments", "Billing", "Partners", "Legacy",
)  # fmt: skip
_LOOKUP_TABLES = (
    "Country codes", "Region mapping", "Product SKUs", "Cost centers", "Currency codes",
    "Owner routing", "Holiday calendar", "Status mapping", "Department codes",
)  # fmt: skip
_MESSAGE_TEMPLATES = (
    "Welcome email", "Invoice reminder", "Incident alert", "Weekly digest", "Approval request",
    "Escalation notice", "Onboarding checklist", "Payment receipt",
)  # fmt: skip
_PROPERTIES = (
    "SALESFORCE_INSTANCE_URL", "DEFAULT_CURRENCY", "ALERT_CHANNEL", "NETSUITE_ACCOUNT_ID",
    "RETRY_LIMIT", "BATCH_SIZE", "SUPPORT_EMAIL", "FISCAL_YEAR_START", "SYNC_WINDOW_HOURS",
)  # fmt: skip
_PROPERTY_VALUES = ("true", "false", "30", "100", "500", "USD", "EUR", "#alerts", "#ops-oncall")
_TOPICS = (
    "orders.created", "orders.shipped", "customers.updated", "invoices.paid",
    "tickets.escalated", "employees.hired", "inventory.low",
)  # fmt: skip
_API_COLLECTIONS = (
    "Orders API", "Customer 360", "HR Self-service", "Partner Portal", "Inventory API",
    "Billing API",
)  # fmt: skip
_HTTP_METHODS = ("GET", "GET", "GET", "POST", "PUT", "PATCH", "DELETE")
_API_CUSTOMERS = (
    "Mobile app", "Partner portal", "Data warehouse", "Internal tools", "Reseller network",
    "Customer web app",
)  # fmt: skip
_RATE_LIMITS = ("60/min", "100/min", "500/min", "1000/min", "10000/day", "unlimited")
_DATA_MODELS = ("Customer", "Order", "Invoice", "Employee", "Product", "Ticket", "Address")
_CONNECTOR_NAMES = (
    "Internal billing", "Legacy ERP", "Warehouse scanner", "Partner gateway", "Pricing engine",
    "Feature flags", "Ticket router",
)  # fmt: skip

_BROWSERS = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/123.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.51",
)
_API_CLIENTS = (
    "curl/8.6.0",
    "python-requests/2.31.0",
    "Go-http-client/2.0",
    "terraform-provider/1.4.2",
    "PostmanRuntime/7.37.3",
)
_IP_PREFIXES = ("192.0.2", "198.51.100", "203.0.113")
_STREAM_CONTENTS = ("user_activity", "recipe_activity", "connection_activity", "api_activity")

_PASSWORD_FAILURES = (
    ("invalid_password", 75),
    ("two_factor_failed", 15),
    ("account_locked", 10),
)
_SSO_FAILURES = (
    ("sso_assertion_invalid", 85),
    ("account_locked", 15),
)
_CONNECT_FAILURES = ("invalid_credentials", "oauth_consent_denied", "connection_timeout")
_IMPORT_FAILURES = ("invalid_package", "missing_dependency", "folder_conflict")
_SYSTEM_STOP_REASONS = ("error_threshold_exceeded", "connection_invalid", "plan_limit_reached")

_CATEGORY_RESOURCE = {
    "connector_sdk": "custom_connector",
    "properties": "property",
}

_FOLDER_TYPES = frozenset({"recipe", "connection", "folder", "manifest", "package"})

# --------------------------------------------------------------------------------------------
# Simulation state
# --------------------------------------------------------------------------------------------


@dataclass
class SimulatorConfig:
    """What to simulate."""

    accounts: Sequence[str]
    """Account ids that produce activity; earlier ones are not necessarily busier."""
    seed: int | None = None
    """Seed of the random sequence; None draws one from the operating system."""
    late_fraction: float = 0.01
    """Share of the events recorded minutes to hours after they occurred."""
    start: datetime | None = None
    """Where the clock starts (default: now, UTC; naive values are taken as UTC): every
    ``recorded_at`` is at or after it, an ``occurred_at`` may precede it."""


class _Person:
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


class _Member:
    """A person's membership of one account."""

    __slots__ = ("login_method", "person", "role", "session", "teams")

    def __init__(self, person: _Person, role: str, login_method: str) -> None:
        self.person = person
        self.role = role
        self.login_method = login_method
        self.session: str | None = None
        self.teams: list[tuple[str, _Account | None]] = []
        """Other teams this member switches to: (team name, simulated account or None)."""


class _Res:
    """A resource of an account (recipe, folder, connection, ...)."""

    __slots__ = ("flag", "name", "parent", "rid", "rtype", "value", "version")

    def __init__(self, rtype: str, rid: str, name: str, parent: _Res | None) -> None:
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

    def as_resource(self) -> dict[str, Any]:
        parent = self.parent
        return {
            "type": self.rtype,
            "id": self.rid,
            "name": self.name,
            "folder": parent.path() if parent is not None else None,
        }


class _Account:
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
        self.members: list[_Member] = []
        self.switchers: list[_Member] = []
        self.custom_roles: list[_Res] = []
        self.pools: dict[str, list[_Res]] = {}
        self.error_emails = f"alerts@{self.domain}"
        self.throttling = True
        self.streaming = True
        self.stream_contents = "user_activity,recipe_activity"
        self.stream_destination = f"s3://{slug}-audit/activity"

    def admins(self) -> list[_Member]:
        return [m for m in self.members if m.role in ("owner", "admin")]


_Parts = tuple[
    dict[str, Any] | None,  # resource
    list[dict[str, Any]],  # changes
    dict[str, str],  # details
    str | None,  # failure reason (None: success)
]
_Handler = Callable[[_Account, "_Member | None", str], _Parts]
"""Builds the activity-specific parts of an event: (account, actor or None, activity key)."""

_NO_CHANGES: list[dict[str, Any]] = []  # never mutated: copied into each event with list()


def _on(flag: bool) -> str:
    return "enabled" if flag else "disabled"


def _connected(flag: bool) -> str:
    return "connected" if flag else "disconnected"


def _active(flag: bool) -> str:
    return "active" if flag else "inactive"


def _within(folder: _Res, ancestor: _Res) -> bool:
    """Whether ``folder`` is ``ancestor`` or lies inside it."""
    node: _Res | None = folder
    while node is not None:
        if node is ancestor:
            return True
        node = node.parent
    return False


def _resource_type(category: str, key: str) -> str:
    """The type of the resource an activity acts on."""
    if category == "package":
        return "manifest" if key.startswith("manifest_") else "package"
    if category == "team":
        return {"invite": "invitation", "member": "user", "role": "role"}[key.split("_", 1)[0]]
    return _CATEGORY_RESOURCE.get(category, category)


def _user_resource(member: _Member) -> dict[str, Any]:
    person = member.person
    return {"type": "user", "id": person.user_id, "name": person.name, "folder": None}


def _change(field: str, old: str | None, new: str | None) -> dict[str, Any]:
    return {"field": field, "old_value": old, "new_value": new}


@dataclass(frozen=True, slots=True)
class _Spec:
    category: str
    key: str
    api_share: float
    system_share: float
    admin_only: bool
    sessionless: bool
    """Performed before login: the request carries no session."""
    ends_session: bool


class Simulator:
    """Generates a reproducible stream of realistic audit events (see the module doc)."""

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
        start = config.start if config.start is not None else datetime.now(UTC)
        if start.tzinfo is None:
            start = start.replace(tzinfo=UTC)
        self._epoch = datetime(1970, 1, 1, tzinfo=UTC)
        self._now_us = (start - self._epoch) // timedelta(microseconds=1)
        self._late_fraction = config.late_fraction
        self._next_id = self._rng.randrange(100_000, 900_000)
        self._pending: deque[tuple[_Account, _Member]] = deque()
        """Logins into the accounts users switched to, emitted next."""
        self._actor: _Member | None = None
        """The actor of the event being built; a handler may replace the one drawn."""

        unknown = set(ACTIVITY_WEIGHTS) - {a.key for a in catalog.ACTIVITIES}
        if unknown:
            raise RuntimeError(f"ACTIVITY_WEIGHTS names unknown activities: {sorted(unknown)}")
        self._specs: list[_Spec] = []
        weights: list[float] = []
        for act in catalog.ACTIVITIES:
            self._specs.append(
                _Spec(
                    category=act.category,
                    key=act.key,
                    api_share=_API_KEY_SHARE.get(act.key, 0.0),
                    system_share=_SYSTEM_SHARE.get(act.key, 0.0),
                    admin_only=act.key in _ADMIN_ONLY,
                    sessionless=act.key in _SESSIONLESS,
                    ends_session=act.key in _ENDS_SESSION,
                )
            )
            weights.append(ACTIVITY_WEIGHTS.get(act.key, DEFAULT_WEIGHT))
        self._activity_cum = list(accumulate(weights))
        self._handlers = self._handlers_by_key()
        self._login_spec = next(s for s in self._specs if s.key == "user_login")

        self._accounts = self._make_accounts(accounts)

    # ----------------------------------------------------------------------------------------
    # Public API
    # ----------------------------------------------------------------------------------------

    def events(self, count: int) -> Iterator[dict[str, Any]]:
        """Yield the next ``count`` events; successive calls continue the same sequence."""
        if count < 0:
            raise ValueError("count must be >= 0")
        rng = self._rng
        rand = rng.random
        specs = self._specs
        act_cum = self._activity_cum
        act_total = act_cum[-1]
        accounts = self._accounts
        acct_cum = self._account_cum
        acct_total = acct_cum[-1]
        handlers = self._handlers
        for _ in range(count):
            if self._pending:
                target, joined = self._pending.popleft()
                self._advance(rng.randint(150_000, 1_500_000))
                yield self._switch_login(target, joined)
                continue
            self._advance(int(rng.expovariate(1.0 / _MEAN_INTERVAL_US)))
            spec = specs[bisect(act_cum, rand() * act_total)]
            acct = accounts[bisect(acct_cum, rand() * acct_total)]
            member: _Member | None
            auth: str
            if spec.system_share and rand() < spec.system_share:
                member, auth = None, "system"
            else:
                pool = acct.admins() if spec.admin_only else acct.members
                member = pool[int(rand() * len(pool))]
                if spec.api_share and rand() < spec.api_share:
                    auth = "api_key"
                else:
                    auth = member.login_method
            self._actor = member
            resource, changes, details, reason = handlers[spec.key](acct, member, spec.key)
            if self._actor is not member:
                member = self._actor
                assert member is not None
                auth = member.login_method
            event = self._event(acct, spec, member, auth, resource, changes, details, reason)
            if spec.ends_session and member is not None:
                member.session = None
            yield event

    # ----------------------------------------------------------------------------------------
    # Event assembly
    # ----------------------------------------------------------------------------------------

    def _advance(self, delta_us: int) -> None:
        self._now_us += delta_us

    def _timestamps(self) -> tuple[datetime, datetime]:
        rng = self._rng
        recorded = self._now_us
        if self._late_fraction and rng.random() < self._late_fraction:
            late_s = math.exp(rng.uniform(math.log(_LATE_MIN_S), math.log(_LATE_MAX_S)))
            delay = int(late_s * 1_000_000)
        else:
            delay = rng.randint(2_000, 900_000)
        epoch = self._epoch
        return (
            epoch + timedelta(microseconds=recorded - delay),
            epoch + timedelta(microseconds=recorded),
        )

    def _event(
        self,
        acct: _Account,
        spec: _Spec,
        member: _Member | None,
        auth: str,
        resource: dict[str, Any] | None,
        changes: list[dict[str, Any]],
        details: dict[str, str],
        reason: str | None,
    ) -> dict[str, Any]:
        rng = self._rng
        occurred, recorded = self._timestamps()
        if member is None:
            actor = {
                "user_id": "system",
                "name": "System",
                "email": None,
                "role": None,
                "auth_method": "system",
            }
            request = None
        else:
            person = member.person
            actor = {
                "user_id": person.user_id,
                "name": person.name,
                "email": person.email,
                "role": member.role,
                "auth_method": auth,
            }
            if auth == "api_key":
                user_agent = _API_CLIENTS[len(person.name) % len(_API_CLIENTS)]
                session_id = None
            else:
                user_agent = person.user_agent
                if not spec.sessionless:
                    if member.session is None:
                        member.session = f"{rng.getrandbits(128):032x}"
                    session_id = member.session
                else:
                    session_id = None
            ips = person.ips
            request = {
                "ip": ips[0] if len(ips) == 1 or rng.random() < 0.8 else ips[1],
                "user_agent": user_agent,
                "request_id": f"{rng.getrandbits(128):032x}",
                "session_id": session_id,
            }
        return {
            "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "occurred_at": occurred,
            "recorded_at": recorded,
            "account_id": acct.account_id,
            "category": spec.category,
            "activity": spec.key,
            "actor": actor,
            "resource": resource,
            "outcome": {"status": "failure" if reason else "success", "reason": reason},
            "changes": list(changes),
            "request": request,
            "details": details,
        }

    def _switch_login(self, acct: _Account, member: _Member) -> dict[str, Any]:
        """The ``user_login`` a team switch produces in the account switched to."""
        member.session = f"{self._rng.getrandbits(128):032x}"
        method = member.login_method
        details = {"activity": "switch_team", "login_method": method}
        return self._event(acct, self._login_spec, member, method, None, _NO_CHANGES, details, None)

    # ----------------------------------------------------------------------------------------
    # Accounts, users and resources
    # ----------------------------------------------------------------------------------------

    def _new_id(self) -> str:
        self._next_id += self._rng.randint(1, 40)
        return str(self._next_id)

    def _make_accounts(self, account_ids: list[str]) -> list[_Account]:
        rng = self._rng
        # Busyness follows a Zipf-like law over a shuffled order of the accounts.
        ranks = list(range(len(account_ids)))
        rng.shuffle(ranks)
        busy = [1.0 / (r + 1) ** 1.1 for r in ranks]
        self._account_cum = list(accumulate(busy))
        top = max(busy)

        companies = list(_COMPANIES)
        rng.shuffle(companies)
        accounts: list[_Account] = []
        for i, account_id in enumerate(account_ids):
            company = companies[i % len(companies)]
            if i >= len(companies):
                company = f"{company} {i // len(companies) + 1}"
            team = f"{company} {rng.choice(_TEAM_SUFFIXES)}"
            slug = company.lower().replace(" ", "-")
            acct = _Account(account_id, team, slug, sso_enforced=rng.random() < 0.3)
            n_users = rng.randint(4, 10) + int(40 * busy[i] / top)
            for j in range(n_users):
                if j == 0:
                    role = "owner"
                elif rng.random() < 0.12:
                    role = "admin"
                else:
                    role = "member"
                acct.members.append(self._new_member(acct, role))
            for role_name in rng.sample(_CUSTOM_ROLES, rng.randint(1, 3)):
                acct.custom_roles.append(self._new_role(role_name))
            for m in acct.members:
                if m.role == "member" and rng.random() < 0.3:
                    m.role = rng.choice(acct.custom_roles).name
            if not any(m.role == "admin" for m in acct.members):
                acct.members[1].role = "admin"
            accounts.append(acct)

        # Collaborators of several teams: switch targets are the other simulated accounts
        # when there are some, otherwise teams outside the simulation.
        for acct in accounts:
            others = [a for a in accounts if a is not acct]
            n_switchers = max(1, len(acct.members) // 6)
            for member in rng.sample(acct.members, n_switchers):
                for _ in range(rng.randint(1, 2)):
                    if others and rng.random() < 0.85:
                        target = rng.choice(others)
                        member.teams.append((target.team, target))
                        if not any(m.person is member.person for m in target.members):
                            role = rng.choice(("member", "member", "admin"))
                            target.members.append(
                                _Member(member.person, role, self._login_method(target, member))
                            )
                    else:
                        name = f"{rng.choice(_COMPANIES)} {rng.choice(_TEAM_SUFFIXES)}"
                        if name == acct.team:
                            name = f"{name} EMEA"
                        member.teams.append((name, None))
                acct.switchers.append(member)
        return accounts

    def _login_method(self, acct: _Account, member: _Member) -> str:
        return "sso" if acct.sso_enforced or member.person.prefers_sso else "password"

    def _new_person(self, domain: str) -> _Person:
        rng = self._rng
        first, last = rng.choice(_FIRST_NAMES), rng.choice(_LAST_NAMES)
        local = f"{first}.{last}".lower().replace(" ", "").replace("-", "")
        if rng.random() < 0.3:
            local = f"{local}{rng.randint(2, 99)}"
        prefix = rng.choice(_IP_PREFIXES)
        ips = tuple(f"{prefix}.{rng.randint(1, 254)}" for _ in range(rng.randint(1, 2)))
        return _Person(
            user_id=self._new_id(),
            name=f"{first} {last}",
            email=f"{local}@{domain}",
            ips=ips,
            user_agent=rng.choice(_BROWSERS),
            prefers_sso=rng.random() < 0.2,
        )

    def _new_member(self, acct: _Account, role: str) -> _Member:
        member = _Member(self._new_person(acct.domain), role, "password")
        member.login_method = self._login_method(acct, member)
        return member

    def _new_role(self, name: str) -> _Res:
        role = _Res("role", self._new_id(), name, None)
        role.value = self._rng.choice(_PRIVILEGE_SETS)
        return role

    def _pool(self, acct: _Account, rtype: str) -> list[_Res]:
        pool = acct.pools.get(rtype)
        if pool is None:
            pool = acct.pools[rtype] = []
            rng = self._rng
            if rtype == "folder":
                root = _Res("folder", self._new_id(), "Home", None)
                pool.append(root)
                for name in rng.sample(_FOLDER_NAMES, rng.randint(3, 8)):
                    pool.append(_Res("folder", self._new_id(), name, rng.choice(pool)))
            elif rtype != "invitation":
                low, high = (5, 40) if rtype == "recipe" else (2, 8)
                for _ in range(rng.randint(low, high)):
                    pool.append(self._new_res(acct, rtype))
        return pool

    def _folder(self, acct: _Account) -> _Res:
        folders = self._pool(acct, "folder")
        return folders[int(self._rng.random() * len(folders))]

    def _new_res(self, acct: _Account, rtype: str, name: str | None = None) -> _Res:
        rng = self._rng
        if name is None:
            name = self._res_name(acct, rtype)
        parent = self._folder(acct) if rtype in _FOLDER_TYPES else None
        res = _Res(rtype, self._new_id(), name, parent)
        res.version = rng.randint(1, 30)
        res.flag = rng.random() < 0.6
        if rtype == "property":
            res.value = rng.choice(_PROPERTY_VALUES)
        elif rtype == "api_policy":
            res.value = rng.choice(_RATE_LIMITS)
        return res

    def _res_name(self, acct: _Account, rtype: str) -> str:
        c = self._rng.choice
        if rtype == "recipe":
            return f"{c(_RECIPE_VERBS)} {c(_OBJECTS)} from {c(_APPS)} to {c(_APPS)}"
        if rtype == "connection":
            return f"{c(_APPS)} {c(_ENVIRONMENTS).lower()}"
        if rtype == "folder":
            return c(_FOLDER_NAMES)
        if rtype == "manifest":
            return f"{c(_FOLDER_NAMES)} release {self._rng.randint(1, 60)}"
        if rtype == "custom_connector":
            return f"{c(_CONNECTOR_NAMES)} connector"
        if rtype == "common_data_model":
            return c(_DATA_MODELS)
        if rtype == "lookup_table":
            return c(_LOOKUP_TABLES)
        if rtype == "message_template":
            return c(_MESSAGE_TEMPLATES)
        if rtype == "property":
            return c(_PROPERTIES)
        if rtype == "pubsub_topic":
            return c(_TOPICS)
        if rtype == "api_collection":
            return c(_API_COLLECTIONS)
        if rtype == "api_endpoint":
            obj = c(_OBJECTS).replace(" ", "_")
            return f"{c(_HTTP_METHODS)} /{obj}" + ("/{id}" if self._rng.random() < 0.5 else "")
        if rtype == "api_customer":
            return c(_API_CUSTOMERS)
        if rtype == "api_access_profile":
            return f"{c(_API_CUSTOMERS)} {c(_ENVIRONMENTS).lower()}"
        if rtype == "api_policy":
            return f"{c(('Standard', 'Partner', 'Internal', 'Trial'))} policy"
        if rtype == "invitation":
            first, last = c(_FIRST_NAMES), c(_LAST_NAMES)
            return f"{first}.{last}@{acct.domain}".lower().replace(" ", "").replace("-", "")
        return f"{rtype.replace('_', ' ')} {self._rng.randint(1, 999)}"

    def _pick(self, acct: _Account, rtype: str) -> _Res:
        pool = self._pool(acct, rtype)
        if not pool:
            pool.append(self._new_res(acct, rtype))
        if rtype == "folder" and len(pool) > 1:
            # The root folder is never renamed, moved or deleted.
            return pool[1 + int(self._rng.random() * (len(pool) - 1))]
        return pool[int(self._rng.random() * len(pool))]

    def _discard(self, acct: _Account, res: _Res, keep: int = 2) -> None:
        pool = self._pool(acct, res.rtype)
        if len(pool) > keep and res in pool:
            pool.remove(res)

    # ----------------------------------------------------------------------------------------
    # Activity handlers: each returns (resource, changes, details, failure reason)
    # ----------------------------------------------------------------------------------------

    def _handlers_by_key(self) -> dict[str, _Handler]:
        special: dict[str, _Handler] = {
            "user_login": self._h_login,
            "user_login_failed": self._h_login_failed,
            "user_switched_team": self._h_switch_team,
            "account_email_updated": self._h_email_updated,
            "user_name_updated": self._h_name_updated,
            "password_reset_requested": self._h_password_reset,
            "delegated_admin_added": self._h_delegated_admin,
            "delegated_admin_removed": self._h_delegated_admin,
            "enabled_two_factor_authentication": self._h_two_factor,
            "disabled_two_factor_authentication": self._h_two_factor,
            "error_notifications_email_updated": self._h_error_emails,
            "error_notification_throttling": self._h_throttling,
            "audit_log_streaming": self._h_streaming,
            "audit_log_streaming_data_inclusion": self._h_stream_contents,
            "audit_log_streaming_destination_updated": self._h_stream_destination,
            "invite_created": self._h_invite_created,
            "invite_accepted": self._h_invite_accepted,
            "invite_modified": self._h_invite_modified,
            "invite_canceled": self._h_invite_canceled,
            "member_updated": self._h_member_updated,
            "member_deleted": self._h_member_deleted,
            "role_created": self._h_role_created,
            "role_updated": self._h_role_updated,
            "role_deleted": self._h_role_deleted,
            "recipe_started": self._h_recipe_started,
            "recipe_stopped": self._h_recipe_stopped,
            "recipe_cloned": self._h_recipe_cloned,
            "recipe_access_scope_updated": self._h_access_scope,
            "connection_connected": self._h_connection_connected,
            "connection_disconnected": self._h_connection_disconnected,
            "package_exported": self._h_package_exported,
            "package_imported": self._h_package_imported,
            "custom_connector_released": self._h_connector_released,
            "api_endpoint_activated": self._h_endpoint_toggled,
            "api_endpoint_deactivated": self._h_endpoint_toggled,
            "api_access_profile_token_refreshed": self._h_token_refreshed,
        }
        return {s.key: special.get(s.key) or self._generic_handler(s) for s in self._specs}

    def _generic_handler(self, spec: _Spec) -> _Handler:
        """Account settings without state, and create/update/rename/move/delete of resources."""
        if spec.category == "account":
            return self._h_plain
        rtype = _resource_type(spec.category, spec.key)
        verb = spec.key.rsplit("_", 1)[1]
        if verb == "created":
            return lambda acct, _m, _k: self._h_created(acct, rtype)
        if verb == "deleted":
            return lambda acct, _m, _k: self._h_deleted(acct, rtype)
        if verb == "renamed":
            return lambda acct, _m, _k: self._h_renamed(acct, rtype)
        if verb == "moved":
            return lambda acct, _m, _k: self._h_moved(acct, rtype)
        return lambda acct, _m, _k: self._h_updated(acct, rtype)

    @staticmethod
    def _h_plain(_acct: _Account, _member: _Member | None, key: str) -> _Parts:
        return None, _NO_CHANGES, {}, None

    def _h_login(self, _acct: _Account, member: _Member | None, key: str) -> _Parts:
        assert member is not None
        member.session = f"{self._rng.getrandbits(128):032x}"
        return None, _NO_CHANGES, {"login_method": member.login_method}, None

    def _h_login_failed(self, _acct: _Account, member: _Member | None, key: str) -> _Parts:
        assert member is not None
        method = member.login_method
        table = _SSO_FAILURES if method == "sso" else _PASSWORD_FAILURES
        r = self._rng.random() * 100
        reason = table[-1][0]
        for candidate, weight in table:
            r -= weight
            if r < 0:
                reason = candidate
                break
        return None, _NO_CHANGES, {"login_method": method}, reason

    def _h_switch_team(self, acct: _Account, member: _Member | None, key: str) -> _Parts:
        rng = self._rng
        switcher = self._actor = rng.choice(acct.switchers)
        team, target = rng.choice(switcher.teams)
        if target is not None:
            joined = next((m for m in target.members if m.person is switcher.person), None)
            if joined is not None:
                self._pending.append((target, joined))
        return None, _NO_CHANGES, {"activity": "switch_team", "team": team}, None

    def _h_email_updated(self, acct: _Account, member: _Member | None, key: str) -> _Parts:
        assert member is not None
        person = member.person
        old = person.email
        local, _, domain = old.partition("@")
        if domain != acct.domain:
            new = f"{local}@{acct.domain}"
        else:
            new = f"{local.rstrip('0123456789')}{self._rng.randint(100, 999)}@{domain}"
        person.email = new
        return None, [_change("email", old, new)], {}, None

    def _h_name_updated(self, _acct: _Account, member: _Member | None, key: str) -> _Parts:
        assert member is not None
        person = member.person
        old = person.name
        first = old.split(" ", 1)[0]
        new = f"{first} {self._rng.choice(_LAST_NAMES)}"
        if new == old:
            new = f"{first} {old.split(' ', 1)[-1]}-{self._rng.choice(_LAST_NAMES)}"
        person.name = new
        return None, [_change("name", old, new)], {}, None

    def _h_password_reset(self, _acct: _Account, member: _Member | None, key: str) -> _Parts:
        assert member is not None
        return None, _NO_CHANGES, {"email": member.person.email}, None

    def _h_delegated_admin(self, acct: _Account, member: _Member | None, key: str) -> _Parts:
        delegate = self._rng.choice(acct.members).person.email
        if self._rng.random() < 0.5:
            delegate = f"delegate.{self._rng.randint(1, 99)}@{acct.slug}-partner.example"
        added = key == "delegated_admin_added"
        old, new = (None, delegate) if added else (delegate, None)
        return None, [_change("delegated_admin", old, new)], {"delegate_email": delegate}, None

    def _h_two_factor(self, _acct: _Account, member: _Member | None, key: str) -> _Parts:
        enabled = key == "enabled_two_factor_authentication"
        old, new = ("disabled", "enabled") if enabled else ("enabled", "disabled")
        return None, [_change("two_factor_authentication", old, new)], {}, None

    def _h_error_emails(self, acct: _Account, member: _Member | None, key: str) -> _Parts:
        old = acct.error_emails
        emails = {e.person.email for e in self._rng.sample(acct.members, min(2, len(acct.members)))}
        new = ",".join(sorted(emails | {f"alerts@{acct.domain}"}))
        if new == old:
            new = f"alerts@{acct.domain}"
        acct.error_emails = new
        return None, [_change("error_notification_emails", old, new)], {}, None

    def _h_throttling(self, acct: _Account, member: _Member | None, key: str) -> _Parts:
        old = acct.throttling
        acct.throttling = not old
        return None, [_change("error_notification_throttling", _on(old), _on(not old))], {}, None

    def _h_streaming(self, acct: _Account, member: _Member | None, key: str) -> _Parts:
        old = acct.streaming
        acct.streaming = not old
        return None, [_change("audit_log_streaming", _on(old), _on(not old))], {}, None

    def _h_stream_contents(self, acct: _Account, member: _Member | None, key: str) -> _Parts:
        old = acct.stream_contents
        rng = self._rng
        chosen = rng.sample(_STREAM_CONTENTS, rng.randint(1, len(_STREAM_CONTENTS)))
        new = ",".join(c for c in _STREAM_CONTENTS if c in chosen)
        if new == old:
            new = ",".join(_STREAM_CONTENTS)
        if new == old:
            new = _STREAM_CONTENTS[0]
        acct.stream_contents = new
        return None, [_change("include_in_stream", old, new)], {}, None

    def _h_stream_destination(self, acct: _Account, member: _Member | None, key: str) -> _Parts:
        old = acct.stream_destination
        s = acct.slug
        options = (
            f"s3://{s}-audit/activity",
            f"gs://{s}-audit-logs/stream",
            f"https://siem.{s}.example/ingest/audit",
            f"azure://{s.replace('-', '')}audit/activity",
        )
        new = self._rng.choice([o for o in options if o != old])
        acct.stream_destination = new
        kind = new.split(":", 1)[0]
        return None, [_change("destination", old, new)], {"destination_type": kind}, None

    # -- team --------------------------------------------------------------------------------

    def _roles(self, acct: _Account) -> list[str]:
        return ["admin", "member", *(r.name for r in acct.custom_roles)]

    def _h_invite_created(self, acct: _Account, member: _Member | None, key: str) -> _Parts:
        invite = self._new_res(acct, "invitation")
        invite.value = self._rng.choice(self._roles(acct))
        pool = self._pool(acct, "invitation")
        pool.append(invite)
        if len(pool) > 30:
            del pool[0]
        return invite.as_resource(), _NO_CHANGES, {"role": invite.value}, None

    def _h_invite_modified(self, acct: _Account, member: _Member | None, key: str) -> _Parts:
        invite = self._pick(acct, "invitation")
        if not invite.value:
            invite.value = "member"
        old = invite.value
        invite.value = self._rng.choice([r for r in self._roles(acct) if r != old])
        return invite.as_resource(), [_change("role", old, invite.value)], {}, None

    def _h_invite_canceled(self, acct: _Account, member: _Member | None, key: str) -> _Parts:
        invite = self._pick(acct, "invitation")
        self._discard(acct, invite, keep=0)
        return invite.as_resource(), _NO_CHANGES, {}, None

    def _h_invite_accepted(self, acct: _Account, member: _Member | None, key: str) -> _Parts:
        invite = self._pick(acct, "invitation")
        self._discard(acct, invite, keep=0)
        role = invite.value or "member"
        joined = self._new_member(acct, role)
        local = invite.name.split("@", 1)[0]
        first, _, last = local.partition(".")
        joined.person.email = invite.name
        joined.person.name = f"{first.title()} {last.title()}".strip()
        if len(acct.members) < 400:
            acct.members.append(joined)
        # The person who accepts is the actor, not the member drawn for the event.
        self._actor = joined
        return invite.as_resource(), _NO_CHANGES, {"role": role}, None

    def _teammate(self, acct: _Account, member: _Member | None) -> _Member:
        candidates = [m for m in acct.members if m.role != "owner" and m is not member]
        return self._rng.choice(candidates) if candidates else acct.members[-1]

    def _h_member_updated(self, acct: _Account, member: _Member | None, key: str) -> _Parts:
        target = self._teammate(acct, member)
        old = target.role
        if target.role != "owner":
            target.role = self._rng.choice([r for r in self._roles(acct) if r != old])
        resource = _user_resource(target)
        return resource, [_change("role", old, target.role)], {}, None

    def _h_member_deleted(self, acct: _Account, member: _Member | None, key: str) -> _Parts:
        target = self._teammate(acct, member)
        if len(acct.members) > 6 and target.role != "owner":
            acct.members.remove(target)
            if target in acct.switchers and len(acct.switchers) > 1:
                acct.switchers.remove(target)
        resource = _user_resource(target)
        return resource, _NO_CHANGES, {"email": target.person.email}, None

    def _h_role_created(self, acct: _Account, member: _Member | None, key: str) -> _Parts:
        taken = {r.name for r in acct.custom_roles}
        free = [n for n in _CUSTOM_ROLES if n not in taken]
        name = self._rng.choice(free) if free else f"Custom role {self._rng.randint(2, 999)}"
        role = self._new_role(name)
        acct.custom_roles.append(role)
        return role.as_resource(), [_change("privileges", None, role.value)], {}, None

    def _h_role_updated(self, acct: _Account, member: _Member | None, key: str) -> _Parts:
        if not acct.custom_roles:
            acct.custom_roles.append(self._new_role(self._rng.choice(_CUSTOM_ROLES)))
        role = self._rng.choice(acct.custom_roles)
        old = role.value
        role.value = self._rng.choice([p for p in _PRIVILEGE_SETS if p != old])
        return role.as_resource(), [_change("privileges", old, role.value)], {}, None

    def _h_role_deleted(self, acct: _Account, member: _Member | None, key: str) -> _Parts:
        if not acct.custom_roles:
            acct.custom_roles.append(self._new_role(self._rng.choice(_CUSTOM_ROLES)))
        role = self._rng.choice(acct.custom_roles)
        if len(acct.custom_roles) > 1:
            acct.custom_roles.remove(role)
        return role.as_resource(), _NO_CHANGES, {}, None

    # -- resources ---------------------------------------------------------------------------

    def _h_created(self, acct: _Account, rtype: str) -> _Parts:
        res = self._new_res(acct, rtype)
        res.version = 1
        pool = self._pool(acct, rtype)
        pool.append(res)
        if len(pool) > 300:
            del pool[1]
        return res.as_resource(), _NO_CHANGES, {}, None

    def _h_deleted(self, acct: _Account, rtype: str) -> _Parts:
        res = self._pick(acct, rtype)
        self._discard(acct, res)
        return res.as_resource(), _NO_CHANGES, {}, None

    def _h_renamed(self, acct: _Account, rtype: str) -> _Parts:
        res = self._pick(acct, rtype)
        old = res.name
        new = self._res_name(acct, rtype)
        if new == old:
            new = f"{old} (v2)"
        res.name = new
        return res.as_resource(), [_change("name", old, new)], {}, None

    def _h_moved(self, acct: _Account, rtype: str) -> _Parts:
        res = self._pick(acct, rtype)
        old = res.parent.path() if res.parent is not None else None
        folders = self._pool(acct, "folder")
        candidates = [f for f in folders if not _within(f, res) and f.path() != old]
        if candidates:
            res.parent = self._rng.choice(candidates)
        else:  # Every other folder lies inside the one moved: move it into a new one.
            res.parent = _Res("folder", self._new_id(), f"Moved {res.name}", folders[0])
            folders.append(res.parent)
        new = res.parent.path()
        return res.as_resource(), [_change("folder", old, new)], {}, None

    def _h_updated(self, acct: _Account, rtype: str) -> _Parts:
        res = self._pick(acct, rtype)
        rng = self._rng
        if rtype == "property":
            old = res.value
            res.value = rng.choice([v for v in _PROPERTY_VALUES if v != old])
            change = _change("value", old, res.value)
        elif rtype == "api_policy":
            old = res.value
            res.value = rng.choice([v for v in _RATE_LIMITS if v != old])
            change = _change("rate_limit", old, res.value)
        elif rtype == "lookup_table":
            old = str(res.version)
            res.version += rng.randint(1, 50)
            change = _change("row_count", old, str(res.version))
        else:
            old = str(res.version)
            res.version += 1
            change = _change("version", old, str(res.version))
        return res.as_resource(), [change], {}, None

    def _h_recipe_started(self, acct: _Account, member: _Member | None, key: str) -> _Parts:
        res = self._pick(acct, "recipe")
        res.flag = True
        return res.as_resource(), _NO_CHANGES, {"recipe_version": str(res.version)}, None

    def _h_recipe_stopped(self, acct: _Account, member: _Member | None, key: str) -> _Parts:
        res = self._pick(acct, "recipe")
        res.flag = False
        details = {"recipe_version": str(res.version)}
        if member is None:
            details["stop_reason"] = self._rng.choice(_SYSTEM_STOP_REASONS)
        return res.as_resource(), _NO_CHANGES, details, None

    def _h_recipe_cloned(self, acct: _Account, member: _Member | None, key: str) -> _Parts:
        src = self._pick(acct, "recipe")
        copy = _Res("recipe", self._new_id(), f"Copy of {src.name}", src.parent)
        self._pool(acct, "recipe").append(copy)
        details = {"copy_id": copy.rid, "copy_name": copy.name}
        return src.as_resource(), _NO_CHANGES, details, None

    def _h_access_scope(self, acct: _Account, member: _Member | None, key: str) -> _Parts:
        res = self._pick(acct, "recipe")
        old = "public" if res.value == "public" else "private"
        res.value = "private" if old == "public" else "public"
        return res.as_resource(), [_change("access_scope", old, res.value)], {}, None

    def _h_connection_connected(self, acct: _Account, member: _Member | None, key: str) -> _Parts:
        res = self._pick(acct, "connection")
        if self._rng.random() < 0.05:
            return res.as_resource(), _NO_CHANGES, {}, self._rng.choice(_CONNECT_FAILURES)
        old = _connected(res.flag)
        res.flag = True
        return res.as_resource(), [_change("status", old, "connected")], {}, None

    def _h_connection_disconnected(
        self, acct: _Account, member: _Member | None, key: str
    ) -> _Parts:
        res = self._pick(acct, "connection")
        old = _connected(res.flag)
        res.flag = False
        details = {"trigger": "credentials_expired"} if member is None else {}
        return res.as_resource(), [_change("status", old, "disconnected")], details, None

    def _h_package_exported(self, acct: _Account, member: _Member | None, key: str) -> _Parts:
        manifest = self._pick(acct, "manifest")
        name = f"{manifest.name.lower().replace(' ', '_')}_{manifest.version}.zip"
        package = _Res("package", self._new_id(), name, manifest.parent)
        details = {"manifest_id": manifest.rid, "manifest_name": manifest.name}
        return package.as_resource(), _NO_CHANGES, details, None

    def _h_package_imported(self, acct: _Account, member: _Member | None, key: str) -> _Parts:
        rng = self._rng
        name = f"{rng.choice(_FOLDER_NAMES).lower().replace(' ', '_')}_{rng.randint(1, 60)}.zip"
        package = _Res("package", self._new_id(), name, self._folder(acct))
        if rng.random() < 0.04:
            return package.as_resource(), _NO_CHANGES, {}, rng.choice(_IMPORT_FAILURES)
        details = {"assets": str(rng.randint(1, 40))}
        return package.as_resource(), _NO_CHANGES, details, None

    def _h_connector_released(self, acct: _Account, member: _Member | None, key: str) -> _Parts:
        res = self._pick(acct, "custom_connector")
        old = str(res.version)
        res.version += 1
        return res.as_resource(), [_change("released_version", old, str(res.version))], {}, None

    def _h_endpoint_toggled(self, acct: _Account, member: _Member | None, key: str) -> _Parts:
        res = self._pick(acct, "api_endpoint")
        active = key == "api_endpoint_activated"
        old = _active(res.flag)
        res.flag = active
        return res.as_resource(), [_change("status", old, _active(active))], {}, None

    def _h_token_refreshed(self, acct: _Account, member: _Member | None, key: str) -> _Parts:
        res = self._pick(acct, "api_access_profile")
        return (
            res.as_resource(),
            _NO_CHANGES,
            {"token_suffix": f"{self._rng.getrandbits(16):04x}"},
            None,
        )
