"""Configuration errors."""

from auditstream.errors import AuditstreamError


class ConfigError(AuditstreamError):
    """A setting is missing or invalid. The message names the setting and how to fix it."""
