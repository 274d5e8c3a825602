"""Reading the README's shell blocks into commands (what tests/e2e/test_readme_commands.py
runs)."""

from __future__ import annotations

import pytest

from tests.readme_blocks import Command, commands, section, sh_blocks

DOC = """# title

## One

text
```sh
first --a 1
```

## Two

```yaml
not: shell
```
```sh
x
```
"""


def test_section_stops_at_the_next_heading() -> None:
    assert section(DOC, "One") == "\ntext\n```sh\nfirst --a 1\n```\n\n"
    assert sh_blocks(section(DOC, "Two")) == ["x\n"]
    with pytest.raises(LookupError, match="Three"):
        section(DOC, "Three")


@pytest.mark.parametrize(
    ("block", "expected"),
    [
        ("# a comment\n\nrun --x 1\n", [Command("run --x 1")]),
        ("serve --port 80 &\n", [Command("serve --port 80", background=True)]),
        ("serve   --port 80  &   # runs on\n", [Command("serve --port 80", background=True)]),
        ("count | wc -l      # 841\n", [Command("count | wc -l", expected="841")]),
        ("say hi   # not a number\n", [Command("say hi")]),
        ("long --a 1 \\\n    --b 2\n", [Command("long --a 1 --b 2")]),
        ('add --json \'{"id": "x"}\'\n', [Command('add --json \'{"id": "x"}\'')]),
        ("a\nb &\nc # 3\n", [Command("a"), Command("b", True), Command("c", expected="3")]),
    ],
)
def test_commands(block: str, expected: list[Command]) -> None:
    assert commands(block) == expected
