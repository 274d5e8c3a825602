"""The activity audit log API: search with cursor pages, checkpoint reads, one event, facets and
exports of an account's audit log (``/v1/accounts/{account_id}/activity...``).

The guard (``api.app``) has authenticated the caller and checked access before a route runs:
owners, admins and members with the ``activity_audit`` privilege read; another account is 404.
Each route then takes one request from the caller's token bucket (429 with ``Retry-After``
beyond it), parses its query parameters (400 naming each bad one, ``api.activity_params``) and
reads the store in a worker thread. A store that cannot answer is 503, never a partial answer.
"""

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar
from urllib.parse import urlencode

import anyio
import orjson
from fastapi import APIRouter, Depends, Path, Request, Response

from auditstream.api import activity_params as params
from auditstream.api.activity_export import (
    MEDIA_TYPES,
    ExportReader,
    ExportResponse,
    export_event,
    export_filename,
)
from auditstream.api.activity_models import (
    ActivityEventOut,
    ActivityPage,
    CheckpointPageOut,
    FacetsOut,
)
from auditstream.api.activity_params import BadQuery, encode_cursor
from auditstream.api.errors import NotFound, TooManyRequests, Unavailable, failure_text
from auditstream.api.models import ErrorMessage, ValidationErrors
from auditstream.api.options import ApiOptions
from auditstream.api.rate_limits import ConcurrencyCap, TokenBuckets, retry_after
from auditstream.api.service import Caller, SettingsService
from auditstream.schemas import catalog
from auditstream.store.base import AuditStore
from auditstream.store.errors import BadCursor, StoreError
from auditstream.store.query import MAX_PAGE, Facets

log = logging.getLogger(__name__)

T = TypeVar("T")
ServiceGetter = Callable[[], SettingsService]
CallerFunction = Callable[..., Caller]

BASE = "/v1/accounts/{account_id}/activity"
EXPORT_RETRY_AFTER_S = 10
MAX_EVENT_ID = 100

_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ValidationErrors, "description": "A query parameter is not valid: named."},
    429: {
        "model": ErrorMessage,
        "description": "Too many requests of this token; try again after Retry-After seconds.",
    },
    503: {"model": ErrorMessage, "description": "The audit store cannot answer now."},
}
_EXPORT_RESPONSES: dict[int | str, dict[str, Any]] = {
    **_RESPONSES,
    200: {
        "description": "The events, streamed: CSV (UTF-8 with a byte order mark, one header "
        "row) or NDJSON (one event a line).",
        "content": {"text/csv": {}, "application/x-ndjson": {}},
    },
    429: {
        "model": ErrorMessage,
        "description": "Too many requests of this token, or the account's exports running at "
        "once are at their limit; try again after Retry-After seconds.",
    },
}


def _string(name: str, description: str, **schema: Any) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": {"type": "string", **schema},
    }


def _array(name: str, description: str, items: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "style": "form",
        "explode": True,
        "description": description,
        "schema": {"type": "array", "items": items, "maxItems": params.MAX_REPEATS},
    }


