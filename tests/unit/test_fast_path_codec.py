"""The decoder every path relies on refuses, as a malformed message, what it cannot read."""

from __future__ import annotations

import pytest

from auditstream.schemas import codec
from auditstream.schemas.errors import MalformedMessage
from tests.unit.test_fast_path_avro import plain_encoded


@pytest.mark.parametrize("micros", [2**62, -(2**62)])
def test_a_timestamp_outside_datetimes_range_is_a_malformed_message(micros: int) -> None:
    """Decoding raised OverflowError here, which a sink took for an internal error and
    retried for ever; it is a record to dead-letter."""
    with pytest.raises(MalformedMessage, match="corrupt or truncated"):
        codec.decode(plain_encoded(occurred_at=micros))
