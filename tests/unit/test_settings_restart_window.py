"""The restart window of ADR 017 (pure parts): a routing commit's metadata, the headers naming
the record a change replaced, and the table putting back the settings in force at a commit."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import REGISTRY

from auditstream.config.stream import AccountSettings
from auditstream.config.wire import decode_settings, encode_settings
from auditstream.pipeline import commit_metadata, topics
from auditstream.pipeline.commit_metadata import CommitMetadata
from auditstream.pipeline.log import OutgoingRecord
from auditstream.pipeline.settings_table import (
    PREVIOUS_HEADER,
    PREVIOUS_REVISION_HEADER,
    REVISION_HEADER,
    Advance,
    SettingsTable,
)
from auditstream.pipeline.settings_writer import with_revision

HOSTILE_ACCOUNTS = ["acme", "a'; DROP TABLE group_offsets; --", "ünï😀", 'q"uo\\te', " "]


def _settings(account_id: str, *dest_ids: str, **kw: Any) -> AccountSettings:
    return AccountSettings.model_validate(
        {
            "account_id": account_id,
            "destinations": [{"id": d, "type": "local", "path": d} for d in dest_ids],
            **kw,
        }
    )


OLD = _settings("acme", "d-old")
NEW = _settings("acme", "d-old", "d-new")
NEWER = _settings("acme", "d-newer")


def _at_once(reason: str) -> float:
    value = REGISTRY.get_sample_value(
        "auditstream_router_settings_applied_at_once_total", {"reason": reason}
    )
    return value or 0.0


# commit metadata ------------------------------------------------------------------------------


@pytest.mark.parametrize("account", HOSTILE_ACCOUNTS)
def test_metadata_round_trips(account: str) -> None:
    text, left_out = commit_metadata.encode({0: 812}, {account: "9f3c", "b": ""})
    assert left_out == []
    assert commit_metadata.decode(text) == CommitMetadata({0: 812}, {account: "9f3c", "b": ""})


def test_metadata_is_the_documented_compact_json() -> None:
    text, _ = commit_metadata.encode({0: 812}, {"acct-all": "9f3c"})
    assert text == '{"v":1,"s":{"0":812},"r":{"acct-all":"9f3c"}}'


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not json",
        "{",
        "[]",
        "null",
        '"text"',
        '{"s":{"0":1},"r":{}}',  # an older writer: no version
        '{"v":2,"s":{"0":1},"r":{}}',
        '{"v":"1","s":{"0":1},"r":{}}',
        '{"v":1,"s":[],"r":{}}',
        '{"v":1,"s":{"0":1},"r":[]}',
        '{"v":1,"s":{"x":1},"r":{}}',
        '{"v":1,"s":{"-1":1},"r":{}}',
        '{"v":1,"s":{"0":-5},"r":{}}',
        '{"v":1,"s":{"0":1.5},"r":{}}',
        '{"v":1,"s":{"0":true},"r":{}}',
        '{"v":1,"s":{"0":1},"r":{"a":1}}',
        '{"v":1,"s":{"0":1},"r":{"a":null}}',
        '{"v":1,"s":{"٣":1},"r":{}}',  # a digit, not an ASCII one
        '{"v":1,"s":{"0":1},"r":{}}' + " " * 70_000,  # too long to be ours
    ],
)
def test_metadata_not_written_by_this_version_is_not_read(text: str) -> None:
    assert commit_metadata.decode(text) is None


def test_accounts_over_the_brokers_limit_are_left_out() -> None:
    in_force = {f"account-{i:04d}-ü": "r" * 32 for i in range(200)}
    in_force["x" * 5000] = "r"
    text, left_out = commit_metadata.encode({0: 10, 1: 20}, in_force)
    assert len(text.encode()) <= commit_metadata.MAX_BYTES
    decoded = commit_metadata.decode(text)
    assert decoded is not None
    assert set(decoded.in_force) | set(left_out) == set(in_force)
    assert not set(decoded.in_force) & set(left_out)
    assert "x" * 5000 in left_out
    assert len(decoded.in_force) > 50  # filled, not given up on


def test_exactly_the_limit_fits() -> None:
    text, _ = commit_metadata.encode({0: 1}, {})
    room = commit_metadata.MAX_BYTES - len(text) - len('"":""')
    text, left_out = commit_metadata.encode({0: 1}, {"a" * room: ""})
    assert left_out == []
    assert len(text) == commit_metadata.MAX_BYTES
    _, left_out = commit_metadata.encode({0: 1}, {"a" * (room + 1): ""})
    assert left_out == ["a" * (room + 1)]


def test_positions_that_do_not_fit_are_an_error() -> None:
    with pytest.raises(ValueError, match="more than 4096"):
        commit_metadata.encode({p: 10**12 for p in range(400)}, {})


# headers naming the replaced record -----------------------------------------------------------


def test_with_revision_names_the_replaced_record_on_the_settings_record_only() -> None:
    settings = OutgoingRecord(topics.SETTINGS, b"new", key=b"acme")
    event = OutgoingRecord(topics.ACTIVITY, b"event", key=b"acme", headers=(("activity", b"x"),))
    stamped = with_revision([settings, event], "r2", previous=b"old", previous_revision="r1")
    assert stamped[0].headers == (
        (REVISION_HEADER, b"r2"),
        (PREVIOUS_HEADER, b"old"),
        (PREVIOUS_REVISION_HEADER, b"r1"),
    )
    assert stamped[1].headers == (("activity", b"x"), (REVISION_HEADER, b"r2"))
    again = with_revision(stamped, "r3")  # stamped again: no header twice, none left stale
    assert again[0].headers == ((REVISION_HEADER, b"r3"),)


@pytest.mark.parametrize(
    ("previous", "previous_revision", "headers"),
    [
        (None, None, ((REVISION_HEADER, b"r2"),)),
        (None, "r1", ((REVISION_HEADER, b"r2"),)),  # a revision without its record: no use
        (b"", None, ((REVISION_HEADER, b"r2"), (PREVIOUS_HEADER, b""))),
        (b"old", None, ((REVISION_HEADER, b"r2"), (PREVIOUS_HEADER, b"old"))),
    ],
)
def test_with_revision_previous_headers(
    previous: bytes | None, previous_revision: str | None, headers: tuple[Any, ...]
) -> None:
    record = OutgoingRecord(topics.SETTINGS, b"new", key=b"acme")
    got = with_revision([record], "r2", previous=previous, previous_revision=previous_revision)
    assert got[0].headers == headers


# the table at a router's start ----------------------------------------------------------------

Rec = tuple[int, AccountSettings | bytes | None, str | None, bytes | None, str]
"""(offset, settings or raw value, revision, previous header, previous revision header)."""

BASE: Rec = (0, OLD, None, None, "")
CHANGE: Rec = (5, NEW, "r1", encode_settings(OLD), "")


def _table(records: list[Rec]) -> SettingsTable:
    table = SettingsTable()
    for offset, settings, revision, previous, previous_revision in records:
        value = settings if isinstance(settings, bytes) else b""
        if isinstance(settings, AccountSettings):
            value = encode_settings(settings)
        table.apply(
            b"acme",
            value,
            revision,
            at=(0, offset),
            previous=previous,
            previous_revision=previous_revision,
        )
    table.hold_revisions()
    return table


def _commit(read: int, in_force: dict[str, str] | None = None) -> CommitMetadata:
    return CommitMetadata({0: read}, in_force or {})


@pytest.mark.parametrize(
    ("records", "commits", "held"),
    [
        pytest.param([BASE, CHANGE], [_commit(3)], True, id="written-after-the-commit"),
        pytest.param([CHANGE], [_commit(3)], True, id="replaced-record-compacted-away"),
        pytest.param([BASE, CHANGE], [_commit(6)], False, id="read-and-applied-before-it"),
        pytest.param([BASE, CHANGE], [_commit(6, {"acme": ""})], True, id="pending-at-the-commit"),
        pytest.param(
            [BASE, CHANGE], [_commit(6, {"acme": "r1"})], False, id="passed-at-the-commit"
        ),
        pytest.param(
            [BASE, CHANGE, (7, NEWER, "r2", encode_settings(NEW), "r1")],
            [_commit(3)],
            False,
            id="two-changes-after-the-commit",
        ),
        pytest.param(
            [BASE, CHANGE, (7, NEWER, "r2", encode_settings(NEW), "r1")],
            [_commit(6, {"acme": ""})],
            False,
            id="two-changes-one-pending-at-the-commit",
        ),
        pytest.param(
            [BASE, CHANGE, (7, NEWER, "r2", encode_settings(NEW), "r1")],
            [_commit(6, {"acme": "r1"})],
            True,
            id="second-change-pending-at-the-commit",
        ),
        pytest.param([BASE, (5, NEW, "r1", None, "")], [_commit(3)], False, id="no-previous"),
        pytest.param([BASE, (5, NEW, None, None, "")], [_commit(3)], False, id="no-revision"),
        pytest.param([BASE, CHANGE], [_commit(3), _commit(6)], False, id="one-commit-says-no"),
        pytest.param([BASE, CHANGE], [_commit(3), _commit(4)], True, id="every-commit-says-yes"),
        pytest.param([BASE, CHANGE], [], False, id="no-commit-starts-from-the-beginning"),
        pytest.param(
            [BASE, CHANGE],
            [CommitMetadata({1: 3}, {})],
            False,  # partition 0 unread at the commit: both records came after it
            id="settings-partition-not-read-at-the-commit",
        ),
    ],
)
def test_hold_back_puts_the_settings_of_the_commit_back(
    records: list[Rec], commits: list[CommitMetadata], held: bool
) -> None:
    table = _table(records)
    newest = table.account("acme")
    got = table.hold_back(commits)
    assert got == (["acme"] if held else [])
    if held:
        replaced = records[-1][3]
        assert replaced is not None
        assert table.account("acme") == decode_settings(replaced)  # what the newest replaced
        assert table.pending("acme") == [records[-1][2]]
        assert table.advance("acme", str(records[-1][2])) is Advance.APPLIED
    assert table.account("acme") == newest
    assert table.pending("acme") == []


def test_a_change_that_created_the_account_holds_no_settings_until_its_event() -> None:
    table = _table([(5, NEW, "r1", b"", "")])
    assert table.hold_back([_commit(3)]) == ["acme"]
    assert table.account("acme") is None
    assert table.destination("d-new") is None
    assert table.advance("acme", "r1") is Advance.APPLIED
    assert table.account("acme") == NEW


@pytest.mark.parametrize(
    "previous",
    [
        b"not settings",
        b"\xff\xfe",
        b"{}",
        b"x" * 100_000,
        encode_settings(_settings("beta", "d-beta")),  # another account's record
    ],
)
def test_a_previous_header_that_cannot_be_used_applies_the_change_at_once(
    previous: bytes,
) -> None:
    before = _at_once("previous_unreadable")
    table = _table([BASE, (5, NEW, "r1", previous, "")])
    assert table.hold_back([_commit(3)]) == []
    assert table.account("acme") == NEW
    assert table.destination("d-beta") is None
    assert _at_once("previous_unreadable") == before + 1


def test_an_undecodable_newest_record_is_not_held() -> None:
    table = _table([BASE, (5, b"garbage", "r1", encode_settings(OLD), "")])
    assert table.hold_back([_commit(3)]) == []
    assert table.account("acme") == OLD  # the last good settings, as before


# pending revisions when partitions are given to a router --------------------------------------


def _pending_table() -> SettingsTable:
    table = _table([BASE])
    table.apply(b"acme", encode_settings(NEW), "r1", at=(0, 5), previous=encode_settings(OLD))
    assert table.pending("acme") == ["r1"]
    return table


@pytest.mark.parametrize(
    ("commit", "kept"),
    [
        (_commit(3), True),  # the committing router had not read it: its event is ahead
        (_commit(5), True),
        (_commit(6), False),  # read and not pending there: its event was routed
        (_commit(6, {"acme": ""}), True),  # pending there too, the same settings in force
        (_commit(6, {"acme": "r0"}), False),  # another revision in force there
        (_commit(6, {"acme": "r1"}), False),  # its event was routed before it was read
        (CommitMetadata({}, {}), True),  # no settings read when committing: nothing passed
    ],
)
def test_keep_pending_applies_what_the_commit_passed(commit: CommitMetadata, kept: bool) -> None:
    table = _pending_table()
    assert table.keep_pending([commit]) == ([] if kept else ["acme"])
    assert table.account("acme") == (OLD if kept else NEW)
    assert table.pending("acme") == (["r1"] if kept else [])


def test_a_rewound_batch_keeps_where_the_pending_revision_was_read() -> None:
    table = _pending_table()
    snapshot = table.snapshot()
    assert table.advance("acme", "r1") is Advance.APPLIED
    table.restore(snapshot)  # the batch with the audit event was not committed
    assert table.keep_pending([_commit(3)]) == []
    assert table.pending("acme") == ["r1"]


def test_in_force_names_pending_and_passed_accounts() -> None:
    table = _pending_table()
    table.apply(b"beta", encode_settings(_settings("beta")), "b1", at=(0, 6))
    table.settle("gamma", "g1")  # its audit event was routed before its record was read
    assert table.in_force() == {"acme": "", "beta": "", "gamma": "g1"}
    table.settle_accounts(["acme"])
    assert table.in_force() == {"beta": "", "gamma": "g1"}
    assert table.account("acme") == NEW
    table.advance("beta", "b1")
    assert table.in_force() == {"gamma": "g1"}
