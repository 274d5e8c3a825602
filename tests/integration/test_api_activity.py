"""The activity audit log API served by uvicorn over the real SQLite audit store, called over
HTTP: a poller repeating checkpoint reads while events (many late for their timestamp) are
appended misses nothing and sees nothing twice; pages followed by their Link header; free text
with search syntax; an export cut off by its client leaves no open store iterator."""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from auditstream.api.activity_params import encode_cursor
from auditstream.api.app import create_app
from auditstream.api.options import ApiOptions
from auditstream.api.service import SettingsService
from auditstream.api.tokens import create_token
from auditstream.config.secrets import SecretBox
from auditstream.pipeline.embedded_log import EmbeddedLog
from auditstream.store.base import StoredEvent
from auditstream.store.errors import StoreError
from auditstream.store.query import ActivityFilter, Cursor, Order
from auditstream.store.sqlite_store import SqliteStore
from devservices.ports import free_port
from tests.api_server import serve
from tests.factories import make_event

T0 = datetime(2026, 11, 1, tzinfo=UTC)


class CountingStore(SqliteStore):
    """The SQLite store, counting export iterators opened and closed."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.exports_opened = 0
        self.exports_closed = 0

    def export(self, flt: ActivityFilter, order: Order = "desc") -> Iterator[StoredEvent]:
        self.exports_opened += 1
        rows = super().export(flt, order)
        try:
            yield from rows
        finally:
            rows.close()  # type: ignore[attr-defined]
            self.exports_closed += 1


@dataclass
class Served:
    url: str
    store: CountingStore
    auth: dict[str, str]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    log = EmbeddedLog(tmp_path / "log.sqlite")
    store = CountingStore(tmp_path / "audit.db")
    options = ApiOptions(activity_reads_per_second=10_000, activity_read_burst=10_000)
    service = SettingsService(
        log, SecretBox([SecretBox.generate_key()]), options, audit_store=store
    )
    token, _ = create_token(
        log,
        account_id="acme",
        user_id="u-auditor",
        role="member",
        privileges=frozenset({"activity_audit"}),
    )
    try:
        with serve(create_app(service, options), free_port()) as url:
            yield Served(url, store, {"Authorization": f"Bearer {token}"})
    finally:
        service.close()
        log.close()
        store.close()


def _event(i: int, *, late: bool = False, rng: random.Random | None = None) -> dict[str, Any]:
    offset = timedelta(seconds=i)
    if late and rng is not None:
        offset = timedelta(seconds=rng.randrange(0, max(1, i)))  # earlier than events before it
    return make_event(
        occurred_at=T0 + offset,
        activity="user_login" if i % 2 else "user_logout",
        details={"n": str(i)},
    )


def test_a_poller_misses_nothing_and_sees_nothing_twice(served: Served) -> None:
    rng = random.Random(7)
    appended: list[str] = []
    done = threading.Event()
    failure: list[BaseException] = []

    def appender() -> None:
        try:
            i = 0
            for _ in range(60):
                batch = [
                    _event(i + k, late=rng.random() < 0.4, rng=rng)
                    for k in range(rng.randint(1, 15))
                ]
                i += len(batch)
                served.store.append(batch)
                appended.extend(e["event_id"] for e in batch)
        except BaseException as exc:
            failure.append(exc)
        finally:
            done.set()

    thread = threading.Thread(target=appender, name="test-appender")
    seen: list[str] = []
    with httpx.Client(base_url=served.url, headers=served.auth, timeout=30) as client:
        thread.start()
        try:
            url = "/v1/accounts/acme/activity?after=&limit=17"
            while True:
                finished = done.is_set()
                answer = client.get(url)
                assert answer.status_code == 200, answer.text
                body = answer.json()
                seen += [e["event_id"] for e in body["events"]]
                url = answer.headers["link"].split(";")[0].strip("<>")
                assert f"after={body['checkpoint']}" in url
                if finished and not body["events"]:
                    break
        finally:
            thread.join(timeout=60)
    assert not failure
    assert len(seen) == len(set(seen))
    assert seen == appended  # receive order, every one


def test_pages_followed_by_link_cover_the_filter_once(served: Served) -> None:
    # Events sharing timestamps, to page across ties.
    served.store.append(
        [make_event(occurred_at=T0 + timedelta(seconds=i // 4)) for i in range(250)]
    )
    seen: list[str] = []
    with httpx.Client(headers=served.auth, timeout=30) as client:
        url: str | None = f"{served.url}/v1/accounts/acme/activity?limit=33&activity=user_login"
        total = None
        while url:
            answer = client.get(url)
            assert answer.status_code == 200, answer.text
            body = answer.json()
            seen += [e["event_id"] for e in body["events"]]
            total = (
                total
                if total is not None
                else client.get(
                    f"{served.url}/v1/accounts/acme/activity?activity=user_login&include_total=true"
                ).json()["total"]
            )
            link = answer.headers.get("link")
            url = link.split(";")[0].strip("<>") if link else None
    assert len(seen) == len(set(seen)) == 250 == total


@pytest.mark.parametrize(
    "q",
    [
        "' OR 1=1 --",
        '"',
        'NEAR("a" "b")',
        "a AND OR NOT",
        "*",
        "col:value",
        "^start",
        "x' ; DROP TABLE events; --",
        "(((",
        "%_\\",
        "東京 🚀",
        "\u202etxt",
    ],
)
def test_free_text_with_search_syntax_is_text(served: Served, q: str) -> None:
    served.store.append([make_event(details={"note": "plain words"})])
    with httpx.Client(base_url=served.url, headers=served.auth, timeout=30) as client:
        answer = client.get("/v1/accounts/acme/activity", params={"q": q})
        assert answer.status_code == 200, answer.text
        assert answer.json()["events"] == []
        facets = client.get("/v1/accounts/acme/activity/facets", params={"q": q})
        assert facets.status_code == 200, facets.text
        found = client.get("/v1/accounts/acme/activity", params={"q": "plain"}).json()
        assert len(found["events"]) == 1


def test_an_export_cut_off_by_its_client_closes_the_store_iterator(served: Served) -> None:
    for start in range(0, 20_000, 5_000):
        served.store.append(
            [
                make_event(
                    event_id=str(uuid.uuid4()),
                    occurred_at=T0 + timedelta(seconds=i),
                    details={"n": str(i)},
                )
                for i in range(start, start + 5_000)
            ]
        )
    url = f"{served.url}/v1/accounts/acme/activity/export?format=csv"
    with httpx.Client(headers=served.auth, timeout=30) as client:
        with client.stream("GET", url) as answer:
            assert answer.status_code == 200
            received = 0
            for chunk in answer.iter_bytes():
                received += len(chunk)
                if received > 4096:
                    break
        # the connection is closed now (the client closes it on leaving the stream)
        deadline = time.monotonic() + 30
        while served.store.exports_closed < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert served.store.exports_opened == served.store.exports_closed == 1
        # and the account's place is back: two more exports run to their end
        for fmt, lines in (("csv", 20_001), ("ndjson", 20_000)):
            whole = client.get(url.replace("format=csv", f"format={fmt}"))
            assert whole.status_code == 200
            assert len(whole.content.decode("utf-8-sig").splitlines()) == lines
    assert served.store.exports_closed == 3


class FlakyStore(CountingStore):
    """Reads that can be held (a store that hangs) or fail after some export rows."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.hold = threading.Event()
        self.held = 0
        self.fail_export_after: int | None = None

    def query(self, flt: ActivityFilter, page: Any) -> Any:
        if self.hold.is_set():
            self.held += 1
            while self.hold.is_set():
                time.sleep(0.01)
        return super().query(flt, page)

    def export(self, flt: ActivityFilter, order: Order = "desc") -> Iterator[StoredEvent]:
        for n, event in enumerate(super().export(flt, order)):
            if self.fail_export_after is not None and n >= self.fail_export_after:
                raise StoreError("the store went away (postgresql://u:hunter2@db)")
            yield event


