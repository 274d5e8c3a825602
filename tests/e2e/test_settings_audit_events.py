"""Settings changes made through the API reach the account's own destinations as audit events,
secrets redacted; and an inclusion change takes effect on the running pipeline within 5 s.

The router, a sink worker and the API run in-process on the embedded log, with a local
destination whose objects are read back, and a webhook destination on a local receiver.
"""

from __future__ import annotations

import gzip
import logging
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
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
from auditstream.pipeline.embedded_log import EmbeddedLog
from auditstream.pipeline.router import Router
from auditstream.producers.sdk import ActivityProducer
from auditstream.sinks.worker import SinkWorker, WorkerOptions
from devservices.webhook_receiver import WebhookReceiver
from tests.e2e.harness import local_event_ids, read_object
from tests.factories import make_event
from tests.fake_resolver import fake_resolver

SIGNING = "e2e-Audit-Signing-Secret-8d2"
HEADER_TOKEN = "Splunk e2e-Header-Token-41a"
STREAM = "/v1/accounts/acme/stream"
DESTS = "/v1/accounts/acme/destinations"
FAST = {"max_events": 100, "max_age_s": 0.2}


class Pipeline:
    def __init__(self, tmp_path: Path, box: SecretBox) -> None:
        self.log = EmbeddedLog(tmp_path / "log.sqlite")
        self.out = tmp_path / "out"
        self.router = Router(self.log, box=box, poll_timeout=0.05)
        self.worker = SinkWorker(
            self.log,
            local_root=self.out,
            box=box,
            options=WorkerOptions(poll_timeout=0.05, pause_base=0.2),
        )

    def pump(self, seconds: float = 1.5) -> None:
        """Route and deliver what is there, with the settings as they are now."""
        self.router.settings.poll(0.0)
        self.worker.settings.poll(0.0)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.router.step()
            self.worker.step()
        self.worker.drain()

    def close(self) -> None:
        self.worker.close()
        self.router.close()
        self.log.close()


def _objects(root: Path) -> list[tuple[bytes, list[dict[str, Any]]]]:
    """(decompressed bytes, events) of every object under ``root``."""
    found = []
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.name.startswith(".tmp-"):
            raw = path.read_bytes()
            found.append(
                (gzip.decompress(raw) if path.name.endswith(".gz") else raw, read_object(path))
            )
    return found


@pytest.fixture
def box() -> SecretBox:
    return SecretBox([SecretBox.generate_key()])


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver(SIGNING.encode()) as r:
        yield r


def _api(pipeline: Pipeline, box: SecretBox, tmp_path: Path) -> tuple[SettingsService, ApiOptions]:
    options = ApiOptions(
        allow_http=True,
        allowed_networks=parse_networks(["127.0.0.1/32"]),
        resolver=fake_resolver({}),
        local_root=tmp_path / "out",
    )
    return SettingsService(pipeline.log, box, options), options


