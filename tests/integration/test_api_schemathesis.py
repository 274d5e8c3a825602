"""Property-based run against the OpenAPI document (schemathesis, in-process ASGI): no 5xx, every
answer's status documented and its body matching the documented schema.

Requests carry an owner's token; account and destination ids are mostly pointed at the ones that
exist, so the routes behind the access checks are exercised too. Destination checks use a fake
(no request leaves the machine) and no name resolves (the resolver is empty).
"""

from __future__ import annotations

import time
import warnings
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

from auditstream.api.app import create_app, openapi_document
from auditstream.api.options import ApiOptions
from auditstream.api.service import SettingsService
from auditstream.api.tokens import create_token
from auditstream.config.secrets import SecretBox
from auditstream.pipeline.embedded_log import EmbeddedLog
from auditstream.sinks.check import CheckResult
from auditstream.store.sqlite_store import SqliteStore
from tests.factories import make_event
from tests.fake_resolver import fake_resolver

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

ACCOUNT = "acme"
EXISTING = ("acme-files", "acme-hook", "acme-gone")
EVENTS = [make_event(account_id=ACCOUNT, details={"n": str(i)}) for i in range(5)]
STATE: dict[str, str] = {}


def _no_network_check(destination: Any, local_root: Path | None = None, **_: Any) -> CheckResult:
    return CheckResult(True, None, f"destination {destination.id} checked (fake)", ["fake"])


FIXED = [
    {"id": "acme-files", "type": "local", "path": "files"},
    {"id": "acme-hook", "type": "webhook", "url": "https://siem.example.com/in", "secret": "s"},
]


@dataclass
class Fuzzed:
    schema: Any
    client: TestClient
    auth: dict[str, str]

    def restore(self) -> None:
        """The fixed destinations exist and are not being deleted (a DELETE case may have
        removed them)."""
        base = f"/v1/accounts/{ACCOUNT}/destinations"
        for body in FIXED:
            shown = self.client.get(f"{base}/{body['id']}", headers=self.auth)
            if shown.status_code == 200 and not shown.json()["deleting"]:
                continue
            if shown.status_code == 200:
                self.client.delete(f"{base}/{body['id']}?force=true", headers=self.auth)
            for d in self.client.get(base, headers=self.auth).json()["destinations"]:
                if d["id"] not in EXISTING:  # make room under the limit
                    self.client.delete(f"{base}/{d['id']}?force=true", headers=self.auth)
            deadline = time.monotonic() + 15
            while True:  # a removed id is free again once its topic is deleted (the janitor)
                created = self.client.post(base, json=body, headers=self.auth)
                if created.status_code != 409 or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            assert created.status_code == 201, created.text


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    root = tmp_path_factory.mktemp("schemathesis")
    log = EmbeddedLog(root / "log.sqlite")
    options = ApiOptions(
        max_destinations=5,
        resolver=fake_resolver({"siem.example.com": ["93.184.216.34"]}),
        local_root=root / "out",
        janitor_interval=0.5,
        delete_grace=0.5,
        activity_reads_per_second=10_000,  # 429s would hide the routes behind them
        activity_read_burst=10_000,
    )
    store = SqliteStore(root / "audit.db")
    store.append(EVENTS)
    service = SettingsService(
        log,
        SecretBox([SecretBox.generate_key()]),
        options,
        check=_no_network_check,
        audit_store=store,
    )
    token, _ = create_token(log, account_id=ACCOUNT, user_id="fuzzer", role="owner")
    STATE["token"] = token
    app = create_app(service, options)
    with TestClient(app) as client:  # runs the janitor too
        yield Fuzzed(
            schemathesis.openapi.from_asgi("/openapi.json", app),
            client,
            {"Authorization": f"Bearer {token}"},
        )
    service.close()
    log.close()
    store.close()


_DOC = openapi_document()["paths"]
# (method, path, mode): negative cases only where there is something to break
CASES = [
    (method.upper(), path, mode)
    for path, operations in _DOC.items()
    for method, spec in operations.items()
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    if mode is GenerationMode.POSITIVE or spec.get("parameters") or spec.get("requestBody")
]
CASES.sort(key=lambda c: c[0] == "DELETE")  # deletions last


def _aim(case: Any) -> None:
    """Point most cases at the existing account and destinations (chosen from the generated
    value, so Hypothesis still shrinks)."""
    params = case.path_parameters or {}
    if "account_id" in params and zlib.crc32(str(params["account_id"]).encode()) % 5:
        params["account_id"] = ACCOUNT
    if "destination_id" in params:
        pick = zlib.crc32(str(params["destination_id"]).encode()) % 4
        if pick < len(EXISTING):
            params["destination_id"] = EXISTING[pick]
    if "event_id" in params and zlib.crc32(str(params["event_id"]).encode()) % 2:
        params["event_id"] = str(EVENTS[0]["event_id"])


# schemathesis' own pytest integration (lazy fixtures) does not work with pytest 9: each
# operation is run here with Hypothesis directly.
@pytest.mark.parametrize(
    ("method", "path", "mode"), CASES, ids=[f"{m} {p} {g.value}" for m, p, g in CASES]
)
def test_no_server_errors(fuzzed: Fuzzed, method: str, path: str, mode: GenerationMode) -> None:
    fuzzed.restore()
    operation = fuzzed.schema[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=25,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        _aim(case)
        case.call_and_validate(
            headers={"Authorization": f"Bearer {STATE['token']}"},
            checks=[not_a_server_error, status_code_conformance, response_schema_conformance],
        )

    run()
