"""Webhook header values an HTTP client cannot send: httpx encodes header values as ASCII and h11
refuses control characters, so such a value was saved (201), then every delivery failed and the
destination check answered 500. They are refused when set (422 naming the header, never its
value), and a stored one makes the check answer with a cause instead of a 500."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from auditstream.api.app import create_app
from auditstream.api.options import ApiOptions
from auditstream.api.service import SettingsService
from auditstream.api.tokens import create_token
from auditstream.config.destinations import STORED
from auditstream.config.secrets import SecretBox
from auditstream.config.stream import AccountSettings
from auditstream.config.wire import encode_settings
from auditstream.pipeline import topics
from auditstream.pipeline.embedded_log import EmbeddedLog
from auditstream.pipeline.log import OutgoingRecord
from tests.fake_resolver import fake_resolver

DESTS = "/v1/accounts/acme/destinations"
HOOK = {"type": "webhook", "url": "https://siem.example.com/in", "secret": "signing-Secret-31"}
UNSENDABLE = [
    "caf\u00e9-Token",  # not ASCII: httpx cannot encode it
    "\u2028Token-Value",
    "Token-\x85Value",
    "Token\x01Value",  # control characters: h11 refuses them
    "Token\x7fValue",
    "Token\x1bValue",
]


class Api:
    def __init__(self, client: TestClient, auth: dict[str, str], log: EmbeddedLog) -> None:
        self.client, self.auth, self.log = client, auth, log

    def post(self, body: dict[str, Any]) -> Any:
        return self.client.post(DESTS, json=body, headers=self.auth)


@pytest.fixture
def box() -> SecretBox:
    return SecretBox([SecretBox.generate_key()])


@pytest.fixture
def api(tmp_path: Path, box: SecretBox) -> Iterator[Api]:
    log = EmbeddedLog(tmp_path / "log.sqlite")
    options = ApiOptions(resolver=fake_resolver({"siem.example.com": ["93.184.216.34"]}))
    service = SettingsService(log, box, options)
    token, _ = create_token(log, account_id="acme", user_id="ada", role="owner")
    try:
        with TestClient(create_app(service, options), raise_server_exceptions=False) as client:
            yield Api(client, {"Authorization": f"Bearer {token}"}, log)
    finally:
        service.close()
        log.close()


@pytest.mark.parametrize("value", UNSENDABLE)
def test_an_unsendable_header_value_is_refused_when_set(api: Api, value: str) -> None:
    answer = api.post({**HOOK, "id": "h", "headers": {"X-Token": value}})
    assert answer.status_code == 422, answer.text
    (error,) = answer.json()["detail"]
    assert error["loc"] == ["body", "headers", "X-Token"]
    assert "Token-" not in error["msg"]
    assert "Value" not in error["msg"]
    assert api.post({**HOOK, "id": "h", "headers": {"X-Token": "Splunk a\tb c"}}).status_code == 201
    patched = api.client.patch(
        f"{DESTS}/h", json={"type": "webhook", "headers": {"X-Token": value}}, headers=api.auth
    )
    assert patched.status_code == 422, patched.text


@pytest.mark.parametrize("value", UNSENDABLE[:4])
def test_a_stored_unsendable_header_value_makes_the_check_answer_not_fail(
    api: Api, box: SecretBox, value: str
) -> None:
    """Settings stored before the rule: the check names the header, it does not answer 500."""
    settings = AccountSettings.model_validate(
        {
            "account_id": "acme",
            "destinations": [{**HOOK, "id": "old", "headers": {"X-Token": value}}],
        },
        context=STORED,
    )
    producer = api.log.producer()
    producer.produce(OutgoingRecord(topics.SETTINGS, encode_settings(settings, box), key=b"acme"))
    producer.flush()
    producer.close()
    answer = api.client.post(f"{DESTS}/old/check", headers=api.auth)
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["ok"] is False
    assert "X-Token" in result["message"]
    assert "Token-" not in result["message"]
    assert "Value" not in result["message"]
