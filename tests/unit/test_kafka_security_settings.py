"""Kafka security settings: from the environment and files to librdkafka properties; no
secret in a repr or an error, no pass-through property that the delivery guarantees need."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from auditstream.config.errors import ConfigError
from auditstream.config.runtime import PROTECTED_KAFKA_PROPERTIES, RuntimeSettings
from auditstream.config.secrets import forget_secrets, redact_secrets

PASSWORD = "pw-0123456789-secret"


def _settings(**values: object) -> RuntimeSettings:
    return RuntimeSettings(**values)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith("AUDITSTREAM_KAFKA_"):
            monkeypatch.delenv(name)
    yield
    forget_secrets()


def test_plaintext_by_default_needs_no_property() -> None:
    assert _settings().kafka_client_config() == {}


def test_sasl_ssl_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    monkeypatch.setenv("AUDITSTREAM_KAFKA_SECURITY_PROTOCOL", "sasl_ssl")
    monkeypatch.setenv("AUDITSTREAM_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("AUDITSTREAM_KAFKA_SASL_USERNAME", "router")
    monkeypatch.setenv("AUDITSTREAM_KAFKA_SASL_PASSWORD", PASSWORD)
    monkeypatch.setenv("AUDITSTREAM_KAFKA_SSL_CA_FILE", str(ca))
    monkeypatch.setenv("AUDITSTREAM_KAFKA_PROPERTIES", '{"socket.keepalive.enable": true}')
    settings = _settings()
    assert settings.kafka_client_config() == {
        "security.protocol": "sasl_ssl",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "router",
        "sasl.password": PASSWORD,
        "ssl.ca.location": str(ca),
        "socket.keepalive.enable": True,
    }
    assert PASSWORD not in repr(settings)
    assert PASSWORD not in str(settings.model_dump())
    assert redact_secrets(f"login with {PASSWORD} failed") == "login with [redacted] failed"


def test_secrets_and_properties_from_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "password").write_text(PASSWORD + "\n")
    for name in ("ca.pem", "cert.pem", "key.pem"):
        (tmp_path / name).write_text("x")
    (tmp_path / "key-password").write_text("key-pass-987654321\n")
    (tmp_path / "client.properties").write_text(
        "# tuning\nsocket.timeout.ms = 30000\n\nclient.rack=eu-west-1a\n"
    )
    monkeypatch.setenv("AUDITSTREAM_KAFKA_SASL_PASSWORD_FILE", str(tmp_path / "password"))
    monkeypatch.setenv("AUDITSTREAM_KAFKA_SSL_KEY_PASSWORD_FILE", str(tmp_path / "key-password"))
    monkeypatch.setenv("AUDITSTREAM_KAFKA_PROPERTIES_FILE", str(tmp_path / "client.properties"))
    settings = _settings(
        kafka_security_protocol="sasl_ssl",
        kafka_sasl_mechanism="PLAIN",
        kafka_sasl_username="sink",
        kafka_ssl_ca_file=tmp_path / "ca.pem",
        kafka_ssl_cert_file=tmp_path / "cert.pem",
        kafka_ssl_key_file=tmp_path / "key.pem",
    )
    conf = settings.kafka_client_config()
    assert conf["sasl.password"] == PASSWORD
    assert conf["ssl.key.password"] == "key-pass-987654321"
    assert conf["ssl.certificate.location"] == str(tmp_path / "cert.pem")
    assert conf["ssl.key.location"] == str(tmp_path / "key.pem")
    assert conf["socket.timeout.ms"] == "30000"
    assert conf["client.rack"] == "eu-west-1a"


@pytest.mark.parametrize("key", sorted(PROTECTED_KAFKA_PROPERTIES))
def test_a_property_the_guarantees_depend_on_is_refused(key: str) -> None:
    settings = _settings(kafka_properties={key: "x"})
    with pytest.raises(ConfigError, match=f"'{key}' may not be set"):
        settings.kafka_client_config()


def test_a_protected_property_is_refused_from_a_file_too(tmp_path: Path) -> None:
    path = tmp_path / "client.properties"
    path.write_text("enable.idempotence=false\n")
    with pytest.raises(ConfigError, match=r"'enable\.idempotence' may not be set"):
        _settings(kafka_properties_file=path).kafka_client_config()


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"kafka_security_protocol": "sasl_ssl"}, "needs AUDITSTREAM_KAFKA_SASL_MECHANISM"),
        ({"kafka_sasl_username": "u"}, "SASL settings are set but"),
        ({"kafka_ssl_ca_file": Path("/nonexistent/ca.pem")}, "use ssl or sasl_ssl"),
        (
            {"kafka_security_protocol": "ssl", "kafka_ssl_ca_file": Path("/nonexistent/ca.pem")},
            "AUDITSTREAM_KAFKA_SSL_CA_FILE=/nonexistent/ca.pem: no such file",
        ),
        (
            {"kafka_security_protocol": "ssl", "kafka_ssl_key_password": PASSWORD},
            "KEY_PASSWORD is set without",
        ),
        (
            {
                "kafka_security_protocol": "sasl_plaintext",
                "kafka_sasl_mechanism": "PLAIN",
                "kafka_sasl_username": "u",
                "kafka_sasl_password": PASSWORD,
                "kafka_properties": {"sasl.username": "v"},
            },
            "set both by a dedicated",
        ),
        (
            {
                "kafka_sasl_password": PASSWORD,
                "kafka_sasl_password_file": Path("/nonexistent"),
            },
            "not both",
        ),
    ],
)
def test_invalid_settings_are_named_without_the_secret(
    settings: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as raised:
        _settings(**settings).kafka_client_config()
    assert PASSWORD not in str(raised.value)


def test_an_unreadable_password_file_is_named(tmp_path: Path) -> None:
    settings = _settings(
        kafka_security_protocol="sasl_ssl",
        kafka_sasl_mechanism="PLAIN",
        kafka_sasl_username="u",
        kafka_sasl_password_file=tmp_path / "missing",
    )
    with pytest.raises(ConfigError, match="cannot read AUDITSTREAM_KAFKA_SASL_PASSWORD_FILE="):
        settings.kafka_client_config()


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (
            "AUDITSTREAM_KAFKA_PROPERTIES",
            "{not json",
            "AUDITSTREAM_KAFKA_PROPERTIES: not valid JSON",
        ),
        (
            "AUDITSTREAM_KAFKA_SECURITY_PROTOCOL",
            "tls",
            "AUDITSTREAM_KAFKA_SECURITY_PROTOCOL: Input",
        ),
    ],
)
def test_an_invalid_environment_value_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=message) as raised:
        _settings()
    assert value not in str(raised.value)
