"""API tokens: ``ast_<id>_<secret>``, stored hashed in the compacted ``auditstream.tokens`` topic.

A token belongs to one user of one account, with a role (owner, admin, member) and optional
privileges (``activity_audit`` lets a member read the streaming settings). Only the SHA-256 of
the secret part is stored (key = token id); the token is shown once, when it is created.
Verification compares digests in constant time. A record with an empty value revokes a token.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, get_args

import orjson

from auditstream.pipeline import topics
from auditstream.pipeline.compacted_view import CompactedTopicView
from auditstream.pipeline.log import Log, OutgoingRecord, Record
from auditstream.pipeline.produce_all import produce_all

log = logging.getLogger(__name__)

Role = Literal["owner", "admin", "member"]
ROLES: tuple[str, ...] = get_args(Role)
Privilege = Literal["activity_audit"]
PRIVILEGES: tuple[str, ...] = get_args(Privilege)

PREFIX = "ast"
_ID_BYTES = 8  # 16 hex characters
_SECRET_BYTES = 32


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request acts as."""

    token_id: str
    account_id: str
    user_id: str
    role: str
    privileges: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class StoredToken:
    principal: Principal
    secret_sha256: str
    created_at: str


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def parse_token(token: str) -> tuple[str, str] | None:
    """(token id, secret) of a well-formed ``ast_<id>_<secret>`` token, else None."""
    parts = token.strip().split("_", 2)
    if len(parts) != 3 or parts[0] != PREFIX:
        return None
    token_id, secret = parts[1], parts[2]
    if len(token_id) != 2 * _ID_BYTES or any(c not in "0123456789abcdef" for c in token_id):
        return None
    if not 16 <= len(secret) <= 256:
        return None
    return token_id, secret


def new_token() -> tuple[str, str, str]:
    """(token, token id, secret) for a fresh random token."""
    token_id = secrets.token_hex(_ID_BYTES)
    secret = secrets.token_urlsafe(_SECRET_BYTES)
    return f"{PREFIX}_{token_id}_{secret}", token_id, secret


def encode_token(stored: StoredToken) -> bytes:
    p = stored.principal
    return orjson.dumps(
        {
            "token_id": p.token_id,
            "account_id": p.account_id,
            "user_id": p.user_id,
            "role": p.role,
            "privileges": sorted(p.privileges),
            "secret_sha256": stored.secret_sha256,
            "created_at": stored.created_at,
        }
    )


def decode_token(value: bytes) -> StoredToken:
    """Raises ``ValueError`` for a record that is not a token."""
    try:
        data = orjson.loads(value)
        principal = Principal(
            token_id=str(data["token_id"]),
            account_id=str(data["account_id"]),
            user_id=str(data["user_id"]),
            role=str(data["role"]),
            privileges=frozenset(str(p) for p in data.get("privileges", [])),
        )
        return StoredToken(principal, str(data["secret_sha256"]), str(data.get("created_at", "")))
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise ValueError(f"not a token record: {type(exc).__name__}") from None


def create_token(
    log_backend: Log,
    *,
    account_id: str,
    user_id: str,
    role: str,
    privileges: frozenset[str] = frozenset(),
) -> tuple[str, Principal]:
    """Store a new token and return it (the only time it is seen) with its principal.

    Raises ``ValueError`` for an unknown role or privilege, :class:`pipeline.errors.LogError`
    if not stored.
    """
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    unknown = sorted(privileges - set(PRIVILEGES))
    if unknown:
        raise ValueError(f"unknown privileges {unknown}; known: {', '.join(PRIVILEGES)}")
    if not account_id or not user_id:
        raise ValueError("account and user must not be empty")
    token, token_id, secret = new_token()
    principal = Principal(token_id, account_id, user_id, role, privileges)
    stored = StoredToken(principal, hash_secret(secret), datetime.now(UTC).isoformat())
    log_backend.create_topic(topics.TOKENS, compacted=True)
    record = OutgoingRecord(topics.TOKENS, encode_token(stored), key=token_id.encode())
    produce_all(log_backend, [record], what="token")
    return token, principal


class TokenStore:
    """The tokens of every account, read from the tokens topic and kept current.

    An unknown token id makes the store read the topic again (at most every
    ``refresh_interval`` seconds), so a token created by another process works within a second.
    """

    def __init__(self, log_backend: Log, refresh_interval: float = 1.0) -> None:
        """Raises :class:`pipeline.errors.LogError` if the tokens topic cannot be opened."""
        self._tokens: dict[str, StoredToken] = {}
        self._lock = threading.Lock()
        self._refresh_interval = refresh_interval
        self._refreshed_at = 0.0
        self._waited_at = 0.0
        self._topic = CompactedTopicView(log_backend, topics.TOKENS, self._apply)

    def catch_up(self, timeout: float = 30.0) -> None:
        """Read the tokens topic to its end. Raises ``TimeoutError`` if not done within
        ``timeout`` seconds (unknown ids still make the store read on), and
        :class:`pipeline.errors.LogError` if the log cannot be read."""
        with self._lock:
            try:
                self._topic.catch_up(timeout)
            finally:
                self._refreshed_at = time.monotonic()

    def _apply(self, record: Record) -> None:
        if record.key is None:
            return
        token_id = record.key.decode(errors="replace")
        if not record.value:
            self._tokens.pop(token_id, None)
            return
        try:
            self._tokens[token_id] = decode_token(record.value)
        except ValueError as exc:
            log.error("token record %s ignored: %s", token_id, exc)

    def _refresh(self, force: bool) -> None:
        """Apply new token records: every ``refresh_interval`` seconds, or at once for an
        unknown id. An unknown id polls without waiting, and waits briefly for records still
        in flight at most once per ``refresh_interval``: random ids cost little."""
        now = time.monotonic()
        if not force and now - self._refreshed_at < self._refresh_interval:
            return
        self._refreshed_at = now
        applied = self._topic.poll()
        if force and not applied and now - self._waited_at >= self._refresh_interval:
            self._waited_at = now
            self._topic.poll(wait=0.2)

    def authenticate(self, token: str) -> Principal | None:
        """The principal of ``token``, or None if it is malformed, unknown or wrong. Raises
        :class:`pipeline.errors.LogError` if the tokens topic cannot be read."""
        parsed = parse_token(token)
        if parsed is None:
            return None
        token_id, secret = parsed
        digest = hash_secret(secret)
        with self._lock:
            self._refresh(force=False)
            stored = self._tokens.get(token_id)
            if stored is None:
                self._refresh(force=True)
                stored = self._tokens.get(token_id)
        if stored is None:
            hmac.compare_digest(digest, digest)  # same work as for a known id
            return None
        if not hmac.compare_digest(digest, stored.secret_sha256):
            return None
        return stored.principal

    def close(self) -> None:
        with self._lock:
            self._topic.close()
