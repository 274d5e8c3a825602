"""The per-account hash chain over events in the order stored (pure).

Row ``n`` holds ``hash_n = SHA-256(hash_{n-1} || canonical_bytes_n)`` (hex); the first row of
an account chains from ``GENESIS``, or, once retention removed a prefix, from the hash recorded
as the chain's new start. Recomputing the chain finds the first row altered (its bytes no longer
give its hash), removed (a ``seq`` missing) or inserted (a row whose ``prev`` is not the hash
before it).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

GENESIS = "0" * 64


def link(previous_hash: str, canonical: bytes) -> str:
    """The hash of a row whose canonical bytes are ``canonical`` after ``previous_hash``."""
    return hashlib.sha256(previous_hash.encode("ascii") + canonical).hexdigest()


@dataclass(frozen=True, slots=True)
class ChainRow:
    seq: int
    prev_hash: str
    hash: str
    canonical: bytes


@dataclass(frozen=True, slots=True)
class ChainFault:
    seq: int
    problem: str  # altered | removed | inserted
    detail: str


def first_fault(rows: Iterable[ChainRow], start_seq: int, start_hash: str) -> ChainFault | None:
    """Walk ``rows`` (seq ascending) from the chain start (``start_seq`` is the seq of the first
    row expected, ``start_hash`` the hash it chains from); ``None`` when every row verifies."""
    expected_seq, previous = start_seq, start_hash
    for row in rows:
        if row.seq > expected_seq:
            return ChainFault(
                expected_seq, "removed", f"rows {expected_seq}..{row.seq - 1} are missing"
            )
        if row.seq < expected_seq or row.prev_hash != previous:
            return ChainFault(row.seq, "inserted", "the row does not chain from the row before it")
        if link(previous, row.canonical) != row.hash:
            return ChainFault(row.seq, "altered", "the row's content does not give its hash")
        expected_seq, previous = row.seq + 1, row.hash
    return None
