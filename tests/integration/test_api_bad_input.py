"""Bad requests get a clear 4xx naming the field, and nothing of them is applied: not in the
settings topic, not in the activity topic, not in what the API shows."""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from auditstream.api.app import create_app
from auditstream.api.options import ApiOptions
from auditstream.api.service import SettingsService
from auditstream.api.tokens import create_token
from auditstream.config.secrets import SecretBox
from auditstream.pipeline import topics
from auditstream.pipeline.embedded_log import EmbeddedLog
from auditstream.pipeline.errors import TransactionAborted
from auditstream.pipeline.log import OutgoingRecord, TransactionalProducer

STREAM = "/v1/accounts/acme/stream"
DESTS = "/v1/accounts/acme/destinations"
LOCAL = {"id": "acme-files", "type": "local", "path": "files"}


class FlakyLog(EmbeddedLog):
    """An embedded log whose atomic writes can be made to abort."""

    fail = False

    def transactional_producer(self, transactional_id: str) -> Any:
        inner = super().transactional_producer(transactional_id)
        log = self

        class Producer:
            def produce_and_commit(self, *args: Any) -> None:
                inner.produce_and_commit(*args)

            def produce_atomically(self, records: Sequence[OutgoingRecord]) -> None:
                if log.fail:
                    raise TransactionAborted("injected by the test")
                inner.produce_atomically(records)

            def close(self) -> None:
                inner.close()

        producer: TransactionalProducer = Producer()
        return producer


@dataclass
class Api:
    client: TestClient
    auth: dict[str, str]
    log: FlakyLog

    def snapshot(self) -> tuple[Any, ...]:
        return (
            sum(self.log.end_offsets(topics.SETTINGS).values()),
            sum(self.log.end_offsets(topics.ACTIVITY).values()),
            self.client.get(STREAM, headers=self.auth).json(),
            self.client.get(DESTS, headers=self.auth).json(),
        )


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    log = FlakyLog(tmp_path / "log.sqlite")
    options = ApiOptions(max_destinations=3, max_body_bytes=4096)
    service = SettingsService(log, SecretBox([SecretBox.generate_key()]), options)
    token, _ = create_token(log, account_id="acme", user_id="ada", role="owner")
    auth = {"Authorization": f"Bearer {token}"}
    with TestClient(create_app(service, options)) as client:
        assert client.post(DESTS, json=LOCAL, headers=auth).status_code == 201
        assert client.put(STREAM, json={"streaming_enabled": True}, headers=auth).status_code == 200
        yield Api(client, auth, log)
    service.close()
    log.close()


def _locs(answer: Any) -> list[list[Any]]:
    return [e["loc"] for e in answer.json()["detail"]]


