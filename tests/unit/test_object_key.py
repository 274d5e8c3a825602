"""Object keys, table-driven."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from auditstream.sinks.object_key import object_key

DAY = datetime(2026, 11, 27, 23, 59, 59, tzinfo=UTC)


@pytest.mark.parametrize(
    ("prefix", "account", "partition", "offset", "ext", "expected"),
    [
        (
            "audit",
            "acme",
            0,
            0,
            ".ndjson.gz",
            "audit/account=acme/date=2026-11-27/000-00000000000000000000.ndjson.gz",
        ),
        (
            "a/b",
            "acme",
            7,
            123456,
            ".avro",
            "a/b/account=acme/date=2026-11-27/007-00000000000000123456.avro",
        ),
        (
            "",
            "acme",
            0,
            5,
            ".ndjson",
            "account=acme/date=2026-11-27/000-00000000000000000005.ndjson",
        ),
        (
            "/x/",
            "acme",
            0,
            5,
            ".ndjson",
            "x/account=acme/date=2026-11-27/000-00000000000000000005.ndjson",
        ),
        (
            "p",
            "a/../b c",
            1,
            2,
            ".ndjson",
            "p/account=a%2F..%2Fb%20c/date=2026-11-27/001-00000000000000000002.ndjson",
        ),
    ],
)
def test_object_key(
    prefix: str, account: str, partition: int, offset: int, ext: str, expected: str
) -> None:
    key = object_key(
        prefix=prefix,
        account_id=account,
        record_date=DAY,
        partition=partition,
        first_offset=offset,
        extension=ext,
    )
    assert key == expected


def test_same_batch_same_key() -> None:
    args = dict(
        prefix="p", account_id="a", record_date=DAY, partition=0, first_offset=9, extension=".x"
    )
    assert object_key(**args) == object_key(**args)  # type: ignore[arg-type]


def test_negative_offsets_refused() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        object_key(
            prefix="p",
            account_id="a",
            record_date=DAY,
            partition=0,
            first_offset=-1,
            extension=".x",
        )
