"""Roles and tenant isolation, for every endpoint of the API (embedded log, in-process).

- another account's token: 404 for every endpoint, the same answer as for an account or
  destination that does not exist, and nothing written;
- a member: 403 on their own account, reads included;
- a member with ``activity_audit``: reads, but 403 on every change;
- no token or a wrong one: 401.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from auditstream.api.app import create_app, openapi_document
from auditstream.api.options import ApiOptions
from auditstream.api.service import SettingsService
from auditstream.api.tokens import create_token
from auditstream.config.secrets import SecretBox
from auditstream.pipeline import topics
from auditstream.pipeline.embedded_log import EmbeddedLog
from auditstream.store.sqlite_store import SqliteStore
from tests.factories import make_event

A, B = "acme", "globex"
A_DEST, B_DEST = "alpha-files", "beta-files"
A_EVENT = "0b7c2f4e-8d1a-4c3b-9e5f-6a7b8c9d0e1f"  # an event of A in the audit store

ENDPOINTS: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "/v1/accounts/{account}/stream", None),
    ("PUT", "/v1/accounts/{account}/stream", {"streaming_enabled": True}),
    ("GET", "/v1/accounts/{account}/destinations", None),
    ("POST", "/v1/accounts/{account}/destinations", {"id": "fresh", "type": "local", "path": "f"}),
    ("GET", "/v1/accounts/{account}/destinations/{destination}", None),
    (
        "PATCH",
        "/v1/accounts/{account}/destinations/{destination}",
        {"type": "local", "prefix": "x"},
    ),
    ("DELETE", "/v1/accounts/{account}/destinations/{destination}", None),
    ("POST", "/v1/accounts/{account}/destinations/{destination}/check", None),
    ("GET", "/v1/accounts/{account}/destinations/{destination}/status", None),
    ("POST", "/v1/accounts/{account}/destinations/{destination}/pause", None),
    ("POST", "/v1/accounts/{account}/destinations/{destination}/resume", None),
    ("POST", "/v1/accounts/{account}/destinations/{destination}/replay", {"from_time": "REPLAY"}),
    ("GET", "/v1/accounts/{account}/aws-external-id", None),
    ("GET", "/v1/accounts/{account}/activity", None),
    ("GET", "/v1/accounts/{account}/activity/facets", None),
    ("GET", "/v1/accounts/{account}/activity/export?format=csv", None),
    ("GET", "/v1/accounts/{account}/activity/{event}", None),
]
READS = [e for e in ENDPOINTS if e[0] == "GET"]
WRITES = [e for e in ENDPOINTS if e[0] != "GET"]


def _id(endpoint: tuple[str, str, Any]) -> str:
    return f"{endpoint[0]} {endpoint[1].split('{account}')[1] or '/'}"


@dataclass
class World:
    client: TestClient
    log: EmbeddedLog
    tokens: dict[str, str]

    def call(
        self,
        endpoint: tuple[str, str, dict[str, Any] | None],
        who: str | None,
        account: str,
        destination: str,
    ) -> Any:
        method, template, body = endpoint
        path = template.format(account=account, destination=destination, event=A_EVENT)
        if body is not None and body.get("from_time") == "REPLAY":
            body = {"from_time": (datetime.now(UTC) - timedelta(hours=1)).isoformat()}
        headers = {"Authorization": f"Bearer {self.tokens[who]}"} if who else {}
        return self.client.request(method, path, json=body, headers=headers)

    def settings_offsets(self) -> tuple[int, int]:
        settings = sum(self.log.end_offsets(topics.SETTINGS).values())
        activity = sum(self.log.end_offsets(topics.ACTIVITY).values())
        return settings, activity


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    log = EmbeddedLog(tmp_path / "log.sqlite")
    options = ApiOptions(local_root=tmp_path / "out", external_id_key=b"k" * 32)
    store = SqliteStore(tmp_path / "audit.db")
    store.append([make_event(account_id=A, event_id=A_EVENT)])
    service = SettingsService(
        log, SecretBox([SecretBox.generate_key()]), options, audit_store=store
    )
    tokens: dict[str, str] = {}
    for name, account, role, privileges in (
        ("a_owner", A, "owner", ()),
        ("a_admin", A, "admin", ()),
        ("a_member", A, "member", ()),
        ("a_auditor", A, "member", ("activity_audit",)),
        ("b_owner", B, "owner", ()),
    ):
        tokens[name], _ = create_token(
            log, account_id=account, user_id=name, role=role, privileges=frozenset(privileges)
        )
    with TestClient(create_app(service, options)) as client:
        for who, account, dest in (("a_owner", A, A_DEST), ("b_owner", B, B_DEST)):
            headers = {"Authorization": f"Bearer {tokens[who]}"}
            created = client.post(
                f"/v1/accounts/{account}/destinations",
                json={"id": dest, "type": "local", "path": dest},
                headers=headers,
            )
            assert created.status_code == 201, created.text
        yield World(client, log, tokens)
    service.close()
    log.close()
    store.close()


def test_the_endpoint_table_covers_the_api() -> None:
    documented = {
        (method.upper(), path)
        for path, ops in openapi_document()["paths"].items()
        if path.startswith("/v1/accounts/")
        for method in ops
    }
    listed = {
        (
            m,
            t.split("?")[0]
            .replace("{account}", "{account_id}")
            .replace("{destination}", "{destination_id}")
            .replace("{event}", "{event_id}"),
        )
        for m, t, _b in ENDPOINTS
    }
    assert listed == documented


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=_id)
def test_another_accounts_path_is_not_found(world: World, endpoint: Any) -> None:
    before = world.settings_offsets()
    answer = world.call(endpoint, "b_owner", A, A_DEST)
    assert answer.status_code == 404, answer.text
    unknown = world.call(endpoint, "b_owner", "no-such-account", A_DEST)
    assert answer.json() == unknown.json()  # indistinguishable from an unknown account
    assert world.settings_offsets() == before  # nothing written


@pytest.mark.parametrize("endpoint", [e for e in ENDPOINTS if "{destination}" in e[1]], ids=_id)
def test_another_accounts_destination_under_your_account_is_not_found(
    world: World, endpoint: Any
) -> None:
    before = world.settings_offsets()
    answer = world.call(endpoint, "b_owner", B, A_DEST)
    assert answer.status_code == 404, answer.text
    unknown = world.call(endpoint, "b_owner", B, "no-such-destination")
    assert answer.json()["detail"].replace(A_DEST, "X") == unknown.json()["detail"].replace(
        "no-such-destination", "X"
    )
    assert world.settings_offsets() == before


def test_another_accounts_destination_id_is_taken_without_saying_by_whom(world: World) -> None:
    answer = world.client.post(
        f"/v1/accounts/{B}/destinations",
        json={"id": A_DEST, "type": "local", "path": "elsewhere"},
        headers={"Authorization": f"Bearer {world.tokens['b_owner']}"},
    )
    assert answer.status_code == 409
    assert A not in answer.text


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=_id)
def test_plain_member_is_forbidden(world: World, endpoint: Any) -> None:
    before = world.settings_offsets()
    answer = world.call(endpoint, "a_member", A, A_DEST)
    assert answer.status_code == 403, answer.text
    assert world.settings_offsets() == before


@pytest.mark.parametrize("endpoint", READS, ids=_id)
def test_privileged_member_reads(world: World, endpoint: Any) -> None:
    answer = world.call(endpoint, "a_auditor", A, A_DEST)
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize("endpoint", WRITES, ids=_id)
def test_privileged_member_may_not_change(world: World, endpoint: Any) -> None:
    before = world.settings_offsets()
    answer = world.call(endpoint, "a_auditor", A, A_DEST)
    assert answer.status_code == 403, answer.text
    assert world.settings_offsets() == before


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=_id)
def test_admin_may_do_everything(world: World, endpoint: Any) -> None:
    answer = world.call(endpoint, "a_admin", A, A_DEST)
    assert answer.status_code < 300, answer.text


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=_id)
def test_without_a_valid_token(world: World, endpoint: Any) -> None:
    assert world.call(endpoint, None, A, A_DEST).status_code == 401
    world.tokens["forged"] = world.tokens["a_owner"][:-4] + "AAAA"
    world.tokens["garbage"] = "not-a-token"
    assert world.call(endpoint, "forged", A, A_DEST).status_code == 401
    assert world.call(endpoint, "garbage", A, A_DEST).status_code == 401


def test_me(world: World) -> None:
    me = world.client.get(
        "/v1/me", headers={"Authorization": f"Bearer {world.tokens['a_auditor']}"}
    ).json()
    assert me == {
        "account_id": A,
        "user_id": "a_auditor",
        "role": "member",
        "privileges": ["activity_audit"],
    }
