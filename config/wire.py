"""Account settings as stored in the compacted settings topic (JSON, key = account id).

A record with an empty value is a tombstone: the account's settings were removed. Secret fields
are sealed (``config.secrets``) when a key is configured.
"""

from __future__ import annotations

from typing import Any, get_args, get_origin

import orjson
from pydantic import BaseModel, SecretStr, ValidationError

from auditstream.config.destinations import STORED, Destination
from auditstream.config.errors import ConfigError, SecretKeyError
from auditstream.config.fields import is_secret, secret_values
from auditstream.config.loading import format_validation_error
from auditstream.config.secrets import SecretBox, is_sealed, remember_secrets
from auditstream.config.stream import AccountSettings


def _reveal(value: Any, box: SecretBox | None) -> Any:
    if isinstance(value, SecretStr):
        # Whatever it holds, even text that looks sealed: it must read back as it was.
        plain = value.get_secret_value()
        return box.seal(plain) if box is not None else plain
    if isinstance(value, dict):
        return {k: _reveal(v, box) for k, v in value.items()}
    if isinstance(value, list):
        return [_reveal(v, box) for v in value]
    return value


_KIND_MODELS: dict[object, type[BaseModel]] = {
    model.model_fields["type"].default: model for model in get_args(get_args(Destination)[0])
}


def _open(value: Any, box: SecretBox | None) -> Any:
    """The stored settings ``value`` with its sealed secrets opened: only values in secret
    fields (found by type), as only those were sealed. Any other text that happens to begin
    like a sealed value (a prefix, a path: tenants choose them) is left as it is."""
    if not isinstance(value, dict) or not isinstance(value.get("destinations"), list):
        return value
    return {**value, "destinations": [_open_destination(d, box) for d in value["destinations"]]}


def _open_destination(data: Any, box: SecretBox | None) -> Any:
    model = _KIND_MODELS.get(data.get("type")) if isinstance(data, dict) else None
    if model is None:
        return data  # validation names what is wrong with it
    out = dict(data)
    for name, info in model.model_fields.items():
        if name not in out:
            continue
        if is_secret(info.annotation):
            out[name] = _open_secret(out[name], box)
        elif _secret_mapping(info.annotation) and isinstance(out[name], dict):
            out[name] = {k: _open_secret(v, box) for k, v in out[name].items()}
    return out


def _secret_mapping(annotation: Any) -> bool:
    """A mapping of secrets (webhook headers)."""
    return get_origin(annotation) is dict and is_secret(get_args(annotation)[1])


def _open_secret(value: Any, box: SecretBox | None) -> Any:
    if isinstance(value, str) and is_sealed(value):
        if box is None:
            raise SecretKeyError(
                "settings hold encrypted secrets but no key is configured: set "
                "AUDITSTREAM_SECRET_KEYS or AUDITSTREAM_SECRET_KEYS_FILE"
            )
        return box.open(value)
    return value


def settings_to_json(settings: AccountSettings, box: SecretBox | None = None) -> dict[str, Any]:
    """Settings as JSON-ready data with secrets revealed, or sealed when ``box`` is given."""
    return _reveal(settings.model_dump(mode="python"), box)  # type: ignore[no-any-return]


def encode_settings(settings: AccountSettings, box: SecretBox | None = None) -> bytes:
    """The settings topic value for ``settings``."""
    return orjson.dumps(settings_to_json(settings, box))


def decode_settings(value: bytes, box: SecretBox | None = None) -> AccountSettings:
    """Parse a settings topic value. Raises :class:`ConfigError` if it is not valid or a sealed
    secret cannot be opened."""
    try:
        raw = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise ConfigError(f"settings record is not JSON: {exc}") from exc
    try:
        # As stored: rules for new input added since it was stored must not lock it out.
        settings = AccountSettings.model_validate(_open(raw, box), context=STORED)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, "settings record")) from exc
    remember_secrets(secret_values(settings))  # opened: from now on kept out of log lines
    return settings
