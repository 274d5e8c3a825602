"""Query parameters of the activity audit log API, parsed into store queries (pure).

Each operation takes a fixed set of parameters; anything else is refused, so that a mistyped
filter (``actors=`` for ``actor=``) is an error rather than a wider answer an auditor takes for
a filtered one. Every problem is reported with the parameter it is in (``loc: ["query",
name]``) and never quotes the value (it may be long, or not meant to be shown). An empty value
(``resource_type=``, what an empty form field sends) means the parameter was not given.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, cast

from auditstream.api.errors import Invalid
from auditstream.schemas import catalog
from auditstream.store.errors import BadCursor
from auditstream.store.query import MAX_PAGE, ActivityFilter, Checkpoint, Cursor, Order, PageRequest

DEFAULT_LIMIT = 100
MAX_TEXT = 200
"""The most characters of the free-text ``q``."""
MAX_VALUE = 320
"""The most characters of any other value (an e-mail address is at most 254)."""
_SEAL_CHARS = 12
# C0 and C1 controls (NUL, newlines...): no filter needs them, and some stores refuse NUL.
# Format characters (a zero-width joiner inside an emoji) are text and stay allowed.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
MAX_PROBLEMS = 20
"""The most problems one 400 lists."""
MAX_REPEATS = 50
"""The most values of one repeatable parameter."""

FILTER_PARAMS = (
    "actor",
    "category",
    "activity",
    "resource_type",
    "resource_id",
    "outcome",
    "ip",
    "from",
    "to",
    "q",
)
REPEATABLE = frozenset({"actor", "category", "activity"})
SEARCH_PARAMS = frozenset({*FILTER_PARAMS, "order", "limit", "cursor", "include_total"})
CHECKPOINT_PARAMS = frozenset({"after", "limit"})
FACET_PARAMS = frozenset(FILTER_PARAMS)
EXPORT_PARAMS = frozenset({*FILTER_PARAMS, "order", "format"})

ExportFormat = Literal["csv", "ndjson"]
Items = Sequence[tuple[str, str]]


class BadQuery(Invalid):
    """Query parameters that cannot be served: 400, each problem with its parameter named."""

    status = 400


@dataclass(frozen=True, slots=True)
class Search:
    """One page of a filtered search (``include_total``: count the whole filter too)."""

    filter: ActivityFilter
    page: PageRequest
    include_total: bool = False


@dataclass(frozen=True, slots=True)
class CheckpointRead:
    """Events received after ``checkpoint``, at most ``limit``."""

    checkpoint: Checkpoint
    limit: int


@dataclass(frozen=True, slots=True)
class Export:
    filter: ActivityFilter
    order: Order
    format: ExportFormat


class _Problems:
    """Problems found so far, one list for the whole request."""

    def __init__(self) -> None:
        self.found: list[tuple[list[str | int], str, str]] = []

    def add(self, name: str, msg: str, kind: str = "value_error") -> None:
        # A query of thousands of bad parameters gets a short answer, not one line for each.
        if len(self.found) < MAX_PROBLEMS:
            self.found.append((["query", name], msg, kind))

    def raise_any(self) -> None:
        if self.found:
            raise BadQuery(self.found)


def _collect(items: Items, allowed: frozenset[str], problems: _Problems) -> dict[str, list[str]]:
    """The values of each allowed parameter, empty ones left out; unknown names, repeats of
    single parameters, oversized or control-character values reported."""
    values: dict[str, list[str]] = {}
    unknown: set[str] = set()
    for name, value in items:
        if name not in allowed:
            if name not in unknown:
                unknown.add(name)
                # The name is shown: it is the client's typo to find (cut, and only printable).
                shown = name[:40] if name.isprintable() else "(unprintable)"
                problems.add(
                    shown,
                    f"unknown parameter: this operation takes {', '.join(sorted(allowed))}",
                    "unknown_parameter",
                )
            continue
        limit = MAX_TEXT if name == "q" else MAX_VALUE
        if name == "after" and value == "":
            values.setdefault(name, []).append(value)  # after= means "from the start"
            continue
        if value == "":
            continue
        if len(value) > limit:
            problems.add(name, f"at most {limit} characters", "too_long")
            continue
        if _CONTROL.search(value):
            problems.add(name, "control characters are not allowed", "control_character")
            continue
        values.setdefault(name, []).append(value)
    for name, given in values.items():
        if name not in REPEATABLE and len(given) > 1:
            problems.add(name, "give this parameter once", "repeated")
        elif len(given) > MAX_REPEATS:
            problems.add(name, f"at most {MAX_REPEATS} values", "too_many")
    return values


def _one(values: dict[str, list[str]], name: str) -> str | None:
    given = values.get(name)
    return given[0] if given else None


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))


def parse_time(text: str) -> datetime:
    """An ISO-8601 date or time as an aware UTC datetime; a time without an offset is UTC.
    Raises ``ValueError``."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _time(values: dict[str, list[str]], name: str, problems: _Problems) -> datetime | None:
    text = _one(values, name)
    if text is None:
        return None
    try:
        return parse_time(text)
    except (ValueError, OverflowError):
        problems.add(
            name,
            "not an ISO-8601 date or time: e.g. 2026-11-27, 2026-11-27T10:00:00Z or "
            "2026-11-27T12:00:00+02:00 (no offset: UTC)",
            "datetime",
        )
        return None


