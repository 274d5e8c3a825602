"""The HTTP API (FastAPI): ``create_app(service, options)``.

Every ``/v1`` request passes :class:`_Guard` before any route runs, in this order: a body larger
than ``ApiOptions.max_body_bytes`` → 413; no or a wrong bearer token → 401; another account's
path → 404 (as for an account that does not exist); a role that may not do this → 403. Only then
is the body read and validated, so a refused request learns nothing from validation errors.

Validation errors are 422 with ``detail: [{loc, msg, type}]``: the input is never echoed back
(it may be a secret). Secrets are never returned: they read ``********`` when set.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request, Response, Security
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import auditstream
from auditstream.api import access, ops, viewer
from auditstream.api.activity_routes import add_activity_routes
from auditstream.api.audit import RequestInfo
from auditstream.api.errors import (
    ApiProblem,
    Invalid,
    TooManyRequests,
    Unauthenticated,
    failure_text,
)
from auditstream.api.metrics import AUTH_FAILURES, REQUEST_SECONDS, REQUESTS
from auditstream.api.models import (
    MASK,
    SOURCES,
    CheckOut,
    DestinationCreate,
    DestinationList,
    DestinationOut,
    DestinationPatch,
    ErrorMessage,
    ExternalIdOut,
    MeOut,
    ReplayIn,
    StatusOut,
    StreamSettingsIn,
    StreamSettingsOut,
    ValidationErrors,
)
from auditstream.api.options import ApiOptions
from auditstream.api.service import Caller, SettingsService
from auditstream.api.tokens import Principal
from auditstream.config.destinations import Destination
from auditstream.config.external_id import external_id_for
from auditstream.config.fields import secret_fields, secret_values
from auditstream.config.secrets import redact_these

log = logging.getLogger(__name__)

_ACCOUNT_PATH = re.compile(r"^/v1/accounts/(?P<account>[^/]+)(?:/|$)")
_ACTIVITY_PATH = re.compile(r"^/v1/accounts/[^/]+/activity(?:/|$)")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,100}$")
_TYPE_TAGS = frozenset(SOURCES)
REQUEST_ID_HEADER = "X-Request-ID"
_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"})

_bearer = HTTPBearer(auto_error=False, description="An API token: `ast_<id>_<secret>`.")

ServiceGetter = Callable[[], SettingsService]


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=headers)


def _has_header(headers: list[tuple[bytes, bytes]], name: bytes) -> bool:
    return any(k.lower() == name for k, _v in headers)


class _Guard:
    """Request id, metrics, size limit, authentication and access control for ``/v1``."""

    def __init__(self, app: ASGIApp, get_service: ServiceGetter, options: ApiOptions) -> None:
        self.app = app
        self._service = get_service
        self._limit = options.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        given = headers.get("x-request-id", "")
        request_id = given if _REQUEST_ID.fullmatch(given) else str(uuid.uuid4())
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        status_seen = 500
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status_seen, started
            if message["type"] == "http.response.start":
                started = True
                status_seen = int(message["status"])
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    (REQUEST_ID_HEADER.lower().encode(), request_id.encode()),
                    # JSON bodies quote tenant text: a browser must never sniff them as HTML.
                    *(
                        []
                        if _has_header(message["headers"], b"x-content-type-options")
                        else [(b"x-content-type-options", b"nosniff")]
                    ),
                ]
            await send(message)

        try:
            refusal, receive = await self._admit(scope, receive, headers, state)
            if refusal is not None:
                await refusal(scope, receive, send_with_id)
                return
            await self.app(scope, receive, send_with_id)
        except Exception as exc:  # answered here, never handed to the server
            # Starlette would hand it on to the server after its 500, and the server logs the
            # traceback with its own handlers, messages (maybe quoting a secret) included.
            log_failure(request_id, exc)
            if not started:
                await _json(500, _internal_error(request_id))(scope, receive, send_with_id)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or (
                "guard" if scope["path"].startswith("/v1/") else "unmatched"
            )
            method = scope["method"] if scope["method"] in _METHODS else "other"
            REQUESTS.labels(method=method, route=template, status=str(status_seen)).inc()
            REQUEST_SECONDS.labels(method=method, route=template).observe(
                time.perf_counter() - started
            )

    async def _admit(
        self, scope: Scope, receive: Receive, headers: dict[str, str], state: dict[str, Any]
    ) -> tuple[JSONResponse | None, Receive]:
        path: str = scope["path"]
        if not path.startswith("/v1/"):
            return None, receive
        too_large = _json(413, {"detail": f"request body larger than {self._limit} bytes"})
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self._limit):
            return too_large, receive

        scheme, _, token = headers.get("authorization", "").partition(" ")
        if "authorization" not in headers:  # the viewer's page reads with its session cookie
            session = viewer.session_token(scope["method"], headers.get("cookie", ""))
            scheme, token = ("bearer", session) if session else (scheme, token)
        if scheme.lower() != "bearer" or not token.strip():
            AUTH_FAILURES.labels(reason="missing").inc()
            return _json(
                401,
                {"detail": "authentication required: send Authorization: Bearer <token>"},
                {"WWW-Authenticate": "Bearer"},
            ), receive
        try:
            principal = await anyio.to_thread.run_sync(self._service().authenticate, token)
        except ApiProblem as exc:
            return _json(exc.status, {"detail": str(exc)}), receive
        if principal is None:
            AUTH_FAILURES.labels(reason="invalid").inc()
            return _json(401, {"detail": "invalid token"}, {"WWW-Authenticate": "Bearer"}), receive
        match = _ACCOUNT_PATH.match(path)
        if match is not None:
            decision = access.decide(
                principal, match.group("account"), write=access.is_write(scope["method"])
            )
            if decision is access.Access.NOT_FOUND:
                AUTH_FAILURES.labels(reason="other_account").inc()
                return _json(404, {"detail": "Not Found"}), receive
            if decision is access.Access.FORBIDDEN:
                AUTH_FAILURES.labels(reason="forbidden").inc()
                what = "change" if access.is_write(scope["method"]) else "read"
                subject = (
                    "the activity audit log (owners, admins and the activity_audit privilege may)"
                    if _ACTIVITY_PATH.match(path)
                    else "the audit log streaming settings"
                )
                return _json(403, {"detail": f"your role may not {what} {subject}"}), receive
        state["principal"] = principal

        # Read the body now, within the limit, and hand it to the app as one message.
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None, receive
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self._limit:
                return too_large, receive
            chunks.append(chunk)
            more = bool(message.get("more_body", False))
        body = b"".join(chunks)
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return None, replay


# -- helpers for routes ------------------------------------------------------------------------


def _caller(
    request: Request,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
) -> Caller:
    principal = request.scope.get("state", {}).get("principal")
    if not isinstance(principal, Principal):  # the guard did not run: refuse
        raise Unauthenticated("authentication required")
    agent = request.headers.get("user-agent")
    return Caller(
        principal=principal,
        request=RequestInfo(
            ip=request.client.host if request.client else None,
            user_agent=agent[:512] if agent else None,
            request_id=str(request.scope.get("state", {}).get("request_id") or ""),
        ),
    )


def present(destination: Destination) -> dict[str, Any]:
    """A destination as the API shows it: secrets and header values masked."""
    data = destination.model_dump(mode="json")
    for name in secret_fields(type(destination)):
        data[name] = MASK if getattr(destination, name) is not None else None
    if "headers" in data:
        data["headers"] = dict.fromkeys(data["headers"], MASK)
    return data


def _clean_errors(errors: Any) -> list[dict[str, Any]]:
    """FastAPI's validation errors without the input (it may be a secret) or context."""
    out: list[dict[str, Any]] = []
    for err in errors:
        loc = list(err.get("loc", ()))
        if len(loc) >= 2 and loc[0] == "body" and loc[1] in _TYPE_TAGS:
            del loc[1]
        loc = ops.safe_loc(loc, str(err.get("type", "")))
        msg = ops.safe_message(err)
        if err.get("type") == "json_invalid":
            msg = "the body is not valid JSON"
        out.append({"loc": loc, "msg": msg, "type": str(err.get("type", "value_error"))})
    return out


