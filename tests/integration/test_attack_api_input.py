"""The settings API against input of the wrong size and shape, through the real app on the
embedded log: every field of every destination kind (found by type, iterating the registry)
given numbers at the edges, text that cannot be stored, and header values an HTTP client cannot
send. Each must be a 422 naming the field and never the value: never a 500, never stored."""

from __future__ import annotations

import json
import math
import types
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union, get_args, get_origin

import pytest
from pydantic import BaseModel

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from auditstream.api.app import create_app
from auditstream.api.options import ApiOptions
from auditstream.api.service import SettingsService
from auditstream.api.tokens import create_token
from auditstream.config.fields import secret_fields
from auditstream.config.secrets import SecretBox
from auditstream.pipeline import topics
from auditstream.pipeline.embedded_log import EmbeddedLog
from auditstream.sinks.registry import KINDS
from tests.fake_resolver import fake_resolver

DESTS = "/v1/accounts/acme/destinations"
NAMES = {
    "siem.example.com": ["93.184.216.34"],
    "acct.blob.core.windows.net": ["20.60.1.1"],
    "store.example.com": ["93.184.216.36"],
}
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
        "access_key_id": "AKIAKEYVALUE",
        "secret_access_key": "s3-Secret-Value",
        "session_token": "session-Token-Value",
    },
    "gcs": {
        "type": "gcs",
        "bucket": "acme-audit",
        "endpoint": "https://store.example.com",
        "anonymous": True,
    },
    "azure_blob": {
        "type": "azure_blob",
        "container": "audit",
        "account_url": "https://acct.blob.core.windows.net",
        "sas_token": "sv=2024&sig=Azure-Sas-Value",
    },
    "splunk_hec": {"type": "splunk_hec", "url": "https://siem.example.com", "token": "hec-Token-1"},
    "datadog_logs": {"type": "datadog_logs", "api_key": "a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4"},
    "azure_monitor_logs": {
        "type": "azure_monitor_logs",
        "endpoint": "https://siem.example.com",
        "dcr_immutable_id": "dcr-0123456789abcdef0123456789abcdef",
        "stream_name": "Custom-AuditStream_CL",
        "tenant_id": "contoso.onmicrosoft.com",
        "client_id": "11111111-2222-3333-4444-555555555555",
        "client_secret": "s3cret",
    },
}
# Secret fields a sample does not set, and what makes a valid destination with each set.
SECRET_SAMPLES: dict[tuple[str, str], dict[str, Any]] = {
    ("gcs", "service_account_json"): {"anonymous": False},
    ("azure_blob", "account_key"): {"sas_token": None, "account_name": "acct"},
    ("azure_blob", "connection_string"): {"sas_token": None, "account_url": None},
}


@dataclass
class Api:
    client: TestClient
    auth: dict[str, str]
    log: EmbeddedLog

    def post_raw(self, body: dict[str, Any]) -> Any:
        # json.dumps escapes a lone surrogate (\ud800) as JSON allows; httpx would refuse it.
        return self.client.post(
            DESTS,
            content=json.dumps(body, allow_nan=True),
            headers={**self.auth, "content-type": "application/json"},
        )

    def patch_raw(self, destination_id: str, body: dict[str, Any]) -> Any:
        return self.client.patch(
            f"{DESTS}/{destination_id}",
            content=json.dumps(body, allow_nan=True),
            headers={**self.auth, "content-type": "application/json"},
        )

    def settings_offset(self) -> int:
        return sum(self.log.end_offsets(topics.SETTINGS).values())


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    log = EmbeddedLog(tmp_path / "log.sqlite")
    options = ApiOptions(
        resolver=fake_resolver(NAMES),
        max_destinations=50,
        allow_ambient_credentials=True,
    )
    service = SettingsService(log, SecretBox([SecretBox.generate_key()]), options)
    token, _ = create_token(log, account_id="acme", user_id="ada", role="owner")
    try:
        with TestClient(create_app(service, options), raise_server_exceptions=False) as client:
            yield Api(client, {"Authorization": f"Bearer {token}"}, log)
    finally:
        service.close()
        log.close()


