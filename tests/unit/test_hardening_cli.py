"""Command-line defaults that fail closed: `settings apply` does not store secrets in plain text
unless told to, and sink workers check every request's address unless told not to."""

from __future__ import annotations

from pathlib import Path

import pytest

from auditstream import cli
from auditstream.config.address_policy import AddressPolicy
from auditstream.config.destinations import WebhookDestination
from auditstream.config.secrets import ENV_KEYS, ENV_KEYS_FILE, SecretBox
from auditstream.pipeline.embedded_log import EmbeddedLog
from auditstream.pipeline.settings_view import SettingsView

WITH_SECRET = """
accounts:
  - account_id: acme
    destinations:
      - id: acme-hook
        type: webhook
        url: https://siem.example.com/in
        secret: whsec-Plain-7c1
"""
WITHOUT_SECRET = """
accounts:
  - account_id: acme
    destinations:
      - {id: acme-files, type: local, path: acme}
"""


@pytest.fixture(autouse=True)
def _no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_KEYS, raising=False)
    monkeypatch.delenv(ENV_KEYS_FILE, raising=False)


def _apply(tmp_path: Path, text: str, *extra: str) -> int:
    settings = tmp_path / "settings.yaml"
    settings.write_text(text)
    return cli.main(
        ["settings", "apply", "-f", str(settings), "--db", str(tmp_path / "log.sqlite"), *extra]
    )


def _stored(tmp_path: Path) -> bytes:
    log = EmbeddedLog(tmp_path / "log.sqlite")
    try:
        reader = log.reader("auditstream.settings")
        return b"".join(r.value for r in reader.poll(100, 0.5))
    finally:
        log.close()


def test_secrets_without_a_key_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _apply(tmp_path, WITH_SECRET) == 2
    err = capsys.readouterr().err
    assert "auditstream keys generate" in err
    assert ENV_KEYS in err
    assert "--insecure-plaintext-secrets" in err
    assert "whsec-Plain-7c1" not in err
    assert not (tmp_path / "log.sqlite").exists() or b"whsec" not in _stored(tmp_path)


def test_plain_text_secrets_only_when_asked(tmp_path: Path) -> None:
    assert _apply(tmp_path, WITH_SECRET, "--insecure-plaintext-secrets") == 0
    assert b"whsec-Plain-7c1" in _stored(tmp_path)


def test_with_a_key_secrets_are_sealed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = SecretBox.generate_key()
    monkeypatch.setenv(ENV_KEYS, key)
    assert _apply(tmp_path, WITH_SECRET) == 0
    assert b"whsec-Plain-7c1" not in _stored(tmp_path)
    log = EmbeddedLog(tmp_path / "log.sqlite")
    view = SettingsView(log, box=SecretBox([key]))
    view.catch_up()
    account = view.account("acme")
    view.close()
    log.close()
    assert account is not None
    hook = account.destinations[0]
    assert isinstance(hook, WebhookDestination)
    assert hook.secret.get_secret_value() == "whsec-Plain-7c1"


def test_settings_without_secrets_need_no_key(tmp_path: Path) -> None:
    assert _apply(tmp_path, WITHOUT_SECRET) == 0


def _factory_policy(argv: list[str]) -> AddressPolicy | None:
    args = cli.build_parser().parse_args(["sink-worker", *argv])
    factory = cli._sink_factory(args)
    destination = WebhookDestination.model_validate(
        {"id": "h", "url": "https://siem.example.com/in", "secret": "s"}
    )
    sink = factory(destination)
    try:
        policy: AddressPolicy | None = sink._address_policy  # type: ignore[attr-defined]
    finally:
        sink.close()
    return policy


def test_sink_workers_check_addresses_by_default() -> None:
    policy = _factory_policy([])
    assert policy is not None
    assert policy.allowed_networks == ()
    allowed = _factory_policy(["--allow-network", "10.20.0.0/16"])
    assert allowed is not None
    assert [str(n) for n in allowed.allowed_networks] == ["10.20.0.0/16"]
    assert _factory_policy(["--address-check"]) is not None


def test_the_check_can_be_turned_off_for_a_single_tenant_installation() -> None:
    assert _factory_policy(["--no-address-check"]) is None
    with pytest.raises(Exception, match="no effect"):
        _factory_policy(["--no-address-check", "--allow-network", "10.0.0.0/8"])