_FILTERS = [
    _array(
        "actor",
        "User id or e-mail of who acted (repeatable: any of them).",
        {"type": "string", "maxLength": params.MAX_VALUE},
    ),
    _array(
        "category",
        "Category key from the activity catalog (repeatable).",
        {"type": "string", "enum": [c.key for c in catalog.CATEGORIES]},
    ),
    _array(
        "activity",
        "Activity key from the activity catalog (repeatable).",
        {"type": "string", "enum": [a.key for a in catalog.ACTIVITIES]},
    ),
    _string("resource_type", "Type of the resource acted on.", maxLength=params.MAX_VALUE),
    _string("resource_id", "Id of the resource acted on.", maxLength=params.MAX_VALUE),
    _string("outcome", "success or failure.", enum=["success", "failure"]),
    _string("ip", "The request's IPv4 or IPv6 address.", maxLength=params.MAX_VALUE),
    _string(
        "from",
        "Events at or after this ISO-8601 date or time (no offset: UTC).",
        format="date-time",
    ),
    _string("to", "Events before this ISO-8601 date or time (no offset: UTC).", format="date-time"),
    _string(
        "q",
        "Free text over actor name and e-mail, resource name and id, activity and detail values.",
        maxLength=params.MAX_TEXT,
    ),
]
_ORDER = _string(
    "order", "By (occurred_at, event_id): desc (default) or asc.", enum=["desc", "asc"]
)
_SEARCH = [
    *_FILTERS,
    _ORDER,
    {
        "name": "limit",
        "in": "query",
        "required": False,
        "description": f"Events per page, 1 to {MAX_PAGE} (default {params.DEFAULT_LIMIT}).",
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE},
    },
    _string("cursor", "next_cursor of the previous page (same filters and order)."),
    _string(
        "include_total", "true: count every matching event too (slower).", enum=["true", "false"]
    ),
    _string(
        "after",
        "Checkpoint mode: the checkpoint of the previous answer (empty: from the start). "
        "Every event of the account in the order the store received it; takes only limit.",
    ),
]
_EXPORT = [
    *_FILTERS,
    _ORDER,
    {
        "name": "format",
        "in": "query",
        "required": True,
        "description": "csv or ndjson.",
        "schema": {"type": "string", "enum": ["csv", "ndjson"]},
    },
]


def _items(request: Request) -> list[tuple[str, str]]:
    return list(request.query_params.multi_items())


def _mapped(read: Callable[[], T]) -> T:
    """``read()`` with the store's errors as API errors (the store's message may name its
    address: it goes to the log, not to the client)."""
    try:
        return read()
    except BadCursor as exc:  # parsed already: a position the store cannot use
        raise BadQuery(
            [
                (
                    ["query", "cursor"],
                    "not a position this store can read from: leave cursor out to start again",
                    "cursor",
                )
            ]
        ) from exc
    except StoreError as exc:
        log.error("the audit store failed a read: %s", failure_text(exc))
        raise Unavailable(
            "the activity audit log cannot be read now; try again in a moment"
        ) from exc


def per_account_reads(threads: int) -> int:
    """How many of the ``threads`` store reads running at once one account may hold: a
    quarter (at least one), so that a few accounts asking heavy reads leave threads free
    for every other account."""
    return max(1, threads // 4)


class StoreReads:
    """Runs store reads in worker threads, at most ``limit`` at once: a store that hangs holds
    that many threads, never the ones the settings routes run in. One account runs at most
    ``per_account`` of them; its further reads wait for one of its own to end, not for a
    thread (facets over millions of events, asked sixteen at a time by one account, made
    another account's one-page read wait seconds for a thread)."""

    def __init__(self, limit: int, per_account: int | None = None) -> None:
        self.limiter = anyio.CapacityLimiter(limit)
        self._per_account = per_account or per_account_reads(limit)
        # An account's semaphore and how many reads use it (removed when none does).
        self._accounts: dict[str, tuple[anyio.Semaphore, int]] = {}

    async def __call__(self, account_id: str, read: Callable[[], T]) -> T:
        semaphore, users = self._accounts.get(account_id) or (
            anyio.Semaphore(self._per_account),
            0,
        )
        self._accounts[account_id] = (semaphore, users + 1)
        try:
            async with semaphore:
                return await anyio.to_thread.run_sync(_mapped, read, limiter=self.limiter)
        finally:
            semaphore, users = self._accounts[account_id]
            if users == 1:
                del self._accounts[account_id]
            else:
                self._accounts[account_id] = (semaphore, users - 1)

    def accounts_reading(self) -> int:
        """Accounts with a read running or waiting."""
        return len(self._accounts)


def _next_link(request: Request, name: str, value: str) -> str:
    """``<the same URL with name=value instead of its old value>; rel="next"``."""
    kept = [(k, v) for k, v in _items(request) if k != name]
    url = request.url.replace(query=urlencode([*kept, (name, value)]))
    return f'<{url}>; rel="next"'


def _json(body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), media_type="application/json", headers=headers)


