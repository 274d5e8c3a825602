"""The settings API against a tenant who probes it: values never come back in a 4xx answer, every
path-bearing input is a 422 (never a 500), secrets do not follow a destination to a new
address, external ids are the platform's, nested addresses pass the address policy, and a
name rebound after it was saved gets no connection at check time."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from auditstream.api.app import create_app
from auditstream.api.models import CREATE_MODELS, PATCH_MODELS, SOURCES
from auditstream.api.options import ApiOptions
from auditstream.api.service import SettingsService
from auditstream.api.tokens import create_token
from auditstream.config.address_policy import parse_networks
from auditstream.config.external_id import external_id_for
from auditstream.config.secrets import SecretBox
from auditstream.pipeline import topics
from auditstream.pipeline.embedded_log import EmbeddedLog

MARKER = "zqMarker7731"
STREAM = "/v1/accounts/acme/stream"
DESTS = "/v1/accounts/acme/destinations"
KEY = b"external-id-key-for-tests-0123456789"
ROLE = "arn:aws:iam::123456789012:role/auditstream-writer"
NAMES: dict[str, list[str]] = {
    "siem.example.com": ["93.184.216.34"],
    "other.example.com": ["93.184.216.35"],
    "store.example.com": ["93.184.216.36"],
    "acct.blob.core.windows.net": ["20.60.1.1"],
    "acct.blob.corp.example.com": ["10.1.1.1"],
    "oauth2.googleapis.com": ["142.250.1.1"],
    "storage.googleapis.com": ["142.250.1.2"],
    "dce-1.westeurope-1.ingest.monitor.azure.com": ["20.50.1.1"],
}


def _key_file(**overrides: Any) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    info = {
        "type": "service_account",
        "project_id": "my-project",
        "private_key_id": "k1",
        "private_key": pem,
        "client_email": "w@my-project.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": "https://oauth2.googleapis.com/token",
        **overrides,
    }
    return json.dumps(info)


KEY_FILE = _key_file()
SAMPLES: dict[str, dict[str, Any]] = {
    "local": {"type": "local", "path": "files"},
    "webhook": {
        "type": "webhook",
        "url": "https://siem.example.com/in",
        "secret": "signing-Secret-31",
        "headers": {"Authorization": "Splunk hdr-Token-88"},
    },
    "s3": {
        "type": "s3",
        "bucket": "acme-audit",
        "access_key_id": "AKIA-Key-Value",
        "secret_access_key": "s3-Secret-Value",
    },
    "gcs": {"type": "gcs", "bucket": "acme-audit", "service_account_json": KEY_FILE},
    "azure_blob": {
        "type": "azure_blob",
        "container": "audit",
        "account_url": "https://acct.blob.core.windows.net",
        "sas_token": "sv=2024&sig=Azure-Sas-Value",
    },
    "splunk_hec": {
        "type": "splunk_hec",
        "url": "https://siem.example.com:8088",
        "token": "Hec-Token-Value-77",
    },
    "datadog_logs": {"type": "datadog_logs", "api_key": "DatadogApiKeyValue0123456789abcd"},
    "azure_monitor_logs": {
        "type": "azure_monitor_logs",
        "endpoint": "https://dce-1.westeurope-1.ingest.monitor.azure.com",
        "dcr_immutable_id": "dcr-0123456789abcdef0123456789abcdef",
        "stream_name": "Custom-AuditStream_CL",
        "tenant_id": "72f988bf-86f1-41af-91ab-2d7cd011db47",
        "client_id": "11111111-2222-3333-4444-555555555555",
        "client_secret": "Monitor-Secret-Value-55",
    },
}


@dataclass
class Api:
    client: TestClient
    auth: dict[str, str]
    log: EmbeddedLog
    names: dict[str, list[str]]

    def post(self, body: dict[str, Any]) -> Any:
        return self.client.post(DESTS, json=body, headers=self.auth)

    def patch(self, destination_id: str, body: dict[str, Any]) -> Any:
        return self.client.patch(f"{DESTS}/{destination_id}", json=body, headers=self.auth)

    def settings_offset(self) -> int:
        return sum(self.log.end_offsets(topics.SETTINGS).values())


def _make_api(tmp_path: Path, **options: Any) -> Iterator[Api]:
    names = {k: list(v) for k, v in NAMES.items()}

    def resolve(host: str, _port: int) -> list[str]:
        try:
            return list(names[host.lower()])
        except KeyError:
            raise OSError("unknown name") from None

    log = EmbeddedLog(tmp_path / "log.sqlite")
    api_options = ApiOptions(
        resolver=resolve,
        local_root=tmp_path / "out",
        max_destinations=50,
        **options,
    )
    service = SettingsService(log, SecretBox([SecretBox.generate_key()]), api_options)
    token, _ = create_token(log, account_id="acme", user_id="ada", role="owner")
    try:
        with TestClient(create_app(service, api_options)) as client:
            yield Api(client, {"Authorization": f"Bearer {token}"}, log, names)
    finally:
        service.close()
        log.close()


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    yield from _make_api(tmp_path, external_id_key=KEY)


# -- no 4xx answer echoes a value ----------------------------------------------------------------

VARIANTS: list[Any] = [
    MARKER,
    f"{MARKER}\0",
    f"../{MARKER}",
    f"/{MARKER}",
    f"https://{MARKER}.example.com/x",
    f"https://{MARKER}@siem.example.com/x",
    f"AccountName={MARKER};AccountKey=k",
    f"BlobEndpoint=https://{MARKER}.example.com;SharedAccessSignature=sv=1",
    json.dumps({"type": "service_account", "token_uri": f"https://{MARKER}.example.com/t"}),
    json.dumps({"type": MARKER}),
    [MARKER],
    {f"Bearer {MARKER}": MARKER},  # a key that is not a name (a pasted credential?)
    {"Authorization": MARKER},
    {"max_events": MARKER},
]


def _no_echo(answer: Any) -> None:
    assert answer.status_code != 500, answer.text
    if 400 <= answer.status_code < 500:
        assert MARKER not in answer.text
        assert MARKER.lower() not in answer.text.lower()


@pytest.mark.parametrize("kind", sorted(SOURCES))
def test_no_create_answer_echoes_a_value_in_any_field(api: Api, kind: str) -> None:
    fields = [n for n in CREATE_MODELS[kind].model_fields if n != "type"]
    n = 0
    for field in fields:
        for value in VARIANTS:
            n += 1
            body = {**SAMPLES[kind], "id": f"m{n}", field: value}
            _no_echo(api.post(body))
    every = {n: MARKER for n in fields}
    _no_echo(api.post({**every, "type": kind}))
    _no_echo(api.post({**SAMPLES[kind], "id": "tag", "type": MARKER}))


@pytest.mark.parametrize("kind", sorted(SOURCES))
def test_no_patch_answer_echoes_a_value_in_any_field(api: Api, kind: str) -> None:
    created = api.post({**SAMPLES[kind], "id": f"p-{kind.replace('_', '-')}"})
    assert created.status_code == 201, created.text
    destination_id = created.json()["id"]
    for field in PATCH_MODELS[kind].model_fields:
        if field == "type":
            continue
        for value in VARIANTS:
            _no_echo(api.patch(destination_id, {"type": kind, field: value}))
    _no_echo(api.patch(destination_id, {"type": MARKER}))


def test_no_stream_answer_echoes_a_value(api: Api) -> None:
    fields = ["streaming_enabled", "include_categories", "include_activities"]
    fields += ["exclude_activities", "redact"]
    for field in fields:
        for value in VARIANTS:
            body: dict[str, Any] = {"streaming_enabled": True, field: value}
            _no_echo(api.client.put(STREAM, json=body, headers=api.auth))
    for field in fields[1:]:
        body = {"streaming_enabled": True, field: ["user_login", MARKER]}
        answer = api.client.put(STREAM, json=body, headers=api.auth)
        assert answer.status_code == 422
        _no_echo(answer)
    pasted = api.client.put(
        STREAM, json={"streaming_enabled": True, f"{MARKER}=": 1}, headers=api.auth
    )
    _no_echo(pasted)
    assert pasted.json()["detail"][0]["loc"] == ["body", "(unknown field)"]
    named = api.client.put(STREAM, json={"streaming_enabled": True, "colour": 1}, headers=api.auth)
    assert named.json()["detail"][0]["loc"] == ["body", "colour"]  # a field name is named


def test_no_action_answer_echoes_a_value(api: Api) -> None:
    assert api.post({**SAMPLES["local"], "id": "acts"}).status_code == 201
    for value in VARIANTS:
        _no_echo(
            api.client.post(f"{DESTS}/acts/replay", json={"from_time": value}, headers=api.auth)
        )


# -- paths ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        {"path": "a\0b"},
        {"path": "../../x"},
        {"path": "/etc"},
        {"path": "a/./b"},
        {"path": "a//b"},
        {"prefix": "../../x"},
        {"prefix": "a\0b"},
        {"prefix": "/../x"},
        {"prefix": "a\nb"},
    ],
)
def test_every_path_bearing_input_is_a_422(api: Api, change: dict[str, Any]) -> None:
    before = api.settings_offset()
    answer = api.post({**SAMPLES["local"], "id": "paths", **change})
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"][0]["loc"][:2] == ["body", next(iter(change))]
    assert api.post({**SAMPLES["local"], "id": "paths"}).status_code == 201
    patched = api.patch("paths", {"type": "local", **change})
    assert patched.status_code == 422, patched.text
    check = api.client.post(f"{DESTS}/paths/check", headers=api.auth)
    assert check.status_code == 200
    assert check.json()["ok"] is True
    assert api.settings_offset() == before + 1


# -- secrets do not follow a destination to a new address ----------------------------------------


def test_a_new_webhook_url_needs_the_secret_and_headers_again(api: Api) -> None:
    assert api.post({**SAMPLES["webhook"], "id": "hook"}).status_code == 201
    before = api.settings_offset()
    for patch in (
        {"type": "webhook", "url": "https://other.example.com/in"},
        {"type": "webhook", "url": "https://other.example.com/in", "secret": "********"},
        {
            "type": "webhook",
            "url": "https://other.example.com/in",
            "secret": "new-Secret-1",
            "headers": {"Authorization": "********"},
        },
    ):
        answer = api.patch("hook", patch)
        assert answer.status_code == 422, answer.text
        locs = [e["loc"] for e in answer.json()["detail"]]
        assert ["body", "headers", "Authorization"] in locs
        assert all(e["type"] == "secret_required" for e in answer.json()["detail"])
        for hidden in ("signing-Secret-31", "hdr-Token-88"):
            assert hidden not in answer.text
    assert api.settings_offset() == before
    shown = api.client.get(f"{DESTS}/hook", headers=api.auth).json()
    assert shown["url"] == "https://siem.example.com/in"
    moved = api.patch(
        "hook",
        {
            "type": "webhook",
            "url": "https://other.example.com/in",
            "secret": "new-Secret-1",
            "headers": {"Authorization": "Splunk new-Token"},
        },
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["url"] == "https://other.example.com/in"
    assert api.patch("hook", {"type": "webhook", "timeout_s": 3}).status_code == 200


@pytest.mark.parametrize(
    ("kind", "patch", "resend"),
    [
        (
            "s3",
            {"endpoint_url": "https://store.example.com"},
            {"access_key_id", "secret_access_key"},
        ),
        ("azure_blob", {"account_url": "https://store.example.com/acct"}, {"sas_token"}),
        ("gcs", {"endpoint": "https://store.example.com"}, {"service_account_json"}),
    ],
)
def test_a_new_store_endpoint_needs_the_credentials_again(
    api: Api, kind: str, patch: dict[str, Any], resend: set[str]
) -> None:
    destination_id = f"st-{kind.replace('_', '-')}"
    assert api.post({**SAMPLES[kind], "id": destination_id}).status_code == 201
    answer = api.patch(destination_id, {"type": kind, **patch})
    assert answer.status_code == 422, answer.text
    assert {e["loc"][1] for e in answer.json()["detail"]} == resend
    again = {name: SAMPLES[kind][name] for name in resend}
    assert api.patch(destination_id, {"type": kind, **patch, **again}).status_code == 200


# -- external ids ---------------------------------------------------------------------------------


def test_the_external_id_is_shown_set_and_enforced(api: Api) -> None:
    shown = api.client.get("/v1/accounts/acme/aws-external-id", headers=api.auth)
    assert shown.status_code == 200
    external_id = shown.json()["external_id"]
    assert external_id == external_id_for("acme", KEY)
    role = {"id": "role", "type": "s3", "bucket": "acme-audit", "role_arn": ROLE}
    refused = api.post({**role, "external_id": "victims-external-id"})
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["body", "external_id"]
    assert "victims-external-id" not in refused.text
    created = api.post(role)
    assert created.status_code == 201, created.text
    assert created.json()["external_id"] == external_id
    again = api.patch("role", {"type": "s3", "external_id": "mine-now"})
    assert again.status_code == 422
    assert api.patch("role", {"type": "s3", "external_id": external_id}).status_code == 200
    dropped = api.patch(
        "role",
        {"type": "s3", "role_arn": None, "access_key_id": "AKIA2", "secret_access_key": "sk2"},
    )
    assert dropped.status_code == 200, dropped.text
    assert dropped.json()["external_id"] is None
    other = api.client.get("/v1/accounts/globex/aws-external-id", headers=api.auth)
    assert other.status_code == 404  # another account's: the guard answers first


def test_without_an_external_id_key_no_role_is_assumed(tmp_path: Path) -> None:
    for api in _make_api(tmp_path):
        assert (
            api.client.get("/v1/accounts/acme/aws-external-id", headers=api.auth).status_code == 404
        )
        answer = api.post({"id": "role", "type": "s3", "bucket": "acme-audit", "role_arn": ROLE})
        assert answer.status_code == 422
        assert answer.json()["detail"][0]["loc"] == ["body", "role_arn"]


# -- addresses hidden inside other fields ---------------------------------------------------------


@pytest.mark.parametrize(
    "connection_string",
    [
        "AccountName=127.0.0.1:10000;AccountKey=a2V5",
        "BlobEndpoint=https://acct.blob.core.windows.net;BlobEndpoint =http://127.0.0.1:10000;"
        "AccountKey=a2V5",
        "AccountName=acct;AccountKey=a2V5;EndpointSuffix=corp.example.com",
        "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=a2V5;"
        "EndpointSuffix=unknown.example.com",
        "UseDevelopmentStorage=true",
        "UseDevelopmentStorage=true;DevelopmentStorageProxyUri=https://siem.example.com",
        "BlobEndpoint=https://siem.example.com\\@127.0.0.1;SharedAccessSignature=sv=1",
    ],
)
def test_connection_strings_that_lead_inside_are_refused(api: Api, connection_string: str) -> None:
    body = {"id": "az", "type": "azure_blob", "container": "audit"}
    answer = api.post({**body, "connection_string": connection_string})
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"][0]["loc"] == ["body", "connection_string"]
    for hidden in ("a2V5", "127.0.0.1", "corp.example.com", "10.1.1.1"):
        assert hidden not in answer.text


@pytest.mark.parametrize(
    "token_uri",
    [
        "http://127.0.0.1:8080/token",
        "http://169.254.169.254/computeMetadata/v1/token",
        "https://siem.example.com/token",  # public, but not Google's
    ],
)
def test_a_key_files_token_uri_must_be_googles(api: Api, token_uri: str) -> None:
    body = {"id": "g", "type": "gcs", "bucket": "acme-audit"}
    answer = api.post({**body, "service_account_json": _key_file(token_uri=token_uri)})
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"][0]["loc"] == ["body", "service_account_json"]
    assert "127.0.0.1" not in answer.text
    assert "169.254" not in answer.text


def test_an_operator_may_allow_an_emulators_token_uri(tmp_path: Path) -> None:
    token_uri = "http://127.0.0.1:8080/token"
    for api in _make_api(
        tmp_path,
        allow_http=True,
        allowed_networks=parse_networks(["127.0.0.1/32"]),
        allowed_key_file_urls=(token_uri,),
    ):
        body = {"id": "g", "type": "gcs", "bucket": "acme-audit"}
        answer = api.post({**body, "service_account_json": _key_file(token_uri=token_uri)})
        assert answer.status_code == 201, answer.text


# -- names rebound after they were saved ---------------------------------------------------------


@pytest.mark.parametrize("kind", ["webhook", "s3", "azure_blob", "gcs"])
def test_a_name_rebound_to_loopback_gets_no_connection_at_check_time(api: Api, kind: str) -> None:
    body = dict(SAMPLES[kind])
    address = {
        "webhook": ("url", "https://store.example.com/in"),
        "s3": ("endpoint_url", "https://store.example.com"),
        "azure_blob": ("account_url", "https://store.example.com/acct"),
        "gcs": ("endpoint", "https://store.example.com"),
    }[kind]
    body[address[0]] = address[1]
    if kind == "gcs":
        body = {"type": "gcs", "bucket": "acme-audit", "endpoint": address[1], "anonymous": True}
    destination_id = f"rb-{kind.replace('_', '-')}"
    assert api.post({**body, "id": destination_id}).status_code == 201
    api.names["store.example.com"] = ["127.0.0.1"]
    result = api.client.post(f"{DESTS}/{destination_id}/check", headers=api.auth).json()
    assert result["ok"] is False
    assert result["cause"] == "address_refused"
    assert "127.0.0.1" not in json.dumps(result)


@pytest.mark.parametrize("kind", ["webhook", "s3"])
def test_a_name_rebound_between_policy_and_connection_gets_no_connection(
    tmp_path: Path, kind: str
) -> None:
    calls = {"n": 0}

    def resolve(host: str, _port: int) -> list[str]:
        if host == "store.example.com":
            calls["n"] += 1
            return ["93.184.216.36"] if calls["n"] % 2 == 1 else ["127.0.0.1"]
        try:
            return list(NAMES[host])
        except KeyError:
            raise OSError("unknown name") from None

    log = EmbeddedLog(tmp_path / "log.sqlite")
    options = ApiOptions(resolver=resolve, external_id_key=KEY)
    service = SettingsService(log, SecretBox([SecretBox.generate_key()]), options)
    token, _ = create_token(log, account_id="acme", user_id="ada", role="owner")
    auth = {"Authorization": f"Bearer {token}"}
    body = dict(SAMPLES[kind])
    body["url" if kind == "webhook" else "endpoint_url"] = "https://store.example.com/in"
    if kind == "s3":
        body["endpoint_url"] = "https://store.example.com"
    try:
        with TestClient(create_app(service, options)) as client:
            assert (
                client.post(DESTS, json={**body, "id": "rebind"}, headers=auth).status_code == 201
            )
            calls["n"] = 0  # the policy's look-up answers public, the sink's answers loopback
            result = client.post(f"{DESTS}/rebind/check", headers=auth).json()
    finally:
        service.close()
        log.close()
    assert result["ok"] is False
    assert result["cause"] == "address_refused"
    assert "refused before connecting" in result["message"]
    assert "127.0.0.1" not in json.dumps(result)
