"""A settings file that is not valid YAML: PyYAML's message quotes the lines around the problem,
so ``settings apply`` printed a destination secret to the terminal (and to CI logs). The error
names the problem, the line and the column, never the text."""

from __future__ import annotations

from pathlib import Path

import pytest

from auditstream.config.errors import ConfigError
from auditstream.config.loading import load_settings_file

SECRET = "zq-Settings-Secret-7731"


@pytest.mark.parametrize(
    "text",
    [
        f'accounts:\n  - account_id: acme\n    destinations:\n      - secret: "{SECRET}\n',
        f"accounts:\n  - account_id: acme\n    x: {SECRET}\n   bad: [\n",
        f"accounts: [{SECRET}\n",
        f"accounts:\n\t- {SECRET}\n",
    ],
)
def test_a_yaml_error_names_the_place_not_the_text(tmp_path: Path, text: str) -> None:
    path = tmp_path / "settings.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as refused:
        load_settings_file(path)
    message = str(refused.value)
    assert SECRET not in message
    assert "zq-" not in message
    assert "line " in message
    assert str(path) in message
