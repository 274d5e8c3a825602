"""docs/webhooks.md tells receivers the truth: its Python verification snippet accepts requests
our webhook sink really sends (and refuses altered ones), and its tables of headers, delivery
identities and answers match what the sink does. The sink posts to a real HTTP server on
127.0.0.1."""

from __future__ import annotations

import importlib.util
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from auditstream.config.destinations import WebhookDestination
from auditstream.pipeline.log import Record
from auditstream.sinks.batch import Batch
from auditstream.sinks.errors import PermanentError, TransientError
from auditstream.sinks.webhook import WebhookSink, classify_response

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "webhooks.md").read_text(encoding="utf-8")
SECRET = "whsec-docs-Ünïcode-4f9a"  # not ASCII: the doc says UTF-8 bytes
DESTINATION = "acme-siem"

VerifyRequest = Callable[..., bool]


def _doc_section(heading: str) -> str:
    match = re.search(rf"^##+ {re.escape(heading)}\n(.*?)(?=^## |\Z)", DOC, re.S | re.M)
    assert match, f"no section {heading!r} in docs/webhooks.md"
    return match.group(1)


def _table_rows(text: str) -> list[list[str]]:
    rows = [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in text.splitlines()
        if line.startswith("|")
    ]
    return [r for r in rows[2:]]  # past the header row and the --- row


