"""Free text on PostgreSQL: an event's ``tsvector`` and a reader's ``tsquery``, built here as
values (pure), never by PostgreSQL's text parser and never as SQL.

Both sides are split the same way, close to SQLite's ``unicode61`` tokenizer: runs of letters and
digits, lowercased, diacritics removed. A token is only letters and digits, so it can be quoted
in ``tsvector``/``tsquery`` text without escaping; whatever a reader types (quotes, ``&``,
``!``, ``<->``, SQL) is split into words and searched for as words. Each whitespace-separated
term of the reader's text is a phrase (its tokens adjacent, in order) and every term must match,
as in the SQLite backend.
"""

from __future__ import annotations

import re
import unicodedata

from auditstream.store.text_search import search_terms

MAX_TEXT_CHARS = 65_536
"""An event's text beyond this is not searchable (a ``tsvector`` is at most 1 MB)."""
MAX_TOKEN_CHARS = 200
"""Longer tokens are left out (a lexeme is at most 2 KB; nobody searches for such a word)."""
MAX_POSITION = 16_383  # the largest position a tsvector keeps
MAX_POSITIONS_PER_TOKEN = 255  # a tsvector keeps at most 256 positions of one lexeme
NOTHING = ""
"""``query_text`` of a text that can match no event (only punctuation)."""

_TOKEN = re.compile(r"[^\W_]+")


def tokens(text: str) -> list[str]:
    """The searchable tokens of ``text`` in order."""
    if text.isascii():  # most text: nothing to fold
        found = _TOKEN.findall(text.lower())
    else:
        folded = unicodedata.normalize("NFKD", text.lower())
        found = _TOKEN.findall("".join(ch for ch in folded if not unicodedata.combining(ch)))
    return [t for t in found if len(t) <= MAX_TOKEN_CHARS]


def document(text: str) -> str:
    """The ``tsvector`` text of an event's free text: ``'token':1,4 'other':2 ...``."""
    found = tokens(text[:MAX_TEXT_CHARS])[:MAX_POSITION]
    if len(set(found)) == len(found):  # most events: every token once
        return " ".join([f"'{t}':{p}" for p, t in enumerate(found, start=1)])
    positions: dict[str, list[int]] = {}
    for position, token in enumerate(found, start=1):
        seen = positions.get(token)
        if seen is None:
            positions[token] = [position]
        elif len(seen) < MAX_POSITIONS_PER_TOKEN:
            seen.append(position)
    return " ".join(f"'{t}':{','.join(map(str, p))}" for t, p in positions.items())


def query_text(text: str | None) -> str | None:
    """The ``tsquery`` text of a reader's ``text``: ``None`` for no text condition,
    ``NOTHING`` for text that has no token at all (it matches no event)."""
    terms = search_terms(text)
    if not terms:
        return None
    phrases = []
    for term in terms:
        found = tokens(term)
        if found:
            phrases.append("(" + " <-> ".join(f"'{t}'" for t in found) + ")")
    return " & ".join(phrases) if phrases else NOTHING
