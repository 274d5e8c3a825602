"""Encryption at rest of destination secrets (credentials, webhook signing secrets), and the
secrets this process has read, so that log lines never show them.

Secrets are sealed with Fernet (AES-128-CBC + HMAC-SHA256) before they are written to the
settings topic. Several keys may be configured: the first seals, all of them open. To rotate,
put the new key first; a secret is sealed with it the next time its account's settings are
written. Keep an old key until every account holding secrets sealed with it has been written
since (a stored secret no key opens is refused with an error naming the key variables).
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from auditstream.config.errors import ConfigError, SecretKeyError

PREFIX = "enc:v1:"
ENV_KEYS = "AUDITSTREAM_SECRET_KEYS"
ENV_KEYS_FILE = "AUDITSTREAM_SECRET_KEYS_FILE"


class SecretBox:
    """Seals and opens secret strings. Raises :class:`ConfigError` for a bad key or a value
    that no configured key opens (the message never includes the value)."""

    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise ConfigError("no secret key configured")
        try:
            self._fernet = MultiFernet([Fernet(k.strip().encode()) for k in keys])
        except (ValueError, TypeError) as exc:
            raise ConfigError(
                "invalid secret key: each key must be 32 url-safe base64-encoded bytes "
                "(make one with `auditstream keys generate`)"
            ) from exc

    @staticmethod
    def generate_key() -> str:
        return Fernet.generate_key().decode()

    def seal(self, plaintext: str) -> str:
        return PREFIX + self._fernet.encrypt(plaintext.encode()).decode()

    def open(self, sealed: str) -> str:
        if not is_sealed(sealed):
            raise ConfigError("value is not a sealed secret")
        try:
            return self._fernet.decrypt(sealed[len(PREFIX) :].encode()).decode()
        except InvalidToken as exc:
            raise SecretKeyError(
                "a stored secret cannot be opened with the configured keys: add the key it was "
                f"sealed with to {ENV_KEYS} or {ENV_KEYS_FILE}"
            ) from exc


def is_sealed(value: str) -> bool:
    return value.startswith(PREFIX)


def box_from_environment(environ: dict[str, str] | None = None) -> SecretBox | None:
    """The box configured by ``AUDITSTREAM_SECRET_KEYS`` (comma-separated, current first) or
    ``AUDITSTREAM_SECRET_KEYS_FILE`` (one key per line); None when neither is set."""
    env = os.environ if environ is None else environ
    if env.get(ENV_KEYS_FILE):
        path = Path(env[ENV_KEYS_FILE])
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise ConfigError(f"cannot read {ENV_KEYS_FILE}={path}: {exc.strerror}") from exc
        keys = [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]
        return SecretBox(keys)
    if env.get(ENV_KEYS):
        return SecretBox([k for k in env[ENV_KEYS].split(",") if k.strip()])
    return None


# -- secrets kept out of log lines ----------------------------------------------------------------

MIN_REDACTED_LENGTH = 8
"""Shorter secrets (and parts) are not looked for in log lines: ordinary words would go too."""
REDACTED = "[redacted]"
_HEAD = MIN_REDACTED_LENGTH
_known: dict[str, tuple[str, ...]] = {}
"""The first ``_HEAD`` characters of each remembered secret -> the secrets, longest first."""
_known_lock = threading.Lock()


def _parts(secret: str) -> list[str]:
    """``secret`` and the parts a client may send or log on their own: the words of a header
    value (``Splunk <token>``), the items of a connection string or query (``a=b;c=d``,
    ``a=b&c=d``) and their values."""
    out = [secret.strip()]
    for word in re.split(r"[\s;&]+", secret):
        out.append(word)
        out.append(word.partition("=")[2])
    return [p for p in out if len(p) >= MIN_REDACTED_LENGTH]


def _index(parts: Iterable[str]) -> dict[str, tuple[str, ...]]:
    index: dict[str, set[str]] = {}
    for part in parts:
        index.setdefault(part[:_HEAD], set()).add(part)
    return {head: tuple(sorted(v, key=len, reverse=True)) for head, v in index.items()}


def _redact(text: str, index: dict[str, tuple[str, ...]]) -> str:
    """``text`` with every secret of ``index`` replaced, longest first where they overlap; one
    dictionary look-up per character, however many secrets there are."""
    if not index or len(text) < _HEAD:
        return text
    out: list[str] = []
    i = done = 0
    while i <= len(text) - _HEAD:
        found = next((s for s in index.get(text[i : i + _HEAD], ()) if text.startswith(s, i)), "")
        if found:
            out.append(text[done:i])
            out.append(REDACTED)
            i = done = i + len(found)
        else:
            i += 1
    out.append(text[done:])
    return "".join(out)


def remember_secrets(secrets: Iterable[str]) -> None:
    """Keep ``secrets`` (plain text) out of every later log line (see :func:`redact_secrets`)."""
    global _known
    new = {p for s in secrets for p in _parts(s)}
    with _known_lock:
        index = dict(_known)  # readers keep the one they took: replaced, never changed
        for part in new:
            head = part[:_HEAD]
            if part not in index.get(head, ()):
                both = {*index.get(head, ()), part}
                index[head] = tuple(sorted(both, key=len, reverse=True))
        _known = index


def forget_secrets() -> None:
    """Forget every remembered secret (for tests)."""
    global _known
    with _known_lock:
        _known = {}


def redact_secrets(text: str) -> str:
    """``text`` with every remembered secret replaced by ``[redacted]``."""
    return _redact(text, _known)


def redact_these(text: str, secrets: Iterable[str]) -> str:
    """``text`` with ``secrets`` (and their parts, as :func:`remember_secrets` takes them)
    replaced by ``[redacted]``. For text shown to a tenant: redacting every secret the process
    knows would tell a tenant which of its guesses are another tenant's secrets."""
    return _redact(text, _index(p for s in secrets for p in _parts(s)))
