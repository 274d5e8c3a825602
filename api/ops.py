"""Settings changes as pure functions: old ``AccountSettings`` in, new ``AccountSettings`` out,
or an :class:`api.errors.ApiProblem` saying why not. No I/O except the injected resolver of the
address policy.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel, SecretStr, TypeAdapter, ValidationError

from auditstream.api.errors import Conflict, Invalid, NotFound
from auditstream.api.models import MASK, SOURCES, StreamSettingsIn
from auditstream.api.options import ApiOptions
from auditstream.config.address_policy import HostUnresolvable, UrlRefused
from auditstream.config.destinations import Destination, WebhookDestination
from auditstream.config.fields import RoleKind, fields_with_role, secret_fields
from auditstream.config.stream import AccountSettings
from auditstream.sinks.webhook import RESERVED_HEADERS

DESTINATION_ADAPTER: TypeAdapter[Destination] = TypeAdapter(Destination)
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$")
_TYPE_TAGS = frozenset(SOURCES)


def blank_settings(account_id: str) -> AccountSettings:
    """An account without settings streams nothing: streaming starts disabled."""
    return AccountSettings(account_id=account_id, streaming_enabled=False)


def _errors(exc: ValidationError, prefix: Sequence[str | int] = ("body",)) -> Invalid:
    out: list[tuple[list[str | int], str, str]] = []
    for err in exc.errors(include_input=False, include_url=False):
        loc = list(err["loc"])
        if loc and loc[0] in _TYPE_TAGS:
            loc = loc[1:]  # the discriminated union's tag says nothing the client did not send
        out.append(([*prefix, *loc], err["msg"], err["type"]))
    return Invalid(out)


def validate_settings(settings: AccountSettings) -> AccountSettings:
    """Re-validate a settings object built by copying (every validator runs)."""
    try:
        return AccountSettings.model_validate(settings.model_dump(mode="python"))
    except ValidationError as exc:
        raise _errors(exc) from None


def _plain(value: Any) -> Any:
    """A header value as text (header values may be plain strings or secrets)."""
    return value.get_secret_value() if isinstance(value, SecretStr) else value


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


# -- stream settings ---------------------------------------------------------------------------


def with_stream(
    before: AccountSettings | None, account_id: str, update: StreamSettingsIn
) -> AccountSettings:
    base = before or blank_settings(account_id)
    changes: dict[str, Any] = {
        "streaming_enabled": update.streaming_enabled,
        "include_categories": None
        if update.include_categories is None
        else _unique(update.include_categories),
        "include_activities": _unique(update.include_activities),
        "exclude_activities": _unique(update.exclude_activities),
    }
    changes["redact"] = _unique(update.redact)
    return validate_settings(base.model_copy(update=changes))


def stream_view(settings: AccountSettings | None, account_id: str) -> dict[str, Any]:
    s = settings or blank_settings(account_id)
    return {
        "account_id": account_id,
        "streaming_enabled": s.streaming_enabled,
        "include_categories": s.include_categories,
        "include_activities": s.include_activities,
        "exclude_activities": s.exclude_activities,
        "redact": list(s.redact),
    }


# -- destinations ------------------------------------------------------------------------------


def find(settings: AccountSettings | None, destination_id: str) -> Destination:
    """The account's destination; :class:`NotFound` also when another account has that id."""
    if settings is not None:
        for d in settings.destinations:
            if d.id == destination_id:
                return d
    raise NotFound(f"destination {destination_id} not found")


def parse_destination(data: dict[str, Any]) -> Destination:
    """Validate destination settings (every validator of ``config.destinations``)."""
    try:
        return DESTINATION_ADAPTER.validate_python(data)
    except ValidationError as exc:
        raise _errors(exc) from None


def refuse_masks(data: dict[str, Any], model: type[BaseModel]) -> None:
    """A new destination's secrets must be real values, not the mask GET shows."""
    for name in sorted(secret_fields(model)):
        value = data.get(name)
        if isinstance(value, SecretStr) and value.get_secret_value() == MASK:
            raise Invalid.field(name, f"set the secret itself, not {MASK}")
    for header, value in (data.get("headers") or {}).items():
        if _plain(value) == MASK:
            raise Invalid([(["body", "headers", header], f"set the value, not {MASK}", "mask")])


def merge_patch(stored: Destination, patch: dict[str, Any]) -> dict[str, Any]:
    """The stored destination with ``patch`` applied (``patch`` holds only the fields the
    client sent). A secret given as the mask keeps its value; ``batch`` merges field by field;
    ``headers`` is replaced, except that a header value given as the mask keeps its value."""
    data = stored.model_dump(mode="python")
    secrets = secret_fields(type(stored))
    for name, value in patch.items():
        if name in ("type", "id"):
            continue
        if name in secrets and isinstance(value, SecretStr) and value.get_secret_value() == MASK:
            continue
        if name == "headers" and isinstance(value, dict):
            old = data.get("headers") or {}
            data["headers"] = {
                k: (old[k] if _plain(v) == MASK and k in old else v) for k, v in value.items()
            }
        elif name == "batch" and isinstance(value, dict):
            data["batch"] = {**data["batch"], **value}
        else:
            data[name] = value
    return data


def changed_fields(before: Destination | None, after: Destination) -> set[str]:
    if before is None:
        return set(type(after).model_fields)
    return {n for n in type(after).model_fields if getattr(before, n) != getattr(after, n)}


def store_identity(d: Destination) -> tuple[str, ...] | None:
    """What an object-store destination writes into; two destinations of one account with the
    same identity would write the same object keys."""
    return d.store_identity()


