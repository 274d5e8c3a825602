"""The ``schema`` setting end to end: settings that combine it with other settings, each sink
rendering the destination's shape, and an event its shape cannot render dead-lettered alone."""

from __future__ import annotations

import gzip
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from cloudevents.core.formats.json import JSONFormat
from pydantic import BaseModel, ValidationError

from auditstream.config.destinations import (
    STORED,
    DatadogLogsDestination,
    LocalDestination,
    S3Destination,
    SplunkHecDestination,
    WebhookDestination,
)
from auditstream.pipeline.log import Record
from auditstream.producers.sdk import to_record
from auditstream.schemas import catalog
from auditstream.sinks import shapes
from auditstream.sinks.attempts import materialize
from auditstream.sinks.batch import Batch
from auditstream.sinks.datadog_logs import DatadogLogsSink
from auditstream.sinks.local_dir import LocalDirectorySink
from auditstream.sinks.splunk_hec import SplunkHecSink
from auditstream.sinks.webhook import WebhookSink
from tests.factories import make_event
from tests.unit.test_event_shapes import _check_ecs, _ocsf_errors

TOPIC = "auditstream.dest.d-1"

M = TypeVar("M", bound=BaseModel)


def _model(model: type[M], **fields: Any) -> M:
    return model.model_validate(fields)


def _batch(events: list[dict[str, Any]]) -> Batch:
    records = [Record(TOPIC, 0, i, b"acme", b"") for i in range(len(events))]
    return Batch("d-1", "acme", TOPIC, 0, records=records, events=events)


def _catalog_events() -> list[dict[str, Any]]:
    return [make_event(category=a.category, activity=a.key) for a in catalog.ACTIVITIES]


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    assert len(keys) == len(set(keys)), keys
    return dict(pairs)


# -- settings --------------------------------------------------------------------------------


def test_schema_defaults_to_native_on_every_destination_kind() -> None:
    assert _model(LocalDestination, id="l", path="out").schema == "native"
    stored = {"id": "l", "type": "local", "path": "out"}  # settings stored before the field
    assert LocalDestination.model_validate(stored, context=STORED).schema == "native"
    assert (
        _model(LocalDestination, id="l", path="out", schema="ocsf").model_dump()["schema"] == "ocsf"
    )


@pytest.mark.parametrize("schema", ["ocsf", "ecs", "cloudevents"])
def test_avro_objects_refuse_a_json_shape_naming_the_field_and_the_rule(schema: str) -> None:
    with pytest.raises(ValidationError) as caught:
        _model(
            S3Destination, id="s", bucket="bkt", format="avro", compression="deflate", schema=schema
        )
    message = str(caught.value)
    assert f"schema: {schema} is a JSON shape and format avro holds the native event" in message
    assert "use format ndjson" in message
    # stored settings obey the same rule: a sink could not write them
    with pytest.raises(ValidationError):
        LocalDestination.model_validate(
            {"id": "l", "path": "o", "format": "avro", "schema": schema}, context=STORED
        )


def test_a_cloudevents_webhook_sends_json_batches_only() -> None:
    base = {"id": "w", "url": "https://siem.example.com/in", "secret": "s3cret"}
    with pytest.raises(ValidationError, match="schema: cloudevents is sent as a CloudEvents JSON"):
        WebhookDestination.model_validate({**base, "schema": "cloudevents", "body": "ndjson"})
    WebhookDestination.model_validate({**base, "schema": "ocsf", "body": "ndjson"})


def test_unknown_schema_names_the_choices() -> None:
    with pytest.raises(ValidationError, match="'native', 'ocsf', 'ecs' or 'cloudevents'"):
        _model(LocalDestination, id="l", path="out", schema="leef")


# -- sinks -----------------------------------------------------------------------------------


@pytest.mark.parametrize("compression", ["gzip", "none"])
def test_local_dir_writes_ocsf_ndjson_that_validates(tmp_path: Path, compression: str) -> None:
    destination = _model(
        LocalDestination, id="d-1", path=str(tmp_path), schema="ocsf", compression=compression
    )
    sink = LocalDirectorySink(destination)
    events = _catalog_events()
    result = sink.write(_batch(events))

    (written,) = [p for p in tmp_path.rglob("*") if p.is_file()]
    data = written.read_bytes()
    assert result.bytes_written == len(data)
    assert written.name.endswith(".ndjson.gz" if compression == "gzip" else ".ndjson")
    lines = (gzip.decompress(data) if compression == "gzip" else data).splitlines()
    documents = [json.loads(line) for line in lines]
    assert len(documents) == 88
    for event, document in zip(events, documents, strict=True):
        assert _ocsf_errors(document) == []
        assert document["metadata"]["uid"] == event["event_id"]
    assert "date=2026-11-27" in str(written)  # the key still follows recorded_at


def test_local_dir_writes_ecs_and_cloudevents_lines(tmp_path: Path) -> None:
    for schema in ("ecs", "cloudevents"):
        where = tmp_path / schema
        destination = _model(
            LocalDestination, id="d-1", path=str(where), schema=schema, compression="none"
        )
        LocalDirectorySink(destination).write(_batch(_catalog_events()))
        (written,) = [p for p in where.rglob("*") if p.is_file()]
        for line in written.read_bytes().splitlines():
            if schema == "ecs":
                _check_ecs(json.loads(line))
            else:
                assert JSONFormat().read(None, line).get_specversion() == "1.0"


