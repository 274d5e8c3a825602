"""The activity audit log API attacked over HTTP (uvicorn on 127.0.0.1, a real SQLite store):
one account reaching another's events by every path and parameter trick, hostile filter values,
and an export whose every column carries a spreadsheet formula."""

from __future__ import annotations

import csv
import io
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from auditstream.api.activity_params import encode_cursor
from auditstream.api.app import create_app
from auditstream.api.options import ApiOptions
from auditstream.api.service import SettingsService
from auditstream.api.tokens import create_token
from auditstream.config.secrets import SecretBox
from auditstream.pipeline.embedded_log import EmbeddedLog
from auditstream.pipeline.topic_setup import ensure_core_topics
from auditstream.store.query import ActivityFilter, Checkpoint, Cursor, PageRequest, micros
from auditstream.store.sqlite_store import SqliteStore
from devservices.ports import free_port
from tests.api_server import serve
from tests.factories import make_event

FORMULA = '=HYPERLINK("http://127.0.0.1/x","y")'


@dataclass
class Tenants:
    url: str
    store: SqliteStore
    tokens: dict[str, str]
    beta_event: str

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}


@pytest.fixture
def tenants(tmp_path: Path) -> Iterator[Tenants]:
    log = EmbeddedLog(tmp_path / "log.sqlite")
    ensure_core_topics(log)
    store = SqliteStore(tmp_path / "audit.db")
    options = ApiOptions(activity_reads_per_second=10_000, activity_read_burst=10_000)
    service = SettingsService(
        log, SecretBox([SecretBox.generate_key()]), options, audit_store=store
    )
    tokens = {
        "acme": create_token(log, account_id="acme", user_id="ada", role="owner")[0],
        "member": create_token(log, account_id="acme", user_id="bob", role="member")[0],
        "beta": create_token(log, account_id="beta", user_id="zed", role="owner")[0],
    }
    beta = make_event(account_id="beta", details={"secret": "beta-only"})
    store.append([make_event(account_id="acme"), beta])
    try:
        with serve(create_app(service, options), free_port()) as url:
            yield Tenants(url, store, tokens, str(beta["event_id"]))
    finally:
        service.close()
        log.close()
        store.close()