def _choice(
    values: dict[str, list[str]], name: str, allowed: tuple[str, ...], problems: _Problems
) -> str | None:
    text = _one(values, name)
    if text is None or text in allowed:
        return text
    problems.add(name, f"must be one of {', '.join(allowed)}", "enum")
    return None


def _limit(values: dict[str, list[str]], problems: _Problems) -> int:
    text = _one(values, "limit")
    if text is None:
        return DEFAULT_LIMIT
    if text.isascii() and text.isdigit() and 1 <= int(text) <= MAX_PAGE:
        return int(text)
    problems.add("limit", f"must be a whole number from 1 to {MAX_PAGE}", "limit")
    return DEFAULT_LIMIT


def _filter(account_id: str, values: dict[str, list[str]], problems: _Problems) -> ActivityFilter:
    categories = _unique(values.get("category", ()))
    for key in categories:
        if key not in _CATEGORY_KEYS:
            problems.add(
                "category",
                "not a category of the activity catalog (keys such as account, recipe, "
                "connection; see the catalog in the documentation)",
                "unknown_category",
            )
            break
    activities = _unique(values.get("activity", ()))
    for key in activities:
        if key not in _ACTIVITY_KEYS:
            problems.add(
                "activity",
                "not an activity of the activity catalog (keys such as user_login, "
                "recipe_stopped; see the catalog in the documentation)",
                "unknown_activity",
            )
            break
    ip_text = _one(values, "ip")
    ip: str | None = None
    if ip_text is not None:
        try:
            ip = str(ipaddress.ip_address(ip_text))
        except ValueError:
            problems.add("ip", "not an IPv4 or IPv6 address", "ip_address")
    since = _time(values, "from", problems)
    until = _time(values, "to", problems)
    if since is not None and until is not None and since > until:
        problems.add("from", "is after to: from is inclusive, to exclusive", "range")
    outcome = _choice(values, "outcome", ("success", "failure"), problems)
    return ActivityFilter(
        account_id=account_id,
        actors=_unique(values.get("actor", ())),
        categories=categories,
        activities=activities,
        resource_type=_one(values, "resource_type"),
        resource_id=_one(values, "resource_id"),
        outcome=cast(Literal["success", "failure"] | None, outcome),
        ip=ip,
        since=since,
        until=until,
        text=_one(values, "q"),
    )


def is_checkpoint_read(items: Items) -> bool:
    """Whether the request reads by checkpoint (it has ``after``, even empty)."""
    return any(name == "after" for name, _ in items)


def parse_checkpoint_read(items: Items) -> CheckpointRead:
    """``after`` (a checkpoint, empty for the start) and ``limit``. Raises :class:`BadQuery`;
    a filter is refused with the reason."""
    problems = _Problems()
    filters = sorted({n for n, _ in items if n in SEARCH_PARAMS and n != "limit"})
    if filters:
        problems.add(
            filters[0],
            "after= reads every event of the account in the order the store received them, "
            "so that a poller misses none; it takes only limit: filter the events you receive, "
            "or search without after=",
            "not_with_after",
        )
    rest = [(name, value) for name, value in items if name not in filters]
    values = _collect(rest, CHECKPOINT_PARAMS, problems)
    limit = _limit(values, problems)
    checkpoint = Checkpoint()
    text = _one(values, "after")
    if text:
        try:
            checkpoint = Checkpoint.decode(text)
        except BadCursor:
            problems.add(
                "after",
                "not a checkpoint this API returned: pass the checkpoint of the last answer, "
                "or after= to start from the beginning",
                "checkpoint",
            )
    problems.raise_any()
    return CheckpointRead(checkpoint, limit)


