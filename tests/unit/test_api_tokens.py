"""API tokens: format, hashing, records, expiry (with a fake clock), listing and revoking, and
the store on the embedded log."""

from __future__ import annotations

import hashlib
import logging
from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest

from auditstream.api.tokens import (
    MAX_EXPIRES_IN,
    Principal,
    StoredToken,
    TokenStore,
    UnknownToken,
    create_token,
    decode_token,
    encode_token,
    live_tokens,
    new_token,
    parse_expires_in,
    parse_token,
    revoke_token,
    token_id_of,
)
from auditstream.pipeline import topics
from auditstream.pipeline.embedded_log import EmbeddedLog
from auditstream.pipeline.log import OutgoingRecord


def test_new_tokens_parse_and_differ() -> None:
    token, token_id, secret = new_token()
    assert token == f"ast_{token_id}_{secret}"
    assert parse_token(token) == (token_id, secret)
    assert new_token()[0] != token


@pytest.mark.parametrize(
    "token",
    [
        "",
        "ast_",
        "ast_0123456789abcdef",
        "xyz_0123456789abcdef_" + "s" * 40,
        "ast_0123456789ABCDEF_" + "s" * 40,  # ids are lowercase hex
        "ast_0123_" + "s" * 40,
        "ast_0123456789abcdef_short",
        "ast_0123456789abcdef_" + "s" * 300,
    ],
)
def test_malformed_tokens(token: str) -> None:
    assert parse_token(token) is None


def test_secret_may_contain_underscores() -> None:
    assert parse_token("ast_0123456789abcdef_a_b_c_" + "x" * 20) == (
        "0123456789abcdef",
        "a_b_c_" + "x" * 20,
    )


def test_record_round_trip_holds_no_secret() -> None:
    token, token_id, secret = new_token()
    principal = Principal(token_id, "acme", "u-1", "member", frozenset({"activity_audit"}))
    stored = StoredToken(principal, hashlib.sha256(secret.encode()).hexdigest(), "2026-11-27")
    value = encode_token(stored)
    assert secret.encode() not in value
    assert token.encode() not in value
    assert decode_token(value) == stored


def test_store_authenticates_and_refuses(embedded_log: EmbeddedLog) -> None:
    store = TokenStore(embedded_log)
    store.catch_up()
    token, principal = create_token(embedded_log, account_id="acme", user_id="ada", role="owner")
    # created after the store read the topic: an unknown id makes it read again
    assert store.authenticate(token) == principal
    token_id, secret = parse_token(token) or ("", "")
    assert store.authenticate(f"ast_{token_id}_{secret[:-1]}x") is None
    assert store.authenticate("ast_ffffffffffffffff_" + secret) is None
    assert store.authenticate("Bearer " + token) is None
    store.close()


def test_revoked_token_is_refused(embedded_log: EmbeddedLog) -> None:
    token, principal = create_token(embedded_log, account_id="acme", user_id="ada", role="admin")
    producer = embedded_log.producer()
    producer.produce(OutgoingRecord(topics.TOKENS, b"", key=principal.token_id.encode()))
    producer.flush()
    store = TokenStore(embedded_log)
    store.catch_up()
    assert store.authenticate(token) is None
    store.close()


@pytest.mark.parametrize(
    ("role", "privileges", "message"),
    [
        ("root", frozenset(), "role"),
        ("member", frozenset({"superpowers"}), "privileges"),
    ],
)
def test_create_refuses_unknown_roles_and_privileges(
    embedded_log: EmbeddedLog, role: str, privileges: frozenset[str], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        create_token(embedded_log, account_id="a", user_id="u", role=role, privileges=privileges)


# -- expiry ------------------------------------------------------------------------------------

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC).timestamp()