@pytest.fixture
def flaky(tmp_path: Path) -> Iterator[Served]:
    log = EmbeddedLog(tmp_path / "log.sqlite")
    store = FlakyStore(tmp_path / "audit.db")
    options = ApiOptions(
        activity_reads_per_second=10_000, activity_read_burst=10_000, activity_read_threads=2
    )
    service = SettingsService(
        log, SecretBox([SecretBox.generate_key()]), options, audit_store=store
    )
    token, _ = create_token(log, account_id="acme", user_id="u-owner", role="owner")
    try:
        with serve(create_app(service, options), free_port()) as url:
            yield Served(url, store, {"Authorization": f"Bearer {token}"})
    finally:
        store.hold.clear()
        service.close()
        log.close()
        store.close()


def test_a_hanging_store_leaves_the_settings_routes_answering(flaky: Served) -> None:
    store = flaky.store
    assert isinstance(store, FlakyStore)
    store.hold.set()
    answers: list[int] = []

    def search() -> None:
        with httpx.Client(base_url=flaky.url, headers=flaky.auth, timeout=60) as client:
            answers.append(client.get("/v1/accounts/acme/activity").status_code)

    waiting = [threading.Thread(target=search, name=f"test-search-{i}") for i in range(60)]
    for thread in waiting:
        thread.start()
    try:
        deadline = time.monotonic() + 30
        while store.held < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        # The account's share of the two read threads (one), the other searches wait their turn.
        assert store.held == 1
        with httpx.Client(base_url=flaky.url, headers=flaky.auth, timeout=30) as client:
            for _ in range(5):
                assert client.get("/v1/accounts/acme/stream").status_code == 200
                assert client.get("/v1/me").status_code == 200
    finally:
        store.hold.clear()
        for thread in waiting:
            thread.join(timeout=60)
    assert answers == [200] * 60