BAD: list[tuple[str, str, str | dict[str, Any], int, list[Any] | None]] = [
    # (method, path, body (str = raw bytes), status, first loc)
    ("PUT", STREAM, '{"streaming_enabled": tru', 422, ["body", 22]),
    ("PUT", STREAM, "[1, 2]", 422, ["body"]),
    ("PUT", STREAM, {"streaming_enabled": True, "colour": "red"}, 422, ["body", "colour"]),
    ("PUT", STREAM, {"streaming_enabled": "maybe"}, 422, ["body", "streaming_enabled"]),
    ("PUT", STREAM, {}, 422, ["body", "streaming_enabled"]),
    (
        "PUT",
        STREAM,
        {"streaming_enabled": True, "include_categories": ["recipes"]},
        422,
        ["body", "include_categories", 0],
    ),
    (
        "PUT",
        STREAM,
        {"streaming_enabled": True, "exclude_activities": ["user_login", "user_teleport"]},
        422,
        ["body", "exclude_activities", 1],
    ),
    (
        "PUT",
        STREAM,
        {"streaming_enabled": True, "include_activities": "user_login"},
        422,
        ["body", "include_activities"],
    ),
    (
        "PUT",
        STREAM,
        {"streaming_enabled": True, "redact": ["password"]},
        422,
        ["body", "redact", 0],
    ),
    ("POST", DESTS, {"id": "x", "type": "ftp", "path": "p"}, 422, ["body"]),
    ("POST", DESTS, {"id": "x", "path": "p"}, 422, ["body"]),
    ("POST", DESTS, {"id": "Bad Id!", "type": "local", "path": "p"}, 422, ["body", "id"]),
    ("POST", DESTS, {"id": "x", "type": "local"}, 422, ["body", "path"]),
    (
        "POST",
        DESTS,
        {"id": "x", "type": "local", "path": "p", "paused": True},
        422,
        ["body", "paused"],
    ),
    (
        "POST",
        DESTS,
        {"id": "x", "type": "local", "path": "p", "batch": {"max_events": 0}},
        422,
        ["body", "batch", "max_events"],
    ),
    ("POST", DESTS, {"id": "x", "type": "local", "path": "/etc"}, 422, ["body", "path"]),
    ("POST", DESTS, {**LOCAL, "path": "elsewhere"}, 409, None),  # id taken
    ("POST", DESTS, {"id": "twin", "type": "local", "path": "files"}, 409, None),  # same keys
    ("PATCH", f"{DESTS}/acme-files", {"prefix": "x"}, 422, ["body"]),  # type missing
    (
        "PATCH",
        f"{DESTS}/acme-files",
        {"type": "webhook", "url": "https://x.example.com"},
        422,
        ["body", "type"],
    ),
    ("PATCH", f"{DESTS}/acme-files", {"type": "local", "colour": 1}, 422, ["body", "colour"]),
    ("PATCH", f"{DESTS}/acme-files", {"type": "local", "format": "xml"}, 422, ["body", "format"]),
    ("PATCH", f"{DESTS}/acme-files", {"type": "local", "id": "renamed"}, 422, ["body", "id"]),
    ("PATCH", f"{DESTS}/nope", {"type": "local", "prefix": "x"}, 404, None),
    ("POST", f"{DESTS}/acme-files/replay", {"from_time": "yesterday"}, 422, ["body", "from_time"]),
    (
        "POST",
        f"{DESTS}/acme-files/replay",
        {"from_time": "2026-01-01T00:00:00"},
        422,
        ["body", "from_time"],
    ),
    (
        "POST",
        f"{DESTS}/acme-files/replay",
        {"from_time": "2001-01-01T00:00:00Z"},
        422,
        ["body", "from_time"],
    ),
    (
        "POST",
        f"{DESTS}/acme-files/replay",
        {"from_time": "2999-01-01T00:00:00Z"},
        422,
        ["body", "from_time"],
    ),
    ("POST", f"{DESTS}/acme-files/replay", {}, 422, ["body", "from_time"]),
    ("DELETE", f"{DESTS}/nope", "", 404, None),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "loc"),
    BAD,
    ids=[f"{m} {p.rsplit('/', 1)[-1]} {i}" for i, (m, p, *_r) in enumerate(BAD)],
)
def test_bad_requests(
    api: Api,
    method: str,
    path: str,
    body: str | dict[str, Any],
    status: int,
    loc: list[Any] | None,
) -> None:
    before = api.snapshot()
    if isinstance(body, str):
        headers = {**api.auth, "Content-Type": "application/json"}
        answer = api.client.request(method, path, content=body.encode(), headers=headers)
    else:
        answer = api.client.request(method, path, json=body, headers=api.auth)
    assert answer.status_code == status, answer.text
    if loc is not None:
        assert loc in _locs(answer), answer.text
        for error in answer.json()["detail"]:
            assert set(error) == {"loc", "msg", "type"}  # no echo of the input
    else:
        assert isinstance(answer.json()["detail"], str)
    assert api.snapshot() == before


def test_replay_time_zone_is_required(api: Api) -> None:
    naive = datetime.now(UTC).replace(tzinfo=None) - timedelta(hours=1)
    answer = api.client.post(
        f"{DESTS}/acme-files/replay", json={"from_time": naive.isoformat()}, headers=api.auth
    )
    assert answer.status_code == 422
    assert "time zone" in answer.json()["detail"][0]["msg"]


def test_too_many_destinations(api: Api) -> None:
    for n in (2, 3):
        body = {"id": f"d{n}", "type": "local", "path": f"p{n}"}
        assert api.client.post(DESTS, json=body, headers=api.auth).status_code == 201
    before = api.snapshot()
    answer = api.client.post(
        DESTS, json={"id": "d4", "type": "local", "path": "p4"}, headers=api.auth
    )
    assert answer.status_code == 409
    assert "most allowed (3)" in answer.json()["detail"]
    assert api.snapshot() == before


def test_oversized_bodies(api: Api) -> None:
    before = api.snapshot()
    big = {"streaming_enabled": True, "include_activities": ["user_login"] * 1000}
    answer = api.client.put(STREAM, json=big, headers=api.auth)
    assert answer.status_code == 413
    assert "4096" in answer.json()["detail"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while read
        yield b'{"streaming_enabled": true, "include_activities": ['
        for _ in range(1000):
            yield b'"user_login",'
        yield b'"user_login"]}'

    headers = {**api.auth, "Content-Type": "application/json"}
    answer = api.client.put(STREAM, content=chunks(), headers=headers)
    assert answer.status_code == 413
    assert api.snapshot() == before


def test_an_aborted_write_changes_nothing(api: Api) -> None:
    before = api.snapshot()
    api.log.fail = True
    answers = [
        api.client.put(STREAM, json={"streaming_enabled": False}, headers=api.auth),
        api.client.post(DESTS, json={"id": "d9", "type": "local", "path": "p9"}, headers=api.auth),
        api.client.post(f"{DESTS}/acme-files/pause", headers=api.auth),
        api.client.delete(f"{DESTS}/acme-files", headers=api.auth),
    ]
    api.log.fail = False
    assert [a.status_code for a in answers] == [503] * 4
    assert "try again" in answers[0].json()["detail"]
    assert api.snapshot() == before  # settings, audit events and the view: all unchanged
