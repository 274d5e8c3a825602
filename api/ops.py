"""Settings changes as pure functions: old ``AccountSettings`` in, new ``AccountSettings`` out,
or an :class:`api.errors.ApiProblem` saying why not. No I/O except the injected resolver of the
address policy.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, SecretStr, TypeAdapter, ValidationError

from auditstream.api.errors import Conflict, Invalid, NotFound
from auditstream.api.models import MASK, SOURCES, StreamSettingsIn
from auditstream.api.options import ApiOptions
from auditstream.config.address_policy import REASON_TEXT, HostUnresolvable, UrlRefused
from auditstream.config.destinations import (
    STORED,
    UNREADABLE,
    Destination,
    WebhookDestination,
)
from auditstream.config.external_id import external_id_for
from auditstream.config.fields import RoleKind, fields_with_role, secret_fields
from auditstream.config.stream import AccountSettings
from auditstream.sinks.webhook import RESERVED_HEADERS

DESTINATION_ADAPTER: TypeAdapter[Destination] = TypeAdapter(Destination)
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$")
_HEADER_VALUE = re.compile(r"^[\t\x20-\x7e]{0,8192}$")
"""What httpx can encode (ASCII) and h11 sends (no control characters but tab)."""
_TYPE_TAGS = frozenset(SOURCES)


def blank_settings(account_id: str) -> AccountSettings:
    """An account without settings streams nothing: streaming starts disabled."""
    return AccountSettings(account_id=account_id, streaming_enabled=False)


# Pydantic error types whose message quotes the input: their message is replaced by one that
# names the rule only (ADR 005: validation errors never echo the input, it may be a secret).
_QUOTING_TYPES = {
    "union_tag_invalid": "type is not a destination type of this deployment",
    "literal_error": "not one of the allowed values",
    "enum": "not one of the allowed values",
}


_ECHO_MIN = 6
"""Shorter input texts are not looked for in messages (they would match ordinary words)."""


def safe_message(err: Mapping[str, Any]) -> str:
    """The message of one pydantic error without any part of the submitted value: messages
    that quote the input are replaced, and any other message that contains a text of the
    input is reduced to its error type."""
    kind = str(err.get("type", "value_error"))
    if kind in _QUOTING_TYPES and kind != "literal_error":
        return _QUOTING_TYPES[kind]
    msg = str(err.get("msg", "invalid"))
    if any(len(text) >= _ECHO_MIN and text in msg for text in _texts(err.get("input"))):
        return _QUOTING_TYPES.get(kind, f"invalid value ({kind})")
    return msg


def _field_names(models: Iterable[type[BaseModel]]) -> frozenset[str]:
    """The field names of ``models`` and of the models they nest."""
    out: set[str] = set()
    for model in models:
        for name, info in model.model_fields.items():
            out.add(name)
            nested = [
                a
                for a in (info.annotation, *getattr(info.annotation, "__args__", ()))
                if isinstance(a, type) and issubclass(a, BaseModel)
            ]
            out |= _field_names(nested)
    return frozenset(out)


_MODEL_FIELDS = _field_names(SOURCES.values())
"""Field names: a message naming a field does not echo input, though the input holds the name
as a key (a rule checked after the fields sees the whole destination as its input)."""


def _texts(value: Any) -> list[str]:
    """Every string inside ``value`` (keys and values of nested mappings and lists), but keys
    that are field names."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, SecretStr):
        return [value.get_secret_value()]
    if isinstance(value, bool | int | float):
        return [str(value)]
    if isinstance(value, Mapping):
        return [
            t
            for k, v in value.items()
            for t in (*([] if k in _MODEL_FIELDS else _texts(k)), *_texts(v))
        ]
    if isinstance(value, list | tuple | set | frozenset):
        return [t for v in value for t in _texts(v)]
    return []


_FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