def test_webhook_sends_a_cloudevents_batch_with_its_media_type() -> None:
    requests: list[httpx.Request] = []

    def receive(request: httpx.Request) -> httpx.Response:
        request.read()
        requests.append(request)
        return httpx.Response(200)

    destination = WebhookDestination.model_validate(
        {"id": "w", "url": "https://siem.example.com/in", "secret": "s3", "schema": "cloudevents"}
    )
    client = httpx.Client(transport=httpx.MockTransport(receive))
    sink = WebhookSink(destination, client=client, clock=lambda: 1_800_000_000)
    events = _catalog_events()[:5]
    sink.write(_batch(events))
    (request,) = requests
    assert request.headers["Content-Type"] == "application/cloudevents-batch+json"
    batch = json.loads(request.content)
    assert [JSONFormat().read(None, json.dumps(d)).get_id() for d in batch] == [
        e["event_id"] for e in events
    ]
    client.close()


def test_webhook_ocsf_ndjson_keeps_the_ndjson_media_type() -> None:
    destination = WebhookDestination.model_validate(
        {
            "id": "w",
            "url": "https://siem.example.com/in",
            "secret": "s",
            "schema": "ocsf",
            "body": "ndjson",
        }
    )
    sink = WebhookSink(destination, client=httpx.Client())
    body = sink.render(_batch(_catalog_events()[:3]))
    assert all(_ocsf_errors(json.loads(line)) == [] for line in body.splitlines())
    assert sink.build_headers(_batch(_catalog_events()[:1]), body, 1)["Content-Type"] == (
        "application/x-ndjson"
    )


def test_splunk_hec_events_carry_the_shape() -> None:
    destination = SplunkHecDestination.model_validate(
        {
            "id": "hec-1",
            "url": "https://hec.example.com:8088",
            "token": "12345678-1234-1234-1234-123456789012",
            "schema": "ocsf",
        }
    )
    sink = SplunkHecSink(destination, httpx.Client())
    (body,) = sink.render(_batch(_catalog_events()[:4]))
    decoder = json.JSONDecoder()
    text, position, envelopes = body.decode(), 0, []
    while position < len(text):
        envelope, position = decoder.raw_decode(text, position)
        envelopes.append(envelope)
    assert len(envelopes) == 4
    assert all(_ocsf_errors(e["event"]) == [] for e in envelopes)
    assert envelopes[0]["time"] == 1795773600.123456  # from occurred_at, as for native


@pytest.mark.parametrize("schema", list(shapes.SHAPES))
def test_datadog_logs_hold_each_attribute_once(schema: str) -> None:
    destination = DatadogLogsDestination.model_validate(
        {"id": "dd-1", "api_key": "0123456789abcdef0123456789abcdef", "schema": schema}
    )
    sink = DatadogLogsSink(destination, httpx.Client(), clock=lambda: 1_795_773_700.0)
    for entry in sink.entries(_batch(_catalog_events()[:1])):
        log = json.loads(entry.body, object_pairs_hook=_no_duplicate_keys)
        assert log["ddsource"]
        assert log["service"]
        assert "message" in log
        assert "timestamp" in log
        nest_as = shapes.shape(schema).nest_as
        if nest_as is not None:
            assert log["message"].startswith("user_login (account)")  # the sink's summary
        if schema == "ocsf":
            assert _ocsf_errors(log["ocsf"]) == []
        if schema == "cloudevents":
            assert JSONFormat().read(None, json.dumps(log["cloudevents"])).get_id()
        if schema == "ecs":
            assert log["message"] == "User login"  # the document's own
            assert log["event"]["action"] == "user_login"


# -- a render failure dead-letters one event -------------------------------------------------


def test_an_event_the_shape_cannot_render_is_dead_lettered_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = shapes.SHAPES["ocsf"]

    def fragile(event: Mapping[str, Any]) -> Mapping[str, Any]:
        if event.get("activity") == "user_logout":
            raise RuntimeError("no mapping for this one")
        return real.render(event)

    monkeypatch.setitem(shapes.SHAPES, "ocsf", shapes.Shape("ocsf", "x", fragile, "a/b", True))
    events = [make_event(), make_event(activity="user_logout"), make_event()]
    records = [Record(TOPIC, 0, i, None, to_record(e, TOPIC).value) for i, e in enumerate(events)]
    batch = Batch("d-1", "acme", TOPIC, 0, records=records)

    decoded, rejects = materialize(batch, [], "ocsf")
    assert [str(e["event_id"]) for e in decoded.events] == [
        events[0]["event_id"],
        events[2]["event_id"],
    ]
    (reject,) = rejects
    assert reject.record.offset == 1
    assert reject.reason == "render_failed"
    assert reject.detail == "schema ocsf: RuntimeError: no mapping for this one"
    native, none = materialize(batch, [], "native")
    assert len(native.events) == 3
    assert none == []
