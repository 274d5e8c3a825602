"""Webhook signatures: signing, verification and idempotency keys."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

import pytest

from auditstream.sinks.signature import (
    IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    idempotency_key,
    sign,
    verify,
)

SECRET = b"whsec-test-secret"
OTHER_SECRET = b"whsec-other-secret"
BODY = b'[{"event_id":"7d0c3f1e-5b7a-4c1e-9f0e-2a4b6c8d0e1f"}]'
NOW = 1_795_000_000
TS = str(NOW)


def test_header_names() -> None:
    assert TIMESTAMP_HEADER == "X-Auditstream-Timestamp"
    assert SIGNATURE_HEADER == "X-Auditstream-Signature"
    assert IDEMPOTENCY_HEADER == "Idempotency-Key"


def test_known_answer_vector() -> None:
    secret = b"topsecret"
    timestamp = 1_700_000_000
    body = b'{"hello":"world"}'
    # Computed independently (also: printf '1700000000.{"hello":"world"}' |
    # openssl dgst -sha256 -hmac topsecret).
    known = "79883357e4c4c4abee43cf4b32367d67a1344520479e3e8c85e98406a6d6a2a5"
    recomputed = hmac.new(secret, b"1700000000." + body, hashlib.sha256).hexdigest()
    assert recomputed == known
    assert sign(secret, timestamp, body) == f"v1={known}"


def test_signature_format() -> None:
    value = sign(SECRET, NOW, BODY)
    scheme, _, digest = value.partition("=")
    assert scheme == "v1"
    assert len(digest) == 64
    assert int(digest, 16) >= 0


def test_signature_depends_on_timestamp_and_body() -> None:
    base = sign(SECRET, NOW, BODY)
    assert sign(SECRET, NOW + 1, BODY) != base
    assert sign(SECRET, NOW, BODY + b" ") != base
    assert sign(OTHER_SECRET, NOW, BODY) != base


@dataclass(frozen=True)
class Case:
    name: str
    timestamp: str | None
    signature: str | None
    body: bytes = BODY
    now: float = NOW
    secret: bytes = SECRET
    tolerance_s: float = 300.0
    valid: bool = False


GOOD = sign(SECRET, NOW, BODY)
OTHER = sign(OTHER_SECRET, NOW, BODY)

CASES = [
    Case("round trip", TS, GOOD, valid=True),
    Case("tampered body", TS, GOOD, body=BODY.replace(b"7d0c", b"7d0d")),
    Case("empty body signed", TS, sign(SECRET, NOW, b""), body=b"", valid=True),
    Case("wrong secret", TS, GOOD, secret=OTHER_SECRET),
    Case("signed with another secret", TS, OTHER),
    Case("timestamp changed", str(NOW + 1), GOOD, now=NOW + 1),
    Case("stale timestamp", TS, GOOD, now=NOW + 301),
    Case("within tolerance, past", TS, GOOD, now=NOW + 300, valid=True),
    Case("future timestamp", TS, GOOD, now=NOW - 301),
    Case("within tolerance, future", TS, GOOD, now=NOW - 300, valid=True),
    Case("custom tolerance", TS, GOOD, now=NOW + 30, tolerance_s=10),
    Case("rotated: new first", TS, f"{GOOD},{OTHER}", valid=True),
    Case("rotated: new last", TS, f"{OTHER},{GOOD}", valid=True),
    Case("rotated with spaces", TS, f"{OTHER}, {GOOD}", valid=True),
    Case("rotated, none matching", TS, f"{OTHER},{sign(b'x', NOW, BODY)}"),
    Case("unknown scheme ignored", TS, "v0=abc," + GOOD, valid=True),
    Case("unknown scheme only", TS, GOOD.replace("v1=", "v2=")),
    Case("bare digest without scheme", TS, GOOD.removeprefix("v1=")),
    Case("uppercase hex", TS, "v1=" + GOOD.removeprefix("v1=").upper()),
    Case("missing timestamp", None, GOOD),
    Case("missing signature", TS, None),
    Case("both missing", None, None),
    Case("empty signature", TS, ""),
    Case("non-numeric timestamp", "soon", GOOD),
    Case("negative timestamp", "-1", GOOD),
    Case("fractional timestamp", f"{NOW}.5", GOOD),
    Case("huge timestamp", "9" * 400, GOOD),
    Case("non-ascii digits", "١٧٩٥٠٠٠٠٠٠", GOOD),
    Case("non-ascii signature", TS, "v1=é" + "0" * 63),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_verify(case: Case) -> None:
    assert (
        verify(
            case.secret,
            case.timestamp,
            case.signature,
            case.body,
            now=case.now,
            tolerance_s=case.tolerance_s,
        )
        is case.valid
    )


def test_default_tolerance_is_five_minutes() -> None:
    assert verify(SECRET, TS, GOOD, BODY, now=NOW + 300)
    assert not verify(SECRET, TS, GOOD, BODY, now=NOW + 300.5)


@pytest.mark.parametrize(
    ("destination_id", "partition", "first_offset", "expected"),
    [
        ("siem-1", 0, 0, "siem-1:0:0"),
        ("splunk.prod", 3, 1_234_567, "splunk.prod:3:1234567"),
        ("a", 0, 2**40, f"a:0:{2**40}"),
    ],
)
def test_idempotency_key(
    destination_id: str, partition: int, first_offset: int, expected: str
) -> None:
    assert idempotency_key(destination_id, partition, first_offset) == expected


@pytest.mark.parametrize(
    ("last_offset", "replay_id", "expected"),
    [
        (62, None, "siem-1:0:0-62"),
        (62, "r-2026-11-27", "siem-1:0:0-62:replay:r-2026-11-27"),
        (None, "r:1", "siem-1:0:0:replay:r:1"),
    ],
)
def test_idempotency_key_names_the_exact_records_and_the_replay(
    last_offset: int | None, replay_id: str | None, expected: str
) -> None:
    assert idempotency_key("siem-1", 0, 0, last_offset, replay_id) == expected


def test_a_batch_cut_elsewhere_gets_another_key() -> None:
    assert idempotency_key("d", 0, 100, 162) != idempotency_key("d", 0, 100, 299)
