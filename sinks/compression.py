"""Whole-object gzip with ISA-L (``isal``): standard gzip bytes, several times faster than
zlib at a size close to zlib's level 6 (ADR 025)."""

from __future__ import annotations

from isal import igzip


def isal_level(level: int) -> int:
    """ISA-L's level (0-3) for a zlib level (0-9): 0 → 0, 1-3 → 1, 4-9 → 3. On our events
    ISA-L's 3 makes objects about 14% larger than zlib's 6, in a quarter of the time."""
    if level <= 0:
        return 0
    return 1 if level <= 3 else 3


def gzip_bytes(body: bytes, level: int = 6) -> bytes:
    """``body`` as one gzip member, ``mtime`` 0 so the same body always gives the same bytes
    (a replayed batch rewrites its object identically); any gzip reader decompresses it."""
    return igzip.compress(body, isal_level(level), mtime=0)