def _store_words(d: Destination) -> str:
    container = fields_with_role(type(d), RoleKind.TEXT)
    for word in ("bucket", "container"):
        if word in container:
            return word
    return "path"


def check_collisions(existing: Iterable[Destination], candidate: Destination) -> None:
    identity = store_identity(candidate)
    if identity is None:
        return
    for other in existing:
        if other.id != candidate.id and store_identity(other) == identity:
            raise Conflict(
                f"destination {other.id} of this account already writes to the same "
                f"{_store_words(candidate)} with prefix {identity[-1]!r}: their objects "
                "would overwrite each other; choose another prefix"
            )


def with_destination_added(
    before: AccountSettings | None,
    account_id: str,
    destination: Destination,
    *,
    max_destinations: int,
    id_in_use: bool,
) -> AccountSettings:
    base = before or blank_settings(account_id)
    if id_in_use or any(d.id == destination.id for d in base.destinations):
        raise Conflict(f"destination id {destination.id} is already in use; choose another")
    active = [d for d in base.destinations if not d.deleting]
    if len(active) >= max_destinations:
        raise Conflict(
            f"this account has {len(active)} destinations, the most allowed "
            f"({max_destinations}); delete one first"
        )
    check_collisions(base.destinations, destination)
    return validate_settings(
        base.model_copy(update={"destinations": [*base.destinations, destination]})
    )


def with_destination_replaced(
    settings: AccountSettings, destination: Destination
) -> AccountSettings:
    find(settings, destination.id)
    check_collisions(settings.destinations, destination)
    destinations = [destination if d.id == destination.id else d for d in settings.destinations]
    return validate_settings(settings.model_copy(update={"destinations": destinations}))


def with_destination_removed(settings: AccountSettings, destination_id: str) -> AccountSettings:
    find(settings, destination_id)
    destinations = [d for d in settings.destinations if d.id != destination_id]
    return validate_settings(settings.model_copy(update={"destinations": destinations}))


def refuse_if_deleting(destination: Destination) -> None:
    if destination.deleting:
        raise Conflict(f"destination {destination.id} is being deleted")


# -- policy: what a tenant may configure --------------------------------------------------------


def _check_url(field: str, url: str, options: ApiOptions, *, show_host: bool = True) -> None:
    policy = options.address_policy
    try:
        policy.check_url(url)
    except HostUnresolvable as exc:
        msg = str(exc) if show_host else "its host does not resolve"
        raise Invalid.field(field, f"{msg}: check the host name", exc.reason) from None
    except UrlRefused as exc:
        msg = str(exc) if show_host else f"its endpoint is refused ({exc.reason})"
        raise Invalid.field(field, msg, "url_refused") from None


def check_policy(destination: Destination, options: ApiOptions, changed: set[str]) -> None:
    """Refuse what this deployment does not allow tenants to configure. Fields are found by
    their declared role (``config.fields``), so a new kind's fields are covered without a
    branch here. Only ``changed`` fields are checked against the network (a pause must not fail
    because DNS is down)."""
    model = type(destination)
    if destination.type not in options.allowed_types:
        raise Invalid.field(
            "type", f"{destination.type} destinations are not allowed in this deployment"
        )
    for name in fields_with_role(model, RoleKind.ADDRESS):
        value = getattr(destination, name)
        if value is not None and name in changed:
            _check_url(name, value, options)
    for name, url in destination.nested_addresses():
        if name in changed:
            _check_url(name, url, options, show_host=False)
    for name in fields_with_role(model, RoleKind.RELATIVE_PATH):
        value = getattr(destination, name)
        if value is not None:
            _check_relative_path(name, value)
    for name in fields_with_role(model, RoleKind.WORKER_FILE):
        if getattr(destination, name) is not None and not options.allow_ca_file:
            raise Invalid.field(
                name,
                f"{name} is not allowed in this deployment (it names a file of the sink "
                "workers); leave it null",
            )
    blame = destination.ambient_credentials_field()
    if blame is not None and not options.allow_ambient_credentials:
        raise Invalid.field(
            blame,
            f"set {_credential_hint(blame)}: this deployment does not lend its own credentials "
            "to destinations",
            "credentials_required",
        )
    if isinstance(destination, WebhookDestination):
        _check_headers(destination.headers)


def _credential_hint(field: str) -> str:
    return "access_key_id and secret_access_key, or role_arn" if field == "access_key_id" else field


def _check_relative_path(field: str, path: str) -> None:
    """A tenant's path must stay inside the root the platform gives it."""
    normal = posixpath.normpath(path)
    if (
        path.startswith(("/", "\\", "~"))
        or re.match(r"^[A-Za-z]:", path)
        or normal == ".."
        or normal.startswith("../")
        or "\\" in path
        or "\0" in path
    ):
        raise Invalid.field(
            field,
            f"{field} must be relative and stay inside the sink workers' local root "
            "(no leading /, no ..)",
        )


def _check_headers(headers: dict[str, Any]) -> None:
    for name, secret_or_text in headers.items():
        value = str(_plain(secret_or_text))
        if not _HEADER_NAME.match(name):
            raise Invalid([(["body", "headers", name], "not a valid header name", "header")])
        if name.lower() in RESERVED_HEADERS:
            raise Invalid(
                [(["body", "headers", name], "set by the webhook sink itself; remove it", "header")]
            )
        if any(c in value for c in "\r\n\0") or len(value) > 8192:
            raise Invalid(
                [(["body", "headers", name], "value has line breaks or is too long", "header")]
            )
