"""How large one record may be, counted the way the Kafka client counts it before producing.

One limit for both log backends: the router checks copies against it before producing (a
cheap check that keeps a too-large record out of a transaction), and dead letters are cut
to fit it.
"""

from __future__ import annotations

from auditstream.pipeline.log import Headers

MAX_RECORD_BYTES = 1_000_000
"""The default limit: librdkafka's ``message.max.bytes`` default, under the broker's default
``max.message.bytes`` (1,048,588) with room for the batch header."""

# librdkafka adds at most ~41 bytes of framing per record and a few varints per header; a
# little more here keeps the local check on the safe side of the client's own.
_RECORD_OVERHEAD = 64
_HEADER_OVERHEAD = 10


def headers_size(headers: Headers) -> int:
    return sum(len(k.encode()) + len(v) + _HEADER_OVERHEAD for k, v in headers)


def record_size(key: bytes | None, value: bytes, headers: Headers) -> int:
    """The uncompressed size of one record on the wire, rounded up."""
    return _RECORD_OVERHEAD + len(key or b"") + len(value) + headers_size(headers)