def facets_body(facets: Facets) -> dict[str, Any]:
    """Facet counts as the viewer's menus list them: catalog order, display names; keys the
    catalog does not know (events of a newer catalog) last, named by their key."""
    categories = [
        {"key": c.key, "name": c.name, "count": facets.categories[c.key]}
        for c in catalog.CATEGORIES
        if c.key in facets.categories
    ]
    known_c = {c["key"] for c in categories}
    categories += [
        {"key": k, "name": k, "count": n}
        for k, n in sorted(facets.categories.items())
        if k not in known_c
    ]
    activities = [
        {"key": a.key, "name": a.name, "category": a.category, "count": facets.activities[a.key]}
        for a in catalog.ACTIVITIES
        if a.key in facets.activities
    ]
    known_a = {a["key"] for a in activities}
    activities += [
        {"key": k, "name": k, "category": "", "count": n}
        for k, n in sorted(facets.activities.items())
        if k not in known_a
    ]
    return {"categories": categories, "activities": activities}


def add_activity_routes(
    v1: APIRouter,
    get_service: ServiceGetter,
    options: ApiOptions,
    caller_dependency: CallerFunction,
    *,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Register the activity routes on ``v1`` (before the app includes it)."""
    reads = TokenBuckets(options.activity_reads_per_second, options.activity_read_burst, clock)

    def limited(caller: Annotated[Caller, Depends(caller_dependency)]) -> Caller:
        wait = reads.take(caller.principal.token_id)
        if wait > 0:
            raise TooManyRequests(
                f"more than {options.activity_read_burst} activity reads at once, or over "
                f"{options.activity_reads_per_second:g} a second, with this token: try again "
                "after Retry-After seconds",
                retry_after=retry_after(wait),
            )
        return caller

    caller_dep = Annotated[Caller, Depends(limited)]

    def store() -> AuditStore:
        return get_service().audit_store()

    # The export first: /activity/export must not be taken for the event id "export".
    reading = StoreReads(options.activity_read_threads)
    _add_export(
        v1, get_service, store, caller_dep, ConcurrencyCap(options.exports_per_account), reading
    )
    _add_reads(v1, store, caller_dep, reading)


def _add_reads(
    v1: APIRouter, store: Callable[[], AuditStore], caller_dep: Any, reading: StoreReads
) -> None:
    """Search and checkpoint reads, facets, one event."""
    account_path = Annotated[str, Path(description="The account's id.")]

    @v1.get(
        BASE,
        tags=["activity"],
        response_model=ActivityPage | CheckpointPageOut,
        responses=_RESPONSES,
        openapi_extra={"parameters": _SEARCH},
    )
    async def search_activity(
        account_id: account_path, request: Request, caller: caller_dep
    ) -> Any:
        """The account's activity audit log, filtered, one page at a time, newest first by
        default. ``next_cursor`` (and the ``Link: <...>; rel="next"`` header, the whole URL)
        gives the next page with the same filters; ``total`` only with
        ``include_total=true``.

        With ``after`` (checkpoint mode, for a SIEM that pulls): every event of the account in
        the order the store received it, events late for their time included, and the
        ``checkpoint`` to pass as ``after`` next time (``after=`` starts from the first); the
        ``Link`` header holds that next URL. Repeating it misses nothing and returns nothing
        twice. Filters are refused in this mode."""
        items = _items(request)
        if params.is_checkpoint_read(items):
            read = params.parse_checkpoint_read(items)
            page = await reading(
                account_id, lambda: store().after(account_id, read.checkpoint, read.limit)
            )
            checkpoint = page.checkpoint.encode()
            return _json(
                {"events": [e.event for e in page.events], "checkpoint": checkpoint},
                {"Link": _next_link(request, "after", checkpoint)},
            )
        search = params.parse_search(account_id, items)
        found = await reading(account_id, lambda: store().query(search.filter, search.page))
        body: dict[str, Any] = {"events": [e.event for e in found.events], "next_cursor": None}
        headers: dict[str, str] = {}
        if found.next_cursor is not None:
            cursor = encode_cursor(found.next_cursor, search.filter, search.page.order)
            body["next_cursor"] = cursor
            headers["Link"] = _next_link(request, "cursor", cursor)
        if search.include_total:
            body["total"] = await reading(account_id, lambda: store().count(search.filter))
        return _json(body, headers)

    @v1.get(
        f"{BASE}/facets",
        tags=["activity"],
        response_model=FacetsOut,
        responses=_RESPONSES,
        openapi_extra={"parameters": _FILTERS},
    )
    async def activity_facets(
        account_id: account_path, request: Request, caller: caller_dep
    ) -> Any:
        """How many events of the filter there are per category and per activity (the
        viewer's menus); each count ignores the filter's own category and activity choices."""
        flt = params.parse_filter(account_id, _items(request))
        return _json(facets_body(await reading(account_id, lambda: store().facets(flt))))

    @v1.get(
        f"{BASE}/{{event_id}}",
        tags=["activity"],
        response_model=ActivityEventOut,
        responses=_RESPONSES,
    )
    async def get_activity_event(
        account_id: account_path,
        event_id: Annotated[str, Path(description="The event's id.")],
        caller: caller_dep,
    ) -> Any:
        """One event of the account's audit log, with its ``changes``. 404 when the account
        has no such event."""
        stored = None
        if len(event_id) <= MAX_EVENT_ID:
            stored = await reading(account_id, lambda: store().get(account_id, event_id))
        if stored is None or stored.account_id != account_id:
            raise NotFound("no such event in this account's activity audit log")
        return _json(stored.event)


def _add_export(
    v1: APIRouter,
    get_service: ServiceGetter,
    store: Callable[[], AuditStore],
    caller_dep: Any,
    exports: ConcurrencyCap,
    reading: StoreReads,
) -> None:
    account_path = Annotated[str, Path(description="The account's id.")]

    @v1.get(
        f"{BASE}/export",
        tags=["activity"],
        response_class=Response,
        responses=_EXPORT_RESPONSES,
        openapi_extra={"parameters": _EXPORT},
    )
    async def export_activity(
        account_id: account_path, request: Request, caller: caller_dep
    ) -> Any:
        """Every event of the filter as a file download (``Content-Disposition:
        attachment``), streamed: CSV with one column per field a spreadsheet needs, or NDJSON
        with whole events. A cell that a spreadsheet would run as a formula starts with
        ``'``. The export is recorded as an audit event of the account (who, which filter,
        which format) before the first byte is sent. At most ``exports_per_account`` exports
        of an account stream at once."""
        export = params.parse_export(account_id, _items(request))
        if not exports.try_acquire(account_id):
            raise TooManyRequests(
                f"{exports.limit} exports of this account are running: try again when one has "
                "finished",
                retry_after=EXPORT_RETRY_AFTER_S,
            )
        reader: ExportReader | None = None
        try:
            now = datetime.now(UTC)
            event = export_event(
                account_id,
                actor=caller.actor,
                request=caller.request,
                fmt=export.format,
                filter_text=params.describe(export.filter),
                now=now,
            )
            await anyio.to_thread.run_sync(get_service().record_activity, event)
            reader = ExportReader(
                await reading(account_id, lambda: store().export(export.filter, export.order)),
                export.format,
            )
            # The first chunk is read here: a store that fails at once is a 503, not a
            # download that breaks off.
            first = await reading(account_id, reader.next_chunk) or b""
            return ExportResponse(
                reader,
                first,
                media_type=MEDIA_TYPES[export.format],
                filename=export_filename(account_id, export.format, now),
                on_close=lambda: exports.release(account_id),
                # Each chunk is one of the account's reads: its exports and searches share
                # its part of the threads.
                read_chunk=lambda read: reading(account_id, read),
            )
        except BaseException:
            with anyio.CancelScope(shield=True):  # a client gone is a cancellation here
                try:
                    if reader is not None:
                        await anyio.to_thread.run_sync(reader.close)
                finally:
                    exports.release(account_id)
            raise
