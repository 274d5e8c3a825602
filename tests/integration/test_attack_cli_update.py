"""``destinations get`` then ``destinations update -f`` with what it printed, edited: the API
masks secrets so that such a body can be sent back, but the read-only fields GET shows (``id``,
``paused``, ``deleting``, ``replay``) made every such update a 422. The CLI leaves them out when
they are unchanged, and says which command changes them otherwise; the secrets are kept."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from auditstream.api.app import create_app
from auditstream.api.options import ApiOptions
from auditstream.api.service import SettingsService
from auditstream.api.tokens import create_token
from auditstream.cli import main
from auditstream.config.secrets import SecretBox
from auditstream.pipeline.embedded_log import EmbeddedLog
from devservices.ports import free_port
from tests.api_server import serve
from tests.fake_resolver import fake_resolver

SIGNING = "update-Signing-Secret-31"
HEADER = "Splunk update-Header-Token"


@dataclass
class Cli:
    capsys: pytest.CaptureFixture[str]
    url: str
    token: str
    service: SettingsService

    def run(self, *args: str, expect: int = 0) -> Any:
        self.capsys.readouterr()
        code = main([*args, "--api-url", self.url, "--token", self.token])
        out, err = self.capsys.readouterr()
        assert code == expect, err
        return json.loads(out) if out.strip().startswith("{") else err


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Iterator[Cli]:
    log = EmbeddedLog(tmp_path / "log.sqlite")
    options = ApiOptions(resolver=fake_resolver({"siem.example.com": ["93.184.216.34"]}))
    service = SettingsService(log, SecretBox([SecretBox.generate_key()]), options)
    token, _ = create_token(log, account_id="acme", user_id="ada", role="owner")
    try:
        with serve(create_app(service, options), free_port()) as url:
            yield Cli(capsys, url, token, service)
    finally:
        service.close()
        log.close()


def test_an_edited_get_can_be_sent_back(cli: Cli, tmp_path: Path) -> None:
    body = {
        "id": "hook",
        "type": "webhook",
        "url": "https://siem.example.com/in",
        "secret": SIGNING,
        "headers": {"Authorization": HEADER},
    }
    cli.run("destinations", "add", "--json", json.dumps(body))
    cli.run("destinations", "pause", "hook")
    shown = cli.run("destinations", "get", "hook")
    assert shown["paused"] is True
    assert shown["secret"] == "********"
    edited = tmp_path / "hook.json"
    edited.write_text(json.dumps({**shown, "timeout_s": 3}), encoding="utf-8")
    updated = cli.run("destinations", "update", "hook", "-f", str(edited))
    assert updated["timeout_s"] == 3
    assert updated["paused"] is True
    stored = cli.service.destination("acme", "hook")
    assert stored.secret.get_secret_value() == SIGNING  # type: ignore[union-attr]
    assert stored.headers["Authorization"].get_secret_value() == HEADER  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("change", "hint"),
    [
        ({"paused": False}, "resume"),
        ({"id": "renamed"}, "id"),
        ({"deleting": True}, "delete"),
        ({"replay": {"id": "r1", "from_time": "2026-01-01T00:00:00Z"}}, "replay"),
    ],
)
def test_a_changed_read_only_field_names_the_command_that_changes_it(
    cli: Cli, tmp_path: Path, change: dict[str, Any], hint: str
) -> None:
    body = {"id": "files", "type": "local", "path": "files"}
    cli.run("destinations", "add", "--json", json.dumps(body))
    cli.run("destinations", "pause", "files")
    shown = cli.run("destinations", "get", "files")
    edited = tmp_path / "files.json"
    edited.write_text(json.dumps({**shown, **change}), encoding="utf-8")
    err = cli.run("destinations", "update", "files", "-f", str(edited), expect=2)
    assert hint in err
    assert cli.run("destinations", "get", "files") == shown
