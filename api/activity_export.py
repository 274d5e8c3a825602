"""Exports of the activity audit log: CSV and NDJSON rendering (pure), the chunked reader over
the store's export iterator, the streaming response that always closes it, and the audit event
that records who exported what.

An export never holds its result: the store yields events in bounded chunks, and each HTTP
chunk is rendered from at most ``ROWS_PER_CHUNK`` of them. Whatever ends the response -- the
last row, a client that goes away, a failing store -- the store's iterator is closed before the
export's place under the account's cap is given back.
"""

from __future__ import annotations

import csv
import io
import logging
import re
import threading
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from datetime import datetime
from typing import Any

import anyio
import orjson
from starlette.requests import ClientDisconnect
from starlette.responses import StreamingResponse
from starlette.types import Message, Receive, Scope, Send

from auditstream.api.activity_params import ExportFormat
from auditstream.api.audit import STREAMING, Actor, RequestInfo
from auditstream.store.base import StoredEvent

ROWS_PER_CHUNK = 500
STALL_TIMEOUT_S = 60.0
"""Seconds a client may take to accept one chunk of an export."""
CSV_COLUMNS = (
    "occurred_at",
    "event_id",
    "category",
    "activity",
    "actor_user_id",
    "actor_email",
    "actor_name",
    "actor_role",
    "resource_type",
    "resource_id",
    "resource_name",
    "outcome",
    "outcome_reason",
    "ip",
    "user_agent",
    "changes",
    "details",
)
MEDIA_TYPES: dict[str, str] = {
    "csv": "text/csv; charset=utf-8",
    "ndjson": "application/x-ndjson",
}
EXPORT_RESOURCE = "activity_audit_log"

log = logging.getLogger(__name__)

# A spreadsheet runs a cell starting with one of these as a formula (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def safe_cell(value: object) -> str:
    """``value`` as a CSV cell a spreadsheet shows as text: ``None`` is empty, and a leading
    formula character gets a ``'`` before it."""
    if value is None:
        return ""
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def _get(data: Mapping[str, Any] | None, key: str) -> Any:
    # Stored events are plain dicts: test for that first (the abstract Mapping check costs
    # more than the lookup, and runs a dozen times a row).
    if type(data) is dict or isinstance(data, Mapping):
        return data.get(key)
    return None


def changes_text(changes: Any) -> str:
    """``field: old → new; ...`` (an absent value shows as nothing)."""
    if not isinstance(changes, list):
        return ""
    parts = []
    for change in changes:
        old, new = _get(change, "old_value"), _get(change, "new_value")
        parts.append(
            f"{_get(change, 'field') or ''}: {'' if old is None else old} → "
            f"{'' if new is None else new}"
        )
    return "; ".join(parts)


def details_text(details: Any) -> str:
    """``key=value; ...`` in key order."""
    if not isinstance(details, Mapping):
        return ""
    return "; ".join(f"{k}={details[k]}" for k in sorted(details))


def csv_row(event: Mapping[str, Any]) -> list[str]:
    """One event as the cells of ``CSV_COLUMNS``, each made safe for spreadsheets."""
    actor, resource = _get(event, "actor"), _get(event, "resource")
    outcome, request = _get(event, "outcome"), _get(event, "request")
    cells = (
        event.get("occurred_at"),
        event.get("event_id"),
        event.get("category"),
        event.get("activity"),
        _get(actor, "user_id"),
        _get(actor, "email"),
        _get(actor, "name"),
        _get(actor, "role"),
        _get(resource, "type"),
        _get(resource, "id"),
        _get(resource, "name"),
        _get(outcome, "status"),
        _get(outcome, "reason"),
        _get(request, "ip"),
        _get(request, "user_agent"),
        changes_text(event.get("changes")),
        details_text(event.get("details")),
    )
    return [safe_cell(c) for c in cells]


def render_csv(events: list[StoredEvent], *, header: bool) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    if header:
        writer.writerow(CSV_COLUMNS)
    writer.writerows(csv_row(e.event) for e in events)
    # The byte order mark first: spreadsheet programs then read the file as UTF-8.
    return ("\ufeff" if header else "").encode() + out.getvalue().encode()


def render_ndjson(events: list[StoredEvent]) -> bytes:
    return b"".join(orjson.dumps(e.event) + b"\n" for e in events)


