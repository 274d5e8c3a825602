"""The viewer's pure parts (session cookie, cookie security, paths, menus) and its sign-in
flow on the app in process (the embedded log holds the tokens)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from auditstream.api import access, viewer
from auditstream.api.app import create_app
from auditstream.api.options import ApiOptions
from auditstream.api.service import SettingsService
from auditstream.api.tokens import TokenStore, create_token
from auditstream.config.secrets import SecretBox
from auditstream.pipeline.embedded_log import EmbeddedLog
from auditstream.pipeline.errors import LogError
from auditstream.pipeline.topic_setup import ensure_core_topics
from auditstream.schemas.catalog import ACTIVITIES, CATEGORIES

TOKEN = "ast_0123456789abcdef_secret-part"


@pytest.mark.parametrize(
    ("method", "header", "expected"),
    [
        ("GET", f"auditstream_session={TOKEN}", TOKEN),
        ("HEAD", f"a=1; auditstream_session={TOKEN}; b=2", TOKEN),
        ("get", f"auditstream_session={TOKEN}", TOKEN),
        ("POST", f"auditstream_session={TOKEN}", None),  # never for a change (CSRF)
        ("PUT", f"auditstream_session={TOKEN}", None),
        ("DELETE", f"auditstream_session={TOKEN}", None),
        ("OPTIONS", f"auditstream_session={TOKEN}", None),
        ("GET", "", None),
        ("GET", "auditstream_session=", None),
        ("GET", "other=auditstream_session", None),
        ("GET", 'auditstream_session="unterminated', None),
        ("GET", "auditstream_session=x" + "\x00" * 3, None),
    ],
)
def test_session_token(method: str, header: str, expected: str | None) -> None:
    assert viewer.session_token(method, header) == expected


@pytest.mark.parametrize(
    ("scheme", "host", "secure"),
    [
        ("http", "127.0.0.1:8080", False),
        ("http", "localhost:8080", False),
        ("http", "[::1]:8080", False),
        ("http", "127.0.0.1", False),
        ("https", "127.0.0.1:8443", True),
        ("http", "audit.example.com", True),
        ("http", "10.0.0.5:8080", True),
        ("https", "audit.example.com", True),
        ("http", "", True),
    ],
)
def test_cookie_is_secure(scheme: str, host: str, secure: bool) -> None:
    assert viewer.cookie_is_secure(scheme, host) is secure


def test_api_paths_quote_any_account_id() -> None:
    paths = viewer.api_paths("a/b c?d#e")
    assert paths["activity"] == "/v1/accounts/a%2Fb%20c%3Fd%23e/activity"
    assert paths["page"] == "/accounts/a%2Fb%20c%3Fd%23e/activity"
    assert paths["stream"].endswith("/stream")


def test_activity_menu_groups_every_catalog_activity_by_category() -> None:
    menu = viewer.activity_menu()
    assert [group["key"] for group in menu] == [c.key for c in CATEGORIES]
    keys = [item["key"] for group in menu for item in group["activities"]]
    assert keys == [a.key for a in sorted(ACTIVITIES, key=lambda a: keys.index(a.key))]
    assert len(keys) == len(ACTIVITIES)


@pytest.mark.parametrize(
    ("decision", "status"), [(access.Access.FORBIDDEN, 403), (access.Access.NOT_FOUND, 404)]
)
def test_refusals(decision: access.Access, status: int) -> None:
    assert viewer.refusal_status(decision) == status
    assert "sign in" in viewer.refusal_text(decision) or "check" in viewer.refusal_text(decision)


@pytest.fixture
def app_and_tokens(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str]]]:
    log = EmbeddedLog(tmp_path / "log.sqlite")
    ensure_core_topics(log)
    tokens = {
        "owner": create_token(log, account_id="acme", user_id="ada", role="owner")[0],
        "member": create_token(log, account_id="acme", user_id="bob", role="member")[0],
        "auditor": create_token(
            log,
            account_id="acme",
            user_id="eve",
            role="member",
            privileges=frozenset({"activity_audit"}),
        )[0],
    }
    options = ApiOptions()
    service = SettingsService(log, SecretBox([SecretBox.generate_key()]), options)
    try:
        with TestClient(create_app(service, options), base_url="http://127.0.0.1:8080") as c:
            yield c, tokens
    finally:
        service.close()
        log.close()


def test_sign_in_sets_a_read_only_cookie(app_and_tokens: tuple[TestClient, dict[str, str]]) -> None:
    client, tokens = app_and_tokens
    page = client.get("/accounts/acme/activity")
    assert page.status_code == 200
    assert 'name="token"' in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    done = client.post(
        "/accounts/acme/activity/sign-in",
        data={"token": tokens["auditor"]},
        follow_redirects=False,
    )
    assert done.status_code == 303
    cookie = done.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Secure" not in cookie  # plain HTTP on 127.0.0.1 only
    page = client.get("/accounts/acme/activity")
    assert "<optgroup" in page.text
    assert 'id="stream-settings"' in page.text
    assert client.get("/v1/me").json()["user_id"] == "eve"
    # The cookie never authorizes a change, whatever the role.
    assert client.put("/v1/accounts/acme/stream", json={}).status_code == 401
    assert client.get("/v1/accounts/globex/stream").status_code == 404
    signed_out = client.post("/accounts/acme/activity/sign-out", follow_redirects=False)
    assert signed_out.status_code == 303
    assert client.get("/v1/me").status_code == 401


@pytest.mark.parametrize(
    ("who", "account", "status", "says"),
    [
        ("member", "acme", 403, "role may not view"),
        ("owner", "globex", 404, "no activity audit log here"),
        (None, "acme", 401, "not valid"),
        ("", "acme", 422, "paste an API token"),
        ("ast_ü_'; DROP TABLE tokens; --", "acme", 401, "not valid"),
        ("ast_" + "9" * 16 + "_" + "x" * 3000, "acme", 401, "not valid"),
        ("\x00\r\nSet-Cookie: a=b", "acme", 401, "not valid"),
    ],
)
def test_sign_in_refusals(
    app_and_tokens: tuple[TestClient, dict[str, str]],
    who: str | None,
    account: str,
    status: int,
    says: str,
) -> None:
    client, tokens = app_and_tokens
    token = "ast_ffffffffffffffff_wrong" if who is None else tokens.get(who, who)
    answer = client.post(
        f"/accounts/{account}/activity/sign-in", data={"token": token}, follow_redirects=False
    )
    assert answer.status_code == status
    assert says in answer.text
    assert "set-cookie" not in answer.headers


def test_sign_in_refuses_other_sites_big_forms_and_plain_http_elsewhere(
    app_and_tokens: tuple[TestClient, dict[str, str]],
) -> None:
    client, tokens = app_and_tokens
    url = "/accounts/acme/activity/sign-in"
    for origin in (
        "https://evil.example",
        "null",
        "http://127.0.0.1:9999",
        "https://127.0.0.1:8080",
    ):
        other_site = client.post(url, data={"token": tokens["owner"]}, headers={"Origin": origin})
        assert other_site.status_code == 403, origin
    own = client.post(
        url,
        data={"token": tokens["owner"]},
        headers={"Origin": "http://127.0.0.1:8080"},
        follow_redirects=False,
    )
    assert own.status_code == 303
    client.cookies.clear()
    huge = client.post(url, data={"token": "x" * (viewer.MAX_FORM_BYTES + 1)})
    assert huge.status_code == 413
    remote = client.post(
        url, data={"token": tokens["owner"]}, headers={"Host": "audit.example.com"}
    )
    assert remote.status_code == 400
    assert "HTTPS" in remote.text
    assert "set-cookie" not in remote.headers


def test_hostile_account_ids_and_filters_are_escaped(
    app_and_tokens: tuple[TestClient, dict[str, str]],
) -> None:
    client, tokens = app_and_tokens
    hostile = '"><img src=x onerror=alert(1)>'
    page = client.get(f"/accounts/{quote(hostile, safe='')}/activity")
    assert page.status_code == 200
    assert "<img" not in page.text
    assert "&lt;img src=x onerror=alert(1)&gt;" in page.text
    client.post("/accounts/acme/activity/sign-in", data={"token": tokens["owner"]})
    page = client.get(
        "/accounts/acme/activity",
        params={"actor": hostile, "q": "' OR 1=1 --", "activity": hostile, "from": "x" * 10_000},
    )
    assert page.status_code == 200
    assert "<img" not in page.text
    assert "&#39; OR 1=1 --" in page.text
    assert "x" * 501 not in page.text  # a filter value is cut, never echoed whole


def test_static_files(app_and_tokens: tuple[TestClient, dict[str, str]]) -> None:
    client, _tokens = app_and_tokens
    script = client.get("/static/viewer/viewer.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert "innerHTML" not in script.text
    assert client.get("/static/viewer/viewer.css").status_code == 200
    for name in ("../viewer.py", "app.py", "%2e%2e%2fviewer.py", "viewer.JS"):
        assert client.get(f"/static/viewer/{name}").status_code == 404


def test_tokens_that_cannot_be_read_are_not_called_invalid(
    app_and_tokens: tuple[TestClient, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A log that stops answering must not sign anyone out or call a good token wrong."""
    client, tokens = app_and_tokens
    client.post("/accounts/acme/activity/sign-in", data={"token": tokens["owner"]})
    assert "<optgroup" in client.get("/accounts/acme/activity").text

    def log_gone(_token: str) -> None:
        raise LogError("the log does not answer")

    monkeypatch.setattr(TokenStore, "authenticate", lambda _self, token: log_gone(token))
    page = client.get("/accounts/acme/activity")
    assert page.status_code == 503
    assert "try again" in page.text
    assert "set-cookie" not in page.headers  # the session is kept
    answer = client.post("/accounts/acme/activity/sign-in", data={"token": tokens["owner"]})
    assert answer.status_code == 503
    assert "not valid" not in answer.text


@pytest.mark.parametrize(
    "path",
    [
        "/healthz",
        "/v1/accounts/acme/stream",  # 401: no token
        "/v1/accounts/acme/activity?limit=0",
        "/accounts/acme/activity",
        "/no/such/page",
    ],
)
def test_every_answer_forbids_content_sniffing_once(
    app_and_tokens: tuple[TestClient, dict[str, str]], path: str
) -> None:
    """JSON bodies quote tenant text (an error detail, an event field): a browser must never
    sniff one as HTML. One header, also where a route set it already."""
    client, _tokens = app_and_tokens
    answer = client.get(path)
    assert answer.headers.get_list("x-content-type-options") == ["nosniff"]
