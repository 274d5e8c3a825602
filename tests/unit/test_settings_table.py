"""Accounts' settings changed one settings record at a time (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from auditstream.config.secrets import SecretBox
from auditstream.config.stream import AccountSettings
from auditstream.config.wire import encode_settings
from auditstream.pipeline.settings_table import SettingsTable


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
