"""The viewer attacked from outside: forms posted by another site, a ``next`` address after
sign-in, and the page headers on every answer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from auditstream.api import viewer
from auditstream.api.app import create_app
from auditstream.api.options import ApiOptions
from auditstream.api.service import SettingsService
from auditstream.api.tokens import create_token
from auditstream.config.secrets import SecretBox
from auditstream.pipeline.embedded_log import EmbeddedLog
from auditstream.pipeline.topic_setup import ensure_core_topics

PAGE = "/accounts/acme/activity"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[tuple[TestClient, EmbeddedLog]]:
    log = EmbeddedLog(tmp_path / "log.sqlite")
    ensure_core_topics(log)
    options = ApiOptions()
    service = SettingsService(log, SecretBox([SecretBox.generate_key()]), options)
    try:
        with TestClient(create_app(service, options), base_url="http://127.0.0.1:8080") as c:
            yield c, log
    finally:
        service.close()
        log.close()


def _signed_in(client: TestClient, token: str) -> None:
    done = client.post(f"{PAGE}/sign-in", data={"token": token}, follow_redirects=False)
    assert done.status_code == 303


def test_another_sites_form_cannot_sign_out(client: tuple[TestClient, EmbeddedLog]) -> None:
    c, log = client
    _signed_in(c, create_token(log, account_id="acme", user_id="ada", role="owner")[0])
    forged = c.post(
        f"{PAGE}/sign-out", headers={"Origin": "https://evil.example"}, follow_redirects=False
    )
    assert forged.status_code == 403
    assert "set-cookie" not in forged.headers
    assert c.get("/v1/me").status_code == 200
    own = c.post(
        f"{PAGE}/sign-out", headers={"Origin": "http://127.0.0.1:8080"}, follow_redirects=False
    )
    assert own.status_code == 303
    assert viewer.COOKIE in own.headers["set-cookie"]


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example", "/\\evil.example"])
def test_sign_in_goes_only_to_the_accounts_own_page(
    client: tuple[TestClient, EmbeddedLog], target: str
) -> None:
    c, log = client
    token = create_token(log, account_id="acme", user_id="ada", role="owner")[0]
    done = c.post(
        f"{PAGE}/sign-in",
        params={"next": target, "redirect": target},
        data={"token": token, "next": target},
        follow_redirects=False,
    )
    assert done.headers["location"] == PAGE


def _with_cookie(c: TestClient, path: str, token: str) -> httpx.Response:
    answer: httpx.Response = c.get(path, headers={"Cookie": f"{viewer.COOKIE}={token}"})
    return answer


def test_every_page_answer_carries_the_page_headers(
    client: tuple[TestClient, EmbeddedLog],
) -> None:
    c, log = client
    member = create_token(log, account_id="acme", user_id="bob", role="member")[0]
    answers = [
        c.get(PAGE),  # sign-in form
        _with_cookie(c, "/accounts/other/activity", member),  # 404 page
        _with_cookie(c, PAGE, member),  # 403 page
        _with_cookie(c, PAGE, "ast_nope_nope"),  # ended session
        c.post(f"{PAGE}/sign-in", data={"token": "ast_nope_nope"}),  # 401
        c.post(f"{PAGE}/sign-in", data={"token": ""}),  # 422
        c.post(f"{PAGE}/sign-in", data={"token": "x" * 5000}),  # 413
        c.post(f"{PAGE}/sign-in", data={"token": member}, headers={"Origin": "null"}),  # 403
        c.post(f"{PAGE}/sign-out", headers={"Origin": "https://evil.example"}),  # 403
    ]
    for answer in answers:
        assert answer.headers["content-type"].startswith("text/html"), answer.status_code
        assert answer.headers["content-security-policy"] == viewer.CONTENT_SECURITY_POLICY
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["cache-control"] == "no-store"
    assert sorted({a.status_code for a in answers}) == [200, 401, 403, 404, 413, 422]
