"""A router that cannot open an account's new settings keeps running on the old ones, and the
settings API says so: the destination is not "active, nothing waiting"."""

from __future__ import annotations

import warnings
from pathlib import Path

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from auditstream.api.app import create_app
from auditstream.api.options import ApiOptions
from auditstream.api.service import SettingsService
from auditstream.api.tokens import create_token
from auditstream.config.address_policy import parse_networks
from auditstream.config.secrets import SecretBox
from auditstream.pipeline.embedded_log import EmbeddedLog
from auditstream.pipeline.router import Router
from tests.fake_resolver import fake_resolver


def test_status_shows_settings_a_running_router_could_not_apply(tmp_path: Path) -> None:
    log = EmbeddedLog(tmp_path / "log.sqlite")
    options = ApiOptions(
        allow_http=True,
        allowed_networks=parse_networks(["127.0.0.1/32"]),
        resolver=fake_resolver({}),
    )
    service = SettingsService(log, SecretBox([SecretBox.generate_key()]), options)
    router = Router(log)  # started without the key, before any secret was stored
    token, _ = create_token(log, account_id="acme", user_id="ada", role="owner")
    auth = {"Authorization": f"Bearer {token}"}
    try:
        with TestClient(create_app(service, options)) as client:
            stream = {"streaming_enabled": True}
            assert client.put("/v1/accounts/acme/stream", json=stream, headers=auth).is_success
            hook = {
                "id": "acme-hook",
                "type": "webhook",
                "url": "http://127.0.0.1:9/in",
                "secret": "signing-secret-1",
            }
            created = client.post("/v1/accounts/acme/destinations", json=hook, headers=auth)
            assert created.status_code == 201, created.text
            router.settings.poll(min_interval=0.0)
            router.step()  # applies what it can, and reports what it cannot
            status = client.get("/v1/accounts/acme/destinations/acme-hook/status", headers=auth)
            body = status.json()
            assert status.status_code == 200, body
            assert body["settings_applied"] is False
            assert body["state"] == "error"
            assert body["last_cause"] == "settings_not_applied"
            assert "AUDITSTREAM_SECRET_KEYS" in " ".join(body["settings_problems"])
            assert "signing-secret-1" not in status.text
    finally:
        router.close()
        service.close()
        log.close()
