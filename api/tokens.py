"""API tokens: ``ast_<id>_<secret>``, stored hashed in the compacted ``auditstream.tokens`` topic.

A token belongs to one user of one account, with a role (owner, admin, member) and optional
privileges (``activity_audit`` lets a member read the streaming settings). Only the SHA-256 of
the secret part is stored (key = token id); the token is shown once, when it is created.
Verification compares digests in constant time.

A token may expire (``expires_at``, UTC; records without it never expire): from then on it
authenticates as nobody, exactly like an unknown token. Each API replica compares it with its
own clock, so a clock that is off by some seconds moves the expiry by as much (keep the clocks
synchronised).

A record with an empty value revokes a token, and so does a record that is not a token. Every
API replica reads the tokens topic again at most ``refresh_interval`` (1 s) before it answers a
request, so a revoked token is refused everywhere within :data:`PROPAGATION_S` seconds.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, get_args

import orjson

from auditstream.pipeline import topics
from auditstream.pipeline.compacted_view import CompactedTopicView
from auditstream.pipeline.errors import LogError
from auditstream.pipeline.log import Log, OutgoingRecord, Record
from auditstream.pipeline.produce_all import produce_all

log = logging.getLogger(__name__)

Role = Literal["owner", "admin", "member"]
ROLES: tuple[str, ...] = get_args(Role)
Privilege = Literal["activity_audit"]
PRIVILEGES: tuple[str, ...] = get_args(Privilege)

PREFIX = "ast"
_ID_BYTES = 8  # 16 hex characters
_TOKEN_ID = re.compile(r"[0-9a-f]{16}")
_SECRET_BYTES = 32

MAX_EXPIRES_IN = timedelta(days=365)
"""The longest lifetime ``--expires-in`` may give a token (a token without expiry: ``none``)."""
_DURATION = re.compile(r"([0-9]{1,30})([dhm])")
_UNITS = {"d": timedelta(days=1), "h": timedelta(hours=1), "m": timedelta(minutes=1)}
_TOO_LONG = f"a token may live at most {MAX_EXPIRES_IN.days} days (or never expire: none)"

_MAX_POLLS = 10
"""Polls a refresh makes at most while records keep coming (each applies up to 1,000)."""
REFRESH_INTERVAL_S = 1.0
"""How often an API replica reads new token records (before answering a request)."""
PROPAGATION_S = 5
"""The documented promise: a revoked token is refused by every API replica within this many
seconds. Reading the topic again takes at most :data:`REFRESH_INTERVAL_S`; the rest is the
time a record takes to reach a replica's reader (on Kafka up to half a second) and slack for a
loaded machine."""
PROPAGATION = (
    f"every API replica refuses it within {PROPAGATION_S} s (each reads the tokens topic again "
    f"every {REFRESH_INTERVAL_S:g} s)"
)

Clock = Callable[[], float]
"""Seconds since the epoch (``time.time``); tests pass a fake one."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request acts as."""

    token_id: str
    account_id: str
    user_id: str
    role: str
    privileges: frozenset[str] = frozenset()
    expires_at: datetime | None = None
    """When the token stops working (UTC); None: never."""

    def expired(self, now: float) -> bool:
        """Has the token expired at ``now`` (seconds since the epoch)?"""
        return self.expires_at is not None and now >= self.expires_at.timestamp()


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
    if _TOKEN_ID.fullmatch(token_id) is None:
        return None
    if not 16 <= len(secret) <= 256:
        return None
    return token_id, secret


def token_id_of(text: str) -> str:
    """The token id in ``text``: a token id, or a whole token (its id; the secret is dropped).
    Raises ``ValueError`` otherwise, without repeating ``text`` (it may be a mistyped secret)."""
    text = text.strip()
    if _TOKEN_ID.fullmatch(text):
        return text
    parsed = parse_token(text)
    if parsed is None:
        raise ValueError(
            "neither a token id (16 lowercase hexadecimal characters) nor a whole token "
            f"({PREFIX}_<id>_<secret>)"
        )
    return parsed[0]