def test_streaming_settings_activities_arrive_redacted(
    tmp_path: Path,
    box: SecretBox,
    receiver: WebhookReceiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    pipeline = Pipeline(tmp_path, box)
    service, options = _api(pipeline, box, tmp_path)
    token, _ = create_token(pipeline.log, account_id="acme", user_id="u-ada", role="admin")
    auth = {"Authorization": f"Bearer {token}", "User-Agent": "e2e-browser/1.0"}

    with TestClient(create_app(service, options)) as client:

        def ok(answer: Any) -> None:
            assert answer.status_code < 300, answer.text

        # A new account streams nothing until streaming is enabled.
        ok(
            client.post(
                DESTS,
                json={"id": "audit-files", "type": "local", "path": "audit", "batch": FAST},
                headers=auth,
            )
        )
        ok(client.put(STREAM, json={"streaming_enabled": True}, headers=auth))
        pipeline.pump()
        ok(
            client.put(
                STREAM,
                json={"streaming_enabled": True, "include_categories": ["account", "team"]},
                headers=auth,
            )
        )
        pipeline.pump()
        hook = {
            "id": "audit-hook",
            "type": "webhook",
            "url": receiver.url,
            "secret": SIGNING,
            "headers": {"Authorization": HEADER_TOKEN},
            "batch": FAST,
        }
        ok(client.post(DESTS, json=hook, headers=auth))
        ok(
            client.patch(
                f"{DESTS}/audit-hook",
                json={
                    "type": "webhook",
                    "timeout_s": 5,
                    "headers": {"Authorization": HEADER_TOKEN + "2"},
                },
                headers=auth,
            )
        )
        pipeline.pump()
        # a user's own activity is streamed alongside; then the account redacts personal data
        plain, redacted = (make_event(account_id="acme", activity="user_login") for _ in "ab")
        with ActivityProducer(pipeline.log) as producer:
            producer.send(plain)
        pipeline.pump()
        ok(
            client.put(
                STREAM,
                json={
                    "streaming_enabled": True,
                    "include_categories": ["account", "team"],
                    "redact": ["actor_email", "ip_address", "user_agent"],
                },
                headers=auth,
            )
        )
        with ActivityProducer(pipeline.log) as producer:
            producer.send(redacted)
        pipeline.pump()

    objects = _objects(pipeline.out / "audit")
    events = [e for _raw, batch in objects for e in batch]
    by_activity: dict[str, list[dict[str, Any]]] = {}
    for e in events:
        by_activity.setdefault(e["activity"], []).append(e)
    assert {
        "audit_log_streaming",
        "audit_log_streaming_data_inclusion",
        "audit_log_streaming_destination_updated",
        "user_login",
    } <= set(by_activity)

    (enabled,) = by_activity["audit_log_streaming"]
    assert enabled["details"] == {"operation": "enabled"}
    assert enabled["changes"] == [
        {"field": "streaming_enabled", "old_value": "false", "new_value": "true"}
    ]
    assert enabled["actor"]["user_id"] == "u-ada"
    assert enabled["actor"]["auth_method"] == "api_key"
    assert enabled["request"]["user_agent"] == "e2e-browser/1.0"
    assert enabled["request"]["request_id"]
    inclusion = by_activity["audit_log_streaming_data_inclusion"][0]
    assert inclusion["changes"][0]["field"] == "include_categories"
    hook_events = [
        e
        for e in by_activity["audit_log_streaming_destination_updated"]
        if e["resource"]["id"] == "audit-hook"
    ]
    assert [e["details"]["operation"] for e in hook_events] == ["created", "updated"]
    changes = {c["field"]: c for c in hook_events[0]["changes"]}
    assert changes["secret"]["new_value"] == "[redacted]"
    assert changes["headers.Authorization"]["new_value"] == "[redacted]"
    assert {c["field"] for c in hook_events[1]["changes"]} == {"timeout_s", "headers.Authorization"}

    # the secrets appear nowhere: not in the objects, the webhook deliveries, or the logs
    for secret in (SIGNING, HEADER_TOKEN):
        for raw, _batch in objects:
            assert secret.encode() not in raw
        assert secret not in orjson.dumps(receiver.events).decode()
        assert secret not in caplog.text
    assert receiver.bad_signatures == 0

    logins = {e["event_id"]: e for e in by_activity["user_login"]}
    assert logins[plain["event_id"]]["actor"]["email"] == "ada@example.com"
    assert logins[plain["event_id"]]["request"]["ip"] == "192.0.2.10"
    after = logins[redacted["event_id"]]
    assert (after["actor"]["email"], after["request"]["ip"], after["request"]["user_agent"]) == (
        None,
        None,
        None,
    )
    redaction = by_activity["audit_log_streaming_data_inclusion"][-1]
    assert {c["field"] for c in redaction["changes"]} == {"redact"}
    service.close()
    pipeline.close()


def test_inclusion_change_takes_effect_within_five_seconds(tmp_path: Path, box: SecretBox) -> None:
    pipeline = Pipeline(tmp_path, box)
    service, options = _api(pipeline, box, tmp_path)
    token, _ = create_token(pipeline.log, account_id="acme", user_id="u-ada", role="owner")
    auth = {"Authorization": f"Bearer {token}"}
    stop = threading.Event()
    threads = [
        threading.Thread(target=pipeline.router.run, args=(stop,), daemon=True),
        threading.Thread(target=pipeline.worker.run, args=(stop,), daemon=True),
    ]
    root = pipeline.out / "live"
    sent_at: dict[str, float] = {}
    producer = ActivityProducer(pipeline.log)

    def send(activity: str, category: str) -> str:
        event = make_event(account_id="acme", category=category, activity=activity)
        producer.send(event)
        producer.flush()
        sent_at[event["event_id"]] = time.monotonic()
        return str(event["event_id"])

    with TestClient(create_app(service, options)) as client:
        created = client.post(
            DESTS,
            json={"id": "live-files", "type": "local", "path": "live", "batch": FAST},
            headers=auth,
        )
        assert created.status_code == 201
        assert client.put(STREAM, json={"streaming_enabled": True}, headers=auth).status_code == 200
        for t in threads:
            t.start()
        try:
            before = [send("recipe_started", "recipe") for _ in range(10)]
            deadline = time.monotonic() + 30
            while not set(before) <= set(local_event_ids(root)):
                assert time.monotonic() < deadline, "events before the change not delivered"
                time.sleep(0.2)

            changed = client.put(
                STREAM,
                json={"streaming_enabled": True, "include_categories": ["account"]},
                headers=auth,
            )
            assert changed.status_code == 200
            changed_at = time.monotonic()
            after: list[str] = []
            controls: list[str] = []
            while time.monotonic() - changed_at < 7.0:
                after.append(send("recipe_started", "recipe"))
                controls.append(send("user_login", "account"))
                time.sleep(0.1)
            deadline = time.monotonic() + 30
            while not set(controls) <= set(local_event_ids(root)):
                assert time.monotonic() < deadline, "included events not delivered"
                time.sleep(0.2)
            time.sleep(1.0)
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=30)
    producer.close()

    delivered = set(local_event_ids(root))
    assert set(before) <= delivered
    assert set(controls) <= delivered  # the account category still flows
    still_streamed = [sent_at[e] - changed_at for e in after if e in delivered]
    late = [e for e in after if e not in delivered]
    assert late, "the change never took effect"
    assert max(still_streamed, default=0.0) < 5.0, "the change took more than 5 s"
    assert all(sent_at[e] - changed_at < 5.0 for e in after if e in delivered)
    assert all(e not in delivered for e in after if sent_at[e] - changed_at >= 5.0)
    service.close()
    pipeline.close()
