"""Process settings (which log, where, metrics port, Kafka security), from flags or
``AUDITSTREAM_*`` env vars. Validated once at start-up.

Kafka security: ``AUDITSTREAM_KAFKA_SECURITY_PROTOCOL`` (``plaintext``, ``ssl``,
``sasl_plaintext``, ``sasl_ssl``), ``AUDITSTREAM_KAFKA_SASL_MECHANISM`` (``PLAIN``,
``SCRAM-SHA-256``, ``SCRAM-SHA-512``), ``AUDITSTREAM_KAFKA_SASL_USERNAME``,
``AUDITSTREAM_KAFKA_SASL_PASSWORD`` or ``AUDITSTREAM_KAFKA_SASL_PASSWORD_FILE``,
``AUDITSTREAM_KAFKA_SSL_CA_FILE``, ``AUDITSTREAM_KAFKA_SSL_CERT_FILE``,
``AUDITSTREAM_KAFKA_SSL_KEY_FILE``, ``AUDITSTREAM_KAFKA_SSL_KEY_PASSWORD`` or
``AUDITSTREAM_KAFKA_SSL_KEY_PASSWORD_FILE``; any other librdkafka property through
``AUDITSTREAM_KAFKA_PROPERTIES`` (a JSON object) or ``AUDITSTREAM_KAFKA_PROPERTIES_FILE`` (a
file of ``key=value`` lines). Secrets come from the environment or files, never from flags.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from auditstream.config.errors import ConfigError
from auditstream.config.secrets import remember_secrets

PROTECTED_KAFKA_PROPERTIES = frozenset(
    {
        "bootstrap.servers",
        "metadata.broker.list",
        "enable.idempotence",
        "acks",
        "request.required.acks",
        "transactional.id",
        "isolation.level",
        "enable.auto.commit",
        "enable.auto.offset.store",
        "group.id",
        "auto.offset.reset",
        "enable.gapless.guarantee",
        "partition.assignment.strategy",
        "logger",
    }
)
"""librdkafka properties the delivery semantics depend on (idempotent, transactional,
read-committed, manually committed clients) or that other settings own: never passed
through."""

_SECRET_PROPERTY = re.compile(r"password|secret|credential", re.IGNORECASE)


def _read_secret_file(setting: str, path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"cannot read {setting}={path}: {exc.strerror}") from None


def _properties_file(path: Path) -> dict[str, str]:
    """``key=value`` lines; blank lines and ``#`` comments skipped."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(
            f"cannot read AUDITSTREAM_KAFKA_PROPERTIES_FILE={path}: {exc.strerror}"
        ) from None
    out: dict[str, str] = {}
    for number, line in enumerate(lines, 1):
        text = line.strip()
        if not text or text.startswith(("#", "!")):
            continue
        key, sep, value = text.partition("=")
        if not sep or not key.strip():
            raise ConfigError(
                f"AUDITSTREAM_KAFKA_PROPERTIES_FILE={path} line {number}: expected key=value"
            )
        out[key.strip()] = value.strip()
    return out


class RuntimeSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AUDITSTREAM_", extra="ignore")

    backend: Literal["embedded", "kafka"] = Field(
        "embedded", description="Log backend: embedded (SQLite file) or kafka."
    )
    embedded_path: Path = Field(
        Path("auditstream.sqlite"), description="SQLite file of the embedded log."
    )
    kafka_bootstrap: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers.")
    kafka_security_protocol: Literal["plaintext", "ssl", "sasl_plaintext", "sasl_ssl"] = Field(
        "plaintext", description="How clients talk to the brokers."
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_sasl_password_file: Path | None = None
    kafka_ssl_ca_file: Path | None = Field(
        None, description="CA certificates (PEM) the brokers' certificates are checked against."
    )
    kafka_ssl_cert_file: Path | None = Field(None, description="Client certificate (PEM).")
    kafka_ssl_key_file: Path | None = Field(None, description="Client private key (PEM).")
    kafka_ssl_key_password: SecretStr | None = None
    kafka_ssl_key_password_file: Path | None = None
    kafka_properties: dict[str, str | int | float | bool] = Field(
        default_factory=dict,
        description="Other librdkafka properties (a JSON object).",
        repr=False,  # may hold a secret
    )
    kafka_properties_file: Path | None = Field(
        None, description="Other librdkafka properties, a file of key=value lines."
    )
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = Field(None, ge=0, le=65535)
    activity_partitions: int = Field(1, ge=1, le=1024)
    fault_exit_after_writes: int | None = Field(
        None,
        ge=1,
        description="Fault injection for crash tests: the sink worker exits (code 86) right "
        "after its N-th stored batch, before committing its offset. Never set in production.",
    )

    if not TYPE_CHECKING:  # the checker keeps the fields' own signature

        def __init__(self, **values: Any) -> None:
            """Raises :class:`ConfigError` naming each invalid setting (never its value: it may be
            a secret)."""
            try:
                super().__init__(**values)
            except ValidationError as exc:
                problems = "; ".join(
                    f"AUDITSTREAM_{'_'.join(str(p) for p in e['loc'][:1]).upper()}: {e['msg']}"
                    for e in exc.errors()
                )
                raise ConfigError(f"invalid settings: {problems}") from None
            except SettingsError as exc:
                field = str(exc).partition('field "')[2].partition('"')[0]
                raise ConfigError(
                    f"invalid setting AUDITSTREAM_{field.upper()}: not valid JSON"
                    if field
                    else f"invalid settings: {exc}"
                ) from None

    def _secret(self, name: str, value: SecretStr | None, file: Path | None) -> str | None:
        if value is not None and file is not None:
            raise ConfigError(
                f"set AUDITSTREAM_{name.upper()} or AUDITSTREAM_{name.upper()}_FILE, not both"
            )
        if file is not None:
            return _read_secret_file(f"AUDITSTREAM_{name.upper()}_FILE", file)
        return value.get_secret_value() if value is not None else None

    def kafka_client_config(self) -> dict[str, str | int | float | bool]:
        """The librdkafka properties every client of this process gets (besides the bootstrap
        servers). Raises :class:`ConfigError` naming the setting or property at fault; the
        secrets read are remembered, so that no log line shows them."""
        protocol = self.kafka_security_protocol
        conf: dict[str, str | int | float | bool] = {}
        if protocol != "plaintext":
            conf["security.protocol"] = protocol
        conf.update(self._sasl_config())
        conf.update(self._tls_config())
        for key, value in sorted(self._passed_through().items()):
            if key.strip().lower() in PROTECTED_KAFKA_PROPERTIES:
                raise ConfigError(
                    f"Kafka property {key!r} may not be set in AUDITSTREAM_KAFKA_PROPERTIES"
                    "(_FILE): auditstream sets it, and its delivery guarantees depend on that value"
                )
            if key in conf:
                raise ConfigError(
                    f"Kafka property {key!r} is set both by a dedicated AUDITSTREAM_KAFKA_* "
                    "setting and in AUDITSTREAM_KAFKA_PROPERTIES: keep one"
                )
            conf[key] = value
        remember_secrets(
            str(v)
            for k, v in conf.items()
            if k in ("sasl.password", "ssl.key.password") or _SECRET_PROPERTY.search(k)
        )
        return conf

    def _passed_through(self) -> dict[str, str | int | float | bool]:
        extra: dict[str, str | int | float | bool] = dict(self.kafka_properties)
        if self.kafka_properties_file is not None:
            extra.update(_properties_file(self.kafka_properties_file))
        return extra

    def _sasl_config(self) -> dict[str, str]:
        protocol = self.kafka_security_protocol
        password = self._secret(
            "kafka_sasl_password", self.kafka_sasl_password, self.kafka_sasl_password_file
        )
        if not protocol.startswith("sasl_"):
            if self.kafka_sasl_mechanism or self.kafka_sasl_username or password:
                raise ConfigError(
                    "SASL settings are set but AUDITSTREAM_KAFKA_SECURITY_PROTOCOL is "
                    f"{protocol}: use sasl_ssl (or sasl_plaintext)"
                )
            return {}
        missing = [
            f"AUDITSTREAM_KAFKA_{n}"
            for n, v in (
                ("SASL_MECHANISM", self.kafka_sasl_mechanism),
                ("SASL_USERNAME", self.kafka_sasl_username),
                ("SASL_PASSWORD (or _FILE)", password),
            )
            if not v
        ]
        if missing:
            raise ConfigError(
                f"AUDITSTREAM_KAFKA_SECURITY_PROTOCOL={protocol} needs {', '.join(missing)}"
            )
        return {
            "sasl.mechanism": str(self.kafka_sasl_mechanism),
            "sasl.username": str(self.kafka_sasl_username),
            "sasl.password": str(password),
        }

    def _tls_config(self) -> dict[str, str]:
        protocol = self.kafka_security_protocol
        key_password = self._secret(
            "kafka_ssl_key_password", self.kafka_ssl_key_password, self.kafka_ssl_key_password_file
        )
        files = (
            ("AUDITSTREAM_KAFKA_SSL_CA_FILE", "ssl.ca.location", self.kafka_ssl_ca_file),
            (
                "AUDITSTREAM_KAFKA_SSL_CERT_FILE",
                "ssl.certificate.location",
                self.kafka_ssl_cert_file,
            ),
            ("AUDITSTREAM_KAFKA_SSL_KEY_FILE", "ssl.key.location", self.kafka_ssl_key_file),
        )
        given = [setting for setting, _, path in files if path is not None]
        if given and not protocol.endswith("ssl"):
            raise ConfigError(
                f"{given[0]} is set but AUDITSTREAM_KAFKA_SECURITY_PROTOCOL is {protocol}: use "
                "ssl or sasl_ssl"
            )
        conf: dict[str, str] = {}
        for setting, prop, path in files:
            if path is None:
                continue
            if not path.is_file():
                raise ConfigError(f"{setting}={path}: no such file")
            conf[prop] = str(path)
        if (self.kafka_ssl_cert_file is None) != (self.kafka_ssl_key_file is None):
            raise ConfigError(
                "AUDITSTREAM_KAFKA_SSL_CERT_FILE and AUDITSTREAM_KAFKA_SSL_KEY_FILE go together"
            )
        if key_password is not None:
            if self.kafka_ssl_key_file is None:
                raise ConfigError(
                    "AUDITSTREAM_KAFKA_SSL_KEY_PASSWORD is set without "
                    "AUDITSTREAM_KAFKA_SSL_KEY_FILE"
                )
            conf["ssl.key.password"] = key_password
        return conf