def test_an_export_whose_store_fails_midway_breaks_off_visibly(flaky: Served) -> None:
    store = flaky.store
    assert isinstance(store, FlakyStore)
    store.append([make_event(occurred_at=T0 + timedelta(seconds=i)) for i in range(3_000)])
    store.fail_export_after = 1_500
    url = f"{flaky.url}/v1/accounts/acme/activity/export?format=ndjson"
    with httpx.Client(headers=flaky.auth, timeout=30) as client:
        with client.stream("GET", url) as answer:
            assert answer.status_code == 200
            with pytest.raises(httpx.RemoteProtocolError):  # not a complete-looking file
                answer.read()
        deadline = time.monotonic() + 30
        while store.exports_closed < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert store.exports_opened == store.exports_closed == 1
        # failing at once is a 503 (its words stay in the log), and the places are free again
        store.fail_export_after = 0
        for _ in range(3):
            refused = client.get(url)
            assert refused.status_code == 503
            assert "hunter2" not in refused.text
        store.fail_export_after = None
        assert len(client.get(url).content.splitlines()) == 3_000


@pytest.mark.parametrize("micros", [10**30, -(10**30), 0, 2**63, -(2**63) - 1])
def test_a_forged_cursor_with_a_sound_check_reads_only_the_callers_account(
    served: Served, micros: int
) -> None:
    served.store.append([make_event(occurred_at=T0), make_event(account_id="globex")])
    # The check is not a secret: a client can make one for any position, and gets a page of
    # its own account from there (the account comes from the path).
    cursor = encode_cursor(Cursor(micros, "z" * 100), ActivityFilter("acme"), "desc")
    with httpx.Client(base_url=served.url, headers=served.auth, timeout=30) as client:
        answer = client.get("/v1/accounts/acme/activity", params={"cursor": cursor})
        assert answer.status_code == 200, answer.text
        assert {e["account_id"] for e in answer.json()["events"]} <= {"acme"}
        for after in ("s" + "9" * 19, "s0"):
            read = client.get("/v1/accounts/acme/activity", params={"after": after})
            assert read.status_code == 200, read.text
            assert {e["account_id"] for e in read.json()["events"]} <= {"acme"}
