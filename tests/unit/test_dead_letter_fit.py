"""A dead letter always fits the record size limit, whatever the original's size."""

from __future__ import annotations

import pytest

from auditstream.config.stream import AccountSettings
from auditstream.pipeline import topics
from auditstream.pipeline.dead_letters import VALUE_PREFIX_BYTES, dead_letter
from auditstream.pipeline.log import OutgoingRecord, Record
from auditstream.pipeline.record_limits import MAX_RECORD_BYTES, record_size
from auditstream.pipeline.routing import route
from auditstream.schemas import codec
from tests.factories import make_event

HEADERS = (("category", b"account"), ("activity", b"user_login"))
SETTINGS = {
    "acme": AccountSettings.model_validate(
        {"account_id": "acme", "destinations": [{"id": "a1", "type": "local", "path": "a"}]}
    )
}


def size(r: OutgoingRecord) -> int:
    return record_size(r.key, r.value, r.headers)


def header(r: OutgoingRecord, name: str) -> bytes | None:
    return dict(r.headers).get(name)


def test_small_record_is_kept_whole() -> None:
    rec = Record(topics.ACTIVITY, 0, 7, b"acme", b"body", HEADERS)
    letter = dead_letter(rec, stage="router", reason="malformed", detail="d")
    assert letter.value == b"body"
    assert letter.key == b"acme"
    assert header(letter, "category") == b"account"
    assert header(letter, "dlq.value.size") is None


@pytest.mark.parametrize(
    ("key", "value", "headers"),
    [
        (b"acme", b"x" * 5_000_000, HEADERS),  # a 5 MB body
        (b"k" * 3_000_000, b"v", HEADERS),  # a 3 MB key
        (b"acme", b"v", (("big", b"h" * 2_000_000), *HEADERS)),  # a 2 MB header
        (b"k" * 900_000, b"x" * 900_000, (("big", b"h" * 900_000),)),  # all at once
    ],
    ids=["body", "key", "header", "all"],
)
def test_too_large_record_is_cut_to_fit(
    key: bytes, value: bytes, headers: tuple[tuple[str, bytes], ...]
) -> None:
    rec = Record(topics.ACTIVITY, 2, 99, key, value, headers)
    letter = dead_letter(rec, stage="router", reason="too_large", detail="the detail")
    assert size(letter) <= MAX_RECORD_BYTES
    assert letter.topic == topics.DEAD_LETTERS
    assert header(letter, "dlq.reason") == b"too_large"
    assert header(letter, "dlq.source.offset") == b"99"
    assert header(letter, "dlq.value.size") == str(len(value)).encode()
    assert value.startswith(letter.value)
    assert len(letter.value) <= VALUE_PREFIX_BYTES


def test_without_body_even_a_tiny_limit_holds_the_reason() -> None:
    rec = Record(topics.ACTIVITY, 0, 1, b"k" * 5000, b"x" * 5000, (("h", b"y" * 5000),))
    letter = dead_letter(
        rec, stage="router", reason="too_large", detail="d" * 5000, max_bytes=3000, keep_value=False
    )
    assert letter.value == b""
    assert size(letter) <= 3000
    assert header(letter, "dlq.headers.dropped") == b"1"
    assert header(letter, "dlq.key.size") == b"5000"


def test_router_dead_letters_a_record_over_the_limit_without_producing_a_copy() -> None:
    padded = codec.encode(make_event(details={"pad": "x" * 5_000_000}))
    rec = Record(topics.ACTIVITY, 0, 3, b"acme", padded, HEADERS)
    result = route(rec, SETTINGS.get)
    assert result.dead_letter_reason == "too_large"
    (letter,) = result.out
    assert letter.topic == topics.DEAD_LETTERS
    assert size(letter) <= MAX_RECORD_BYTES
    assert b"byte limit" in (header(letter, "dlq.detail") or b"")
    # The limit is the router's to set: under a higher one the same record is copied.
    assert route(rec, SETTINGS.get, max_record_bytes=6_000_000).decision is not None
    assert (
        route(rec, SETTINGS.get, max_record_bytes=6_000_000).out[0].topic == "auditstream.dest.a1"
    )