class FakeClock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90d", timedelta(days=90)),
        ("12h", timedelta(hours=12)),
        ("30m", timedelta(minutes=30)),
        (" 1D ", timedelta(days=1)),
        ("365d", MAX_EXPIRES_IN),
        ("8760h", MAX_EXPIRES_IN),
        ("none", None),
        ("None", None),
    ],
)
def test_expires_in_parses(text: str, expected: timedelta | None) -> None:
    assert parse_expires_in(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "such as 90d"),
        ("90", "such as 90d"),
        ("d", "such as 90d"),
        ("1.5d", "such as 90d"),
        ("-1d", "such as 90d"),
        ("1w", "such as 90d"),
        ("1d12h", "such as 90d"),
        ("1 d", "such as 90d"),
        ("\u0663d", "such as 90d"),  # an Arabic-Indic digit: int() would take it
        ("never", "such as 90d"),
        ("0d", "more than 0"),
        ("0m", "more than 0"),
        ("366d", "at most 365 days"),
        ("8761h", "at most 365 days"),
        ("9" * 30 + "d", "at most 365 days"),  # no OverflowError on the way
        ("9" * 31 + "d", "such as 90d"),
    ],
)
def test_expires_in_refuses(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_expires_in(text)


def test_expiring_token_authenticates_until_its_expiry_then_as_nobody(
    embedded_log: EmbeddedLog,
) -> None:
    clock = FakeClock()
    token, principal = create_token(
        embedded_log,
        account_id="acme",
        user_id="ada",
        role="admin",
        expires_in=timedelta(hours=12),
        clock=clock,
    )
    assert principal.expires_at == datetime(2026, 11, 29, 0, 0, tzinfo=UTC)
    store = TokenStore(embedded_log, clock=clock)
    store.catch_up()
    assert store.authenticate(token) == principal
    clock.now = NOW + 12 * 3600 - 1
    assert store.authenticate(token) == principal
    clock.now = NOW + 12 * 3600  # expired at its expires_at
    assert store.authenticate(token) is None
    clock.now = NOW + 400 * 86400
    assert store.authenticate(token) is None
    # the same answer as for a wrong secret or an unknown token: nothing tells them apart
    token_id, secret = parse_token(token) or ("", "")
    assert store.authenticate(f"ast_{token_id}_{secret[:-1]}x") is None
    # an expired token is still listed (marked by whoever lists it), until revoked
    assert [t.principal for t in store.tokens()] == [principal]
    store.close()


def test_expiry_is_decided_by_the_replicas_clock_alone(embedded_log: EmbeddedLog) -> None:
    """A token made on a machine whose clock is an hour ahead: its times are that machine's,
    and each replica compares only expires_at with its own clock."""
    ahead = FakeClock(NOW + 3600)
    token, principal = create_token(
        embedded_log,
        account_id="acme",
        user_id="ada",
        role="owner",
        expires_in=timedelta(minutes=30),
        clock=ahead,
    )
    replica = FakeClock(NOW)
    store = TokenStore(embedded_log, clock=replica)
    store.catch_up()
    assert store.authenticate(token) == principal  # 90 min left by the replica's clock
    replica.now = NOW + 90 * 60
    assert store.authenticate(token) is None
    store.close()


@pytest.mark.parametrize(
    "expires_in", [timedelta(0), timedelta(seconds=-1), MAX_EXPIRES_IN + timedelta(seconds=1)]
)
def test_create_refuses_a_lifetime_out_of_range(
    embedded_log: EmbeddedLog, expires_in: timedelta
) -> None:
    with pytest.raises(ValueError, match=r"more than 0|at most 365 days"):
        create_token(embedded_log, account_id="a", user_id="u", role="owner", expires_in=expires_in)
    assert topics.TOKENS not in embedded_log.list_topics()  # nothing written


def _raw(token_id: str, **fields: object) -> bytes:
    record: dict[str, object] = {
        "token_id": token_id,
        "account_id": "acme",
        "user_id": "ada",
        "role": "owner",
        "privileges": [],
        "secret_sha256": hashlib.sha256(b"s" * 40).hexdigest(),
        "created_at": "2025-01-01T00:00:00+00:00",
    }
    record.update(fields)
    return orjson.dumps(record)


def _put(log: EmbeddedLog, token_id: str, value: bytes) -> None:
    log.create_topic(topics.TOKENS, compacted=True)
    producer = log.producer()
    producer.produce(OutgoingRecord(topics.TOKENS, value, key=token_id.encode()))
    producer.flush()
    producer.close()


def test_records_without_expires_at_never_expire(embedded_log: EmbeddedLog) -> None:
    token_id = "0123456789abcdef"
    _put(embedded_log, token_id, _raw(token_id))  # written before tokens could expire
    _put(embedded_log, "fedcba9876543210", _raw("fedcba9876543210", expires_at=None))
    store = TokenStore(embedded_log, clock=FakeClock(NOW + 100 * 365 * 86400))
    store.catch_up()
    principal = store.authenticate(f"ast_{token_id}_" + "s" * 40)
    assert principal is not None
    assert principal.expires_at is None
    assert store.authenticate("ast_fedcba9876543210_" + "s" * 40) is not None
    store.close()


@pytest.mark.parametrize(
    ("expires_at", "message"),
    [
        ("2027-01-01T00:00:00", "no time zone"),
        ("next tuesday", "not an ISO time"),
        (1798761600, "not a string"),
        ("9999-12-31T23:59:59-14:00", "out of range"),
        ("0001-01-01T00:00:00+14:00", "out of range"),
    ],
)
def test_a_broken_record_revokes_rather_than_keeping_the_one_before(
    embedded_log: EmbeddedLog, expires_at: object, message: str
) -> None:
    token_id = "0123456789abcdef"
    with pytest.raises(ValueError, match=message):
        decode_token(_raw(token_id, expires_at=expires_at))
    _put(embedded_log, token_id, _raw(token_id))
    _put(embedded_log, token_id, _raw(token_id, expires_at=expires_at))
    store = TokenStore(embedded_log)
    store.catch_up()
    assert store.authenticate(f"ast_{token_id}_" + "s" * 40) is None
    assert store.tokens() == []
    store.close()


def test_a_record_under_another_tokens_key_is_ignored(embedded_log: EmbeddedLog) -> None:
    _put(embedded_log, "0123456789abcdef", _raw("fedcba9876543210"))
    store = TokenStore(embedded_log)
    store.catch_up()
    assert store.authenticate("ast_0123456789abcdef_" + "s" * 40) is None
    assert store.authenticate("ast_fedcba9876543210_" + "s" * 40) is None
    store.close()


def test_expires_at_round_trips_in_utc() -> None:
    when = datetime(2027, 2, 1, 8, 30, tzinfo=timezone(timedelta(hours=2)))
    principal = Principal("0123456789abcdef", "acme", "ada", "owner", expires_at=when)
    stored = StoredToken(principal, "0" * 64, "2026-11-28T12:00:00+00:00")
    decoded = decode_token(encode_token(stored))
    assert decoded.principal.expires_at == when
    assert decoded.principal.expires_at is not None
    assert decoded.principal.expires_at.utcoffset() == timedelta(0)


# -- listing and revoking ----------------------------------------------------------------------


def test_token_id_of_takes_an_id_or_a_token_and_never_repeats_a_secret() -> None:
    token, token_id, secret = new_token()
    assert token_id_of(token_id) == token_id
    assert token_id_of(f" {token}\n") == token_id
    for text in (
        f"ast_{token_id}_short",
        f"Bearer {token}",
        token_id.upper(),
        token_id[:-1],
        f"ast{secret}",
    ):
        with pytest.raises(ValueError, match="neither a token id") as caught:
            token_id_of(text)
        assert secret not in str(caught.value)
        assert "short" not in str(caught.value)


def test_revoke_stores_a_revocation_and_lists_no_more(
    embedded_log: EmbeddedLog, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="auditstream.api.tokens")
    token, principal = create_token(embedded_log, account_id="acme", user_id="ada", role="owner")
    other, other_principal = create_token(
        embedded_log, account_id="globex", user_id="bo", role="member"
    )
    store = TokenStore(embedded_log, refresh_interval=0.0)
    store.catch_up()
    assert store.authenticate(token) == principal
    assert {t.principal for t in live_tokens(embedded_log)} == {principal, other_principal}

    revoked = revoke_token(embedded_log, principal.token_id)
    assert revoked.principal == principal
    assert store.authenticate(token) is None
    assert store.authenticate(other) == other_principal
    assert [t.principal for t in live_tokens(embedded_log)] == [other_principal]
    with pytest.raises(UnknownToken, match="already revoked"):
        revoke_token(embedded_log, principal.token_id)
    store.close()

    lines = [r.getMessage() for r in caplog.records]
    assert any("created" in line and principal.token_id in line for line in lines)
    assert any("revoked" in line and principal.token_id in line for line in lines)
    for secret in (token, other, token.rsplit("_", 1)[1], other.rsplit("_", 1)[1]):
        assert all(secret not in line for line in lines)


def test_revoke_refuses_an_unknown_id_and_another_accounts_token(
    embedded_log: EmbeddedLog,
) -> None:
    _, principal = create_token(embedded_log, account_id="acme", user_id="ada", role="owner")
    with pytest.raises(UnknownToken, match="no live token 0123456789abcdef"):
        revoke_token(embedded_log, "0123456789abcdef")
    with pytest.raises(UnknownToken, match="of account globex"):
        revoke_token(embedded_log, principal.token_id, account_id="globex")
    assert [t.principal for t in live_tokens(embedded_log)] == [principal]  # still live
    assert revoke_token(embedded_log, principal.token_id, account_id="acme").principal == principal


def test_a_revocation_behind_a_burst_of_records_is_applied_in_one_refresh(
    embedded_log: EmbeddedLog,
) -> None:
    token, principal = create_token(embedded_log, account_id="acme", user_id="ada", role="owner")
    store = TokenStore(embedded_log, refresh_interval=0.0)
    store.catch_up()
    assert store.authenticate(token) == principal
    producer = embedded_log.producer()
    for n in range(2500):  # more than one poll returns
        token_id = f"{n:016x}"
        producer.produce(OutgoingRecord(topics.TOKENS, _raw(token_id), key=token_id.encode()))
    producer.produce(OutgoingRecord(topics.TOKENS, b"", key=principal.token_id.encode()))
    producer.flush()
    producer.close()
    assert store.authenticate(token) is None
    assert len(store.tokens()) == 2500
    store.close()
