"""What every audit store backend must do: one class of tests each backend subclasses.

A subclass provides two fixtures:

* ``store`` -- an empty ``AuditStore`` of its backend (closed by the fixture afterwards);
* ``raw_sql`` -- ``raw_sql(statement, params) -> list[tuple]`` runs one statement on the same
  database behind the store's back (what someone with database access could do). Statements use
  ``?`` placeholders (a backend whose driver wants another style converts them) and the table and
  column names both backends share: ``events`` (account_id, seq, event_id, occurred_at_us,
  category, activity, actor_user_id, actor_email, resource_type, resource_id, outcome, ip,
  canonical, prev_hash, hash) and ``account_chains`` (the chain heads).

Expected results are computed from the events in plain Python and compared with the store's.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from auditstream.store.base import AuditStore, StoredEvent
from auditstream.store.canonical import canonical_bytes
from auditstream.store.errors import InvalidEvent
from auditstream.store.hash_chain import link
from auditstream.store.query import ActivityFilter, Checkpoint, Cursor, PageRequest, micros
from tests.factories import make_event

RawSql = Callable[[str, tuple[Any, ...]], list[tuple[Any, ...]]]

T0 = datetime(2026, 11, 1, 12, 0, 0, tzinfo=UTC)
ACCOUNT = "acme"

_ACTORS: list[dict[str, Any]] = [
    {"user_id": "u-1", "name": "Ada Lovelace", "email": "ada@example.com", "role": "admin",
     "auth_method": "password"},
    {"user_id": "u-2", "name": "Bob Zoë Müller", "email": "Bob@Example.COM", "role": None,
     "auth_method": "sso"},
    {"user_id": "system", "name": None, "email": None, "role": None, "auth_method": "system"},
]  # fmt: skip
_KINDS = [
    ("account", "user_login"),
    ("account", "user_logout"),
    ("recipe", "recipe_created"),
    ("recipe", "recipe_deleted"),
    ("connection", "connection_updated"),
]
_RESOURCES: list[dict[str, Any] | None] = [
    None,
    {"type": "recipe", "id": "r-1", "name": "Payroll sync", "folder": "/hr"},
    {"type": "connection", "id": "c-9", "name": "Salesforce prod", "folder": None},
    {"type": "recipe", "id": "r-2", "name": "東京 report", "folder": None},
]
_IPS = ["192.0.2.10", "2001:db8::1", None]


def event_at(when: datetime, account_id: str = ACCOUNT, **extra: Any) -> dict[str, Any]:
    return make_event(account_id=account_id, occurred_at=when, **extra)


def varied_events(count: int = 60, account_id: str = ACCOUNT) -> list[dict[str, Any]]:
    """Events that differ in every filtered field, some sharing a timestamp."""
    events = []
    for i in range(count):
        category, activity = _KINDS[i % len(_KINDS)]
        ip = _IPS[i % len(_IPS)]
        events.append(
            event_at(
                T0 + timedelta(hours=i // 3),  # three events per timestamp
                account_id,
                category=category,
                activity=activity,
                actor=dict(_ACTORS[i % len(_ACTORS)]),
                resource=_RESOURCES[i % len(_RESOURCES)],
                outcome={"status": "failure" if i % 4 == 0 else "success",
                         "reason": "denied" if i % 4 == 0 else None},
                request=None if ip is None else {"ip": ip, "user_agent": "curl/8",
                                                 "request_id": f"r-{i}", "session_id": None},
                details={"note": f"batch {i % 7} invoice-{i}"},
            )
        )  # fmt: skip
    return events


def keyset(event: dict[str, Any]) -> tuple[int, str]:
    return micros(event["occurred_at"]), str(event["event_id"])


def ids(events: list[StoredEvent]) -> list[str]:
    return [e.event_id for e in events]


def all_pages(store: AuditStore, flt: ActivityFilter, order: str, limit: int) -> list[str]:
    out: list[str] = []
    cursor: Cursor | None = None
    for _ in range(10_000):
        page = store.query(flt, PageRequest(order=order, limit=limit, cursor=cursor))  # type: ignore[arg-type]
        out += ids(page.events)
        if page.next_cursor is None:
            return out
        cursor = page.next_cursor
    raise AssertionError("pagination does not end")


def _actor_matches(event: dict[str, Any], wanted: tuple[str, ...]) -> bool:
    email = (event["actor"]["email"] or "").lower()
    return event["actor"]["user_id"] in wanted or email in {w.lower() for w in wanted}


def _words(text: str) -> list[str]:
    return re.findall(r"[^\W_]+", text.lower())


def _has_text(event: dict[str, Any], text: str) -> bool:
    """The search semantics: every whitespace-separated term of ``text`` is in the event's
    free text as a phrase of whole words (letters and digits; case is ignored)."""
    resource = event["resource"] or {}
    parts = [event["activity"], event["actor"]["name"], event["actor"]["email"],
             resource.get("name"), resource.get("id"), *event["details"].values()]  # fmt: skip
    body = " " + " ".join(_words(" ".join(p for p in parts if p))) + " "
    return all(f" {' '.join(_words(term))} " in body for term in text.split())


FILTERS: list[tuple[str, dict[str, Any], Callable[[dict[str, Any]], bool]]] = [
    ("none", {}, lambda e: True),
    ("actor id", {"actors": ("u-1",)}, lambda e: _actor_matches(e, ("u-1",))),
    ("actor email any case", {"actors": ("BOB@example.com",)},
     lambda e: _actor_matches(e, ("BOB@example.com",))),
    ("two actors", {"actors": ("u-1", "system")}, lambda e: _actor_matches(e, ("u-1", "system"))),
    ("category", {"categories": ("recipe",)}, lambda e: e["category"] == "recipe"),
    ("two categories", {"categories": ("recipe", "connection")},
     lambda e: e["category"] in ("recipe", "connection")),
    ("activity", {"activities": ("user_logout",)}, lambda e: e["activity"] == "user_logout"),
    ("resource type", {"resource_type": "recipe"},
     lambda e: (e["resource"] or {}).get("type") == "recipe"),
    ("resource", {"resource_type": "recipe", "resource_id": "r-1"},
     lambda e: (e["resource"] or {}).get("id") == "r-1"),
    ("outcome", {"outcome": "failure"}, lambda e: e["outcome"]["status"] == "failure"),
    ("ip v6", {"ip": "2001:db8::1"}, lambda e: (e["request"] or {}).get("ip") == "2001:db8::1"),
    ("since", {"since": T0 + timedelta(hours=5)},
     lambda e: e["occurred_at"] >= T0 + timedelta(hours=5)),
    ("until", {"until": T0 + timedelta(hours=5)},
     lambda e: e["occurred_at"] < T0 + timedelta(hours=5)),
    ("text name", {"text": "lovelace"}, lambda e: _has_text(e, "lovelace")),
    ("text email", {"text": "ada@example.com"}, lambda e: _has_text(e, "ada@example.com")),
    ("text resource", {"text": "Payroll"}, lambda e: _has_text(e, "payroll")),
    ("text two words", {"text": "salesforce PROD"}, lambda e: _has_text(e, "salesforce prod")),
    ("text detail", {"text": "invoice-7"}, lambda e: _has_text(e, "invoice-7")),
    ("text unicode", {"text": "東京"}, lambda e: _has_text(e, "東京")),
    ("text absent", {"text": "nowhere"}, lambda e: False),
    ("combined", {"actors": ("u-2",), "categories": ("recipe",), "outcome": "success",
                  "since": T0 + timedelta(hours=2), "until": T0 + timedelta(hours=15)},
     lambda e: _actor_matches(e, ("u-2",)) and e["category"] == "recipe"
     and e["outcome"]["status"] == "success"
     and T0 + timedelta(hours=2) <= e["occurred_at"] < T0 + timedelta(hours=15)),
    ("combined with text", {"categories": ("recipe",), "text": "batch 3"},
     lambda e: e["category"] == "recipe" and _has_text(e, "batch 3")),
]  # fmt: skip

HOSTILE_TEXT = [
    '"',
    '""',
    "*",
    "ada*",
    "NEAR(ada bob)",
    "ada OR bob",
    "ada AND NOT bob",
    "-ada",
    "^ada",
    "ada:bob",
    "body:ada",
    "'; DROP TABLE events; --",
    "' OR 1=1 --",
    "OR 1=1",
    "\\",
    "%",
    "_",
    "(",
    ")",
    "{ada}",
    "\x00",
    "Zoë \u202e \U0001f600",
    "ada " * 2_500,
    "x" * 10_000,
]


class StoreContract:
    """The tests; ``store`` and ``raw_sql`` come from the backend's subclass."""

    @pytest.fixture
    def store(self) -> Iterator[AuditStore]:
        raise NotImplementedError("a backend's test class provides the store")

    @pytest.fixture
    def raw_sql(self) -> RawSql:
        raise NotImplementedError("a backend's test class provides raw_sql")

    # -- append ---------------------------------------------------------------------------

    def test_append_assigns_receive_order_and_skips_duplicates(self, store: AuditStore) -> None:
        first = [event_at(T0 + timedelta(minutes=i)) for i in range(3)]
        assert store.append(first).inserted == 3
        again = [first[1], event_at(T0), first[1]]
        result = store.append(again)
        assert (result.inserted, result.duplicates) == (1, 2)
        page = store.after(ACCOUNT, Checkpoint(), 100)
        assert [e.seq for e in page.events] == [1, 2, 3, 4]
        assert ids(page.events)[:3] == [str(e["event_id"]) for e in first]
        assert store.count(ActivityFilter(ACCOUNT)) == 4

    def test_append_nothing(self, store: AuditStore) -> None:
        assert store.append([]).inserted == 0
        assert store.accounts() == []

    def test_stored_event_round_trips(self, store: AuditStore) -> None:
        event = varied_events(2)[1]
        store.append([event])
        got = store.get(ACCOUNT, str(event["event_id"]))
        assert got is not None
        assert got.event == json.loads(canonical_bytes(event))
        assert got.event["occurred_at"] == event["occurred_at"].strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        assert got.occurred_at == event["occurred_at"]
        assert (got.seq, got.account_id) == (1, ACCOUNT)
        assert store.get("other", str(event["event_id"])) is None
        assert store.get(ACCOUNT, str(uuid.uuid4())) is None

    def test_same_event_id_in_two_accounts_is_two_events(self, store: AuditStore) -> None:
        event = event_at(T0)
        other = dict(event, account_id="other")
        assert store.append([event, other]).inserted == 2
        assert store.accounts() == [ACCOUNT, "other"]
        assert store.count(ActivityFilter("other")) == 1

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("account_id", None),
            ("account_id", ""),
            ("account_id", 7),
            ("event_id", None),
            ("occurred_at", "yesterday"),
            ("occurred_at", None),
            ("category", None),
            ("actor", {"name": "no id"}),
            ("actor", "u-1"),
            ("outcome", {}),
        ],
    )
    def test_a_bad_event_stores_nothing_of_its_batch(
        self, store: AuditStore, field: str, value: Any
    ) -> None:
        bad = event_at(T0)
        bad[field] = value
        with pytest.raises(InvalidEvent, match=f"event 1: {field}"):
            store.append([event_at(T0), bad, event_at(T0)])
        assert store.count(ActivityFilter(ACCOUNT)) == 0
        assert store.append([event_at(T0)]).inserted == 1
        assert store.verify(ACCOUNT).ok

    def test_hostile_values_are_stored_as_given(self, store: AuditStore) -> None:
        nasty = "'; DROP TABLE events; -- \" NEAR( * % _ \\ Zoë \u202e \U0001f600"
        event = event_at(
            T0,
            account_id=nasty,
            category=nasty,
            activity=nasty,
            actor={"user_id": nasty, "name": nasty, "email": nasty, "role": None,
                   "auth_method": "password"},
            resource={"type": nasty, "id": nasty, "name": "x" * 100_000, "folder": None},
            details={nasty: nasty, "big": "y" * 1_000_000},
        )  # fmt: skip
        assert store.append([event]).inserted == 1
        got = store.get(nasty, str(event["event_id"]))
        assert got is not None
        assert got.event == json.loads(canonical_bytes(event))
        flt = ActivityFilter(
            nasty, actors=(nasty.upper(),), categories=(nasty,), activities=(nasty,),
            resource_type=nasty, resource_id=nasty,
        )  # fmt: skip
        assert ids(store.query(flt, PageRequest()).events) == [str(event["event_id"])]
        assert store.verify(nasty).ok
        assert store.count(ActivityFilter(ACCOUNT)) == 0

    # -- filters and pages ----------------------------------------------------------------

    @pytest.mark.parametrize(("name", "conditions", "wanted"), FILTERS, ids=[f[0] for f in FILTERS])
    def test_filter(
        self,
        store: AuditStore,
        name: str,
        conditions: dict[str, Any],
        wanted: Callable[[dict[str, Any]], bool],
    ) -> None:
        events = varied_events()
        store.append(events + varied_events(20, account_id="other"))
        expected = sorted((e for e in events if wanted(e)), key=keyset, reverse=True)
        flt = ActivityFilter(ACCOUNT, **conditions)
        assert all_pages(store, flt, "desc", 7) == [str(e["event_id"]) for e in expected]
        assert store.count(flt) == len(expected)
        if name != "text absent":
            assert expected, "the table's events must exercise the filter"

    @pytest.mark.parametrize("order", ["desc", "asc"])
    @pytest.mark.parametrize("limit", [1, 4, 25, 1000])
    def test_pages_over_one_timestamp_skip_and_repeat_nothing(
        self, store: AuditStore, order: str, limit: int
    ) -> None:
        events = [event_at(T0) for _ in range(25)]
        events += [event_at(T0 - timedelta(microseconds=1)), event_at(T0 + timedelta(seconds=1))]
        store.append(events)
        expected = sorted(events, key=keyset, reverse=order == "desc")
        got = all_pages(store, ActivityFilter(ACCOUNT), order, limit)
        assert got == [str(e["event_id"]) for e in expected]

    def test_a_page_at_the_end_has_no_cursor(self, store: AuditStore) -> None:
        store.append([event_at(T0) for _ in range(4)])
        assert store.query(ActivityFilter(ACCOUNT), PageRequest(limit=4)).next_cursor is None
        first = store.query(ActivityFilter(ACCOUNT), PageRequest(limit=3))
        assert first.next_cursor is not None
        assert Cursor.decode(first.next_cursor.encode()) == first.next_cursor
        assert store.query(ActivityFilter("nobody"), PageRequest()).events == []

    @pytest.mark.parametrize("order", ["desc", "asc"])
    @pytest.mark.parametrize("micros_", [10**30, -(10**30), 2**63, -(2**63) - 1, 0])
    def test_a_cursor_past_any_time_is_no_error(
        self, store: AuditStore, order: str, micros_: int
    ) -> None:
        """A cursor decodes to any integer a client put in it."""
        store.append([event_at(T0)])
        cursor = Cursor.decode(Cursor(micros_, "'; DROP TABLE events; --").encode())
        page = store.query(ActivityFilter(ACCOUNT), PageRequest(order=order, cursor=cursor))  # type: ignore[arg-type]
        expected = (order == "desc") == (micros_ > 0)
        assert len(page.events) == (1 if expected else 0)

    @pytest.mark.parametrize("seq", [2**63, 10**19 - 1])
    def test_a_checkpoint_past_any_seq_is_no_error(self, store: AuditStore, seq: int) -> None:
        store.append([event_at(T0)])
        checkpoint = Checkpoint.decode(Checkpoint(seq).encode())
        page = store.after(ACCOUNT, checkpoint, 10)
        assert page.events == []
        assert page.checkpoint == checkpoint

    @pytest.mark.parametrize("order", ["desc", "asc"])
    def test_pages_stay_stable_while_events_arrive(self, store: AuditStore, order: str) -> None:
        events = [event_at(T0 + timedelta(minutes=i // 2)) for i in range(30)]
        store.append(events)
        flt = ActivityFilter(ACCOUNT)
        page = store.query(flt, PageRequest(order=order, limit=10))  # type: ignore[arg-type]
        seen = ids(page.events)
        store.append([event_at(T0 + timedelta(minutes=m)) for m in (-5, 3, 7, 60)])
        cursor = page.next_cursor
        while cursor is not None:
            page = store.query(flt, PageRequest(order=order, limit=10, cursor=cursor))  # type: ignore[arg-type]
            seen += ids(page.events)
            cursor = page.next_cursor
        assert len(seen) == len(set(seen))
        assert {str(e["event_id"]) for e in events} <= set(seen)
        by_id = {e.event_id: e for e in store.export(flt)}
        keys = [(micros(by_id[i].occurred_at), i) for i in seen]
        assert keys == sorted(keys, reverse=order == "desc")

    def test_facets_ignore_their_own_menus(self, store: AuditStore) -> None:
        events = varied_events()
        store.append(events + varied_events(10, account_id="other"))
        flt = ActivityFilter(ACCOUNT, categories=("recipe",), activities=("recipe_created",),
                             outcome="success")  # fmt: skip
        facets = store.facets(flt)
        success = [e for e in events if e["outcome"]["status"] == "success"]
        assert facets.categories == _counts(e["category"] for e in success)
        assert facets.activities == _counts(e["activity"] for e in success)
        assert store.facets(ActivityFilter("nobody")).categories == {}

    # -- checkpoints and export -----------------------------------------------------------

    def test_checkpoint_reads_receive_order_and_late_events(self, store: AuditStore) -> None:
        store.append([event_at(T0 + timedelta(minutes=i)) for i in range(5)])
        page = store.after(ACCOUNT, Checkpoint(), 3)
        assert [e.seq for e in page.events] == [1, 2, 3]
        page = store.after(ACCOUNT, page.checkpoint, 3)
        assert [e.seq for e in page.events] == [4, 5]
        done = store.after(ACCOUNT, page.checkpoint, 3)
        assert done.events == []
        assert done.checkpoint == page.checkpoint
        late = event_at(T0 - timedelta(days=3))
        store.append([late])
        page = store.after(ACCOUNT, done.checkpoint, 3)
        assert ids(page.events) == [str(late["event_id"])]
        assert page.checkpoint == Checkpoint(6)
        assert store.after("other", Checkpoint(), 10).events == []

    def test_export_streams_every_event(self, store: AuditStore) -> None:
        events = [event_at(T0 + timedelta(seconds=i // 3)) for i in range(5_000)]
        for start in range(0, len(events), 1_000):
            store.append(events[start : start + 1_000])
        flt = ActivityFilter(ACCOUNT)
        got = [e.event_id for e in store.export(flt, order="asc")]
        assert got == [str(e["event_id"]) for e in sorted(events, key=keyset)]
        partial = store.export(flt)
        assert len([next(partial) for _ in range(10)]) == 10
        partial.close()  # type: ignore[attr-defined]
        since = ActivityFilter(ACCOUNT, since=T0 + timedelta(seconds=1000))
        assert sum(1 for _ in store.export(since)) == 5_000 - 3_000

    # -- retention ------------------------------------------------------------------------

    def test_retention_by_default_and_per_account(self, store: AuditStore) -> None:
        now = datetime(2027, 12, 1, tzinfo=UTC)
        ages = [400, 366, 364, 40, 10]
        store.append([event_at(now - timedelta(days=d)) for d in ages])
        store.append([event_at(now - timedelta(days=d), "other") for d in ages])
        assert store.retention_days(ACCOUNT) == 365
        result = store.apply_retention(now)
        assert (result.deleted, result.accounts, result.complete) == (4, 2, True)
        store.set_retention(ACCOUNT, 30)
        assert store.retention_days(ACCOUNT) == 30
        result = store.apply_retention(now)
        assert (result.deleted, result.accounts) == (2, 1)
        assert store.count(ActivityFilter(ACCOUNT)) == 1
        assert store.count(ActivityFilter("other")) == 3
        store.set_retention(ACCOUNT, None)
        assert store.retention_days(ACCOUNT) == 365
        assert store.apply_retention(now).deleted == 0
        assert store.verify(ACCOUNT).ok
        assert store.verify("other").ok

    def test_retention_longer_than_the_default(self, store: AuditStore) -> None:
        now = datetime(2027, 12, 1, tzinfo=UTC)
        store.set_retention(ACCOUNT, 3650)
        store.append([event_at(now - timedelta(days=d)) for d in (900, 10)])
        assert store.apply_retention(now).deleted == 0

    @pytest.mark.parametrize("days", [0, -1, 36_501])
    def test_a_bad_retention_is_refused(self, store: AuditStore, days: int) -> None:
        with pytest.raises(ValueError, match="retention days"):
            store.set_retention(ACCOUNT, days)
        assert store.retention_days(ACCOUNT) == 365

    def test_a_late_old_event_waits_for_the_rows_before_it(self, store: AuditStore) -> None:
        now = datetime(2027, 12, 1, tzinfo=UTC)
        store.append([event_at(now - timedelta(days=100))])
        store.append([event_at(now - timedelta(days=500))])  # received late
        assert store.apply_retention(now).deleted == 0
        assert store.apply_retention(now + timedelta(days=300)).deleted == 2
        assert store.verify(ACCOUNT).ok

    def test_retention_in_bounded_batches_then_the_chain_goes_on(self, store: AuditStore) -> None:
        now = datetime(2027, 12, 1, tzinfo=UTC)
        store.append([event_at(now - timedelta(days=400, minutes=i)) for i in range(25)])
        store.append([event_at(now - timedelta(days=400), "other") for _ in range(5)])
        results = []
        for _ in range(10):
            results.append(store.apply_retention(now, batch_size=10))
            assert store.verify(ACCOUNT).ok
            if results[-1].complete:
                break
        assert [r.deleted for r in results] == [10, 10, 10, 0][: len(results)]
        assert not results[0].complete
        assert results[-1].complete
        assert sum(r.deleted for r in results) == 30
        assert store.count(ActivityFilter(ACCOUNT)) == 0
        store.append([event_at(now)])
        assert [e.seq for e in store.after(ACCOUNT, Checkpoint(), 10).events] == [26]
        result = store.verify(ACCOUNT)
        assert (result.ok, result.rows) == (True, 1)

    # -- verify ---------------------------------------------------------------------------

    def test_verify_an_intact_chain(self, store: AuditStore) -> None:
        store.append(varied_events(30))
        store.append(varied_events(5))
        result = store.verify(ACCOUNT)
        assert (result.ok, result.rows, result.first_bad_seq) == (True, 35, None)
        assert store.verify("nobody").ok

    def test_verify_finds_altered_bytes(self, store: AuditStore, raw_sql: RawSql) -> None:
        store.append(varied_events(10))
        stored = store.after(ACCOUNT, Checkpoint(4), 1).events[0]
        forged = canonical_bytes(dict(stored.event, activity="user_logout"))
        assert forged != canonical_bytes(stored.event)
        raw_sql(
            "UPDATE events SET canonical = ? WHERE account_id = ? AND seq = ?",
            (forged, ACCOUNT, 5),
        )
        result = store.verify(ACCOUNT)
        assert (result.ok, result.first_bad_seq, result.problem) == (False, 5, "altered")

    def test_verify_finds_a_removed_row(self, store: AuditStore, raw_sql: RawSql) -> None:
        store.append(varied_events(10))
        raw_sql("DELETE FROM events WHERE account_id = ? AND seq = ?", (ACCOUNT, 4))
        result = store.verify(ACCOUNT)
        assert (result.ok, result.first_bad_seq, result.problem) == (False, 4, "removed")

    def test_verify_finds_the_last_row_removed(self, store: AuditStore, raw_sql: RawSql) -> None:
        store.append(varied_events(10))
        raw_sql("DELETE FROM events WHERE account_id = ? AND seq >= ?", (ACCOUNT, 9))
        result = store.verify(ACCOUNT)
        assert (result.ok, result.first_bad_seq, result.problem) == (False, 9, "removed")

    def test_verify_finds_an_inserted_row(self, store: AuditStore, raw_sql: RawSql) -> None:
        store.append(varied_events(10))
        [(occurred_at_us, canonical, prev_hash)] = raw_sql(
            "SELECT occurred_at_us, canonical, prev_hash FROM events "
            "WHERE account_id = ? AND seq = ?",
            (ACCOUNT, 10),
        )
        raw_sql("DELETE FROM events WHERE account_id = ? AND seq = ?", (ACCOUNT, 10))
        # A forged row put in its place, chained correctly to the row before it.
        forged = canonical_bytes(dict(json.loads(bytes(canonical)), category="forged"))
        raw_sql(
            "INSERT INTO events (account_id, seq, event_id, occurred_at_us, category, activity, "
            "actor_user_id, actor_email, resource_type, resource_id, outcome, ip, canonical, "
            "prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (ACCOUNT, 10, str(uuid.uuid4()), occurred_at_us, "account", "user_login", "u-1",
             None, None, None, "failure", None, forged, prev_hash, link(prev_hash, forged)),
        )  # fmt: skip
        result = store.verify(ACCOUNT)
        assert (result.ok, result.first_bad_seq, result.problem) == (False, 10, "inserted")

    def test_verify_finds_a_row_inserted_after_the_head(
        self, store: AuditStore, raw_sql: RawSql
    ) -> None:
        store.append(varied_events(3))
        [(last_hash,)] = raw_sql(
            "SELECT hash FROM events WHERE account_id = ? AND seq = ?", (ACCOUNT, 3)
        )
        extra = b'{"forged":true}'
        raw_sql(
            "INSERT INTO events (account_id, seq, event_id, occurred_at_us, category, activity, "
            "actor_user_id, actor_email, resource_type, resource_id, outcome, ip, canonical, "
            "prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (ACCOUNT, 4, str(uuid.uuid4()), micros(T0), "account", "user_login", "u-1", None,
             None, None, "success", None, extra, last_hash, link(last_hash, extra)),
        )  # fmt: skip
        result = store.verify(ACCOUNT)
        assert (result.ok, result.problem) == (False, "inserted")
        assert result.first_bad_seq == 4

    def test_verify_after_retention_then_tampering(
        self, store: AuditStore, raw_sql: RawSql
    ) -> None:
        now = datetime(2027, 12, 1, tzinfo=UTC)
        store.append([event_at(now - timedelta(days=d)) for d in (500, 450, 10, 5, 1)])
        assert store.apply_retention(now).deleted == 2
        assert store.verify(ACCOUNT).ok
        raw_sql("DELETE FROM events WHERE account_id = ? AND seq = ?", (ACCOUNT, 3))
        result = store.verify(ACCOUNT)
        assert (result.ok, result.first_bad_seq, result.problem) == (False, 3, "removed")

    # -- hostile free text ----------------------------------------------------------------

    @pytest.mark.parametrize("text", HOSTILE_TEXT, ids=[repr(t[:20]) for t in HOSTILE_TEXT])
    def test_hostile_text_is_searched_never_parsed(
        self, store: AuditStore, raw_sql: RawSql, text: str
    ) -> None:
        events = varied_events(10)
        store.append(events)
        flt = ActivityFilter(ACCOUNT, text=text)
        page = store.query(flt, PageRequest())
        assert store.count(flt) == len(page.events)
        assert {e.event_id for e in page.events} <= {str(e["event_id"]) for e in events}
        store.facets(flt)
        assert raw_sql("SELECT COUNT(*) FROM events", ()) == [(10,)]

    @pytest.mark.parametrize(
        "text",
        ["'; DROP TABLE events; --", "' OR 1=1 --", 'NEAR("x" "y")', "a*b", "Zoë"],
    )
    def test_hostile_text_in_an_event_is_found_as_words(self, store: AuditStore, text: str) -> None:
        target = event_at(T0, details={"note": f"before {text} after"})
        store.append([target, *varied_events(5)])
        page = store.query(ActivityFilter(ACCOUNT, text=text), PageRequest())
        assert str(target["event_id"]) in ids(page.events)

    def test_empty_text_is_no_condition(self, store: AuditStore) -> None:
        store.append(varied_events(5))
        for text in ("", "   ", "\t\n"):
            assert store.count(ActivityFilter(ACCOUNT, text=text)) == 5


def _counts(values: Iterator[str] | Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for value in values:
        out[value] = out.get(value, 0) + 1
    return out
