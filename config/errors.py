"""Configuration errors."""

from auditstream.errors import AuditstreamError


class ConfigError(AuditstreamError):
    """A setting is missing or invalid. The message names the setting and how to fix it."""


class SecretKeyError(ConfigError):
    """Stored secrets cannot be opened: no key is configured, or none of the configured keys
    sealed them. A process configuration problem, not a problem of one account's settings."""