def safe_loc(loc: Sequence[str | int], kind: str) -> list[str | int]:
    """``loc`` with the keys a client chose that could be anything but a name: a header name
    that is not a valid one, an unknown field that is not an identifier (both are often a
    pasted value, maybe a credential) are replaced by what they are."""
    out: list[str | int] = []
    for i, part in enumerate(loc):
        after_headers = i > 0 and loc[i - 1] == "headers"
        if isinstance(part, str) and after_headers and not _HEADER_NAME.fullmatch(part):
            part = "(invalid header name)"
        elif (
            isinstance(part, str)
            and kind == "extra_forbidden"
            and i == len(loc) - 1
            and not _FIELD_NAME.fullmatch(part)
        ):
            part = "(unknown field)"
        out.append(part)
    return out


_VALUE_ERROR = "Value error, "
_LEADING_NAME = re.compile(r"[a-z_][a-z0-9_]*")


def _blamed(loc: list[str | int], kind: str, msg: str) -> tuple[list[str | int], str]:
    """A rule checked after the fields (a model validator) is reported at the model: its error
    is located at the field its message starts with (``url must be ...``), when there is one.
    Without pydantic's ``Value error,`` prefix."""
    if kind != "value_error" or not msg.startswith(_VALUE_ERROR):
        return loc, msg
    msg = msg.removeprefix(_VALUE_ERROR)
    first = _LEADING_NAME.match(msg)
    if not loc and first is not None and first.group() in _MODEL_FIELDS:
        loc = [first.group()]
    return loc, msg


def _errors(exc: ValidationError, prefix: Sequence[str | int] = ("body",)) -> Invalid:
    out: list[tuple[list[str | int], str, str]] = []
    for err in exc.errors(include_url=False):
        loc = list(err["loc"])
        if loc and loc[0] in _TYPE_TAGS:
            loc = loc[1:]  # the discriminated union's tag says nothing the client did not send
        loc, msg = _blamed(loc, err["type"], safe_message(err))
        out.append(([*prefix, *safe_loc(loc, err["type"])], msg, err["type"]))
    return Invalid(out)


def validate_settings(settings: AccountSettings) -> AccountSettings:
    """Re-validate a settings object built by copying (every cross-field validator runs).
    Its destinations are validated as stored settings: a new or changed one was validated as
    new input already (``parse_destination``), and the others must not block this change."""
    try:
        return AccountSettings.model_validate(settings.model_dump(mode="python"), context=STORED)
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
    raise NotFound("no such destination in this account")


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
    ``headers`` is replaced, except that a header value given as the mask keeps its value.

    Raises :class:`Invalid` naming the secrets to send again when the patch changes where the
    destination sends (see :func:`refuse_kept_secrets_on_new_addresses`)."""
    data = stored.model_dump(mode="python")
    secrets = secret_fields(type(stored))
    for name, value in patch.items():
        if name in ("type", "id"):
            continue
        if name in secrets and _is_mask(value):
            continue
        if name == "headers" and isinstance(value, dict):
            old = data.get("headers") or {}
            for position, (k, v) in enumerate(value.items()):
                if _is_mask(v) and k not in old:  # nothing stored: the mask would be sent
                    where: str | int = k if _HEADER_NAME.fullmatch(k) else position
                    raise Invalid(
                        [
                            (
                                ["body", "headers", where],
                                f"set the value, not {MASK}: this header has no stored value",
                                "mask",
                            )
                        ]
                    )
            data["headers"] = {k: (old[k] if _is_mask(v) else v) for k, v in value.items()}
        elif name == "batch" and isinstance(value, dict):
            data["batch"] = {**data["batch"], **value}
        else:
            data[name] = value
    refuse_kept_secrets_on_new_addresses(stored, patch, data)
    return data


def _is_mask(value: Any) -> bool:
    return bool(_plain(value) == MASK)


def kept_secrets(stored: Destination, patch: dict[str, Any]) -> list[str]:
    """The stored secrets (and header values, as ``headers.<name>``) that ``patch`` keeps:
    omitted or sent as the mask. Secrets are found by type."""
    kept = [
        name
        for name in sorted(secret_fields(type(stored)))
        if getattr(stored, name) is not None and (name not in patch or _is_mask(patch[name]))
    ]
    stored_headers: dict[str, Any] = getattr(stored, "headers", None) or {}
    sent = patch.get("headers")
    for header in sorted(stored_headers):
        if not isinstance(sent, dict) or (header in sent and _is_mask(sent[header])):
            kept.append(f"headers.{header}")
    return kept


def addresses(destination: Destination) -> set[tuple[str, str]]:
    """Where ``destination`` sends: its ``Address`` fields and the addresses nested in other
    fields (a connection string's endpoints, a key file's token URL), found by type."""
    out = {
        (name, str(getattr(destination, name)))
        for name in fields_with_role(type(destination), RoleKind.ADDRESS)
        if getattr(destination, name) is not None
    }
    return out | set(destination.nested_addresses())


def refuse_kept_secrets_on_new_addresses(
    stored: Destination, patch: dict[str, Any], merged: dict[str, Any]
) -> None:
    """A secret shown masked must not follow the destination to a new address: whoever may
    change the address but not read the secret would receive it there (a webhook's
    ``Authorization`` header, a SAS token, request signatures). Raises :class:`Invalid` naming
    every kept secret when ``merged`` sends somewhere ``stored`` does not. Settings that do not
    validate are left to the caller's validation."""
    kept = kept_secrets(stored, patch)
    if not kept:
        return
    try:
        updated = DESTINATION_ADAPTER.validate_python(merged)
    except ValidationError:
        return
    moved = sorted({name for name, _url in addresses(updated) ^ addresses(stored)})
    if not moved:
        return
    where = ", ".join(moved)
    raise Invalid(
        [
            (
                ["body", *field.split(".", 1)],
                f"send this secret again: {where} changes where the destination sends, and a "
                "stored secret does not follow it",
                "secret_required",
            )
            for field in kept
        ]
    )


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
                "another destination of this account already writes to the same "
                f"{_store_words(candidate)} with the same prefix: their objects would overwrite "
                "each other; choose another prefix"
            )


