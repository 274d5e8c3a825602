"""Destination URLs that would make the platform reach internal addresses are refused (422
naming the field), when set and again when a destination is checked."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from auditstream.api.app import create_app
from auditstream.api.options import ApiOptions
from auditstream.api.service import SettingsService
from auditstream.api.tokens import create_token
from auditstream.config.secrets import SecretBox
from auditstream.pipeline import topics
from auditstream.pipeline.embedded_log import EmbeddedLog

NAMES: dict[str, list[str]] = {
    "siem.example.com": ["93.184.216.34"],
    "localhost.example.com": ["127.0.0.1"],
    "intranet.example.com": ["10.0.0.1"],
    "metadata.example.com": ["169.254.169.254"],
    "v6-loopback.example.com": ["::1"],
    "split.example.com": ["93.184.216.34", "192.168.10.10"],
}


def _resolve(host: str, _port: int) -> list[str]:
    try:
        return list(NAMES[host])
    except KeyError:
        raise OSError("unknown name") from None


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str], EmbeddedLog]]:
    log = EmbeddedLog(tmp_path / "log.sqlite")
    options = ApiOptions(resolver=_resolve)
    service = SettingsService(log, SecretBox([SecretBox.generate_key()]), options)
    token, _ = create_token(log, account_id="acme", user_id="ada", role="owner")
    with TestClient(create_app(service, options)) as client:
        yield client, {"Authorization": f"Bearer {token}"}, log
    service.close()
    log.close()


def _hook(url: str, id_: str = "acme-hook") -> dict[str, Any]:
    return {"id": id_, "type": "webhook", "url": url, "secret": "s"}


REFUSED = [
    "https://127.0.0.1/in",
    "https://10.0.0.1/in",
    "https://169.254.169.254/latest/meta-data/iam/",
    "https://[::1]/in",
    "https://[::ffff:127.0.0.1]/in",
    "https://localhost.example.com/in",
    "https://intranet.example.com/in",
    "https://metadata.example.com/in",
    "https://v6-loopback.example.com/in",
    "https://split.example.com/in",
    "http://siem.example.com/in",  # plain http is not allowed by default
    "https://unknown-name.example.com/in",
]


@pytest.mark.parametrize("url", REFUSED)
def test_refused_webhook_urls(
    api: tuple[TestClient, dict[str, str], EmbeddedLog], url: str
) -> None:
    client, auth, log = api
    before = sum(log.end_offsets(topics.SETTINGS).values())
    answer = client.post("/v1/accounts/acme/destinations", json=_hook(url), headers=auth)
    assert answer.status_code == 422, answer.text
    (error,) = answer.json()["detail"]
    assert error["loc"] == ["body", "url"]
    for address in ("127.0.0.1", "10.0.0.1", "169.254.169.254", "192.168.10.10"):
        if address not in url:
            assert address not in error["msg"]  # resolved addresses are never shown
    assert sum(log.end_offsets(topics.SETTINGS).values()) == before
    assert topics.destination_topic("acme-hook") not in log.list_topics()


@pytest.mark.parametrize("url", REFUSED[:5])
def test_refused_on_change_too(
    api: tuple[TestClient, dict[str, str], EmbeddedLog], url: str
) -> None:
    client, auth, _log = api
    created = client.post(
        "/v1/accounts/acme/destinations", json=_hook("https://siem.example.com/in"), headers=auth
    )
    assert created.status_code == 201, created.text
    answer = client.patch(
        "/v1/accounts/acme/destinations/acme-hook",
        json={"type": "webhook", "url": url, "secret": "s"},  # a new URL needs the secret again
        headers=auth,
    )
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["body", "url"]
    shown = client.get("/v1/accounts/acme/destinations/acme-hook", headers=auth).json()
    assert shown["url"] == "https://siem.example.com/in"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            {
                "type": "s3",
                "bucket": "bkt",
                "access_key_id": "a",
                "secret_access_key": "b",
                "endpoint_url": "https://169.254.169.254",
            },
            "endpoint_url",
        ),
        (
            {
                "type": "gcs",
                "bucket": "bkt",
                "anonymous": True,
                "endpoint": "https://intranet.example.com",
            },
            "endpoint",
        ),
        (
            {
                "type": "azure_blob",
                "container": "cont",
                "sas_token": "sv=1",
                "account_url": "https://localhost.example.com/acct",
            },
            "account_url",
        ),
    ],
)
def test_refused_store_endpoints(
    api: tuple[TestClient, dict[str, str], EmbeddedLog], body: dict[str, Any], field: str
) -> None:
    client, auth, _log = api
    answer = client.post(
        "/v1/accounts/acme/destinations", json={"id": "store", **body}, headers=auth
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"][0]["loc"] == ["body", field]


def test_check_refuses_a_name_that_now_resolves_inside(
    api: tuple[TestClient, dict[str, str], EmbeddedLog],
) -> None:
    """DNS changes after a destination was set: the check resolves again and sends nothing."""
    client, auth, _log = api
    NAMES["rebind.example.com"] = ["93.184.216.34"]
    try:
        created = client.post(
            "/v1/accounts/acme/destinations",
            json=_hook("https://rebind.example.com/in"),
            headers=auth,
        )
        assert created.status_code == 201, created.text
        NAMES["rebind.example.com"] = ["169.254.169.254"]
        result = client.post("/v1/accounts/acme/destinations/acme-hook/check", headers=auth).json()
    finally:
        NAMES.pop("rebind.example.com", None)
    assert result["ok"] is False
    assert result["cause"] == "address_refused"
    assert "metadata" in result["message"]
