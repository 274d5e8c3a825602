"""Accounts' settings changed one settings record at a time (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from auditstream.config.secrets import SecretBox
from auditstream.config.stream import AccountSettings
from auditstream.config.wire import encode_settings
from auditstream.pipeline.settings_table import Advance, SettingsTable


def _settings(account_id: str, *dest_ids: str, **kw: Any) -> AccountSettings:
    return AccountSettings.model_validate(
        {
            "account_id": account_id,
            "destinations": [{"id": d, "type": "local", "path": d} for d in dest_ids],
            **kw,
        }
    )


def _value(settings: AccountSettings | None) -> bytes:
    return b"" if settings is None else encode_settings(settings)


A1 = _settings("acme", "d1", "d2")
A2 = _settings("acme", "d2", streaming_enabled=False)
B1 = _settings("beta", "d3")


@pytest.mark.parametrize(
    ("records", "accounts", "destinations", "previous_acme"),
    [
        ([("acme", A1)], {"acme": A1}, {"d1": "acme", "d2": "acme"}, None),
        ([("acme", A1), ("acme", A2)], {"acme": A2}, {"d2": "acme"}, A1),
        (
            [("acme", A1), ("beta", B1)],
            {"acme": A1, "beta": B1},
            {"d1": "acme", "d2": "acme", "d3": "beta"},
            None,
        ),
        ([("acme", A1), ("acme", None)], {}, {}, A1),  # an empty value removes the account
        ([("acme", None)], {}, {}, None),
    ],
)
def test_records_replace_an_accounts_settings(
    records: list[tuple[str, AccountSettings | None]],
    accounts: dict[str, AccountSettings],
    destinations: dict[str, str],
    previous_acme: AccountSettings | None,
) -> None:
    changes: list[tuple[str, AccountSettings | None]] = []
    table = SettingsTable(on_change=lambda a, s: changes.append((a, s)))
    for account_id, settings in records:
        table.apply(account_id.encode(), _value(settings))
    assert table.accounts() == accounts
    owners = {d: table.destination(d) for d in ("d1", "d2", "d3")}
    assert {d: found[0] for d, found in owners.items() if found is not None} == destinations
    assert table.previous("acme") == previous_acme
    assert changes == records
    assert table.version == len(records)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        (None, encode_settings(A2)),  # no key
        (b"acme", b"not settings"),  # cannot be decoded
    ],
)
def test_a_bad_record_keeps_the_last_good_settings(key: bytes | None, value: bytes) -> None:
    table = SettingsTable()
    table.apply(b"acme", encode_settings(A1))
    table.apply(key, value)
    assert table.account("acme") == A1
    assert table.version == 1


def test_secrets_are_opened_with_the_box() -> None:
    box = SecretBox([SecretBox.generate_key()])
    hook = AccountSettings.model_validate(
        {
            "account_id": "acme",
            "destinations": [
                {
                    "id": "h",
                    "type": "webhook",
                    "url": "https://siem.example.com/in",
                    "secret": "s3cret-value-123",
                }
            ],
        }
    )
    sealed = encode_settings(hook, box)
    assert b"s3cret-value-123" not in sealed
    unopened = SettingsTable()
    unopened.apply(b"acme", sealed)
    assert unopened.account("acme") is None
    table = SettingsTable(box)
    table.apply(b"acme", sealed)
    assert table.account("acme") == hook


# -- changes that apply at their audit event (docs/adr/017) ------------------------------------

A3 = _settings("acme", "d3", include_categories=["team"])

Op = tuple[str, str | None, AccountSettings | bytes | str | None]
"""("record", revision, settings or raw value) | ("event", revision, expected Advance value)."""


@pytest.mark.parametrize(
    ("ops", "current", "previous", "pending"),
    [
        pytest.param([("record", "r1", A2)], A1, None, ["r1"], id="read-waits-for-its-event"),
        pytest.param(
            [("record", "r1", A2), ("event", "r1", "applied")], A2, A1, [], id="record-then-event"
        ),
        pytest.param(
            [("event", "r1", "unknown"), ("record", "r1", A2)],
            A2,
            A1,
            [],
            id="event-before-its-record-is-read",
        ),
        pytest.param(
            [("record", "r1", A2), ("record", "r2", A3), ("event", "r1", "applied")],
            A2,
            A1,
            ["r2"],
            id="two-changes-first-event",
        ),
        pytest.param(
            [
                ("record", "r1", A2),
                ("record", "r2", A3),
                ("event", "r1", "applied"),
                ("event", "r2", "applied"),
            ],
            A3,
            A2,
            [],
            id="two-changes-both-events",
        ),
        pytest.param(
            [("record", "r1", A2), ("record", "r2", A3), ("event", "r2", "applied")],
            A3,
            A1,
            [],
            id="two-changes-second-event-takes-the-first-along",
        ),
        pytest.param(
            [
                ("record", "r1", A2),
                ("event", "r1", "applied"),
                ("event", "r1", "current"),
            ],
            A2,
            A1,
            [],
            id="event-routed-again",
        ),
        pytest.param(
            [("record", "r1", A2), ("record", None, A3), ("event", "r1", "current")],
            A3,
            A1,
            [],
            id="change-without-revision-applies-at-once",
        ),
        pytest.param([("record", "r1", None)], A1, None, ["r1"], id="removal-waits-for-its-event"),
        pytest.param(
            [("record", "r1", None), ("event", "r1", "applied")],
            None,
            A1,
            [],
            id="removed-account",
        ),
        pytest.param(
            [("record", "r1", A2), ("event", "r9", "unknown")],
            A2,
            A1,
            [],
            id="revision-never-read-applies-what-was-read",
        ),
        pytest.param(
            [("event", "r9", "unknown")], A1, None, [], id="revision-never-read-nothing-pending"
        ),
        pytest.param(
            [("record", "r1", b"not settings"), ("event", "r1", "current")],
            A1,
            None,
            [],
            id="undecodable-record-its-event-changes-nothing",
        ),
    ],
)
def test_revisions_apply_at_their_audit_event(
    ops: list[Op],
    current: AccountSettings | None,
    previous: AccountSettings | None,
    pending: list[str],
) -> None:
    table = SettingsTable()
    table.apply(b"acme", _value(A1))  # read when the router started: applies at once
    table.hold_revisions()
    for kind, revision, arg in ops:
        assert revision is not None or kind == "record"
        if kind == "record":
            assert not isinstance(arg, str)
            value = arg if isinstance(arg, bytes) else _value(arg)
            table.apply(b"acme", value, revision)
        else:
            assert revision is not None
            got = table.advance("acme", revision)
            assert got.value == arg, (kind, revision)
            if got is Advance.UNKNOWN:
                table.settle("acme", revision)  # what the router does after its bounded wait
    assert table.account("acme") == current
    assert table.previous("acme") == previous
    assert table.pending("acme") == pending


def test_a_table_not_holding_revisions_applies_them_at_once() -> None:
    table = SettingsTable()
    table.apply(b"acme", _value(A1), "r1")
    assert table.account("acme") == A1
    assert table.pending("acme") == []
    assert table.advance("acme", "r1") is Advance.CURRENT


def test_other_accounts_are_not_held_back() -> None:
    table = SettingsTable()
    table.hold_revisions()
    table.apply(b"acme", _value(A1), "r1")
    table.apply(b"beta", _value(B1))
    assert table.account("beta") == B1
    assert table.account("acme") is None
    assert table.advance("beta", "r1") is Advance.UNKNOWN  # another account's revision
    assert table.advance("acme", "r1") is Advance.APPLIED
    assert table.destination("d1") == ("acme", A1.destinations[0])


def test_restore_undoes_the_changes_of_records_read_again() -> None:
    table = SettingsTable()
    table.apply(b"acme", _value(A1))
    table.hold_revisions()
    table.apply(b"acme", _value(A2), "r1")
    snapshot = table.snapshot()
    assert table.advance("acme", "r1") is Advance.APPLIED
    table.restore(snapshot)  # the batch holding the audit event was not committed
    assert table.account("acme") == A1
    assert table.destination("d1") == ("acme", A1.destinations[0])
    assert table.pending("acme") == ["r1"]
    assert table.advance("acme", "r1") is Advance.APPLIED  # routed again
    assert table.account("acme") == A2


def test_settle_all_applies_every_pending_revision() -> None:
    table = SettingsTable()
    table.hold_revisions()
    first = AccountSettings.model_validate(
        {"account_id": "a", "destinations": [{"id": "d-1", "type": "local", "path": "x"}]}
    )
    second = AccountSettings.model_validate(
        {"account_id": "a", "destinations": [{"id": "d-2", "type": "local", "path": "y"}]}
    )
    table.apply(b"a", encode_settings(first), "r1")
    table.apply(b"a", encode_settings(second), "r2")
    assert table.account("a") is None
    assert table.pending("a") == ["r1", "r2"]

    table.settle_all()

    assert table.account("a") == second
    assert table.pending("a") == []
    assert table.advance("a", "r2") is Advance.CURRENT
