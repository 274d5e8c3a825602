"""Reading settings files, with errors that name the field and the file."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from auditstream.config.errors import ConfigError
from auditstream.config.fields import secret_values
from auditstream.config.secrets import remember_secrets
from auditstream.config.stream import SettingsFile


def format_validation_error(exc: ValidationError, source: str) -> str:
    lines = [f"{source}: {exc.error_count()} invalid setting(s):"]
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        lines.append(f"  {where}: {err['msg']}")
    return "\n".join(lines)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """What is wrong and where, without PyYAML's quote of the lines around it (they may hold a
    secret)."""
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        return f"{exc.problem or exc.context or 'syntax error'}{where}"
    return "syntax error"


def load_settings_file(path: Path) -> SettingsFile:
    """Parse and validate a settings YAML file. Raises :class:`ConfigError` naming the file and
    every invalid field."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read settings file {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {_yaml_problem(exc)}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping with an `accounts:` list at the top")
    try:
        settings = SettingsFile.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, str(path))) from exc
    remember_secrets(secret_values(settings))  # kept out of log lines from now on
    return settings
