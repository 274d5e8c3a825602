"""Each event is rendered once per attempt: ``materialize`` renders it in the destination's
shape (and dead-letters one it cannot render), the sink writes that document as it is."""

from __future__ import annotations

import gzip
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from auditstream.config.destinations import (
    DatadogLogsDestination,
    LocalDestination,
    SplunkHecDestination,
    WebhookDestination,
)
from auditstream.pipeline.log import Record
from auditstream.producers.sdk import to_record
from auditstream.schemas import catalog
from auditstream.sinks import shapes
from auditstream.sinks.attempts import materialize
from auditstream.sinks.base import Sink
from auditstream.sinks.batch import Batch
from auditstream.sinks.datadog_logs import DatadogLogsSink
from auditstream.sinks.local_dir import LocalDirectorySink
from auditstream.sinks.render import render_json_array, render_ndjson
from auditstream.sinks.splunk_hec import SplunkHecSink
from auditstream.sinks.webhook import WebhookSink
from tests.factories import make_event

TOPIC = "auditstream.dest.d-1"
SHAPED = [name for name in shapes.SHAPES if name != "native"]


def _accept(request: httpx.Request) -> httpx.Response:
    request.read()
    return httpx.Response(202 if "/api/v2/logs" in str(request.url) else 200, json={"code": 0})


def _client() -> httpx.Client:
    return httpx.Client(transport=httpx.MockTransport(_accept))


def _webhook(schema: str, _root: Path) -> Sink:
    destination = WebhookDestination.model_validate(
        {"id": "d-1", "url": "https://siem.example.com/in", "secret": "s", "schema": schema}
    )
    return WebhookSink(destination, client=_client())


def _splunk(schema: str, _root: Path) -> Sink:
    destination = SplunkHecDestination.model_validate(
        {
            "id": "d-1",
            "url": "https://hec.example.com:8088",
            "token": "12345678-1234-1234-1234-123456789012",
            "schema": schema,
        }
    )
    return SplunkHecSink(destination, _client())


def _datadog(schema: str, _root: Path) -> Sink:
    destination = DatadogLogsDestination.model_validate(
        {"id": "d-1", "api_key": "0123456789abcdef0123456789abcdef", "schema": schema}
    )
    return DatadogLogsSink(destination, _client(), clock=lambda: 1_795_773_700.0)


def _local(schema: str, root: Path) -> Sink:
    destination = LocalDestination.model_validate({"id": "d-1", "path": "out", "schema": schema})
    return LocalDirectorySink(destination, root=root)


SINKS: dict[str, Callable[[str, Path], Sink]] = {
    "webhook": _webhook,
    "splunk_hec": _splunk,
    "datadog_logs": _datadog,
    "local": _local,
}


@pytest.fixture
def renders(monkeypatch: pytest.MonkeyPatch) -> Counter[tuple[str, str]]:
    """Counts each shape's renderings by ``(schema, event_id)``."""
    counts: Counter[tuple[str, str]] = Counter()
    for name in SHAPED:
        real = shapes.SHAPES[name]

        def counted(
            event: Mapping[str, Any],
            render: shapes.Render = real.render,
            name: str = name,
        ) -> Mapping[str, Any]:
            counts[(name, str(event["event_id"]))] += 1
            return render(event)

        monkeypatch.setitem(
            shapes.SHAPES,
            name,
            shapes.Shape(
                real.name,
                real.title,
                counted,
                real.batch_media_type,
                real.carries_message,
                real.nest_as,
            ),
        )
    return counts


def _records(events: list[dict[str, Any]]) -> Batch:
    records = [Record(TOPIC, 0, i, None, to_record(e, TOPIC).value) for i, e in enumerate(events)]
    return Batch("d-1", "acme", TOPIC, 0, records=records)


@pytest.mark.parametrize("kind", list(SINKS))
@pytest.mark.parametrize("schema", SHAPED)
def test_each_event_is_rendered_once_per_attempt(
    kind: str, schema: str, renders: Counter[tuple[str, str]], tmp_path: Path
) -> None:
    events = [make_event(category=a.category, activity=a.key) for a in catalog.ACTIVITIES[:12]]
    sink = SINKS[kind](schema, tmp_path)
    batch, rejects = materialize(_records(events), [], schema)
    assert rejects == []
    sink.write(batch)
    sink.close()
    assert {(schema, e["event_id"]): 1 for e in events} == dict(renders)


def test_the_documents_kept_are_the_bytes_a_sink_would_render(tmp_path: Path) -> None:
    events = [make_event(category=a.category, activity=a.key) for a in catalog.ACTIVITIES[:20]]
    for schema in shapes.SHAPES:
        batch, _ = materialize(_records(events), [], schema)
        decoded = batch.events
        assert batch.documents_for(schema) == (
            None if schema == "native" else render_ndjson(decoded, schema).split(b"\n")[:-1]
        )
        destination = WebhookDestination.model_validate(
            {"id": "d-1", "url": "https://siem.example.com/in", "secret": "s", "schema": schema}
        )
        sink = WebhookSink(destination, client=_client())
        assert sink.render(batch) == render_json_array(decoded, schema)
        sink.close()
        local = _local(schema, tmp_path / schema)
        local.write(batch)
        (written,) = [p for p in (tmp_path / schema).rglob("*") if p.is_file()]
        assert gzip.decompress(written.read_bytes()) == render_ndjson(decoded, schema)


def test_documents_of_another_shape_are_not_used() -> None:
    events = [make_event()]
    batch, _ = materialize(_records(events), [], "ocsf")
    assert batch.documents_for("ecs") is None
    assert batch.documents_for("native") is None
    batch.events.append(make_event())  # no longer one document per event
    assert batch.documents_for("ocsf") is None


def test_a_render_failure_still_rejects_one_event_and_renders_the_others_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: Counter[str] = Counter()
    real = shapes.SHAPES["ecs"]

    def fragile(event: Mapping[str, Any]) -> Mapping[str, Any]:
        calls[str(event["event_id"])] += 1
        if event.get("activity") == "user_logout":
            raise RuntimeError("cannot")
        return real.render(event)

    monkeypatch.setitem(shapes.SHAPES, "ecs", shapes.Shape("ecs", "x", fragile, "a/b", True))
    events = [make_event(), make_event(activity="user_logout"), make_event()]
    batch, rejects = materialize(_records(events), [], "ecs")
    assert [r.reason for r in rejects] == ["render_failed"]
    assert len(batch.events) == len(batch.documents or []) == 2
    sink = _splunk("ecs", Path("."))
    sink.write(batch)
    sink.close()
    assert dict(calls) == {e["event_id"]: 1 for e in events}