def _raw_get(url: str, target: str, headers: dict[str, str]) -> tuple[int, bytes]:
    """A GET of ``target`` exactly as written (no client normalises its dots or escapes)."""
    parts = urlsplit(url)
    lines = [f"GET {target} HTTP/1.1", f"Host: {parts.netloc}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as conn:
        conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    status = int(answer.split(b" ", 2)[1])
    return status, answer


@pytest.mark.parametrize(
    "target",
    [
        "/v1/accounts/beta/activity",
        "/v1/accounts/beta/activity/",
        "/v1/accounts/beta/activity?after=",
        "/v1/accounts/beta/activity/facets",
        "/v1/accounts/beta/activity/export?format=ndjson",
        "/v1/accounts/BETA/activity",
        "/v1/accounts/beta%20/activity",
        "/v1/accounts/%62eta/activity",
        "/v1/accounts/acme%2F..%2Fbeta/activity",
        "/v1/accounts/acme/../beta/activity",
        "/v1/accounts/acme/%2E%2E/beta/activity",
        "/v1/accounts/acme/activity/../../beta/activity",
        "/v1//accounts/beta/activity",
        "/v1/accounts//beta/activity",
        "/v1/accounts/\u0432eta/activity".encode().decode("latin-1"),  # a Cyrillic look-alike
        "/%76%31/accounts/beta/activity",
    ],
)
def test_another_accounts_log_by_any_path(tenants: Tenants, target: str) -> None:
    status, answer = _raw_get(tenants.url, target, tenants.auth("acme"))
    assert status in (404, 400), answer[:300]
    assert b"beta-only" not in answer
    assert tenants.beta_event.encode() not in answer


def test_another_accounts_event_cursor_and_checkpoint(tenants: Tenants) -> None:
    with httpx.Client(base_url=tenants.url, headers=tenants.auth("acme"), timeout=30) as c:
        assert c.get(f"/v1/accounts/acme/activity/{tenants.beta_event}").status_code == 404
        # A cursor and a checkpoint made for beta read only acme's own events.
        [stored] = tenants.store.query(ActivityFilter("beta"), PageRequest()).events
        position = Cursor(micros(stored.occurred_at) + 1, stored.event_id)
        cursor = encode_cursor(position, ActivityFilter("acme"), "desc")
        page = c.get("/v1/accounts/acme/activity", params={"cursor": cursor})
        assert page.status_code == 200
        assert all(e["account_id"] == "acme" for e in page.json()["events"])
        read = c.get("/v1/accounts/acme/activity", params={"after": Checkpoint(0).encode()})
        assert [e["account_id"] for e in read.json()["events"]] == ["acme"]
    with httpx.Client(base_url=tenants.url, timeout=30) as c:
        # The session cookie of acme's owner on beta's path, and a member of acme without
        # the activity_audit privilege.
        cookie = {"Cookie": f"auditstream_session={tenants.tokens['acme']}"}
        assert c.get("/v1/accounts/beta/activity", headers=cookie).status_code == 404
        for path in ("", "/facets", "/export?format=csv", f"/{tenants.beta_event}", "?after="):
            answer = c.get(f"/v1/accounts/acme/activity{path}", headers=tenants.auth("member"))
            assert answer.status_code == 403, path


@pytest.mark.parametrize(
    "value",
    [
        "' OR '1'='1",
        "x'); DROP TABLE events; --",
        '"a" NEAR("b") OR c*',
        "a & !b | c <-> d:*",
        "\u202egnp.exe",
        "東京 🚀",
        "%",
        "\\",
    ],
)
@pytest.mark.parametrize("name", ["q", "actor", "resource_id", "resource_type"])
def test_hostile_filter_values_are_values(tenants: Tenants, name: str, value: str) -> None:
    with httpx.Client(base_url=tenants.url, headers=tenants.auth("acme"), timeout=30) as c:
        for path in ("", "/facets"):
            answer = c.get(f"/v1/accounts/acme/activity{path}", params={name: value})
            assert answer.status_code == 200, answer.text
        assert c.get("/v1/accounts/acme/activity", params={name: value}).json()["events"] == []
    assert tenants.store.count(ActivityFilter("beta")) == 1


@pytest.mark.parametrize(
    "target",
    [
        "/v1/accounts/acme/activity?q=%00",
        "/v1/accounts/acme/activity?actor=a%0d%0aSet-Cookie:%20x=y",
        "/v1/accounts/acme/activity?ip=127.0.0.1%00",
        "/v1/accounts/acme/activity?resource_id=" + "x" * 5000,
    ],
)
def test_nul_newlines_and_long_values_are_400(tenants: Tenants, target: str) -> None:
    status, answer = _raw_get(tenants.url, target, tenants.auth("acme"))
    assert status == 400, answer[:300]
    assert b"set-cookie" not in answer.lower()


@pytest.mark.parametrize(
    "target", ["/v1/accounts/acme/activity?q=%ED%A0%80", "/v1/accounts/acme/activity?q=%FF"]
)
def test_bytes_that_are_not_utf8_are_no_error(tenants: Tenants, target: str) -> None:
    status, _ = _raw_get(tenants.url, target, tenants.auth("acme"))
    assert status == 200


def test_every_exported_column_is_safe_in_a_spreadsheet(tenants: Tenants) -> None:
    hostile = make_event(
        account_id="acme",
        actor={
            "user_id": FORMULA,
            "name": "+SUM(1,2)",
            "email": "@cmd",
            "role": "-2+3",
            "auth_method": "password",
        },
        resource={"type": "\t=1", "id": "\r=1", "name": FORMULA, "folder": None},
        outcome={"status": "success", "reason": FORMULA},
        request={"ip": FORMULA, "user_agent": "=1", "request_id": "r", "session_id": None},
        changes=[{"field": FORMULA, "old_value": "=a", "new_value": '"\r\n=b'}],
        details={FORMULA: FORMULA, "line\nbreak": 'quo"te'},
    )
    tenants.store.append([hostile])
    with httpx.Client(base_url=tenants.url, headers=tenants.auth("acme"), timeout=30) as c:
        answer = c.get(
            "/v1/accounts/acme/activity/export",
            params={"format": "csv", "q": "SUM", "actor": FORMULA},
        )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-disposition"].startswith('attachment; filename="activity-acme-')
    rows = list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"))))
    assert len(rows) == 2  # the header and the one event: no cell broke a row
    for cell in rows[1]:
        assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell
