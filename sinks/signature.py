"""Webhook request signing: HMAC-SHA256 over the timestamp and the raw body.

Every webhook POST carries three headers:

- ``X-Auditstream-Timestamp``: the unix time (whole seconds) the request was signed;
- ``X-Auditstream-Signature``: ``v1=<hex HMAC-SHA256(secret, "<timestamp>." + body)>``; during
  a secret rotation a header may carry several comma-separated values
  (``v1=<hex>,v1=<hex>``), one per secret, and any one matching is enough;
- ``Idempotency-Key``: ``<destination_id>:<partition>:<first_offset>-<last_offset>``, the
  same for every attempt at the same batch, and a batch is only ever sent with the same records
  under one key (even when a restarted worker cuts its batches elsewhere: the offsets differ,
  so the key does). A requested replay is a new delivery of the same records:
  ``<destination_id>:<partition>:<first_offset>-<last_offset>:replay:<replay_id>``.

A receiver verifies a request as follows:

1. recompute the HMAC over the *raw* request body exactly as received (before any JSON parsing
   or re-encoding), prefixed by the timestamp header and a dot;
2. compare it with each ``v1=`` value of the signature header in constant time, and reject the
   request if none matches;
3. reject the request if the timestamp is further than a few minutes (300 s by default) from
   its own clock, in either direction, so a captured request cannot be replayed later;
4. remember the ``Idempotency-Key`` of every accepted request for at least as long as the
   sender retries, and drop a request whose key was already accepted: delivery is
   at-least-once, so the same batch may arrive more than once.

:func:`verify` implements steps 1 to 3.

A destination may sign the Standard Webhooks way instead (:func:`standard_sign`): headers
``webhook-id`` (the ``Idempotency-Key``), ``webhook-timestamp`` and ``webhook-signature``
(``v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>.<body>")>``, space-separated values during a
rotation), keyed with the base64-decoded part of a ``whsec_`` secret (:func:`standard_key`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence

TIMESTAMP_HEADER = "X-Auditstream-Timestamp"
SIGNATURE_HEADER = "X-Auditstream-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"

SCHEME = "v1"
"""The signature scheme prefix; the only one defined so far."""

DEFAULT_TOLERANCE_S = 300.0
"""How far a timestamp may be from the receiver's clock, in seconds, in either direction."""

_MAX_TIMESTAMP_DIGITS = 12


def _digest(secret: bytes, timestamp: str, body: bytes) -> str:
    message = timestamp.encode("ascii") + b"." + body
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    """The signature header value for ``body`` signed at ``timestamp`` (unix seconds):
    ``v1=<64 hex digits>``."""
    return f"{SCHEME}={_digest(secret, str(timestamp), body)}"


def verify(
    secret: bytes,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    *,
    now: float,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
) -> bool:
    """Whether a request's timestamp and signature headers are valid for ``body``.

    ``timestamp`` and ``signature`` are the raw header values (``None`` when missing). The
    timestamp must be a whole number of unix seconds within ``tolerance_s`` of ``now``; the
    signature header may hold several comma-separated ``v1=`` values (secret rotation), and
    values of other schemes are ignored. Comparisons run in constant time.
    """
    if timestamp is None or signature is None:
        return False
    timestamp = timestamp.strip()
    if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > _MAX_TIMESTAMP_DIGITS:
        return False
    if abs(now - int(timestamp)) > tolerance_s:
        return False
    expected = _digest(secret, timestamp, body).encode("ascii")
    matched = False
    for part in signature.split(","):
        scheme, sep, value = part.strip().partition("=")
        if not sep or scheme != SCHEME:
            continue
        # Every candidate is compared, so the time taken does not depend on which one matched.
        if hmac.compare_digest(expected, value.strip().encode("utf-8", "surrogateescape")):
            matched = True
    return matched


def idempotency_key(
    destination_id: str,
    partition: int,
    first_offset: int,
    last_offset: int | None = None,
    replay_id: str | None = None,
) -> str:
    """The key every attempt at one batch carries:
    ``<destination_id>:<partition>:<first_offset>-<last_offset>`` (without ``last_offset``:
    ``<destination_id>:<partition>:<first_offset>``), followed by ``:replay:<replay_id>`` for
    the batches of a requested replay, so a receiver that drops repeated keys takes the replay
    for the new delivery it is."""
    key = f"{destination_id}:{partition}:{first_offset}"
    if last_offset is not None:
        key += f"-{last_offset}"
    if replay_id is not None:
        key += f":replay:{replay_id}"
    return key


# Standard Webhooks (https://www.standardwebhooks.com/, version 1.0): a second signing scheme a
# destination may choose instead of the one above, for receivers that verify with a Standard
# Webhooks library.

STANDARD_ID_HEADER = "webhook-id"
STANDARD_TIMESTAMP_HEADER = "webhook-timestamp"
STANDARD_SIGNATURE_HEADER = "webhook-signature"
WHSEC_PREFIX = "whsec_"

WHSEC_HINT = (
    "a Standard Webhooks secret is 'whsec_' followed by the base64 of 24 to 64 random bytes; "
    'make one with: python -c "import base64, os; '
    "print('whsec_' + base64.b64encode(os.urandom(32)).decode())\""
)

_MIN_STANDARD_KEY_BYTES = 24
_MAX_STANDARD_KEY_BYTES = 64


def standard_key(secret: str) -> bytes:
    """The HMAC key of a Standard Webhooks secret: the base64-decoded part after ``whsec_``.

    Raises ``ValueError`` (whose message never contains the secret) unless ``secret`` is
    ``whsec_`` followed by standard base64 of 24 to 64 bytes."""
    if not secret.startswith(WHSEC_PREFIX):
        raise ValueError(f"the secret does not start with 'whsec_': {WHSEC_HINT}")
    encoded = secret[len(WHSEC_PREFIX) :]
    try:
        key = base64.b64decode(encoded.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError):
        raise ValueError(f"the part after 'whsec_' is not valid base64: {WHSEC_HINT}") from None
    if not _MIN_STANDARD_KEY_BYTES <= len(key) <= _MAX_STANDARD_KEY_BYTES:
        raise ValueError(f"the secret decodes to {len(key)} bytes, not 24 to 64: {WHSEC_HINT}")
    return key


def standard_sign(keys: Sequence[bytes], msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value for ``body`` sent as ``msg_id`` at ``timestamp``
    (unix seconds): ``v1,<base64 HMAC-SHA256(key, "<msg_id>.<timestamp>.<body>")>`` for each
    key, separated by spaces (two keys while a secret is being rotated)."""
    message = f"{msg_id}.{timestamp}.".encode() + body
    return " ".join(
        f"{SCHEME},{base64.b64encode(hmac.new(key, message, hashlib.sha256).digest()).decode()}"
        for key in keys
    )
