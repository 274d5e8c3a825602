"""The Azure Monitor Logs sink: settings (nothing a tenant sets names the authority or leaves
the URL path), rows, request format and splitting, answers mapped to causes, the token side,
against httpx's MockTransport and a stand-in credential (no request leaves the process)."""

from __future__ import annotations

import gzip
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.core.pipeline.transport import HttpRequest
from pydantic import ValidationError

from auditstream.config.address_policy import AddressPolicy
from auditstream.config.destinations import STORED, AzureMonitorLogsDestination
from auditstream.config.errors import ConfigError
from auditstream.pipeline.log import Record
from auditstream.sinks.azure_monitor_logs import (
    AUTHORITY_CA_FILE_ENV,
    AUTHORITY_HOST_ENV,
    CHECK_COLUMN,
    MAX_REQUEST_BYTES,
    TRUNCATED_COLUMN,
    Authority,
    AuthorityTransport,
    AzureMonitorLogsSink,
    classify_answer,
    make_row,
    operator_authority,
    request_bodies,
    token_error,
)
from auditstream.sinks.base import NOTHING_WRITTEN
from auditstream.sinks.batch import Batch
from auditstream.sinks.errors import DeliveryError, PermanentError, TransientError
from tests.factories import make_event

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT = "11111111-2222-3333-4444-555555555555"
DCR = "dcr-0123456789abcdef0123456789abcdef"
STREAM = "Custom-AuditStream_CL"
OCCURRED = datetime(2026, 11, 27, 10, 0, 0, 123456, tzinfo=UTC)
NOW = OCCURRED.timestamp() + 60
SECRET = "very-secret-value"


def settings(**overrides: Any) -> dict[str, Any]:
    return {
        "id": "az-1",
        "type": "azure_monitor_logs",
        "endpoint": "https://dce-1.westeurope-1.ingest.monitor.azure.com",
        "dcr_immutable_id": DCR,
        "stream_name": STREAM,
        "tenant_id": TENANT,
        "client_id": CLIENT,
        "client_secret": SECRET,
        **overrides,
    }


def destination(**overrides: Any) -> AzureMonitorLogsDestination:
    return AzureMonitorLogsDestination.model_validate(settings(**overrides))


def make_batch(n: int, **event: Any) -> Batch:
    topic = "auditstream.dest.az-1"
    return Batch(
        "az-1",
        "acme",
        topic,
        0,
        records=[Record(topic, 0, i, b"acme", b"") for i in range(max(n, 1))],
        events=[make_event(**event) for _ in range(n)],
    )


@dataclass
class Token:
    token: str


@dataclass
class FakeCredential:
    """Stands in for ClientSecretCredential: a token, or the exception to raise."""

    error: BaseException | None = None
    calls: int = 0
    scopes: list[str] = field(default_factory=list)

    def get_token(self, *scopes: str) -> Token:
        self.calls += 1
        self.scopes.extend(scopes)
        if self.error is not None:
            raise self.error
        return Token("t0ken")

    def close(self) -> None:
        return None


@dataclass
class Intake:
    """A MockTransport handler that records requests and answers from a script."""

    answers: list[httpx.Response] = field(default_factory=list)
    requests: list[httpx.Request] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        return self.answers.pop(0) if self.answers else httpx.Response(204)

    def rows(self, index: int = 0) -> list[dict[str, Any]]:
        request = self.requests[index]
        body = request.content
        if request.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        parsed: list[dict[str, Any]] = json.loads(body)
        return parsed


def sink_with(
    intake: Intake,
    *,
    credential: FakeCredential | None = None,
    policy: AddressPolicy | None = None,
    **overrides: Any,
) -> AzureMonitorLogsSink:
    return AzureMonitorLogsSink(
        destination(**overrides),
        httpx.Client(transport=httpx.MockTransport(intake)),
        credential=credential or FakeCredential(),
        address_policy=policy,
        clock=lambda: NOW,
    )