def parse_search(account_id: str, items: Items) -> Search:
    """A filtered page. Raises :class:`BadQuery`."""
    problems = _Problems()
    values = _collect(items, SEARCH_PARAMS, problems)
    flt = _filter(account_id, values, problems)
    order = _choice(values, "order", ("desc", "asc"), problems) or "desc"
    limit = _limit(values, problems)
    include_total = _choice(values, "include_total", ("true", "false"), problems) == "true"
    cursor: Cursor | None = None
    text = _one(values, "cursor")
    if text is not None and not problems.found:
        try:
            cursor = decode_cursor(text, flt, cast(Order, order))
        except BadCursor as exc:
            problems.add("cursor", str(exc), "cursor")
    problems.raise_any()
    return Search(flt, PageRequest(cast(Order, order), limit, cursor), include_total)


def _seal(position: str, flt: ActivityFilter, order: Order) -> str:
    digest = hashlib.sha256(f"{flt!r}|{order}|{position}".encode()).hexdigest()
    return digest[:_SEAL_CHARS]


def encode_cursor(cursor: Cursor, flt: ActivityFilter, order: Order) -> str:
    """The cursor a client gets: the store's position and a check of the filter and order it
    was made for (a cursor is not a secret: the check catches a page asked with other filters,
    or a cursor cut short, which would otherwise give a page from the middle of a list)."""
    position = cursor.encode()
    return f"{position}.{_seal(position, flt, order)}"


def decode_cursor(text: str, flt: ActivityFilter, order: Order) -> Cursor:
    """Raises ``BadCursor`` (saying what to do) unless ``encode_cursor`` made ``text`` for
    ``flt`` and ``order``."""
    position, _, seal = text.rpartition(".")
    try:
        cursor: Cursor | None = Cursor.decode(position)
    except BadCursor:
        cursor = None
    if cursor is None or len(seal) != _SEAL_CHARS:
        raise BadCursor(
            "not a cursor this API returned: follow the next link of the previous page, or "
            "leave cursor out to start again"
        )
    if not hmac.compare_digest(seal, _seal(position, flt, order)):
        raise BadCursor(
            "this cursor was made for other filters or another order: keep the parameters of "
            "the page it came from, or leave cursor out to start again with these"
        )
    return cursor


def parse_filter(account_id: str, items: Items) -> ActivityFilter:
    """Only the filter parameters (facets). Raises :class:`BadQuery`."""
    problems = _Problems()
    values = _collect(items, FACET_PARAMS, problems)
    flt = _filter(account_id, values, problems)
    problems.raise_any()
    return flt


def parse_export(account_id: str, items: Items) -> Export:
    """The filter, ``order`` and the required ``format``. Raises :class:`BadQuery`."""
    problems = _Problems()
    values = _collect(items, EXPORT_PARAMS, problems)
    flt = _filter(account_id, values, problems)
    order = _choice(values, "order", ("desc", "asc"), problems) or "desc"
    fmt = _choice(values, "format", ("csv", "ndjson"), problems)
    if fmt is None and "format" not in values:
        problems.add("format", "required: csv or ndjson", "missing")
    problems.raise_any()
    return Export(flt, cast(Order, order), cast(ExportFormat, fmt))


def describe(flt: ActivityFilter, limit: int = 1000) -> str:
    """The filter as ``name=value; ...`` in parameter names (for an export's audit event),
    cut to ``limit`` characters."""
    parts: list[str] = []
    for name, value in (
        ("actor", ",".join(flt.actors)),
        ("category", ",".join(flt.categories)),
        ("activity", ",".join(flt.activities)),
        ("resource_type", flt.resource_type),
        ("resource_id", flt.resource_id),
        ("outcome", flt.outcome),
        ("ip", flt.ip),
        ("from", flt.since.isoformat() if flt.since else None),
        ("to", flt.until.isoformat() if flt.until else None),
        ("q", flt.text),
    ):
        if value:
            parts.append(f"{name}={value}")
    text = "; ".join(parts) or "all events"
    return text if len(text) <= limit else text[: limit - 1] + "…"


_CATEGORY_KEYS = frozenset(c.key for c in catalog.CATEGORIES)
_ACTIVITY_KEYS = frozenset(a.key for a in catalog.ACTIVITIES)
