"""The activity audit log viewer: ``/accounts/{account_id}/activity``, a server-rendered page
(Jinja2, autoescaped) whose small script reads the JSON query API (``/v1/accounts/{id}/activity``
and its ``facets``, ``export`` and one-event routes).

Signing in: the form takes an API token (``auditstream tokens create``), checks it as the API
does (the account's owner, an admin, or a member with the ``activity_audit`` privilege) and
keeps it in an HttpOnly, SameSite=Strict cookie, Secure unless the page is plain HTTP on a
loopback address. The API's guard accepts that cookie for ``GET``/``HEAD`` only
(:func:`session_token`): anything that changes state still needs the ``Authorization`` header,
so a page elsewhere cannot act with it (docs/adr/019-viewer-session-cookie.md).

Every value shown comes from events, i.e. from users: the template escapes it and the script
builds the DOM with ``textContent`` only; the page's Content-Security-Policy allows no inline
script and nothing from another origin.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from http.cookies import CookieError, SimpleCookie
from importlib import resources
from typing import Annotated, Any
from urllib.parse import parse_qs, quote

import anyio
from fastapi import FastAPI, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader

from auditstream.api import access
from auditstream.api.errors import ApiProblem
from auditstream.api.service import SettingsService
from auditstream.api.tokens import Principal
from auditstream.schemas.catalog import CATEGORIES, activities_in

log = logging.getLogger(__name__)

COOKIE = "auditstream_session"
"""The session cookie: the API token the sign-in form was given."""

SESSION_METHODS = frozenset({"GET", "HEAD"})
"""The only methods the session cookie authenticates (it never makes a change: CSRF)."""

MAX_FORM_BYTES = 4096
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "[::1]", "::1"})

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "object-src 'none'"
)
_PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",  # "no-referrer" makes a form send Origin: null
    "Cache-Control": "no-store",
}
_STATIC_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
STATIC_FILES = ("viewer.js", "viewer.css")

ServiceGetter = Callable[[], SettingsService]
AccountId = Annotated[str, Path(min_length=1, max_length=200)]

_templates = Environment(
    loader=PackageLoader("auditstream.api", "templates"),
    autoescape=True,  # every value may be an attacker's text
    trim_blocks=True,
    lstrip_blocks=True,
)


def session_token(method: str, cookie_header: str) -> str | None:
    """The token in the viewer's session cookie when ``method`` may use it (GET, HEAD), else
    None. A malformed cookie header is no session."""
    if method.upper() not in SESSION_METHODS or COOKIE not in cookie_header:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(cookie_header)
    except CookieError:
        return None
    morsel = jar.get(COOKIE)
    return morsel.value if morsel is not None and morsel.value else None


def activity_menu() -> list[dict[str, Any]]:
    """The activity filter's groups: one per catalog category, its activities in order."""
    return [
        {
            "key": c.key,
            "name": c.name,
            "activities": [{"key": a.key, "name": a.name} for a in activities_in(c.key)],
        }
        for c in CATEGORIES
    ]


def api_paths(account_id: str) -> dict[str, str]:
    """The JSON API paths the page uses for ``account_id`` (quoted: any id is one segment)."""
    base = f"/v1/accounts/{quote(account_id, safe='')}"
    return {
        "activity": f"{base}/activity",
        "facets": f"{base}/activity/facets",
        "export": f"{base}/activity/export",
        "stream": f"{base}/stream",
        "destinations": f"{base}/destinations",
        "page": f"/accounts/{quote(account_id, safe='')}/activity",
    }


def cookie_is_secure(scheme: str, host_header: str) -> bool:
    """Secure unless the page is plain HTTP on a loopback host (a browser would drop a Secure
    cookie there, and nothing leaves the machine)."""
    if scheme == "https":
        return True
    host = host_header.rsplit(":", 1)[0] if not host_header.endswith("]") else host_header
    return host.lower() not in _LOOPBACK_HOSTS


def refusal_status(decision: access.Access) -> int:
    """403 for a role that may not read its own account's log, 404 (as the API) otherwise."""
    return 403 if decision is access.Access.FORBIDDEN else 404


def refusal_text(decision: access.Access) -> str:
    """Why a valid token may not view an account's log (never whether the account exists)."""
    if decision is access.Access.FORBIDDEN:
        return (
            "this token's role may not view the activity audit log: sign in as the account "
            "owner, an admin, or a member with the activity_audit privilege"
        )
    return "no activity audit log here for this token: check the account in the address"


def _page(template: str, status: int = 200, **context: Any) -> HTMLResponse:
    html = _templates.get_template(template).render(**context)
    return HTMLResponse(html, status_code=status, headers=_PAGE_HEADERS)


async def _read_form(request: Request) -> dict[str, str] | None:
    """The url-encoded form body, or None when it is larger than :data:`MAX_FORM_BYTES`."""
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > MAX_FORM_BYTES):
        return None
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return None
    fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {name: values[0] for name, values in fields.items() if values}