# -- settings --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field_name", "value"),
    [
        ("stream_name", "Custom-../x"),
        ("stream_name", "Custom-X?api-version=1"),
        ("stream_name", "Custom-X#y"),
        ("stream_name", "Custom-X/streams/Custom-Y"),
        ("stream_name", "AuditStream_CL"),
        ("dcr_immutable_id", "dcr-../../x"),
        ("dcr_immutable_id", "dcr-0123"),
        ("tenant_id", "evil.example.com/x"),
        ("tenant_id", "evil.example.com:443"),
        ("tenant_id", "user@evil.example.com"),
        ("tenant_id", ".."),
        ("tenant_id", "https://evil.example.com"),
        ("client_id", "not-a-guid"),
        ("client_secret", "  "),
        ("endpoint", "https://dce.example.com/dataCollectionRules/dcr-1"),
        ("endpoint", "https://dce.example.com/?token=x"),
        ("endpoint", "ftp://dce.example.com"),
    ],
)
def test_settings_refuse_values_that_leave_their_place(field_name: str, value: str) -> None:
    with pytest.raises(ValidationError) as refused:
        destination(**{field_name: value})
    assert field_name in str(refused.value)


@pytest.mark.parametrize(
    "smuggled",
    [
        {"authority": "https://evil.example.com"},
        {"authority_host": "evil.example.com"},
        {"token_uri": "https://evil.example.com/token"},
        {"cloud": "https://evil.example.com"},
    ],
)
def test_no_setting_names_the_authority(smuggled: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        destination(**smuggled)


def test_a_domain_name_tenant_and_the_sovereign_clouds_are_accepted() -> None:
    d = destination(tenant_id="contoso.onmicrosoft.com", cloud="usgov")
    assert d.location() == (
        "Azure Monitor Logs at https://dce-1.westeurope-1.ingest.monitor.azure.com "
        f"(stream {STREAM})"
    )


def test_stored_settings_with_path_characters_are_refused_by_the_sink() -> None:
    stored = AzureMonitorLogsDestination.model_validate(
        settings(stream_name="Custom-../../x"), context=STORED
    )
    with pytest.raises(ConfigError, match="stream_name"):
        AzureMonitorLogsSink(stored, httpx.Client(), credential=FakeCredential())
    stored = AzureMonitorLogsDestination.model_validate(
        settings(tenant_id="evil.example.com/x"), context=STORED
    )
    with pytest.raises(ConfigError, match="tenant_id"):
        AzureMonitorLogsSink(stored, httpx.Client(), credential=FakeCredential())


# -- the authority -----------------------------------------------------------------------------


def test_the_authority_is_the_clouds_unless_the_operator_replaces_it() -> None:
    assert operator_authority("public", {}) == Authority("login.microsoftonline.com")
    assert operator_authority("usgov", {}).host == "login.microsoftonline.us"
    assert operator_authority("china", {}).host == "login.chinacloudapi.cn"
    env = {AUTHORITY_HOST_ENV: "https://127.0.0.1:8443", AUTHORITY_CA_FILE_ENV: "/ca.pem"}
    assert operator_authority("public", env) == Authority("127.0.0.1:8443", "/ca.pem")
    assert operator_authority("public", {AUTHORITY_HOST_ENV: "login.example"}).host == (
        "login.example"
    )


@pytest.mark.parametrize(
    "override",
    ["http://127.0.0.1:8080", "https://x/path", "https://u:p@x", "https://x?q=1", "https://:1"],
)
def test_an_override_that_is_not_an_https_origin_is_refused(override: str) -> None:
    with pytest.raises(ConfigError, match=AUTHORITY_HOST_ENV):
        operator_authority("public", {AUTHORITY_HOST_ENV: override})


def test_a_sink_uses_the_operators_authority_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(AUTHORITY_HOST_ENV, raising=False)
    default = AzureMonitorLogsSink(destination(), httpx.Client())
    assert "authority='login.microsoftonline.com'" in repr(default)
    default.close()
    monkeypatch.setenv(AUTHORITY_HOST_ENV, "https://127.0.0.1:9")
    replaced = AzureMonitorLogsSink(destination(), httpx.Client())
    assert "authority='127.0.0.1:9'" in repr(replaced)
    assert SECRET not in repr(replaced)
    replaced.close()


@pytest.mark.parametrize(
    "url",
    [
        "https://login.microsoftonline.com/common/discovery/instance",
        "https://evil.example.com/t/oauth2/v2.0/token",
        "http://127.0.0.1:9/t/oauth2/v2.0/token",
        "https://127.0.0.1:10/t/oauth2/v2.0/token",
        "https://169.254.169.254/metadata/instance",
    ],
)
def test_token_requests_go_to_the_authority_only(url: str) -> None:
    transport = AuthorityTransport(Authority("127.0.0.1:9"), 1.0)
    with pytest.raises(PermanentError) as refused:
        transport.send(HttpRequest("POST", url))
    assert refused.value.cause == "invalid_config"
    transport.close()


def test_token_failures_name_their_cause() -> None:
    inner = TransientError("no route", cause="unreachable")
    wrapped = ClientAuthenticationError("Authentication failed: no route")
    wrapped.__cause__ = inner
    assert token_error(wrapped, "refused") is inner
    refused = token_error(
        ClientAuthenticationError("Authentication failed: AADSTS7000215: Invalid client secret"),
        "Entra ID refused",
    )
    assert isinstance(refused, PermanentError)
    assert refused.cause == "bad_credentials"
    assert str(refused) == "Entra ID refused (AADSTS7000215)"


def test_a_refused_token_fails_the_write_and_the_check_as_bad_credentials() -> None:
    intake = Intake()
    error = ClientAuthenticationError("Authentication failed: AADSTS7000215: Invalid secret")
    sink = sink_with(intake, credential=FakeCredential(error=error))
    with pytest.raises(PermanentError) as refused:
        sink.write(make_batch(2))
    assert refused.value.cause == "bad_credentials"
    assert SECRET not in str(refused.value)
    result = sink.probe()
    assert (result.ok, result.cause) == (False, "bad_credentials")
    assert intake.requests == []  # nothing sent without a token


def test_the_token_scope_follows_the_cloud() -> None:
    credential = FakeCredential()
    sink_with(Intake(), credential=credential).write(make_batch(1))
    sink_with(Intake(), credential=credential, cloud="china").write(make_batch(1))
    assert credential.scopes == [
        "https://monitor.azure.com/.default",
        "https://monitor.azure.cn/.default",
    ]


# -- requests --------------------------------------------------------------------------------------


def test_a_batch_is_one_gzip_json_array_of_rows_with_time_generated() -> None:
    intake = Intake()
    batch = make_batch(3)
    result = sink_with(intake).write(batch)
    (request,) = intake.requests
    assert request.method == "POST"
    assert request.url.path == f"/dataCollectionRules/{DCR}/streams/{STREAM}"
    assert request.url.params["api-version"] == "2023-01-01"
    assert request.headers["Authorization"] == "Bearer t0ken"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Content-Encoding"] == "gzip"
    rows = intake.rows()
    assert [r["event_id"] for r in rows] == [e["event_id"] for e in batch.events]
    assert all(r["TimeGenerated"] == "2026-11-27T10:00:00.123456Z" for r in rows)
    assert rows[0]["actor"]["user_id"] == batch.events[0]["actor"]["user_id"]
    assert next(iter(rows[0])) == "TimeGenerated"
    assert result.deliveries == 1
    assert result.bytes_written == len(request.content)


def test_without_gzip_the_body_is_plain_json() -> None:
    intake = Intake()
    sink_with(intake, gzip=False).write(make_batch(2))
    assert "Content-Encoding" not in intake.requests[0].headers
    assert len(intake.rows()) == 2


def test_rows_carry_the_chosen_shape() -> None:
    intake = Intake()
    sink_with(intake, schema="ocsf").write(make_batch(1))
    (row,) = intake.rows()
    assert row["TimeGenerated"] == "2026-11-27T10:00:00.123456Z"
    assert row["class_uid"] == 3002
    assert "event_id" not in row


def test_an_empty_batch_sends_nothing() -> None:
    intake = Intake()
    credential = FakeCredential()
    assert sink_with(intake, credential=credential).write(make_batch(0)) == NOTHING_WRITTEN
    assert intake.requests == []
    assert credential.calls == 0


def test_a_large_batch_is_split_under_one_megabyte_per_request_in_order() -> None:
    intake = Intake()
    batch = make_batch(60, details={"blob": "x" * 40_000})
    result = sink_with(intake, gzip=False).write(batch)
    assert result.deliveries == len(intake.requests) > 1
    assert all(len(r.content) <= MAX_REQUEST_BYTES for r in intake.requests)
    ids = [row["event_id"] for i in range(len(intake.requests)) for row in intake.rows(i)]
    assert ids == [e["event_id"] for e in batch.events]


def test_an_event_over_the_limit_is_sent_as_a_marked_row(caplog: pytest.LogCaptureFixture) -> None:
    intake = Intake()
    batch = make_batch(1, details={"blob": "y" * 2_000_000})
    batch.events.append(make_event())
    with caplog.at_level(logging.WARNING):
        sink_with(intake, gzip=False).write(batch)
    assert all(len(r.content) <= MAX_REQUEST_BYTES for r in intake.requests)
    rows = [row for i in range(len(intake.requests)) for row in intake.rows(i)]
    marked, whole = rows
    assert marked["TimeGenerated"] == "2026-11-27T10:00:00.123456Z"
    assert marked[TRUNCATED_COLUMN]["event_id"] == batch.events[0]["event_id"]
    assert marked[TRUNCATED_COLUMN]["original_bytes"] > 2_000_000
    assert marked[TRUNCATED_COLUMN]["document"].startswith('{"event_id":')
    assert whole["event_id"] == batch.events[1]["event_id"]
    assert batch.events[0]["event_id"] in caplog.text


def test_rows_and_bodies_are_pure() -> None:
    event = make_event()
    row = make_row(event, b'{"a":1}', NOW)
    assert row.body == b'{"TimeGenerated":"2026-11-27T10:00:00.123456Z","a":1}'
    assert make_row(event, b"{}", NOW).body == b'{"TimeGenerated":"2026-11-27T10:00:00.123456Z"}'
    no_time = make_row({"event_id": "e"}, b"{}", 0.0)
    assert no_time.body == b'{"TimeGenerated":"1970-01-01T00:00:00Z"}'
    assert request_bodies([row, row], max_bytes=len(row.body) + 2) == [
        b"[" + row.body + b"]",
        b"[" + row.body + b"]",
    ]


# -- answers ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "cause", "error_type"),
    [
        (400, "invalid_request", PermanentError),
        (401, "bad_credentials", PermanentError),
        (403, "access_denied", PermanentError),
        (404, "dcr_missing", PermanentError),
        (413, "request_too_large", PermanentError),
        (408, "http_408", TransientError),
        (429, "http_429", TransientError),
        (500, "http_500", TransientError),
        (503, "http_503", TransientError),
    ],
)
def test_answers_map_to_causes(status: int, cause: str, error_type: type[DeliveryError]) -> None:
    content = json.dumps({"error": {"code": "SomeCode", "message": "x"}}).encode()
    error = classify_answer(status, {}, content, NOW, target="Azure Monitor Logs h")
    assert isinstance(error, error_type)
    assert error.cause == cause
    assert "SomeCode" in str(error)