_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorMessage, "description": "No or an invalid token."},
    403: {"model": ErrorMessage, "description": "Your role may not do this."},
    404: {"model": ErrorMessage, "description": "No such account or destination (for you)."},
    413: {"model": ErrorMessage, "description": "Request body too large."},
    422: {"model": ValidationErrors, "description": "Invalid request: each field named."},
    503: {"model": ErrorMessage, "description": "The log is unavailable; nothing changed."},
}
_CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorMessage, "description": "Conflicts with the current settings."}
}

AccountId = Annotated[str, Path(min_length=1, max_length=200)]
DestinationId = Annotated[str, Path(min_length=1, max_length=100)]
CallerDep = Annotated[Caller, Depends(_caller)]


# -- the app -----------------------------------------------------------------------------------


def create_app(service: SettingsService, options: ApiOptions) -> FastAPI:
    """The settings API serving ``service``. ``options`` should be the ones ``service`` was
    made with; the app uses its body limit. The janitor runs while the app is served."""
    return build_app(lambda: service, options, service=service)


def build_app(
    get_service: ServiceGetter, options: ApiOptions, *, service: SettingsService | None = None
) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if service is not None:
            service.acquire_janitor()
        try:
            yield
        finally:
            if service is not None:
                service.release_janitor()

    app = FastAPI(
        title="auditstream settings API",
        version=auditstream.__version__,
        description=(
            "Audit log streaming settings of an account: whether and what it streams, its "
            "destinations, their checks and status. Authenticate with `Authorization: Bearer "
            "<token>` (`auditstream tokens create`). Owners and admins may change settings; "
            "members with the `activity_audit` privilege may read them. Every change is "
            "recorded as an audit event of the account."
        ),
        lifespan=lifespan,
    )
    v1 = APIRouter(responses=_ERRORS)
    app.add_middleware(_Guard, get_service=get_service, options=options)

    _add_error_handlers(app)
    _add_operations(app, get_service)
    _add_stream_routes(v1, get_service)
    _add_destination_routes(v1, get_service, options)
    _add_destination_actions(v1, get_service)
    add_activity_routes(v1, get_service, options, _caller)
    app.include_router(v1)
    viewer.add_viewer_routes(app, get_service)
    return app