def with_destination_added(
    before: AccountSettings | None,
    account_id: str,
    destination: Destination,
    *,
    max_destinations: int,
    id_in_use: bool,
    topics_pending_deletion: int = 0,
) -> AccountSettings:
    """``before`` with ``destination`` added. Raises :class:`Conflict` for an id in use, when
    the account has ``max_destinations`` destinations not being deleted, or when, counting
    those being deleted and ``topics_pending_deletion`` (its removed destinations' topics not
    deleted yet), it has twice as many: each destination has a topic, and creating and
    deleting destinations in a loop would otherwise create topics without bound."""
    base = before or blank_settings(account_id)
    if id_in_use or any(d.id == destination.id for d in base.destinations):
        raise Conflict("this destination id is already in use; choose another")
    active = [d for d in base.destinations if not d.deleting]
    if len(active) >= max_destinations:
        raise Conflict(
            f"this account has {len(active)} destinations, the most allowed "
            f"({max_destinations}); delete one first"
        )
    going = len(base.destinations) - len(active) + topics_pending_deletion
    if len(active) + going >= 2 * max_destinations:
        raise Conflict(
            f"this account has {going} deleted destinations whose topics are not removed yet; "
            "try again once they are (a deleted destination is removed when its events are "
            "delivered, its topic shortly after)"
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


def with_external_id(
    account_id: str,
    body: dict[str, Any],
    stored: Destination | None,
    options: ApiOptions,
) -> dict[str, Any]:
    """``body`` (a new destination, or a patch of ``stored``) with the platform's external id
    for ``account_id`` in the field the destination names (``external_id_field``) when it
    assumes a role, and cleared when it no longer does. The tenant may leave it out or send
    the platform's value; any other value is refused (AWS's defence against a confused deputy:
    an external id the tenant chooses would let one tenant use another's role).

    Raises :class:`Invalid` for another external id, or for a role when this deployment has no
    external id key. Bodies that do not validate are returned as they are (the caller's
    validation names their problems)."""
    data = dict(body)
    before = stored.external_id_field() if stored is not None else None
    trial = {before: None, **data} if before is not None else data
    try:
        merged = merge_patch(stored, trial) if stored is not None else trial
        candidate = DESTINATION_ADAPTER.validate_python(merged)
    except (ValidationError, Invalid):
        return data
    field = candidate.external_id_field()
    if field is None:
        if before is not None:
            data[before] = None  # no role any more: its external id goes with it
        return data
    platform = external_id_for(account_id, options.external_id_key)
    if platform is None:
        raise Invalid.field(
            "role_arn",
            "this deployment cannot assume roles (no external id key is configured): use "
            "access_key_id and secret_access_key",
            "role_not_supported",
        )
    sent = data.get(field)
    if sent is not None and sent != platform:
        raise Invalid.field(
            field,
            f"{field} is set by the platform: leave it out (GET "
            "/v1/accounts/{account_id}/aws-external-id shows it)",
            "external_id_platform",
        )
    data[field] = platform
    return data


def refuse_if_deleting(destination: Destination) -> None:
    if destination.deleting:
        raise Conflict("this destination is being deleted")


# -- policy: what a tenant may configure --------------------------------------------------------


def _check_url(field: str, url: str, options: ApiOptions, *, nested: bool = False) -> None:
    """Raises :class:`Invalid` when the address policy refuses ``url``; the message names the
    rule, never the URL or its host (input is not echoed; a nested URL is part of a secret)."""
    policy = options.address_policy
    what = f"an address inside {field}" if nested else field
    try:
        policy.check_url(url)
    except HostUnresolvable as exc:
        raise Invalid.field(
            field, f"the host of {what} does not resolve: check the host name", exc.reason
        ) from None
    except UrlRefused as exc:
        if exc.reason == "scheme":
            need = "https or http" if policy.allow_http else "https"
            msg = f"{what} must use {need}"
        elif exc.reason in REASON_TEXT:
            msg = (
                f"the host of {what} is or resolves to {REASON_TEXT[exc.reason]}; "
                "destinations must be reachable on a public address"
            )
        else:
            msg = f"{what} is not a valid URL with a host"
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
    _check_addresses(destination, options, changed)
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
    external = destination.external_id_field()
    if external is not None and getattr(destination, external) is None:
        raise Invalid.field(
            external,
            f"{external} must be the platform's external id for this account (leave it out and "
            "the platform sets it)",
            "external_id_platform",
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


def _check_addresses(destination: Destination, options: ApiOptions, changed: set[str]) -> None:
    """The address policy on every ``Address`` field and nested address that changed, and
    key-file URLs other than the vendor's unless the operator allows them. Raises
    :class:`Invalid`."""
    for name in fields_with_role(type(destination), RoleKind.ADDRESS):
        value = getattr(destination, name)
        if value is not None and name in changed:
            _check_url(name, value, options)
    for name, url in [*destination.nested_addresses(), *destination.unofficial_addresses()]:
        if url == UNREADABLE:  # stored before the strict reading, and it does not pass it
            raise Invalid.field(
                name,
                f"{name} cannot be read as new settings are read (e.g. an ambiguous key or an "
                "address that is not a plain URL): send it again as the vendor issued it",
                "url_refused",
            )
    for name, url in destination.nested_addresses():
        if name in changed:
            _check_url(name, url, options, nested=True)
    for name, url in destination.unofficial_addresses():
        if url not in options.allowed_key_file_urls:
            raise Invalid.field(
                name,
                f"an address inside {name} is not the vendor's own endpoint (e.g. a key file's "
                "token_uri elsewhere than Google's): use the key file as the vendor issued it",
                "url_refused",
            )


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
    for position, (name, secret_or_text) in enumerate(headers.items()):
        value = str(_plain(secret_or_text))
        if not _HEADER_NAME.fullmatch(name):
            # Its position, not its name: a malformed name is often a pasted credential.
            raise Invalid(
                [
                    (
                        ["body", "headers", position],
                        f"header {position} (counted from 0) is not a valid header name: "
                        "letters, digits and !#$%&'*+.^_`|~- only",
                        "header",
                    )
                ]
            )
        if name.lower() in RESERVED_HEADERS:
            raise Invalid(
                [(["body", "headers", name], "set by the webhook sink itself; remove it", "header")]
            )
        if not _HEADER_VALUE.fullmatch(value):
            raise Invalid(
                [
                    (
                        ["body", "headers", name],
                        "the value must be at most 8192 visible ASCII characters, spaces or tabs "
                        "(no line breaks, control characters or other characters: HTTP clients "
                        "cannot send them)",
                        "header",
                    )
                ]
            )
