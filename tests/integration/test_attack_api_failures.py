"""A request that fails unexpectedly (a 500): what the server is told, what is logged, and what
the destination check answers when a vendor SDK raises something no one mapped.

Starlette hands an unexpected exception back to the server after answering 500, and uvicorn logs
its traceback with its own handlers, past every redaction; exception messages often quote input
(pydantic's quote submitted values, Python's UnicodeError the offending character and where it
was). A secret in a request must not reach a log line that way.
"""

from __future__ import annotations

import argparse
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from auditstream.api import cli_commands
from auditstream.api.app import create_app
from auditstream.api.options import ApiOptions
from auditstream.api.service import SettingsService
from auditstream.api.tokens import create_token
from auditstream.config.secrets import SecretBox
from auditstream.config.stream import AccountSettings
from auditstream.pipeline.embedded_log import EmbeddedLog
from tests.fake_resolver import fake_resolver

SECRET = "zq-Very-Secret-Token-4471"
DESTS = "/v1/accounts/acme/destinations"
HOOK = {
    "id": "hook",
    "type": "webhook",
    "url": "https://siem.example.com/in",
    "secret": "signing-Secret-31",
    "headers": {"Authorization": f"Splunk {SECRET}"},
}


def _unicode_error() -> Exception:
    return UnicodeEncodeError("ascii", f"Splunk {SECRET}", 7, 8, "ordinal not in range(128)")


def _validation_error() -> Exception:
    class Model(BaseModel):
        n: int

    try:
        Model.model_validate({"n": SECRET})
    except Exception as exc:  # a pydantic ValidationError
        return exc
    raise AssertionError("unreachable")


def _chained_error() -> Exception:
    try:
        raise _validation_error()
    except Exception as inner:
        try:
            raise RuntimeError("the settings could not be used") from inner
        except RuntimeError as outer:
            return outer


FAILURES = {
    "unicode": _unicode_error,
    "validation": _validation_error,
    "chained": _chained_error,
}


class Api:
    def __init__(
        self, client: TestClient, auth: dict[str, str], service: SettingsService, log: EmbeddedLog
    ) -> None:
        self.client, self.auth, self.service, self.log = client, auth, service, log


def _api(tmp_path: Path, **service_args: Any) -> Iterator[Api]:
    log = EmbeddedLog(tmp_path / "log.sqlite")
    options = ApiOptions(resolver=fake_resolver({"siem.example.com": ["93.184.216.34"]}))
    service = SettingsService(log, SecretBox([SecretBox.generate_key()]), options, **service_args)
    token, _ = create_token(log, account_id="acme", user_id="ada", role="owner")
    try:
        # raise_server_exceptions (the default): anything the app hands back to the server fails
        # the test, as the server would log it.
        with TestClient(create_app(service, options)) as client:
            yield Api(client, {"Authorization": f"Bearer {token}"}, service, log)
    finally:
        service.close()
        log.close()


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    yield from _api(tmp_path)


@pytest.mark.parametrize("kind", sorted(FAILURES))
def test_an_unexpected_error_is_a_500_that_stays_in_the_app_and_quotes_nothing(
    api: Api, kind: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.DEBUG)

    def fail(_account_id: str) -> AccountSettings | None:
        raise FAILURES[kind]()

    monkeypatch.setattr(api.service, "account", fail)
    answer = api.client.get(DESTS, headers={**api.auth, "X-Request-ID": "req-500-check"})
    assert answer.status_code == 500
    assert answer.json() == {"detail": "internal error (request id req-500-check)"}
    assert answer.headers["X-Request-ID"] == "req-500-check"
    failures = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert failures, "the failure is logged"
    logged = "\n".join(
        logging.Formatter("%(message)s").format(r) for r in caplog.records
    ) + "\n".join(str(r.exc_text or "") for r in caplog.records)
    assert "req-500-check" in logged
    assert SECRET not in logged
    assert "Traceback" in logged  # where it failed is still logged