class ExportReader:
    """Reads ``events`` (the store's export iterator) chunk by chunk into rendered bytes.

    ``next_chunk`` and ``close`` may be called from any thread, one at a time (a lock keeps a
    close from running while a read is under way in another thread). Raises what the store
    raises."""

    def __init__(
        self, events: Iterator[StoredEvent], fmt: ExportFormat, rows_per_chunk: int = ROWS_PER_CHUNK
    ) -> None:
        self._events = events
        self._format = fmt
        self._rows = rows_per_chunk
        self._lock = threading.Lock()
        self._started = False
        self._done = False
        self.rows = 0

    def next_chunk(self) -> bytes | None:
        """The next rendered chunk; ``None`` once every event was read (or after close)."""
        with self._lock:
            if self._done:
                return None
            batch: list[StoredEvent] = []
            for event in self._events:
                batch.append(event)
                if len(batch) >= self._rows:
                    break
            else:
                self._done = True
            header = self._format == "csv" and not self._started
            self._started = True
            self.rows += len(batch)
            if self._format == "csv":
                return render_csv(batch, header=header) if batch or header else None
            return render_ndjson(batch) if batch else None

    def close(self) -> None:
        """Release what the store's iterator holds (its cursor, connection); idempotent."""
        with self._lock:
            self._done = True
            close = getattr(self._events, "close", None)
            if callable(close):
                close()


class ExportResponse(StreamingResponse):
    """Streams an :class:`ExportReader`; closes it, then calls ``on_close``, however the
    response ends (cancelled by a client going away included). A client that takes longer
    than ``stall_timeout`` seconds to accept one chunk is dropped: it would hold the
    account's export place for as long as it likes. ``read_chunk`` runs one read of the
    reader (default: in a worker thread)."""

    def __init__(
        self,
        reader: ExportReader,
        first: bytes,
        *,
        media_type: str,
        filename: str,
        on_close: Callable[[], None],
        read_chunk: Callable[[Callable[[], bytes | None]], Awaitable[bytes | None]] | None = None,
        stall_timeout: float = STALL_TIMEOUT_S,
    ) -> None:
        self._reader = reader
        self._stall_timeout = stall_timeout
        self._first = first
        self._on_close = on_close
        self._read_chunk = read_chunk or _in_thread
        super().__init__(
            self._chunks(),
            media_type=media_type,
            headers={
                "Content-Disposition": f'attachment; filename="{filename}"',
                "Cache-Control": "no-store",
                "X-Content-Type-Options": "nosniff",
            },
        )

    async def _chunks(self) -> AsyncIterator[bytes]:
        if self._first:
            yield self._first
        while True:
            chunk = await self._read_chunk(self._reader.next_chunk)
            if chunk is None:
                return
            if chunk:
                yield chunk

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        stalled = False

        async def send_in_time(message: Message) -> None:
            nonlocal stalled
            try:
                with anyio.fail_after(self._stall_timeout):
                    await send(message)
            except TimeoutError:
                stalled = True
                raise

        try:
            await super().__call__(scope, receive, send_in_time)
        except (TimeoutError, ClientDisconnect):  # Starlette turns an OSError into the latter
            if not stalled:
                raise
            # The response is under way: ending it here leaves it incomplete, which the
            # client sees (an export never looks finished when it is not).
            log.warning(
                "an export was dropped: its client accepted nothing for %g s", self._stall_timeout
            )
        finally:
            # Shielded: after a disconnect this task is being cancelled, and the store's
            # cursor must still be closed (in a thread: closing may wait on the store).
            with anyio.CancelScope(shield=True):
                try:
                    await anyio.to_thread.run_sync(self._reader.close)
                finally:
                    self._on_close()


async def _in_thread(read: Callable[[], bytes | None]) -> bytes | None:
    return await anyio.to_thread.run_sync(read)


def export_filename(account_id: str, fmt: ExportFormat, now: datetime) -> str:
    """``activity-<account>-<UTC time>.<format>``, the account id cut to safe characters."""
    account = _UNSAFE_NAME.sub("_", account_id)[:60].strip("._") or "account"
    return f"activity-{account}-{now.strftime('%Y%m%dT%H%M%SZ')}.{fmt}"


def export_event(
    account_id: str,
    *,
    actor: Actor,
    request: RequestInfo | None,
    fmt: ExportFormat,
    filter_text: str,
    now: datetime,
    event_id: str | None = None,
) -> dict[str, Any]:
    """The audit event of an export: who exported which events of the account, in which
    format (``details``: ``operation=exported``, ``format``, ``filter``). Recorded as
    ``audit_log_streaming`` (see docs/adr/022-activity-export-audit-event.md)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return {
        "event_id": event_id or str(uuid.uuid4()),
        "occurred_at": now,
        "recorded_at": now,
        "account_id": account_id,
        "category": "account",
        "activity": STREAMING,
        "actor": {
            "user_id": actor.user_id,
            "name": None,
            "email": None,
            "role": actor.role,
            "auth_method": actor.auth_method,
        },
        "resource": {
            "type": EXPORT_RESOURCE,
            "id": account_id,
            "name": "Activity audit log",
            "folder": None,
        },
        "outcome": {"status": "success", "reason": None},
        "changes": [],
        "request": None
        if request is None
        else {
            "ip": request.ip,
            "user_agent": request.user_agent,
            "request_id": request.request_id,
            "session_id": None,
        },
        "details": {"operation": "exported", "format": fmt, "filter": filter_text},
    }
