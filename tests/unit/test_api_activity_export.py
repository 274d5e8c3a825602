"""Exports: CSV cells and rows (pure), the chunked reader, the response that closes the store's
iterator however it ends, and the export route (headers, audit event, per-account cap)."""

from __future__ import annotations

import contextlib
import csv
import io
import tracemalloc
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import orjson
import pytest
from starlette.requests import ClientDisconnect

from auditstream.api.activity_export import (
    CSV_COLUMNS,
    ExportReader,
    ExportResponse,
    changes_text,
    csv_row,
    details_text,
    export_event,
    export_filename,
    safe_cell,
)
from auditstream.api.app import create_app
from auditstream.api.audit import Actor, RequestInfo
from auditstream.api.options import ApiOptions
from auditstream.api.service import SettingsService
from auditstream.api.tokens import create_token
from auditstream.config.secrets import SecretBox
from auditstream.pipeline import topics
from auditstream.pipeline.embedded_log import EmbeddedLog
from auditstream.producers.validation import validate_event
from auditstream.schemas import codec
from auditstream.store.base import StoredEvent
from auditstream.store.canonical import json_values
from tests.factories import make_event
from tests.fake_store import FakeStore

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

T0 = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        (None, ""),
        ("", ""),
        ("plain", "plain"),
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+1+1", "'+1+1"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("a=b", "a=b"),
        ("ünïcode 東京", "ünïcode 東京"),
        (42, "42"),
    ],
)
def test_safe_cell(value: object, cell: str) -> None:
    assert safe_cell(value) == cell


@pytest.mark.parametrize(
    ("changes", "text"),
    [
        ([], ""),
        (None, ""),
        ([{"field": "role", "old_value": "member", "new_value": "admin"}], "role: member → admin"),
        (
            [
                {"field": "a", "old_value": None, "new_value": "1"},
                {"field": "b", "old_value": "2", "new_value": None},
            ],
            "a:  → 1; b: 2 → ",
        ),
    ],
)
def test_changes_text(changes: Any, text: str) -> None:
    assert changes_text(changes) == text


def test_details_text() -> None:
    assert details_text({"b": "2", "a": "x=y"}) == "a=x=y; b=2"
    assert details_text({}) == ""
    assert details_text(None) == ""


def _stored(event: dict[str, Any], seq: int = 1) -> StoredEvent:
    values = json_values(event)
    return StoredEvent(
        values["account_id"], values["event_id"], event["occurred_at"], seq, values, "h"
    )


def test_a_csv_row_has_every_column_flattened_and_safe() -> None:
    event = make_event(
        resource={"type": "recipe", "id": "r-1", "name": "=cmd|' /C calc'!A0", "folder": None},
        outcome={"status": "failure", "reason": "-bad"},
        changes=[{"field": "state", "old_value": "running", "new_value": "stopped"}],
        details={"activity": "switch_team"},
    )
    row = dict(zip(CSV_COLUMNS, csv_row(json_values(event)), strict=True))
    assert row["occurred_at"] == "2026-11-27T10:00:00.123456Z"
    assert row["actor_email"] == "ada@example.com"
    assert row["resource_name"] == "'=cmd|' /C calc'!A0"
    assert row["outcome"] == "failure"
    assert row["outcome_reason"] == "'-bad"
    assert row["ip"] == "192.0.2.10"
    assert row["changes"] == "state: running → stopped"
    assert row["details"] == "activity=switch_team"


def test_a_csv_row_of_an_event_without_resource_or_request() -> None:
    row = csv_row(json_values(make_event(resource=None, request=None)))
    assert len(row) == len(CSV_COLUMNS)
    assert row[CSV_COLUMNS.index("resource_type")] == ""
    assert row[CSV_COLUMNS.index("ip")] == ""


def _events(n: int) -> list[StoredEvent]:
    return [
        _stored(make_event(occurred_at=T0 + timedelta(seconds=i), details={"n": str(i)}), i + 1)
        for i in range(n)
    ]


def _read_all(reader: ExportReader) -> bytes:
    out = b""
    while (chunk := reader.next_chunk()) is not None:
        out += chunk
    return out


def test_csv_export_reads_back_in_a_spreadsheet_shape() -> None:
    reader = ExportReader(iter(_events(1203)), "csv", rows_per_chunk=500)
    data = _read_all(reader)
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert len(rows) == 1204
    assert reader.rows == 1203


def test_ndjson_export_is_one_event_a_line() -> None:
    events = _events(7)
    data = _read_all(ExportReader(iter(events), "ndjson", rows_per_chunk=3))
    assert [orjson.loads(line) for line in data.splitlines()] == [e.event for e in events]


