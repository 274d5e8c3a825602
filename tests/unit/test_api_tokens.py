"""API tokens: format, hashing, records, and the store on the embedded log."""

from __future__ import annotations

import hashlib

import pytest

from auditstream.api.tokens import (
    Principal,
    StoredToken,
    TokenStore,
    create_token,
    decode_token,
    encode_token,
    new_token,
    parse_token,
)
from auditstream.pipeline import topics
from auditstream.pipeline.embedded_log import EmbeddedLog


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
    from auditstream.pipeline.log import OutgoingRecord

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