def parse_expires_in(text: str) -> timedelta | None:
    """A token's lifetime from ``90d``, ``12h``, ``30m`` (days, hours, minutes), or None for
    ``none`` (never expires). Raises ``ValueError`` for anything else, for 0, and for more than
    :data:`MAX_EXPIRES_IN`."""
    text = text.strip().lower()
    if text == "none":
        return None
    match = _DURATION.fullmatch(text)
    if match is None:
        raise ValueError(
            "expected a number of days, hours or minutes such as 90d, 12h or 30m, or none"
        )
    count, unit = int(match.group(1)), _UNITS[match.group(2)]
    if count > MAX_EXPIRES_IN // unit:  # checked before making a timedelta that may overflow
        raise ValueError(_TOO_LONG)
    duration = count * unit
    _check_expires_in(duration)
    return duration


def _check_expires_in(duration: timedelta) -> None:
    if duration <= timedelta(0):
        raise ValueError("a token's lifetime must be more than 0")
    if duration > MAX_EXPIRES_IN:
        raise ValueError(_TOO_LONG)


def new_token() -> tuple[str, str, str]:
    """(token, token id, secret) for a fresh random token."""
    token_id = secrets.token_hex(_ID_BYTES)
    secret = secrets.token_urlsafe(_SECRET_BYTES)
    return f"{PREFIX}_{token_id}_{secret}", token_id, secret


def encode_token(stored: StoredToken) -> bytes:
    p = stored.principal
    expires_at = p.expires_at
    return orjson.dumps(
        {
            "token_id": p.token_id,
            "account_id": p.account_id,
            "user_id": p.user_id,
            "role": p.role,
            "privileges": sorted(p.privileges),
            "secret_sha256": stored.secret_sha256,
            "created_at": stored.created_at,
            "expires_at": None if expires_at is None else expires_at.isoformat(),
        }
    )