def _no_service() -> SettingsService:
    raise RuntimeError("this app only describes the API (openapi_document)")


def openapi_document() -> dict[str, Any]:
    """The OpenAPI document of the API (what ``auditstream api --print-openapi`` prints)."""
    return build_app(_no_service, ApiOptions()).openapi()


def _add_error_handlers(app: FastAPI) -> None:
    """Errors as JSON bodies that never echo input (see ADR 005)."""

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return _json(422, {"detail": _clean_errors(exc.errors())})

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 400:  # FastAPI could not even decode the body
            return _json(
                422,
                {
                    "detail": [
                        {
                            "loc": ["body"],
                            "msg": "the body is not valid JSON",
                            "type": "json_invalid",
                        }
                    ]
                },
            )
        return await http_exception_handler(request, exc)

    @app.exception_handler(ApiProblem)
    async def _problem(_request: Request, exc: ApiProblem) -> JSONResponse:
        if isinstance(exc, Invalid):
            detail = [{"loc": loc, "msg": msg, "type": kind} for loc, msg, kind in exc.errors]
            return _json(exc.status, {"detail": detail})
        if isinstance(exc, TooManyRequests):
            return _json(429, {"detail": str(exc)}, {"Retry-After": str(exc.retry_after)})
        return _json(exc.status, {"detail": str(exc)})

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        request_id = request.scope.get("state", {}).get("request_id")
        log_failure(request_id, exc)
        return _json(500, _internal_error(request_id))


def _internal_error(request_id: object) -> dict[str, str]:
    return {"detail": f"internal error (request id {request_id})"}


def log_failure(request_id: object, exc: BaseException) -> None:
    """Log an unexpected failure of a request: where it failed, never a message that may quote
    a value (see :func:`api.errors.failure_text`)."""
    log.error("request %s failed: %s", request_id, failure_text(exc))


def _add_operations(app: FastAPI, svc: ServiceGetter) -> None:
    """``/healthz`` and ``/readyz``."""

    @app.get("/healthz", tags=["operations"], response_model=ErrorMessage)
    def healthz() -> dict[str, str]:
        """The process is alive."""
        return {"detail": "ok"}

    @app.get(
        "/readyz",
        tags=["operations"],
        response_model=ErrorMessage,
        responses={503: {"model": ErrorMessage}},
    )
    def readyz() -> Any:
        """The service reads the log."""
        if svc().ready():
            return {"detail": "ready"}
        return _json(503, {"detail": "the log cannot be read"})


