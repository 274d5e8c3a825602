"""Account settings as stored in the compacted settings topic (JSON, key = account id).

A record with an empty value is a tombstone: the account's settings were removed.
"""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import SecretStr, ValidationError

from config.errors import ConfigError
from config.loading import format_validation_error
from config.stream import AccountSettings


def _reveal(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, dict):
        return {k: _reveal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_reveal(v) for v in value]
    return value


def encode_settings(settings: AccountSettings) -> bytes:
    """The settings topic value for ``settings`` (secrets included: the topic is internal)."""
    return orjson.dumps(_reveal(settings.model_dump(mode="python")))


def decode_settings(value: bytes) -> AccountSettings:
    """Parse a settings topic value. Raises :class:`ConfigError` if it is not valid."""
    try:
        return AccountSettings.model_validate(orjson.loads(value))
    except (orjson.JSONDecodeError, ValidationError) as exc:
        if isinstance(exc, ValidationError):
            raise ConfigError(format_validation_error(exc, "settings record")) from exc
        raise ConfigError(f"settings record is not JSON: {exc}") from exc