def _expires_at(value: object) -> datetime | None:
    """``expires_at`` of a record: None (missing or null: never), else an ISO time with a zone.
    Raises ``ValueError``."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("expires_at is not a string")
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("expires_at is not an ISO time") from None
    if when.tzinfo is None:
        raise ValueError("expires_at has no time zone")
    try:
        return when.astimezone(UTC)
    except OverflowError:  # a time zone takes it past year 9999 or before year 1
        raise ValueError("expires_at is out of range") from None


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
            expires_at=_expires_at(data.get("expires_at")),
        )
        return StoredToken(principal, str(data["secret_sha256"]), str(data.get("created_at", "")))
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"not a token record: {type(exc).__name__}") from None
    except ValueError as exc:
        raise ValueError(f"not a token record: {exc}") from None


def create_token(
    log_backend: Log,
    *,
    account_id: str,
    user_id: str,
    role: str,
    privileges: frozenset[str] = frozenset(),
    expires_in: timedelta | None = None,
    clock: Clock = time.time,
) -> tuple[str, Principal]:
    """Store a new token and return it (the only time it is seen) with its principal, which
    expires ``expires_in`` after ``clock``'s now (never if None).

    Raises ``ValueError`` for an unknown role or privilege or a lifetime that is not more than
    0 and at most :data:`MAX_EXPIRES_IN`, :class:`pipeline.errors.LogError` if not stored.
    """
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    unknown = sorted(privileges - set(PRIVILEGES))
    if unknown:
        raise ValueError(f"unknown privileges {unknown}; known: {', '.join(PRIVILEGES)}")
    if not account_id or not user_id:
        raise ValueError("account and user must not be empty")
    if expires_in is not None:
        _check_expires_in(expires_in)
    token, token_id, secret = new_token()
    now = datetime.fromtimestamp(clock(), UTC)
    expires_at = None if expires_in is None else (now + expires_in).replace(microsecond=0)
    principal = Principal(token_id, account_id, user_id, role, privileges, expires_at)
    stored = StoredToken(principal, hash_secret(secret), now.isoformat())
    log_backend.create_topic(topics.TOKENS, compacted=True)
    record = OutgoingRecord(topics.TOKENS, encode_token(stored), key=token_id.encode())
    produce_all(log_backend, [record], what="token")
    log.info(
        "API token %s created for user %s (%s) of account %s, expires %s",
        token_id,
        user_id,
        role,
        account_id,
        "never" if expires_at is None else expires_at.isoformat(),
    )
    return token, principal


class UnknownToken(ValueError):
    """No live token has that id (never created, or already revoked)."""


def live_tokens(log_backend: Log, timeout: float = 30.0) -> list[StoredToken]:
    """Every token not revoked (expired ones included), by account, then creation time.

    Raises :class:`pipeline.errors.LogError` if the tokens topic cannot be read to its end
    within ``timeout`` seconds: a partial list could call a live token unknown.
    """
    store = TokenStore(log_backend)
    try:
        try:
            store.catch_up(timeout)
        except TimeoutError as exc:
            raise LogError(str(exc)) from None
        return store.tokens()
    finally:
        store.close()


def revoke_token(log_backend: Log, token_id: str, *, account_id: str | None = None) -> StoredToken:
    """Revoke the live token ``token_id`` (of ``account_id``, if given) and return what it was.

    Raises :class:`UnknownToken` if there is no such live token (or it belongs to another
    account), :class:`pipeline.errors.LogError` if the tokens topic cannot be read or the
    revocation not stored. Every API replica refuses the token within :data:`PROPAGATION_S`.
    """
    found = next((t for t in live_tokens(log_backend) if t.principal.token_id == token_id), None)
    if found is None or (account_id is not None and found.principal.account_id != account_id):
        of = f" of account {account_id}" if account_id is not None else ""
        raise UnknownToken(f"no live token {token_id}{of} (never created, or already revoked)")
    record = OutgoingRecord(topics.TOKENS, b"", key=token_id.encode())
    produce_all(log_backend, [record], what="token revocation")
    p = found.principal
    log.info(
        "API token %s of user %s (%s) of account %s revoked",
        token_id,
        p.user_id,
        p.role,
        p.account_id,
    )
    return found


class TokenStore:
    """The tokens of every account, read from the tokens topic and kept current.

    New records are read at most every ``refresh_interval`` seconds when a token is checked,
    and an unknown token id makes the store read the topic at once, so a token created by
    another process works within a second, and a revoked one is refused within
    :data:`PROPAGATION_S` seconds. Expiry is compared with ``clock``.
    """

    def __init__(
        self,
        log_backend: Log,
        refresh_interval: float = REFRESH_INTERVAL_S,
        *,
        clock: Clock = time.time,
    ) -> None:
        """Raises :class:`pipeline.errors.LogError` if the tokens topic cannot be opened."""
        self._tokens: dict[str, StoredToken] = {}
        self._lock = threading.Lock()
        self._refresh_interval = refresh_interval
        self._clock = clock
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

    def tokens(self) -> list[StoredToken]:
        """The tokens read so far and not revoked (expired ones too), by account, then
        creation time."""
        with self._lock:
            found = list(self._tokens.values())
        return sorted(found, key=lambda t: (t.principal.account_id, t.created_at))

    def _apply(self, record: Record) -> None:
        if record.key is None:
            return
        token_id = record.key.decode(errors="replace")
        if not record.value:
            self._tokens.pop(token_id, None)
            return
        try:
            stored = decode_token(record.value)
        except ValueError as exc:
            # The latest record of an id is what counts (compaction keeps only it): a broken
            # one leaves no token behind, rather than the one before it.
            self._tokens.pop(token_id, None)
            log.error("token record %s ignored: %s", token_id, exc)
            return
        if stored.principal.token_id != token_id:
            self._tokens.pop(token_id, None)
            log.error("token record %s ignored: it holds another token id", token_id)
            return
        self._tokens[token_id] = stored

    def _refresh(self, force: bool) -> None:
        """Apply new token records: every ``refresh_interval`` seconds, or at once for an
        unknown id. An unknown id polls without waiting, and waits briefly for records still
        in flight at most once per ``refresh_interval``: random ids cost little. Polls on
        while records come (a revocation behind a burst of new tokens is not left for the next
        refresh), at most ``_MAX_POLLS`` times."""
        now = time.monotonic()
        if not force and now - self._refreshed_at < self._refresh_interval:
            return
        self._refreshed_at = now
        applied = self._topic.poll()
        more, polls = applied, 1
        while more and polls < _MAX_POLLS:
            more = self._topic.poll()
            polls += 1
        if force and not applied and now - self._waited_at >= self._refresh_interval:
            self._waited_at = now
            self._topic.poll(wait=0.2)

    def authenticate(self, token: str) -> Principal | None:
        """The principal of ``token``, or None if it is malformed, unknown, wrong or expired
        (one answer for all: nothing tells an expired token from a wrong one). Raises
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
        if stored.principal.expired(self._clock()):
            return None
        return stored.principal

    def close(self) -> None:
        with self._lock:
            self._topic.close()