def test_a_check_whose_sdk_raises_something_unmapped_answers_with_a_cause(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A key file whose private key is not an RSA key made google-auth raise a TypeError in the
    middle of the check: a 500. Any such surprise is the check's answer, not a crash."""
    caplog.set_level(logging.DEBUG)

    def check(*_args: object, **_kwargs: object) -> Any:
        raise TypeError(f"ECPrivateKey.sign() takes 2 positional arguments ({SECRET})")

    for api in _api(tmp_path, check=check):
        assert api.client.post(DESTS, json=HOOK, headers=api.auth).status_code == 201
        answer = api.client.post(f"{DESTS}/hook/check", headers=api.auth)
        assert answer.status_code == 200, answer.text
        result = answer.json()
        assert result["ok"] is False
        assert result["cause"] == "check_failed"
        assert "TypeError" in result["message"]
        assert SECRET not in answer.text
        assert any("check" in r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR)


def test_the_api_command_logs_the_servers_lines_through_the_redacting_handler(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """uvicorn's default logging configuration gives its loggers their own handlers, past the
    redaction of the CLI's handler: the command must leave logging to the CLI."""
    seen: dict[str, Any] = {}

    def run(app: object, **kwargs: Any) -> None:
        seen.update(kwargs)

    import uvicorn

    monkeypatch.setattr(uvicorn, "run", run)
    monkeypatch.setenv("AUDITSTREAM_SECRET_KEYS", SecretBox.generate_key())
    args = argparse.Namespace(
        print_openapi=False,
        allow_network=None,
        max_destinations=10,
        retention_days=7,
        suspend_after_days=6,
        allow_http=False,
        allow_ambient_credentials=False,
        local_root=None,
        allow_key_file_url=None,
        host="127.0.0.1",
        port=0,
        forwarded_allow_ips=None,
        store=f"sqlite:///{tmp_path / 'audit.db'}",
        activity_reads_per_second=20.0,
        activity_read_burst=40,
        exports_per_account=2,
    )

    def runtime(_args: argparse.Namespace) -> Any:
        from auditstream.config.runtime import RuntimeSettings

        return RuntimeSettings.model_validate({"embedded_path": tmp_path / "log.sqlite"})

    assert cli_commands.cmd_api(args, runtime) == 0
    assert "log_config" in seen
    assert seen["log_config"] is None


def test_a_check_message_that_quotes_a_stored_secret_is_redacted(tmp_path: Path) -> None:
    """Check messages carry what a vendor SDK or a receiver said; none of the account's stored
    secrets (known to the API once it read them) comes back in one, nor in a step."""

    def check(*_args: object, **_kwargs: object) -> Any:
        from auditstream.sinks.base import CheckResult

        said = f"the receiver answered 401: bad token Splunk {SECRET}"
        return CheckResult(False, "bad_credentials", said, [said])

    for api in _api(tmp_path, check=check):
        assert api.client.post(DESTS, json=HOOK, headers=api.auth).status_code == 201
        answer = api.client.post(f"{DESTS}/hook/check", headers=api.auth)
        assert answer.status_code == 200, answer.text
        assert SECRET not in answer.text
        assert "[redacted]" in answer.json()["message"]
        assert answer.json()["cause"] == "bad_credentials"


def test_check_messages_redact_the_destinations_own_secrets_only(tmp_path: Path) -> None:
    """Redacting every secret the API knows would be an oracle: a tenant who puts a guess
    where a check message shows it (a host name, a bucket) would learn from "[redacted]" that
    it is another tenant's secret."""
    other = "globex-Header-Value-9931"

    def check(*_args: object, **_kwargs: object) -> Any:
        from auditstream.sinks.base import CheckResult

        return CheckResult(False, "unreachable", f"could not reach {other}", [])

    for api in _api(tmp_path, check=check):
        globex, _ = create_token(api.log, account_id="globex", user_id="g", role="owner")
        theirs = {**HOOK, "id": "theirs", "headers": {"Authorization": other}}
        created = api.client.post(
            "/v1/accounts/globex/destinations",
            json=theirs,
            headers={"Authorization": f"Bearer {globex}"},
        )
        assert created.status_code == 201, created.text
        assert api.client.post(DESTS, json=HOOK, headers=api.auth).status_code == 201
        answer = api.client.post(f"{DESTS}/hook/check", headers=api.auth)
        assert other in answer.json()["message"]  # not another tenant's secret to acme