def _add_stream_routes(v1: APIRouter, svc: ServiceGetter) -> None:
    """Who the caller is, and the account's stream settings."""

    @v1.get("/v1/me", tags=["tokens"], response_model=MeOut)
    def me(caller: CallerDep) -> dict[str, Any]:
        """Who the token acts as."""
        p = caller.principal
        return {
            "account_id": p.account_id,
            "user_id": p.user_id,
            "role": p.role,
            "privileges": sorted(p.privileges),
        }

    @v1.get("/v1/accounts/{account_id}/stream", tags=["stream"], response_model=StreamSettingsOut)
    def get_stream(account_id: AccountId, caller: CallerDep) -> dict[str, Any]:
        """Whether and what the account streams. An account never configured streams
        nothing (``streaming_enabled: false``)."""
        return svc().stream(account_id)

    @v1.put("/v1/accounts/{account_id}/stream", tags=["stream"], response_model=StreamSettingsOut)
    def put_stream(
        account_id: AccountId, body: StreamSettingsIn, caller: CallerDep
    ) -> dict[str, Any]:
        """Replace whether and what the account streams (omitted lists are reset)."""
        return svc().put_stream(account_id, body, caller)


def _add_destination_routes(v1: APIRouter, svc: ServiceGetter, options: ApiOptions) -> None:
    """Destinations: list, create, read, change, delete."""

    @v1.get(
        "/v1/accounts/{account_id}/destinations",
        tags=["destinations"],
        response_model=DestinationList,
    )
    def list_destinations(account_id: AccountId, caller: CallerDep) -> dict[str, Any]:
        """The account's destinations, those being deleted included."""
        return {"destinations": [present(d) for d in svc().destinations(account_id)]}

    @v1.post(
        "/v1/accounts/{account_id}/destinations",
        tags=["destinations"],
        status_code=201,
        response_model=DestinationOut,
        responses=_CONFLICT,
    )
    def create_destination(
        account_id: AccountId, body: DestinationCreate, caller: CallerDep
    ) -> dict[str, Any]:
        """Add a destination. Its id must be unused across all accounts (409 otherwise).
        Webhook URLs and store endpoints must use https and reach a public address. A
        destination that assumes a role gets the account's external id (see
        ``aws-external-id``); any other external id is refused."""
        data = ops.with_external_id(account_id, body.model_dump(), None, options)
        return present(svc().create_destination(account_id, data, caller))

    @v1.get(
        "/v1/accounts/{account_id}/aws-external-id",
        tags=["destinations"],
        response_model=ExternalIdOut,
    )
    def aws_external_id(account_id: AccountId, caller: CallerDep) -> Any:
        """The external id the platform uses for this account when it assumes a role in the
        account's AWS account (S3 destinations with ``role_arn``): require it in the role's
        trust policy (``sts:ExternalId``). It is the platform's, the same for every destination
        of the account; a destination cannot choose another. 404 when this deployment assumes
        no roles."""
        external_id = external_id_for(account_id, options.external_id_key)
        if external_id is None:
            return _json(404, {"detail": "this deployment does not assume roles"})
        return {"account_id": account_id, "external_id": external_id}

    @v1.get(
        "/v1/accounts/{account_id}/destinations/{destination_id}",
        tags=["destinations"],
        response_model=DestinationOut,
    )
    def get_destination(
        account_id: AccountId, destination_id: DestinationId, caller: CallerDep
    ) -> dict[str, Any]:
        return present(svc().destination(account_id, destination_id))

    @v1.patch(
        "/v1/accounts/{account_id}/destinations/{destination_id}",
        tags=["destinations"],
        response_model=DestinationOut,
        responses=_CONFLICT,
    )
    def patch_destination(
        account_id: AccountId,
        destination_id: DestinationId,
        body: DestinationPatch,
        caller: CallerDep,
    ) -> dict[str, Any]:
        """Change some fields. ``type`` is required and must be the destination's type; omitted
        fields keep their values, and so does a secret sent as ``********``, unless the change
        moves the destination to another address (URL, endpoint, an address inside a
        connection string or key file): then every stored secret and header value must be
        sent again (422 names them)."""
        patch = body.model_dump(exclude_unset=True)
        stored = svc().destination(account_id, destination_id)
        if patch.get("type") == stored.type:
            patch = ops.with_external_id(account_id, patch, stored, options)
        return present(svc().update_destination(account_id, destination_id, patch, caller))

    @v1.delete(
        "/v1/accounts/{account_id}/destinations/{destination_id}",
        tags=["destinations"],
        status_code=202,
        response_model=DestinationOut,
        responses={204: {"description": "Removed at once."}},
    )
    def delete_destination(
        account_id: AccountId,
        destination_id: DestinationId,
        caller: CallerDep,
        force: Annotated[
            bool,
            Query(description="Remove it and its topic now, undelivered events included."),
        ] = False,
    ) -> Any:
        """Delete a destination: 202 while its waiting events are delivered (it is removed
        once drained); 204 when removed at once (``force``, or a paused or disabled
        destination, which would never drain)."""
        destination, removed = svc().delete_destination(
            account_id, destination_id, force=force, caller=caller
        )
        if removed:
            return Response(status_code=204)
        return present(destination)


