"""A destination secret never leaves the service: not in API answers (422 bodies included), not
in logs, not in metrics, not in the audit events, and not in plain text in the settings topic."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import prometheus_client
import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from auditstream.api.app import create_app
from auditstream.api.options import ApiOptions
from auditstream.api.service import SettingsService
from auditstream.api.tokens import create_token
from auditstream.config.address_policy import parse_networks
from auditstream.config.secrets import SecretBox
from auditstream.pipeline import topics
from auditstream.pipeline.embedded_log import EmbeddedLog
from auditstream.schemas import codec
from devservices.webhook_receiver import WebhookReceiver
from tests.fake_resolver import fake_resolver

SIGNING = "whsec-Signing-Value-7f3a9"
ROTATED = "whsec-Rotated-Value-0c41d"
HEADER_TOKEN = "Splunk hdr-Token-Value-55e2"
ACCESS_KEY = "AKIA-Access-Key-Value-9b1"
SECRET_KEY = "s3-Secret-Key-Value-d4e8"
ALL = (SIGNING, ROTATED, HEADER_TOKEN, ACCESS_KEY, SECRET_KEY)


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver(SIGNING.encode()) as r:
        yield r


def _all_records(log: EmbeddedLog, topic: str) -> list[bytes]:
    reader = log.reader(topic)
    out: list[bytes] = []
    while batch := reader.poll(1000, 0.2):
        out.extend(r.value for r in batch)
    return out


def test_secrets_never_leave(
    tmp_path: Path, receiver: WebhookReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    log = EmbeddedLog(tmp_path / "log.sqlite")
    options = ApiOptions(
        allow_http=True,
        allowed_networks=parse_networks(["127.0.0.1/32"]),
        resolver=fake_resolver({}),
    )
    service = SettingsService(log, SecretBox([SecretBox.generate_key()]), options)
    token, _ = create_token(log, account_id="acme", user_id="ada", role="owner")
    auth = {"Authorization": f"Bearer {token}"}
    base = "/v1/accounts/acme/destinations"
    answers: list[str] = []

    with TestClient(create_app(service, options)) as client:

        def call(method: str, path: str, body: object = None, expect: int = 200) -> None:
            answer = client.request(method, path, json=body, headers=auth)
            answers.append(answer.text)
            assert answer.status_code == expect, answer.text

        hook = {
            "id": "acme-hook",
            "type": "webhook",
            "url": receiver.url,
            "secret": SIGNING,
            "headers": {"Authorization": HEADER_TOKEN},
        }
        s3 = {
            "id": "acme-s3",
            "type": "s3",
            "bucket": "acme-bucket",
            "access_key_id": ACCESS_KEY,
            "secret_access_key": SECRET_KEY,
        }
        call("PUT", "/v1/accounts/acme/stream", {"streaming_enabled": True})
        call("POST", base, hook, 201)
        call("POST", base, s3, 201)
        call("GET", base)
        call("GET", f"{base}/acme-hook")
        call("POST", f"{base}/acme-hook/check")
        assert '"ok":true' in answers[-1]  # the receiver verified the signature
        call("GET", f"{base}/acme-hook/status")
        call("PATCH", f"{base}/acme-hook", {"type": "webhook", "timeout_s": 5})
        call("PATCH", f"{base}/acme-hook", {"type": "webhook", "secret": ROTATED})
        call("PATCH", f"{base}/acme-s3", {"type": "s3", "secret_access_key": "********"})
        call("POST", f"{base}/acme-hook/pause")
        call("POST", f"{base}/acme-hook/resume")
        since = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
        call("POST", f"{base}/acme-hook/replay", {"from_time": since})
        # invalid requests carrying secrets: the 422 answer must not echo them
        call("POST", base, {**hook, "id": "bad1", "url": 42}, 422)
        call("POST", base, {**hook, "id": "bad2", "secret": {"nested": SIGNING}}, 422)
        call("POST", base, {**hook, "id": "bad3", "unknown": SIGNING}, 422)
        call("POST", base, {**s3, "id": "bad4", "bucket": 7}, 422)
        call("POST", base, {**s3, "id": "bad5", "access_key_id": [ACCESS_KEY]}, 422)
        call("PATCH", f"{base}/acme-hook", {"type": "webhook", "secret": 12345, "x": SIGNING}, 422)
        call("PATCH", f"{base}/acme-s3", {"type": "webhook", "secret": ROTATED}, 422)
        call("DELETE", f"{base}/acme-hook?force=true", None, 204)
        call("GET", "/v1/accounts/acme/destinations")

    kept = service.destination("acme", "acme-s3")
    assert kept.secret_access_key.get_secret_value() == SECRET_KEY  # type: ignore[union-attr]
    service.close()

    metrics = prometheus_client.generate_latest().decode()
    settings_records = b"".join(_all_records(log, topics.SETTINGS))
    events = [codec.decode(v) for v in _all_records(log, topics.ACTIVITY)]
    assert len(events) >= 8
    events_text = repr(events)
    for secret in ALL:
        for answer in answers:
            assert secret not in answer
        assert secret not in caplog.text
        for record in caplog.records:
            assert secret not in record.getMessage()
        assert secret not in metrics
        if secret != HEADER_TOKEN:  # see test_webhook_header_values_are_sealed_at_rest
            assert secret.encode() not in settings_records  # sealed at rest
        assert secret not in events_text
    assert "[redacted]" in events_text  # the rotation is recorded, not its value
    assert "auditstream_api_requests_total" in metrics
    log.close()


def test_webhook_header_values_are_sealed_at_rest(tmp_path: Path) -> None:
    log = EmbeddedLog(tmp_path / "log.sqlite")
    options = ApiOptions(resolver=fake_resolver({"siem.example.com": ["93.184.216.34"]}))
    service = SettingsService(log, SecretBox([SecretBox.generate_key()]), options)
    token, _ = create_token(log, account_id="acme", user_id="ada", role="owner")
    with TestClient(create_app(service, options)) as client:
        created = client.post(
            "/v1/accounts/acme/destinations",
            json={
                "id": "acme-hook",
                "type": "webhook",
                "url": "https://siem.example.com/in",
                "secret": SIGNING,
                "headers": {"Authorization": HEADER_TOKEN},
            },
            headers={"Authorization": f"Bearer {token}"},
        )
        assert created.status_code == 201, created.text
    service.close()
    assert HEADER_TOKEN.encode() not in b"".join(_all_records(log, topics.SETTINGS))
    log.close()


def test_settings_sealed_with_another_key_are_never_overwritten(tmp_path: Path) -> None:
    """Started with the wrong key, the service must not take an account for empty: a change
    built on that would drop the account's destinations."""
    log = EmbeddedLog(tmp_path / "log.sqlite")
    options = ApiOptions(resolver=fake_resolver({"siem.example.com": ["93.184.216.34"]}))
    first = SettingsService(log, SecretBox([SecretBox.generate_key()]), options)
    token, _ = create_token(log, account_id="acme", user_id="ada", role="owner")
    auth = {"Authorization": f"Bearer {token}"}
    hook = {
        "id": "acme-hook",
        "type": "webhook",
        "url": "https://siem.example.com/in",
        "secret": SIGNING,
    }
    with TestClient(create_app(first, options)) as client:
        assert client.post("/v1/accounts/acme/destinations", json=hook, headers=auth).is_success
    first.close()
    before = sum(log.end_offsets(topics.SETTINGS).values())

    wrong = SettingsService(log, SecretBox([SecretBox.generate_key()]), options)
    with TestClient(create_app(wrong, options)) as client:
        assert client.get("/v1/accounts/acme/stream", headers=auth).status_code == 503
        answer = client.post(
            "/v1/accounts/acme/destinations",
            json={"id": "other", "type": "local", "path": "p"},
            headers=auth,
        )
        assert answer.status_code == 503
        assert "secret key" in answer.json()["detail"]
        put = client.put("/v1/accounts/acme/stream", json={"streaming_enabled": True}, headers=auth)
        assert put.status_code == 503
    wrong.close()
    assert sum(log.end_offsets(topics.SETTINGS).values()) == before
    log.close()