def _sample(kind: str, n: int = 0) -> dict[str, Any]:
    """A valid ``kind`` destination; the ``n``-th has its own object prefix (destinations of
    one account must not write the same objects)."""
    assert kind in SAMPLES, f"add a {kind} destination to SAMPLES"
    sample = dict(SAMPLES[kind])
    if "prefix" in KINDS[kind].model.model_fields:
        sample["prefix"] = f"p{n}"
    return sample


def _leaves(annotation: Any) -> list[Any]:
    if get_origin(annotation) in (Union, types.UnionType):
        return [a for a in get_args(annotation) if a is not type(None)]
    return [annotation]


def _number_fields(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Paths of every int or float field of ``model``, nested models included."""
    out: list[tuple[str, ...]] = []
    for name, info in model.model_fields.items():
        for leaf in _leaves(info.annotation):
            if leaf in (int, float):
                out.append((*prefix, name))
            elif isinstance(leaf, type) and issubclass(leaf, BaseModel):
                out.extend(_number_fields(leaf, (*prefix, name)))
    return out


def _set(body: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(json.dumps(body))
    target = out
    for part in path[:-1]:
        target = target.setdefault(part, {})
    target[path[-1]] = value
    return out


EDGE_NUMBERS: list[Any] = [2**64, -(2**64), 10**400, 1e308, -1, math.nan, math.inf, "12", [1]]


def _refused_naming(answer: Any, path: tuple[str, ...] | list[str | int]) -> None:
    assert answer.status_code == 422, answer.text
    locs = [e["loc"] for e in answer.json()["detail"]]
    assert any(loc[1 : 1 + len(path)] == list(path) for loc in locs), (path, locs)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_numbers_at_the_edges_are_refused_by_name_in_every_field(api: Api, kind: str) -> None:
    before = api.settings_offset()
    fields = _number_fields(KINDS[kind].model)
    assert ("batch", "max_events") in fields
    n = 0
    for path in fields:
        for value in EDGE_NUMBERS:
            n += 1
            body = _set({**_sample(kind, n), "id": f"n{n}"}, path, value)
            answer = api.post_raw(body)
            assert answer.status_code != 500, (path, value)
            if answer.status_code == 201:  # a valid value for this field (e.g. a big float)
                assert value in (1e308, -1, "12") or isinstance(value, int), (path, value)
                continue
            _refused_naming(answer, path)
    assert api.settings_offset() - before <= n  # nothing that was refused was stored


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_no_integer_field_accepts_more_than_64_bits(api: Api, kind: str) -> None:
    for i, path in enumerate(_number_fields(KINDS[kind].model)):
        answer = api.post_raw(_set({**_sample(kind, i), "id": f"b{i}"}, path, 2**63))
        assert answer.status_code in (201, 422), answer.text
        if answer.status_code == 201:  # a float field: stored as a float
            assert isinstance(answer.json()[path[0]], dict | float | int)


def _secret_cases() -> list[tuple[str, str]]:
    return sorted((kind, name) for kind, k in KINDS.items() for name in secret_fields(k.model))


@pytest.mark.parametrize(("kind", "field"), _secret_cases())
def test_a_secret_that_is_not_valid_unicode_is_a_422_naming_it(
    api: Api, kind: str, field: str
) -> None:
    before = api.settings_offset()
    body = {**_sample(kind), **SECRET_SAMPLES.get((kind, field), {}), "id": "sur"}
    body[field] = "ab\ud800cd"
    answer = api.post_raw(body)
    _refused_naming(answer, [field])
    assert "ud800" not in answer.text.lower()
    assert api.settings_offset() == before


def test_a_header_value_that_is_not_valid_unicode_is_a_422_naming_it(api: Api) -> None:
    body = {**_sample("webhook"), "id": "hs", "headers": {"X-Token": "\udfffab"}}
    _refused_naming(api.post_raw(body), ["headers"])


def test_patching_a_secret_that_is_not_valid_unicode_is_a_422(api: Api) -> None:
    assert api.post_raw({**_sample("webhook"), "id": "ps"}).status_code == 201
    before = api.settings_offset()
    _refused_naming(api.patch_raw("ps", {"type": "webhook", "secret": "x\ud800"}), ["secret"])
    assert api.settings_offset() == before
