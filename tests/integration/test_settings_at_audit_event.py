"""A settings change takes effect at its audit event in the activity topic, by offset, exactly
(docs/adr/017-settings-take-effect-at-their-audit-event.md), on both logs.

The changes are written through the settings API's write path (settings record and audit event
in one transaction) while the router is not stepping; events are produced before, between and
after them; only then does the router run, with every change already in the settings topic.
"""

from __future__ import annotations

import logging
import time
from contextlib import closing

import pytest
from prometheus_client import REGISTRY

from auditstream.api.audit import RequestInfo
from auditstream.api.models import StreamSettingsIn
from auditstream.api.service import SettingsService
from auditstream.api.tokens import Principal
from auditstream.api.writes import Caller
from auditstream.config.secrets import SecretBox
from auditstream.config.stream import AccountSettings
from auditstream.pipeline import topics
from auditstream.pipeline.embedded_log import EmbeddedLog
from auditstream.pipeline.log import Log
from auditstream.pipeline.router import Router
from auditstream.pipeline.settings_writer import publish_settings, with_revision
from auditstream.producers.sdk import ActivityProducer, to_record
from tests.factories import make_event

CALLER = Caller(
    Principal(token_id="t-1", account_id="acme", user_id="u-admin", role="admin"), RequestInfo()
)
KEEP, GONE, NEW = "acme-keep", "acme-gone", "acme-new"


def _read_all(log: Log, topic: str) -> list[bytes]:
    """Every value in ``topic`` (read until three empty polls)."""
    values: list[bytes] = []
    with closing(log.reader(topic)) as reader:
        empty = 0
        while empty < 3:
            got = reader.poll(1000, 0.5)
            values.extend(r.value for r in got)
            empty = 0 if got else empty + 1
    return values


def _produce(log: Log, n: int) -> list[tuple[bytes, str]]:
    """``n`` events of acme, alternately of the ``account`` and the ``recipe`` category;
    returns (event id, category) of each."""
    sent = []
    with ActivityProducer(log) as producer:
        for i in range(n):
            category, activity = (
                ("account", "user_login") if i % 2 else ("recipe", "recipe_started")
            )
            event = make_event(account_id="acme", category=category, activity=activity)
            producer.send(event)
            sent.append((str(event["event_id"]).encode(), category))
    return sent


def test_changes_apply_at_their_audit_events_by_offset(any_log: Log) -> None:
    log = any_log
    box = SecretBox([SecretBox.generate_key()])
    initial = AccountSettings.model_validate(
        {
            "account_id": "acme",
            "destinations": [
                {"id": KEEP, "type": "local", "path": KEEP},
                {"id": GONE, "type": "local", "path": GONE},
            ],
        }
    )
    publish_settings(log, [initial], box)
    router = Router(log, box=box, poll_timeout=0.05)  # reads the settings; routes nothing yet
    service = SettingsService(log, box)
    try:
        segments = [_produce(log, 6)]
        service.put_stream(  # recipe no longer streamed
            "acme",
            StreamSettingsIn(streaming_enabled=True, include_categories=["account", "team"]),
            CALLER,
        )
        segments.append(_produce(log, 6))
        service.create_destination("acme", {"id": NEW, "type": "local", "path": NEW}, CALLER)
        segments.append(_produce(log, 6))
        service.delete_destination("acme", GONE, force=True, caller=CALLER)
        segments.append(_produce(log, 6))

        deadline = time.monotonic() + 60
        while router.lag() and time.monotonic() < deadline:
            router.step()
        assert router.lag() == 0
    finally:
        service.close()
        router.close()

    # What each destination must hold, by the settings in force at each event's offset.
    in_force = [
        ({"account", "recipe"}, {KEEP, GONE}),
        ({"account"}, {KEEP, GONE}),
        ({"account"}, {KEEP, GONE, NEW}),
        ({"account"}, {KEEP, NEW}),
    ]
    expected: dict[str, set[bytes]] = {KEEP: set(), GONE: set(), NEW: set()}
    for events, (categories, destinations) in zip(segments, in_force, strict=True):
        for event_id, category in events:
            if category in categories:
                for d in destinations:
                    expected[d].add(event_id)
    sent = {event_id for events in segments for event_id, _c in events}
    for dest in (KEEP, GONE, NEW):
        values = _read_all(log, topics.destination_topic(dest))
        got = {e for e in sent if any(e in v for v in values)}
        assert sorted(got) == sorted(expected[dest]), dest