def _same_origin(request: Request) -> bool:
    """A browser names the page a form was sent from in ``Origin``: a form on another site
    must not sign anyone in (it would sign a victim in as the attacker)."""
    origin = request.headers.get("origin")
    if origin is None:  # not a browser, or one that sends none for same-origin forms
        return True
    return origin == f"{request.url.scheme}://{request.headers.get('host', '')}"


class _Sessions:
    """Who a token is, as the API's guard would say (None: no such live token)."""

    def __init__(self, get_service: ServiceGetter) -> None:
        self._service = get_service

    async def principal(self, token: str | None) -> Principal | None:
        """Raises ``ApiProblem`` (503) when the tokens cannot be read now: that is not a
        wrong token, and must not end a session."""
        if not token:
            return None
        return await anyio.to_thread.run_sync(self._service().authenticate, token)


UNAVAILABLE = "the API cannot check tokens right now (its log does not answer): try again shortly"


def _sign_in_page(account_id: str, status: int = 200, error: str | None = None) -> HTMLResponse:
    return _page(
        "sign_in.html", status, account_id=account_id, paths=api_paths(account_id), error=error
    )


def add_viewer_routes(app: FastAPI, get_service: ServiceGetter) -> None:
    """The viewer's page, its sign-in and sign-out, and its script and stylesheet."""
    sessions = _Sessions(get_service)
    _add_page(app, sessions)
    _add_sign_in(app, sessions)
    _add_static(app)


def _add_page(app: FastAPI, sessions: _Sessions) -> None:
    @app.get("/accounts/{account_id}/activity", include_in_schema=False)
    async def activity_page(account_id: AccountId, request: Request) -> Response:
        token = session_token("GET", request.headers.get("cookie", ""))
        try:
            principal = await sessions.principal(token)
        except ApiProblem:
            return _sign_in_page(account_id, 503, UNAVAILABLE)
        if principal is None:
            if not token:
                return _sign_in_page(account_id)
            page = _sign_in_page(account_id, 200, "your session ended: sign in again")
            page.delete_cookie(COOKIE, path="/")
            return page
        decision = access.decide(principal, account_id, write=False)
        if decision is not access.Access.ALLOWED:
            return _sign_in_page(account_id, refusal_status(decision), refusal_text(decision))
        query = request.query_params
        chosen = {
            name: query.get(name, "")[:500] for name in ("actor", "activity", "from", "to", "q")
        }
        return _page(
            "activity.html",
            account_id=account_id,
            principal=principal,
            paths=api_paths(account_id),
            menu=activity_menu(),
            chosen=chosen,
        )


def _add_sign_in(app: FastAPI, sessions: _Sessions) -> None:
    @app.post("/accounts/{account_id}/activity/sign-in", include_in_schema=False)
    async def sign_in(account_id: AccountId, request: Request) -> Response:
        if not _same_origin(request):
            return _sign_in_page(account_id, 403, "sign in from this page, not from another site")
        form = await _read_form(request)
        if form is None:
            return _sign_in_page(account_id, 413, "the form is too large: paste only the token")
        token = form.get("token", "").strip()
        if not token:
            return _sign_in_page(account_id, 422, "paste an API token (auditstream tokens create)")
        secure = cookie_is_secure(request.url.scheme, request.headers.get("host", ""))
        if secure and request.url.scheme != "https":
            return _sign_in_page(
                account_id,
                400,
                "sign in over HTTPS: this page was served over plain HTTP to another machine "
                "(serve the API behind TLS, or open it on 127.0.0.1)",
            )
        try:
            principal = await sessions.principal(token)
        except ApiProblem:
            return _sign_in_page(account_id, 503, UNAVAILABLE)
        if principal is None:
            return _sign_in_page(
                account_id,
                401,
                "this token is not valid (mistyped, expired or revoked): make one with "
                "auditstream tokens create",
            )
        decision = access.decide(principal, account_id, write=False)
        if decision is not access.Access.ALLOWED:
            return _sign_in_page(account_id, refusal_status(decision), refusal_text(decision))
        done = RedirectResponse(api_paths(account_id)["page"], status_code=303)
        done.set_cookie(COOKIE, token, path="/", httponly=True, samesite="strict", secure=secure)
        return done

    @app.post("/accounts/{account_id}/activity/sign-out", include_in_schema=False)
    async def sign_out(account_id: AccountId, request: Request) -> Response:
        # A form on another site must not end the session either (logout CSRF).
        if not _same_origin(request):
            return _sign_in_page(account_id, 403, "sign out from this page, not from another site")
        done = RedirectResponse(api_paths(account_id)["page"], status_code=303)
        done.delete_cookie(COOKIE, path="/")
        return done


def _add_static(app: FastAPI) -> None:
    @app.get("/static/viewer/{name}", include_in_schema=False)
    def static_file(name: str) -> Response:
        if name not in STATIC_FILES:
            return Response("no such file", status_code=404, media_type="text/plain")
        body = resources.files("auditstream.api").joinpath("static", name).read_bytes()
        return Response(
            body,
            media_type=_STATIC_TYPES[name[name.rfind(".") :]],
            headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"},
        )
