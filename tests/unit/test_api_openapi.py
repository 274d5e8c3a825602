"""The committed OpenAPI document is the one the code generates."""

from __future__ import annotations

import json
from pathlib import Path

from auditstream.api.app import openapi_document

COMMITTED = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


def test_committed_openapi_matches_the_code() -> None:
    generated = openapi_document()
    committed = json.loads(COMMITTED.read_text(encoding="utf-8"))
    assert committed == generated, (
        "docs/openapi.json is out of date: regenerate it with "
        "`auditstream api --print-openapi > docs/openapi.json` and commit it"
    )


def test_every_v1_operation_requires_a_token_and_documents_its_errors() -> None:
    doc = openapi_document()
    for path, operations in doc["paths"].items():
        if not path.startswith("/v1/"):
            continue
        for method, operation in operations.items():
            assert operation["security"] == [{"HTTPBearer": []}], (method, path)
            for status in ("401", "403", "404", "413", "422"):
                assert status in operation["responses"], (method, path, status)
