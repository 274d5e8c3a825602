"""The activity routes on the app in process, over the in-memory fake store (the embedded log
holds the tokens and receives the export audit events): pages and links, checkpoint reads, one
event, facets, access, rate limits, store failures and hostile parameters."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from auditstream.api.app import create_app
from auditstream.api.options import ApiOptions
from auditstream.api.service import SettingsService
from auditstream.api.tokens import create_token
from auditstream.config.secrets import SecretBox
from auditstream.pipeline.embedded_log import EmbeddedLog
from tests.factories import make_event
from tests.fake_store import FakeStore

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

BASE = "/v1/accounts/acme/activity"
T0 = datetime(2026, 11, 1, tzinfo=UTC)


@dataclass
class Api:
    client: TestClient
    store: FakeStore
    tokens: dict[str, str]
    log: EmbeddedLog

    def get(self, path: str, who: str = "owner", **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"}
        return self.client.get(path, headers=headers, **kwargs)


def _seed(store: FakeStore) -> list[dict[str, Any]]:
    events = []
    for i in range(30):
        events.append(
            make_event(
                category="recipe" if i % 3 == 0 else "account",
                activity="recipe_stopped" if i % 3 == 0 else "user_login",
                occurred_at=T0 + timedelta(minutes=i // 2),  # pairs share a timestamp
                outcome={"status": "failure" if i % 5 == 0 else "success", "reason": None},
                changes=[{"field": "state", "old_value": "running", "new_value": "stopped"}],
            )
        )
    events.append(make_event(account_id="globex", occurred_at=T0))
    store.append(events)
    return events


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    log = EmbeddedLog(tmp_path / "log.sqlite")
    store = FakeStore()
    _seed(store)
    options = ApiOptions(activity_reads_per_second=1000, activity_read_burst=1000)
    service = SettingsService(
        log, SecretBox([SecretBox.generate_key()]), options, audit_store=store
    )
    tokens = {}
    for who, account, role, privileges in (
        ("owner", "acme", "owner", ()),
        ("admin", "acme", "admin", ()),
        ("auditor", "acme", "member", ("activity_audit",)),
        ("member", "acme", "member", ()),
        ("globex", "globex", "owner", ()),
    ):
        tokens[who], _ = create_token(
            log, account_id=account, user_id=f"u-{who}", role=role, privileges=frozenset(privileges)
        )
    with TestClient(create_app(service, options)) as client:
        yield Api(client, store, tokens, log)
    service.close()
    log.close()


def _query(link: str) -> list[tuple[str, str]]:
    url = link.split(";")[0].strip("<>")
    return parse_qsl(urlsplit(url).query, keep_blank_values=True)


def test_pages_follow_the_link_and_see_every_event_once(api: Api) -> None:
    seen: list[str] = []
    url = f"{BASE}?limit=7&category=account&category=recipe"
    pages = 0
    while url:
        answer = api.get(url)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        seen += [e["event_id"] for e in body["events"]]
        pages += 1
        link = answer.headers.get("link")
        if body["next_cursor"] is None:
            assert link is None
            break
        assert link.startswith("<http://testserver/v1/accounts/acme/activity?")
        assert link.endswith('>; rel="next"')
        assert ("category", "account") in _query(link)
        assert ("category", "recipe") in _query(link)
        assert ("cursor", body["next_cursor"]) in _query(link)
        url = link.split(";")[0].strip("<>")
    assert pages == 5
    assert len(seen) == len(set(seen)) == 30
    occurred = [e.event["occurred_at"] for e in api.store.events if e.account_id == "acme"]
    assert sorted(occurred, reverse=True)[0] == api.get(BASE).json()["events"][0]["occurred_at"]


def test_total_only_when_asked(api: Api) -> None:
    assert "total" not in api.get(f"{BASE}?limit=1").json()
    body = api.get(f"{BASE}?limit=1&outcome=failure&include_total=true").json()
    assert body["total"] == 6
    assert len(body["events"]) == 1


def test_filters_reach_the_store(api: Api) -> None:
    body = api.get(f"{BASE}?activity=recipe_stopped&order=asc&limit=1000").json()
    assert len(body["events"]) == 10
    assert {e["activity"] for e in body["events"]} == {"recipe_stopped"}
    times = [e["occurred_at"] for e in body["events"]]
    assert times == sorted(times)
    window = api.get(f"{BASE}?from=2026-11-01T00:05:00Z&to=2026-11-01T02:07:00%2B02:00").json()
    assert len(window["events"]) == 4  # 00:05 and 00:06, two each; "to" is exclusive


def test_a_cursor_from_other_filters_is_refused(api: Api) -> None:
    cursor = api.get(f"{BASE}?limit=2").json()["next_cursor"]
    answer = api.get(f"{BASE}?limit=2&category=recipe&cursor={cursor}")
    assert answer.status_code == 400
    assert answer.json()["detail"][0]["loc"] == ["query", "cursor"]
    assert "other filters" in answer.json()["detail"][0]["msg"]


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=abc", "limit"),
        ("from=2026-13-01", "from"),
        ("from=2026-11-02&to=2026-11-01", "from"),
        ("category=nope", "category"),
        ("ip=999.1.1.1", "ip"),
        ("q=" + "x" * 10_000, "q"),
        ("actor=" + "%F0%9F%9A%80" * 2_000, "actor"),
        ("cursor=%27%20OR%201%3D1%20--", "cursor"),
        ("cursor=" + "A" * 10_000, "cursor"),
        ("limit=1&limit=2", "limit"),
        ("nonsense=1", "nonsense"),
        ("after=s1&category=recipe", "category"),
        ("after=nope", "after"),
    ],
)
def test_bad_parameters_are_400_naming_them(api: Api, query: str, param: str) -> None:
    answer = api.get(f"{BASE}?{query}")
    assert answer.status_code == 400, answer.text
    detail = answer.json()["detail"]
    assert detail[0]["loc"] == ["query", param]
    assert len(answer.text) < 2_000  # never the value back


@pytest.mark.parametrize(
    "q", ["' OR 1=1 --", '"unterminated', "NEAR(a b)", "a* OR b", "%", "zz_zz", "\\", "東京", "🚀"]
)
def test_free_text_with_query_syntax_is_plain_text(api: Api, q: str) -> None:
    answer = api.get(BASE, params={"q": q})
    assert answer.status_code == 200
    assert answer.json()["events"] == []


def test_checkpoint_reads_in_receive_order(api: Api) -> None:
    answer = api.get(f"{BASE}?after=&limit=20")
    assert answer.status_code == 200
    body = answer.json()
    assert body["checkpoint"] == "s20"
    assert _query(answer.headers["link"]) == [("limit", "20"), ("after", "s20")]
    rest = api.get(f"{BASE}?after=s20&limit=20").json()
    assert rest["checkpoint"] == "s30"
    assert len(rest["events"]) == 10
    same = api.get(f"{BASE}?after=s30").json()
    assert same == {"events": [], "checkpoint": "s30"}
    ids = [e["event_id"] for e in body["events"] + rest["events"]]
    stored = sorted((e for e in api.store.events if e.account_id == "acme"), key=lambda e: e.seq)
    assert ids == [e.event_id for e in stored]


def test_one_event_with_its_changes(api: Api) -> None:
    event_id = api.get(f"{BASE}?limit=1").json()["events"][0]["event_id"]
    answer = api.get(f"{BASE}/{event_id}")
    assert answer.status_code == 200
    assert answer.json()["changes"] == [
        {"field": "state", "old_value": "running", "new_value": "stopped"}
    ]


def test_another_accounts_event_is_404(api: Api) -> None:
    theirs = next(e.event_id for e in api.store.events if e.account_id == "globex")
    for path in (f"{BASE}/{theirs}", f"{BASE}/nope", f"{BASE}/{'x' * 5000}"):
        answer = api.get(path)
        assert answer.status_code == 404
        assert "no such event" in answer.json()["detail"]


def test_facets(api: Api) -> None:
    body = api.get(f"{BASE}/facets?category=recipe").json()
    assert body["categories"] == [
        {"key": "account", "name": "Account", "count": 20},
        {"key": "recipe", "name": "Recipe", "count": 10},
    ]
    assert {a["key"]: a["count"] for a in body["activities"]} == {
        "user_login": 20,
        "recipe_stopped": 10,
    }
    assert api.get(f"{BASE}/facets?limit=5").status_code == 400


@pytest.mark.parametrize(
    ("who", "status"),
    [("owner", 200), ("admin", 200), ("auditor", 200), ("member", 403), ("globex", 404)],
)
@pytest.mark.parametrize("path", ["", "/facets", "/export?format=ndjson", "/some-id"])
def test_access(api: Api, who: str, status: int, path: str) -> None:
    answer = api.get(BASE + path, who)
    expected = 404 if path == "/some-id" and status == 200 else status
    assert answer.status_code == expected, answer.text
    if status == 403:
        assert "activity audit log" in answer.json()["detail"]


def test_a_store_that_fails_is_503_without_its_words(api: Api) -> None:
    api.store.broken = True
    for path in ("", "/facets", "/x", "?after=", "/export?format=csv"):
        answer = api.get(BASE + path)
        assert answer.status_code == 503, (path, answer.text)
        assert "hunter2" not in answer.text
        assert "try again" in answer.json()["detail"]


def test_without_a_store_the_routes_say_how_to_get_one(tmp_path: Path) -> None:
    log = EmbeddedLog(tmp_path / "log.sqlite")
    service = SettingsService(log, SecretBox([SecretBox.generate_key()]))
    token, _ = create_token(log, account_id="acme", user_id="u", role="owner")
    try:
        with TestClient(create_app(service, service.options)) as client:
            answer = client.get(BASE, headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 503
        assert "--store" in answer.json()["detail"]
    finally:
        service.close()
        log.close()


def test_reads_beyond_the_burst_are_429_with_retry_after(tmp_path: Path) -> None:
    log = EmbeddedLog(tmp_path / "log.sqlite")
    options = ApiOptions(activity_reads_per_second=0.001, activity_read_burst=3)
    service = SettingsService(
        log, SecretBox([SecretBox.generate_key()]), options, audit_store=FakeStore()
    )
    mine, _ = create_token(log, account_id="acme", user_id="u", role="owner")
    other, _ = create_token(log, account_id="acme", user_id="v", role="owner")
    try:
        with TestClient(create_app(service, options)) as client:
            answers = [
                client.get(BASE, headers={"Authorization": f"Bearer {mine}"}) for _ in range(4)
            ]
            assert [a.status_code for a in answers] == [200, 200, 200, 429]
            assert int(answers[-1].headers["retry-after"]) >= 1
            # per token: another token of the same account still reads
            assert client.get(BASE, headers={"Authorization": f"Bearer {other}"}).status_code == 200
            # the settings routes are not limited by it
            stream = client.get(
                "/v1/accounts/acme/stream", headers={"Authorization": f"Bearer {mine}"}
            )
            assert stream.status_code == 200
    finally:
        service.close()
        log.close()