@pytest.fixture(scope="module")
def verify_request(tmp_path_factory: pytest.TempPathFactory) -> VerifyRequest:
    """The doc's snippet, imported as a module of its own."""
    (snippet,) = re.findall(r"^```python\n(.*?)^```", DOC, re.S | re.M)
    path = tmp_path_factory.mktemp("doc") / "webhook_verify_snippet.py"
    path.write_text(snippet, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("webhook_verify_snippet", path)
    assert spec is not None
    assert spec.loader is not None
    module: ModuleType = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    function: VerifyRequest = module.verify_request
    return function


class Received:
    """What the server got: each request's headers (as http.server hands them over) and raw
    body, and the statuses to answer with, in order (then 200)."""

    def __init__(self) -> None:
        self.requests: list[tuple[Message, bytes]] = []
        self.answers: list[int] = []
        self.lock = threading.Lock()


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        received = self.server.received
        with received.lock:
            received.requests.append((self.headers, body))
            status = received.answers.pop(0) if received.answers else 200
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    received: Received


@pytest.fixture
def server() -> Iterator[tuple[str, Received]]:
    httpd = _Server(("127.0.0.1", 0), _Handler)
    httpd.received = Received()
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/ingest", httpd.received
    finally:
        httpd.shutdown()
        httpd.server_close()


def _sink(
    url: str, body: str = "json_array", clock: Callable[[], float] = time.time
) -> WebhookSink:
    destination = WebhookDestination.model_validate(
        {"id": DESTINATION, "url": url, "secret": SECRET, "body": body}
    )
    return WebhookSink(destination, clock=clock)


def _event(i: int) -> dict[str, Any]:
    recorded = datetime(2026, 11, 27, 10, 0, 0, 123456, tzinfo=UTC) + timedelta(seconds=i)
    return {
        "event_id": str(uuid.uuid4()),
        "occurred_at": recorded - timedelta(milliseconds=40),
        "recorded_at": recorded,
        "account_id": "acme",
        "category": "account",
        "activity": "user_login",
        "actor": {
            "user_id": "u-1",
            "name": "Zoë Ångström",
            "email": "zoe@example.test",
            "role": "admin",
            "auth_method": "sso",
        },
        "resource": None,
        "outcome": {"status": "success", "reason": None},
        "changes": [],
        "request": None,
        "details": {},
    }


def _batch(partition: int = 2, first: int = 40, n: int = 3, replay_id: str | None = None) -> Batch:
    topic = f"auditstream.dest.{DESTINATION}"
    batch = Batch(
        destination_id=DESTINATION,
        account_id="acme",
        topic=topic,
        partition=partition,
        records=[Record(topic, partition, first + i, b"acme", b"") for i in range(n)],
        events=[_event(i) for i in range(n)],
    )
    batch.replay_id = replay_id
    return batch


@pytest.mark.parametrize("body", ["json_array", "ndjson"])
def test_the_snippet_accepts_what_the_sink_sends_and_nothing_else(
    verify_request: VerifyRequest, server: tuple[str, Received], body: str
) -> None:
    url, received = server
    sink = _sink(url, body)
    try:
        sink.write(_batch())
    finally:
        sink.close()
    ((headers, raw),) = received.requests
    secret = SECRET.encode("utf-8")
    assert verify_request([secret], headers, raw)
    assert verify_request([b"the new secret", secret], headers, raw)  # during a rotation
    assert not verify_request([b"another secret"], headers, raw)
    assert not verify_request([secret], headers, raw + b" ")
    assert not verify_request([secret], headers, raw.replace(b"acme", b"acne", 1))
    signed_at = int(headers["X-Auditstream-Timestamp"])
    assert not verify_request([secret], headers, raw, now=signed_at + 301)
    assert not verify_request([secret], headers, raw, now=signed_at - 301)
    assert verify_request([secret], headers, raw, now=signed_at + 299)
    forged = {**dict(headers.items()), "X-Auditstream-Timestamp": str(signed_at + 1)}
    assert not verify_request([secret], forged, raw)


def test_several_signature_values_any_one_matching(verify_request: VerifyRequest) -> None:
    import hashlib
    import hmac

    now = int(time.time())
    body = b"[]"
    good = hmac.new(b"s2", f"{now}.".encode() + body, hashlib.sha256).hexdigest()
    headers = Message()
    headers["X-Auditstream-Timestamp"] = str(now)
    headers["X-Auditstream-Signature"] = f"v1={'0' * 64}, v2=whatever,v1={good}"
    assert verify_request([b"s2"], headers, body)
    del headers["X-Auditstream-Signature"]
    headers["X-Auditstream-Signature"] = f"v2={good}"  # another scheme is ignored
    assert not verify_request([b"s2"], headers, body)


def test_the_header_table_matches_the_requests(server: tuple[str, Received]) -> None:
    url, received = server
    sink = _sink(url)
    try:
        sink.write(_batch())
        sink.probe()
    finally:
        sink.close()
    (batch_headers, _), (check_headers, check_body) = received.requests
    documented = {row[0].strip("`") for row in _table_rows(_doc_section("The request"))}
    assert documented == {
        "Content-Type",
        "X-Auditstream-Timestamp",
        "X-Auditstream-Signature",
        "Idempotency-Key",
        "X-Auditstream-Destination",
        "User-Agent",
        "X-Auditstream-Check",
    }
    for name in documented - {"X-Auditstream-Check"}:
        assert batch_headers[name], name
    assert batch_headers["X-Auditstream-Check"] is None
    assert batch_headers["Content-Type"] == "application/json"
    assert re.fullmatch(r"\d+", batch_headers["X-Auditstream-Timestamp"])
    assert re.fullmatch(r"v1=[0-9a-f]{64}", batch_headers["X-Auditstream-Signature"])
    assert batch_headers["X-Auditstream-Destination"] == DESTINATION
    assert batch_headers["User-Agent"].startswith("auditstream/")
    assert check_headers["X-Auditstream-Check"] == "1"
    assert check_body == b"[]"
    assert re.fullmatch(rf"{DESTINATION}:check:[0-9a-f-]+", check_headers["Idempotency-Key"])


def _keys(url: str, received: Received, *batches: Batch) -> list[str]:
    sink = _sink(url)
    try:
        for batch in batches:
            try:
                sink.write(batch)
            except TransientError:
                sink.write(batch)  # the retry
    finally:
        sink.close()
    return [headers["Idempotency-Key"] for headers, _ in received.requests]


def test_delivery_identities_are_as_documented(server: tuple[str, Received]) -> None:
    url, received = server
    received.answers = [503]  # the first attempt fails and is retried
    keys = _keys(url, received, _batch(0, 1500, 500), _batch(0, 1500, 500, replay_id="r-77"))
    # As the doc's examples write them.
    assert keys == [
        "acme-siem:0:1500-1999",
        "acme-siem:0:1500-1999",
        "acme-siem:0:1500-1999:replay:r-77",
    ]
    text = _doc_section("Retries and replays")
    assert "`acme-siem:0:1500-1999`" in text
    assert "`<destination id>:<partition>:<first offset>-<last\noffset>`" in text
    assert ":replay:<replay\nid>`" in text


_RANGE = "`(\\d{3})`\u2013`(\\d{3})`"


def _statuses(codes: str) -> list[int]:
    """The statuses a table cell names: `408`, a range `500` to `599` (an en dash between),
    `3xx`."""
    out: list[int] = []
    for low, high in re.findall(_RANGE, codes):
        out += range(int(low), int(high) + 1)
    codes = re.sub(_RANGE, "", codes)
    out += [int(c) for c in re.findall(r"`(\d{3})`", codes)]
    for digit in re.findall(r"`(\d)xx`", codes):
        out += range(int(digit) * 100, int(digit) * 100 + 100)
    return out


def test_the_answer_table_matches_the_retry_decisions() -> None:
    rows = _table_rows(_doc_section("What your answer means"))
    seen: set[int] = set()
    for answer, effect in rows:
        statuses = [s for s in _statuses(answer) if s not in seen]
        if "any other" in answer:
            statuses = [s for s in range(400, 500) if s not in seen]
        seen.update(statuses)
        for status in statuses:
            error = classify_response(status, {}, time.time())
            if effect.startswith("delivered"):
                assert error is None, status
            elif effect.startswith("retried"):
                assert isinstance(error, TransientError), status
            else:
                assert "not retried at once" in effect, effect
                assert isinstance(error, PermanentError), status
    assert {200, 204, 301, 400, 401, 408, 429, 499, 500, 599} <= seen


def test_the_readme_links_here() -> None:
    assert "(docs/webhooks.md)" in (ROOT / "README.md").read_text(encoding="utf-8")