@pytest.mark.parametrize(("fmt", "expected"), [("csv", 1), ("ndjson", 0)])
def test_an_empty_export(fmt: Any, expected: int) -> None:
    data = _read_all(ExportReader(iter([]), fmt))
    assert len(data.decode("utf-8-sig").splitlines()) == expected


class Counted:
    """A store export iterator that makes its rows as they are asked for."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.made = 0
        self.closed = False

    def __iter__(self) -> Counted:
        return self

    def __next__(self) -> StoredEvent:
        if self.closed or self.made >= self.n:
            raise StopIteration
        self.made += 1
        return _stored(make_event(occurred_at=T0, details={"n": str(self.made)}), self.made)

    def close(self) -> None:
        self.closed = True


def test_memory_stays_bounded_over_20000_rows() -> None:
    source = Counted(20_000)
    reader = ExportReader(source, "csv", rows_per_chunk=200)
    tracemalloc.start()
    try:
        total = 0
        while (chunk := reader.next_chunk()) is not None:
            total += len(chunk)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert source.made == 20_000
    assert total > 20_000 * 100  # the rows were rendered...
    assert peak < 2_000_000  # ...never more than a few chunks of them held


def test_close_closes_the_store_iterator_and_ends_reading() -> None:
    source = Counted(10_000)
    reader = ExportReader(source, "ndjson", rows_per_chunk=10)
    assert reader.next_chunk()
    reader.close()
    reader.close()
    assert source.closed
    assert reader.next_chunk() is None
    assert source.made == 10


def _scope() -> dict[str, Any]:
    return {"type": "http", "asgi": {"spec_version": "2.4"}, "method": "GET", "headers": []}


@pytest.mark.parametrize("spec", ["2.4", "2.3"])
def test_the_response_closes_the_store_iterator_when_the_client_goes_away(spec: str) -> None:
    source = Counted(1_000_000)
    reader = ExportReader(source, "ndjson", rows_per_chunk=100)
    released: list[bool] = []
    response = ExportResponse(
        reader,
        reader.next_chunk() or b"",
        media_type="application/x-ndjson",
        filename="x.ndjson",
        on_close=lambda: released.append(True),
    )
    sent: list[dict[str, Any]] = []
    gone = anyio.Event()

    async def send(message: Any) -> None:
        sent.append(message)
        if len(sent) >= 4:  # the start and a few chunks, then the client is gone
            gone.set()
            if spec == "2.4":
                raise OSError("connection reset")

    async def receive() -> Any:
        await gone.wait()
        return {"type": "http.disconnect"}

    scope = _scope()
    scope["asgi"]["spec_version"] = spec

    async def run() -> None:
        with contextlib.suppress(ClientDisconnect):  # how 2.4 ends
            await response(scope, receive, send)

    anyio.run(run)
    assert source.closed
    assert released == [True]
    assert source.made < 10_000


def test_the_response_closes_after_the_last_row() -> None:
    source = Counted(250)
    reader = ExportReader(source, "csv", rows_per_chunk=100)
    released: list[bool] = []
    response = ExportResponse(
        reader,
        reader.next_chunk() or b"",
        media_type="text/csv",
        filename="x.csv",
        on_close=lambda: released.append(True),
    )
    body = bytearray()

    async def send(message: Any) -> None:
        body.extend(message.get("body", b""))

    async def receive() -> Any:
        await anyio.sleep_forever()

    anyio.run(response, _scope(), receive, send)
    assert source.closed
    assert released == [True]
    assert len(body.decode("utf-8-sig").splitlines()) == 251


@pytest.mark.parametrize("spec", ["2.4", "2.3"])
def test_a_client_that_stops_accepting_chunks_is_dropped(
    spec: str, caplog: pytest.LogCaptureFixture
) -> None:
    source = Counted(1_000_000)
    reader = ExportReader(source, "ndjson", rows_per_chunk=100)
    released: list[bool] = []
    response = ExportResponse(
        reader,
        reader.next_chunk() or b"",
        media_type="application/x-ndjson",
        filename="x.ndjson",
        on_close=lambda: released.append(True),
        stall_timeout=0,  # the first send that has to wait is over time at once
    )
    sent: list[Any] = []

    async def send(message: Any) -> None:
        if len(sent) >= 3:
            await anyio.Event().wait()  # a client that reads no more
        sent.append(message)

    async def receive() -> Any:
        await anyio.sleep_forever()

    scope = _scope()
    scope["asgi"]["spec_version"] = spec
    anyio.run(response, scope, receive, send)
    assert len(sent) == 3
    assert source.closed
    assert released == [True]
    assert "accepted nothing" in caplog.text


@pytest.mark.parametrize(
    ("account", "name"),
    [
        ("acme", "activity-acme-20261101T000000Z.csv"),
        ('a"b\r\nc/../d', "activity-a_b_c_.._d-20261101T000000Z.csv"),
        ("..", "activity-account-20261101T000000Z.csv"),
        ("東京", "activity-account-20261101T000000Z.csv"),
    ],
)
def test_export_filename(account: str, name: str) -> None:
    assert export_filename(account, "csv", T0) == name


def test_the_export_event_is_a_valid_event() -> None:
    event = export_event(
        "acme",
        actor=Actor("u-1", "admin"),
        request=RequestInfo("192.0.2.1", "curl", "r-1"),
        fmt="csv",
        filter_text="category=recipe",
        now=T0,
    )
    validate_event(event)
    assert event["details"] == {
        "operation": "exported",
        "format": "csv",
        "filter": "category=recipe",
    }
    assert event["resource"]["type"] == "activity_audit_log"


# -- the route --------------------------------------------------------------------------------


@pytest.fixture
def app(tmp_path: Path) -> Iterator[tuple[TestClient, FakeStore, EmbeddedLog, dict[str, str]]]:
    log = EmbeddedLog(tmp_path / "log.sqlite")
    store = FakeStore()
    store.append(
        [
            make_event(occurred_at=T0 + timedelta(seconds=i), activity="user_login")
            for i in range(1500)
        ]
    )
    options = ApiOptions(exports_per_account=1)
    service = SettingsService(
        log, SecretBox([SecretBox.generate_key()]), options, audit_store=store
    )
    token, _ = create_token(log, account_id="acme", user_id="u-exporter", role="admin")
    with TestClient(create_app(service, options)) as client:
        yield client, store, log, {"Authorization": f"Bearer {token}", "User-Agent": "t"}
    service.close()
    log.close()


def _audit_events(log: EmbeddedLog) -> list[dict[str, Any]]:
    consumer = log.consumer("test-reader", [topics.ACTIVITY])
    try:
        found: list[dict[str, Any]] = []
        for _ in range(5):
            records = consumer.poll(1000, 0.2)
            if not records and found:
                break
            found += [codec.decode(r.value) for r in records]
        return found
    finally:
        consumer.close()


def test_export_route_streams_csv_and_records_who_exported_what(
    app: tuple[TestClient, FakeStore, EmbeddedLog, dict[str, str]],
) -> None:
    client, store, log, auth = app
    answer = client.get(
        "/v1/accounts/acme/activity/export?format=csv&activity=user_login&order=asc", headers=auth
    )
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/csv; charset=utf-8"
    disposition = answer.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="activity-acme-')
    assert disposition.endswith('.csv"')
    rows = list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"))))
    assert len(rows) == 1501
    assert rows[1][0] < rows[-1][0]  # ascending
    assert store.exports_opened == store.exports_closed == 1
    (event,) = _audit_events(log)
    assert event["activity"] == "audit_log_streaming"
    assert event["actor"]["user_id"] == "u-exporter"
    assert event["details"] == {
        "operation": "exported",
        "format": "csv",
        "filter": "activity=user_login",
    }


def test_export_route_ndjson(
    app: tuple[TestClient, FakeStore, EmbeddedLog, dict[str, str]],
) -> None:
    client, store, _log, auth = app
    answer = client.get("/v1/accounts/acme/activity/export?format=ndjson", headers=auth)
    assert answer.headers["content-type"] == "application/x-ndjson"
    assert len(answer.content.splitlines()) == 1500
    assert store.exports_closed == 1


def test_exports_over_the_accounts_cap_are_429(
    app: tuple[TestClient, FakeStore, EmbeddedLog, dict[str, str]],
) -> None:
    client, store, _log, auth = app
    url = "/v1/accounts/acme/activity/export?format=ndjson"
    with client.stream("GET", url, headers=auth) as running:
        assert running.status_code == 200
        refused = client.get(url, headers=auth)
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) >= 1
        assert "exports of this account are running" in refused.json()["detail"]
    assert client.get(url, headers=auth).status_code == 200  # the place was given back
    assert store.exports_opened == store.exports_closed == 2


def test_a_bad_export_request_holds_no_place(
    app: tuple[TestClient, FakeStore, EmbeddedLog, dict[str, str]],
) -> None:
    client, store, _log, auth = app
    for _ in range(3):
        answer = client.get("/v1/accounts/acme/activity/export?format=xlsx", headers=auth)
        assert answer.status_code == 400
        assert answer.json()["detail"][0]["loc"] == ["query", "format"]
    store.broken = True
    assert (
        client.get("/v1/accounts/acme/activity/export?format=csv", headers=auth).status_code == 503
    )
    store.broken = False
    assert (
        client.get("/v1/accounts/acme/activity/export?format=csv", headers=auth).status_code == 200
    )