def test_an_audit_event_naming_a_revision_never_written_does_not_hold_routing(
    embedded_log: EmbeddedLog, caplog: pytest.LogCaptureFixture
) -> None:
    log = embedded_log
    publish_settings(
        log,
        [
            AccountSettings.model_validate(
                {
                    "account_id": "acme",
                    "destinations": [{"id": KEEP, "type": "local", "path": KEEP}],
                }
            )
        ],
    )
    missing = REGISTRY.get_sample_value("auditstream_router_settings_revisions_missing_total")
    with closing(Router(log, poll_timeout=0.05)) as router:
        announced = make_event(
            account_id="acme", category="account", activity="audit_log_streaming"
        )
        with closing(log.producer()) as producer:
            for record in with_revision([to_record(announced)], "never-written"):
                producer.produce(record)
            producer.produce(to_record(make_event(account_id="acme")))
            assert producer.flush() == 0
        deadline = time.monotonic() + 60
        with caplog.at_level(logging.WARNING, "auditstream.pipeline.router"):
            while router.lag() and time.monotonic() < deadline:
                router.step()
        assert router.lag() == 0
    assert len(_read_all(log, topics.destination_topic(KEEP))) == 2
    assert "settings revision never-written of account acme" in caplog.text
    after = REGISTRY.get_sample_value("auditstream_router_settings_revisions_missing_total")
    assert (after or 0.0) == (missing or 0.0) + 1


def test_restart_window_a_router_started_after_a_change_applies_it_at_once(
    embedded_log: EmbeddedLog,
) -> None:
    """The window ADR 017 leaves: settings read when the router starts apply at once, so a
    router (re)started with its committed offset before a change's audit event routes the
    events between them with the new settings."""
    log = embedded_log
    box = SecretBox([SecretBox.generate_key()])
    initial = AccountSettings.model_validate(
        {"account_id": "acme", "destinations": [{"id": KEEP, "type": "local", "path": KEEP}]}
    )
    publish_settings(log, [initial], box)
    service = SettingsService(log, box)
    try:
        before = _produce(log, 4)
        service.create_destination("acme", {"id": NEW, "type": "local", "path": NEW}, CALLER)
        after = _produce(log, 4)
    finally:
        service.close()
    with closing(Router(log, box=box, poll_timeout=0.05)) as router:  # starts after the change
        deadline = time.monotonic() + 60
        while router.lag() and time.monotonic() < deadline:
            router.step()
        assert router.lag() == 0
    values = _read_all(log, topics.destination_topic(NEW))
    got = {e for e, _c in before + after if any(e in v for v in values)}
    # Exact would be the events after the change only; the ones before it are the window.
    assert got == {e for e, _c in before + after}


def test_a_change_made_through_the_api_applies_at_its_audit_event_after_a_router_restart(
    any_log: Log,
) -> None:
    """The API's change carries the record it replaced (``settings.previous``), so a router
    that committed before the change and starts after it puts that record back until the
    change's audit event (ADR 017's restart window). Two API changes in a row: the second
    names the first's revision as its previous one."""
    log = any_log
    box = SecretBox([SecretBox.generate_key()])
    initial = AccountSettings.model_validate(
        {"account_id": "acme", "destinations": [{"id": KEEP, "type": "local", "path": KEEP}]}
    )
    publish_settings(log, [initial], box)
    service = SettingsService(log, box)
    try:
        service.put_stream(  # the first change: both categories still streamed
            "acme",
            StreamSettingsIn(streaming_enabled=True, include_categories=["account", "recipe"]),
            CALLER,
        )
        first = _produce(log, 4)
        with closing(Router(log, box=box, poll_timeout=0.05)) as router:  # routes, commits
            deadline = time.monotonic() + 60
            while router.lag() and time.monotonic() < deadline:
                router.step()
            assert router.lag() == 0
        before = _produce(log, 6)  # committed past by nobody yet
        service.create_destination("acme", {"id": NEW, "type": "local", "path": NEW}, CALLER)
        after = _produce(log, 6)
    finally:
        service.close()
    with closing(Router(log, box=box, poll_timeout=0.05)) as router:  # starts after the change
        deadline = time.monotonic() + 60
        while router.lag() and time.monotonic() < deadline:
            router.step()
        assert router.lag() == 0
    sent = {e for events in (first, before, after) for e, _c in events}
    new_values = _read_all(log, topics.destination_topic(NEW))
    assert {e for e in sent if any(e in v for v in new_values)} == {e for e, _c in after}
    keep_values = _read_all(log, topics.destination_topic(KEEP))
    assert {e for e in sent if any(e in v for v in keep_values)} == sent