def test_204_is_accepted_and_429_asks_for_its_retry_after() -> None:
    assert classify_answer(204, {}, b"", NOW, target="t") is None
    error = classify_answer(429, {"Retry-After": "7"}, b"", NOW, target="t")
    assert isinstance(error, TransientError)
    assert error.retry_after == 7


def test_a_refused_request_fails_the_whole_batch() -> None:
    intake = Intake([httpx.Response(204), httpx.Response(404, json={"error": {"code": "x"}})])
    batch = make_batch(60, details={"blob": "x" * 40_000})
    with pytest.raises(PermanentError) as refused:
        sink_with(intake, gzip=False).write(batch)
    assert refused.value.cause == "dcr_missing"
    assert len(intake.requests) == 2


# -- addresses ---------------------------------------------------------------------------------


def _resolver(answers: dict[str, str]) -> Callable[[str, int], list[str]]:
    def resolve(host: str, port: int) -> list[str]:
        return [answers[host]]

    return resolve


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://10.0.0.5",
        "https://169.254.169.254",
        "https://[::1]:8443",
        "https://dce.internal.example.com",
    ],
)
def test_an_endpoint_at_a_private_or_metadata_address_gets_no_request(endpoint: str) -> None:
    intake = Intake()
    policy = AddressPolicy(resolver=_resolver({"dce.internal.example.com": "192.168.1.9"}))
    sink = sink_with(intake, policy=policy, endpoint=endpoint)
    with pytest.raises(DeliveryError) as refused:
        sink.write(make_batch(1))
    assert refused.value.cause == "address_refused"
    assert intake.requests == []
    result = sink.probe()
    assert result.cause == "address_refused"


# -- the destination check ---------------------------------------------------------------------


def test_the_check_sends_one_marked_row() -> None:
    intake = Intake()
    result = sink_with(intake).probe()
    assert result.ok, result.message
    (row,) = intake.rows()
    assert row[CHECK_COLUMN]["destination"] == "az-1"
    assert "TimeGenerated" in row


@pytest.mark.parametrize(
    ("status", "cause"), [(403, "access_denied"), (404, "dcr_missing"), (401, "bad_credentials")]
)
def test_the_check_names_the_refusal(status: int, cause: str) -> None:
    result = sink_with(Intake([httpx.Response(status)])).probe()
    assert (result.ok, result.cause) == (False, cause)
    assert result.steps[0].endswith("granted")
