"""The external id of an account: what a tenant puts in the trust policy of the role the platform
assumes in the tenant's cloud account (AWS's defence against the confused deputy problem).

AWS's pattern: the platform, not the tenant, chooses the external id, one per tenant. Were the
tenant to choose it, a tenant who learns another tenant's role ARN (they are not secret) could
name that role with that tenant's external id and have the platform write into it. So the id is
derived from the account id with a key only the platform holds (HMAC-SHA256): stable for the
account, different for every account and every deployment, and never chosen by a tenant.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from pathlib import Path

from auditstream.config.errors import ConfigError

ENV_KEY = "AUDITSTREAM_EXTERNAL_ID_KEY"
ENV_KEY_FILE = "AUDITSTREAM_EXTERNAL_ID_KEY_FILE"
PREFIX = "auditstream-"
_MIN_KEY_BYTES = 16


def external_id_for(account_id: str, key: bytes | None) -> str | None:
    """The external id of ``account_id`` under ``key``; None without a key (then this
    deployment assumes no roles)."""
    if key is None:
        return None
    digest = hmac.new(key, b"aws-external-id\0" + account_id.encode(), hashlib.sha256)
    return PREFIX + digest.hexdigest()[:40]


def parse_key(text: str) -> bytes:
    """The key in ``text`` (url-safe base64, at least 16 bytes, as ``auditstream keys generate``
    prints). Raises :class:`ConfigError` saying how to make one (never quoting the text)."""
    try:
        key = base64.urlsafe_b64decode(text.strip().encode())
    except ValueError:
        key = b""
    if len(key) < _MIN_KEY_BYTES:
        raise ConfigError(
            f"the external id key must be at least {_MIN_KEY_BYTES} url-safe base64-encoded "
            "bytes: make one with `auditstream keys generate`"
        )
    return key


def key_from_environment(environ: dict[str, str] | None = None) -> bytes | None:
    """The key set by ``AUDITSTREAM_EXTERNAL_ID_KEY`` or ``AUDITSTREAM_EXTERNAL_ID_KEY_FILE``
    (a file holding it); None when neither is set. Raises :class:`ConfigError` for a file that
    cannot be read or a key that is not valid. Keep the key for good: changing it changes every
    account's external id, and their roles' trust policies then refuse the platform."""
    env = os.environ if environ is None else environ
    if env.get(ENV_KEY_FILE):
        path = Path(env[ENV_KEY_FILE])
        try:
            return parse_key(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read {ENV_KEY_FILE}={path}: {exc.strerror}") from exc
    if env.get(ENV_KEY):
        return parse_key(env[ENV_KEY])
    return None
