"""The shell blocks of the README as commands a test can run: sections by heading, fenced
``sh`` blocks, one command per line (backslash continuations joined), a trailing ``&`` for a
background process, and a trailing ``# <number>`` comment for the output the text promises."""

from __future__ import annotations

import re
from dataclasses import dataclass

_FENCED_SH = re.compile(r"^```sh\n(.*?)^```", re.DOTALL | re.MULTILINE)
_EXPECTED = re.compile(r"\s+#\s*(\d+)\s*$")
_COMMENT = re.compile(r"\s+#\s.*$")


@dataclass(frozen=True, slots=True)
class Command:
    text: str
    """The command as a shell reads it, without a trailing comment or ``&``."""
    background: bool = False
    expected: str | None = None
    """The output its comment promises (a number), if any."""


def section(markdown: str, heading: str) -> str:
    """The text under ``## heading`` up to the next ``## `` heading. Raises ``LookupError``
    if there is no such heading."""
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", markdown, re.S | re.M)
    if match is None:
        raise LookupError(f"no section '## {heading}' in the README")
    return match.group(1)


def sh_blocks(text: str) -> list[str]:
    """The bodies of the fenced ``sh`` blocks in ``text``, in order."""
    return _FENCED_SH.findall(text)


def commands(block: str) -> list[Command]:
    """The commands of a shell block; comment lines and blank lines are skipped."""
    joined = block.replace("\\\n", " ")
    out: list[Command] = []
    for raw in joined.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        expected = _EXPECTED.search(line)
        line = _COMMENT.sub("", line).strip()
        background = line.endswith("&")
        if background:
            line = line[:-1].strip()
        line = re.sub(r"\s+", " ", line)
        out.append(Command(line, background, expected.group(1) if expected else None))
    return out