def _add_destination_actions(v1: APIRouter, svc: ServiceGetter) -> None:
    """Check, status, pause, resume and replay of one destination."""

    @v1.post(
        "/v1/accounts/{account_id}/destinations/{destination_id}/check",
        tags=["destinations"],
        response_model=CheckOut,
        responses={
            429: {
                "model": ErrorMessage,
                "description": "A check of this account (or too many checks in all) is "
                "running; try again after Retry-After seconds.",
            }
        },
    )
    def check_destination(
        account_id: AccountId, destination_id: DestinationId, caller: CallerDep
    ) -> dict[str, Any]:
        """Write a check object (object stores) or POST a signed empty batch (webhooks) and
        say whether it worked, and if not, why. One check of an account runs at a time."""
        result = svc().check(account_id, destination_id)
        # What a vendor or a receiver said may quote a credential: never the destination's.
        secrets = secret_values(svc().destination(account_id, destination_id))
        return {
            "ok": result.ok,
            "cause": result.cause,
            "message": redact_these(result.message, secrets),
            "steps": [redact_these(step, secrets) for step in result.steps],
        }

    @v1.get(
        "/v1/accounts/{account_id}/destinations/{destination_id}/status",
        tags=["destinations"],
        response_model=StatusOut,
    )
    def destination_status(
        account_id: AccountId, destination_id: DestinationId, caller: CallerDep
    ) -> dict[str, Any]:
        """Delivery state, last success and error, and the events waiting."""
        status = svc().status(account_id, destination_id)
        if isinstance(status.get("last_error"), str):  # a worker's words: see the check
            secrets = secret_values(svc().destination(account_id, destination_id))
            status["last_error"] = redact_these(status["last_error"], secrets)
        return status

    @v1.post(
        "/v1/accounts/{account_id}/destinations/{destination_id}/pause",
        tags=["destinations"],
        response_model=DestinationOut,
        responses=_CONFLICT,
    )
    def pause_destination(
        account_id: AccountId, destination_id: DestinationId, caller: CallerDep
    ) -> dict[str, Any]:
        """Hold deliveries; events wait in the destination's topic (within retention)."""
        return present(svc().set_paused(account_id, destination_id, True, caller))

    @v1.post(
        "/v1/accounts/{account_id}/destinations/{destination_id}/resume",
        tags=["destinations"],
        response_model=DestinationOut,
        responses=_CONFLICT,
    )
    def resume_destination(
        account_id: AccountId, destination_id: DestinationId, caller: CallerDep
    ) -> dict[str, Any]:
        return present(svc().set_paused(account_id, destination_id, False, caller))

    @v1.post(
        "/v1/accounts/{account_id}/destinations/{destination_id}/replay",
        tags=["destinations"],
        response_model=DestinationOut,
        responses=_CONFLICT,
    )
    def replay_destination(
        account_id: AccountId,
        destination_id: DestinationId,
        body: ReplayIn,
        caller: CallerDep,
    ) -> dict[str, Any]:
        """Deliver again every event recorded since ``from_time`` (within retention)."""
        return present(svc().replay(account_id, destination_id, body.from_time, caller))
