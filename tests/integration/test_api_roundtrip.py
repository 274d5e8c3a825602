"""The settings API served by uvicorn on 127.0.0.1 and driven by the CLI, on both backends:
tokens, stream settings, every destination action, the janitor, and the audit events and
settings records the pipeline reads."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from auditstream.api.app import create_app
from auditstream.api.audit import RequestInfo
from auditstream.api.models import StreamSettingsIn
from auditstream.api.options import ApiOptions
from auditstream.api.service import Caller, SettingsService
from auditstream.api.tokens import Principal
from auditstream.cli import main
from auditstream.config.address_policy import parse_networks
from auditstream.config.secrets import SecretBox
from auditstream.pipeline import topics
from auditstream.pipeline.log import Log
from auditstream.pipeline.settings_view import SettingsView
from auditstream.schemas import codec
from devservices.ports import free_port
from devservices.webhook_receiver import WebhookReceiver
from tests.api_server import serve
from tests.fake_resolver import fake_resolver

SIGNING = "roundtrip-Signing-Secret-31c"


def _backend_flags(log: Log) -> list[str]:
    if log.name == "kafka":
        return ["--bootstrap", str(getattr(log, "bootstrap"))]  # noqa: B009
    return ["--backend", "embedded", "--db", str(getattr(log, "path"))]  # noqa: B009


@dataclass
class Cli:
    capsys: pytest.CaptureFixture[str]
    url: str
    token: str = ""

    def run(self, *args: str, expect: int = 0) -> Any:
        self.capsys.readouterr()
        code = main([*args, "--api-url", self.url, "--token", self.token])
        out, err = self.capsys.readouterr()
        assert code == expect, err
        return json.loads(out) if out.strip().startswith(("{", "[")) else out


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver(SIGNING.encode()) as r:
        yield r


def _activity_events(log: Log, at_least: int, timeout: float = 30.0) -> list[dict[str, Any]]:
    reader = log.reader(topics.ACTIVITY)
    events: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while len(events) < at_least and time.monotonic() < deadline:
        events.extend(codec.decode(r.value) for r in reader.poll(500, 0.5))
    reader.close()
    return events


def test_api_and_cli_round_trip(
    any_log: Log,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    receiver: WebhookReceiver,
    caplog: pytest.LogCaptureFixture,
    request: pytest.FixtureRequest,
) -> None:
    caplog.set_level(logging.INFO)
    log = any_log
    box = SecretBox([SecretBox.generate_key()])
    options = ApiOptions(
        allow_http=True,
        allowed_networks=parse_networks(["127.0.0.1/32"]),
        resolver=fake_resolver({}),
        local_root=tmp_path / "out",
        janitor_interval=0.3,
        delete_grace=0.5,
    )
    service = SettingsService(log, box, options)
    # Closed also when an assertion fails, before the broker stops: a client left open would
    # keep polling a stopped broker for the rest of the session.
    request.addfinalizer(service.close)
    port = free_port()
    with serve(create_app(service, options), port) as url:
        cli = Cli(capsys, url)
        # tokens are made on the log by the CLI, after the API started
        capsys.readouterr()
        assert (
            main(
                [
                    "tokens",
                    "create",
                    "--account",
                    "acme",
                    "--user",
                    "ada",
                    "--role",
                    "owner",
                    *_backend_flags(log),
                ]
            )
            == 0
        )
        token, note = capsys.readouterr()
        cli.token = token.strip()
        assert cli.token.startswith("ast_")
        assert "shown only now" in note
        assert main(["keys", "generate"]) == 0
        SecretBox([capsys.readouterr().out.strip()])  # a usable key

        # a real socket: the token works at once, another account's path is 404
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {cli.token}"}) as http:
            assert http.get("/v1/me").json()["account_id"] == "acme"
            assert http.get("/v1/accounts/globex/stream").status_code == 404
            assert http.get("/v1/accounts/acme/stream").headers["x-request-id"]

        assert cli.run("settings", "get")["streaming_enabled"] is False
        stream = cli.run("settings", "set", "--enable", "--categories", "account,team")
        assert stream["streaming_enabled"] is True
        assert stream["include_categories"] == ["account", "team"]
        stream = cli.run("settings", "set", "--exclude-activities", "user_login")
        assert stream["include_categories"] == ["account", "team"]  # kept
        assert stream["exclude_activities"] == ["user_login"]

        local = {"id": "rt-files", "type": "local", "path": "files", "batch": {"max_age_s": 0.5}}
        assert cli.run("destinations", "add", "--json", json.dumps(local))["id"] == "rt-files"
        hook_file = tmp_path / "hook.yaml"
        hook_file.write_text(
            f"id: rt-hook\ntype: webhook\nurl: {receiver.url}\nsecret: {SIGNING}\n"
            "headers: {X-Team: secops}\n"
        )
        hook = cli.run("destinations", "add", "-f", str(hook_file))
        assert hook["secret"] == "********"
        assert {d["id"] for d in cli.run("destinations", "list")["destinations"]} == {
            "rt-files",
            "rt-hook",
        }
        assert (
            cli.run("destinations", "update", "rt-files", "--json", '{"prefix": "p2"}')["prefix"]
            == "p2"
        )
        assert cli.run("destinations", "pause", "rt-hook")["paused"] is True
        assert cli.run("destinations", "resume", "rt-hook")["paused"] is False
        since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
        replay = cli.run("destinations", "replay", "rt-hook", "--from", since)["replay"]
        assert replay["id"]
        assert cli.run("destinations", "check", "rt-files")["ok"] is True
        checked = cli.run("destinations", "check", "rt-hook")
        assert checked["ok"] is True, checked
        assert receiver.bad_signatures == 0
        status = cli.run("destinations", "status", "rt-hook")
        assert status["state"] == "active"
        assert status["events_waiting"] == 0
        assert status["events_waiting_exact"] is True
        refused = cli.run("destinations", "get", "nope", expect=1)
        assert refused == ""

        # delete: drained (nothing waits) → removed by the janitor; its topic follows
        deleting = cli.run("destinations", "delete", "rt-files")
        assert deleting["deleting"] is True
        deadline = time.monotonic() + 60
        while any(d["id"] == "rt-files" for d in cli.run("destinations", "list")["destinations"]):
            assert time.monotonic() < deadline, "the janitor did not remove rt-files"
            time.sleep(0.3)
        while topics.destination_topic("rt-files") in log.list_topics():
            assert time.monotonic() < deadline, "the topic of rt-files was not deleted"
            time.sleep(0.3)
        assert cli.run("destinations", "delete", "rt-hook", "--force") == {
            "id": "rt-hook",
            "removed": True,
        }
        assert cli.run("destinations", "list") == {"destinations": []}

    # every change is an audit event of the account, in order
    events = [e for e in _activity_events(log, 12) if e["account_id"] == "acme"]
    operations = [
        (e["activity"].removeprefix("audit_log_streaming"), e["details"].get("operation"))
        for e in events
    ]
    assert operations == [
        ("", "enabled"),
        ("_data_inclusion", "updated"),
        ("_data_inclusion", "updated"),
        ("_destination_updated", "created"),
        ("_destination_updated", "created"),
        ("_destination_updated", "updated"),
        ("_destination_updated", "paused"),
        ("_destination_updated", "resumed"),
        ("_destination_updated", "replay_requested"),
        ("_destination_updated", "delete_requested"),
        ("_destination_updated", "removed"),
        ("_destination_updated", "deleted"),
    ]
    assert {e["actor"]["user_id"] for e in events[:-2]} == {"ada"}
    assert events[-2]["actor"]["auth_method"] == "system"  # the janitor
    assert events[0]["request"]["user_agent"] == "auditstream-cli"

    # the pipeline's view reads what the API wrote (secrets opened with the same key)
    view = SettingsView(log, box=box)
    request.addfinalizer(view.close)
    deadline = time.monotonic() + 30
    while (view.account("acme") is None or view.account("acme").destinations) and (  # type: ignore[union-attr]
        time.monotonic() < deadline
    ):
        view.poll(0.0)
        time.sleep(0.1)
    seen = view.account("acme")
    assert seen is not None
    assert seen.exclude_activities == ["user_login"]
    assert seen.destinations == []
    assert SIGNING not in caplog.text


def test_pipeline_settings_view_catches_up_after_api_writes(any_log: Log, tmp_path: Path) -> None:
    """SettingsView.catch_up (routers, sink workers) after a transactional settings write: on
    Kafka the commit marker takes the last offset of the partition and is never returned, so
    the view must go by its reader's position, not by the records it saw."""
    box = SecretBox([SecretBox.generate_key()])
    options = ApiOptions(local_root=tmp_path, resolver=fake_resolver({}))
    caller = Caller(Principal("0" * 16, "acme", "ada", "owner"), RequestInfo())
    with closing(SettingsService(any_log, box, options)) as service:
        service.put_stream("acme", StreamSettingsIn(streaming_enabled=True), caller)
    with closing(SettingsView(any_log, box=box)) as view:
        view.catch_up(timeout=5.0)
    with closing(SettingsView(any_log, box=box)) as seen:
        seen.catch_up(timeout=5.0)
        account = seen.account("acme")
    assert account is not None
    assert account.streaming_enabled
