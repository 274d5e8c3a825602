"""Every process connects to a broker's SASL_SSL listener (a self-signed CA made here, SASL
PLAIN and SCRAM users) with the credentials of the ``AUDITSTREAM_KAFKA_*`` settings; with
wrong ones it ends within the broker wait with one error naming the cause (authentication
failed, certificate verify failed), never showing the password, instead of hanging."""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialAlteration,
    UserScramCredentialUpsertion,
)
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from auditstream.config.stream import AccountSettings
from auditstream.pipeline import topics
from auditstream.pipeline.kafka_log import KafkaLog
from auditstream.pipeline.settings_writer import publish_settings
from auditstream.pipeline.topic_setup import ensure_core_topics
from devservices.kafka import KafkaBroker
from devservices.ports import free_port
from devservices.processes import ProjectProcess

pytestmark = pytest.mark.kafka

PLAIN_USER, PLAIN_PASSWORD = "router", "router-pass-0123456789"
SCRAM_USER, SCRAM_PASSWORD = "worker", "worker-scram-9876543210"
WRONG_PASSWORD = "wrong-pass-5555555555"
KEYSTORE_PASSWORD = "keystore-pass"
CLIENT_KEY_PASSWORD = "client-key-pass-13579"
DEST = "acme-files"
SETTINGS = AccountSettings.model_validate(
    {"account_id": "acme", "destinations": [{"id": DEST, "type": "local", "path": "acme"}]}
)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _ca(common_name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _server_cert(
    ca_key: ec.EllipticCurvePrivateKey, ca: x509.Certificate
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("kafka-test-broker"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def _client_cert(
    ca_key: ec.EllipticCurvePrivateKey, ca: x509.Certificate
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("auditstream-client"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


class SecureBroker:
    def __init__(self, broker: KafkaBroker, files: Path) -> None:
        self.broker = broker
        self.address = broker.address("SASL_SSL")
        self.files = files
        self.ca_file = files / "ca.pem"
        self.other_ca_file = files / "other-ca.pem"

    def mtls_env(self, *, with_certificate: bool) -> dict[str, str]:
        """The SSL listener, which requires a client certificate (its key encrypted)."""
        env = {
            "AUDITSTREAM_BACKEND": "kafka",
            "AUDITSTREAM_KAFKA_BOOTSTRAP": self.broker.address("SSL"),
            "AUDITSTREAM_KAFKA_SECURITY_PROTOCOL": "ssl",
            "AUDITSTREAM_KAFKA_SSL_CA_FILE": str(self.ca_file),
        }
        if with_certificate:
            env["AUDITSTREAM_KAFKA_SSL_CERT_FILE"] = str(self.files / "client.pem")
            env["AUDITSTREAM_KAFKA_SSL_KEY_FILE"] = str(self.files / "client-key.pem")
            env["AUDITSTREAM_KAFKA_SSL_KEY_PASSWORD_FILE"] = str(self.files / "client-key-password")
        return env

    def env(
        self, user: str, password: str, mechanism: str = "PLAIN", ca_file: Path | None = None
    ) -> dict[str, str]:
        return {
            "AUDITSTREAM_BACKEND": "kafka",
            "AUDITSTREAM_KAFKA_BOOTSTRAP": self.address,
            "AUDITSTREAM_KAFKA_SECURITY_PROTOCOL": "sasl_ssl",
            "AUDITSTREAM_KAFKA_SASL_MECHANISM": mechanism,
            "AUDITSTREAM_KAFKA_SASL_USERNAME": user,
            "AUDITSTREAM_KAFKA_SASL_PASSWORD": password,
            "AUDITSTREAM_KAFKA_SSL_CA_FILE": str(ca_file or self.ca_file),
        }


@pytest.fixture(scope="module")
def secure_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureBroker]:
    tmp = tmp_path_factory.mktemp("sasl-ssl")
    ca_key, ca = _ca("auditstream test CA")
    key, cert = _server_cert(ca_key, ca)
    (tmp / "ca.pem").write_bytes(_pem(ca))
    (tmp / "other-ca.pem").write_bytes(_pem(_ca("another CA")[1]))
    client_key, client_cert = _client_cert(ca_key, ca)
    (tmp / "client.pem").write_bytes(_pem(client_cert))
    (tmp / "client-key.pem").write_bytes(
        client_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(CLIENT_KEY_PASSWORD.encode()),
        )
    )
    (tmp / "client-key-password").write_text(CLIENT_KEY_PASSWORD + "\n")
    keystore = tmp / "broker.p12"
    keystore.write_bytes(
        pkcs12.serialize_key_and_certificates(
            b"broker",
            key,
            cert,
            [ca],
            serialization.BestAvailableEncryption(KEYSTORE_PASSWORD.encode()),
        )
    )
    plain_jaas = (
        "org.apache.kafka.common.security.plain.PlainLoginModule required "
        f'user_{PLAIN_USER}="{PLAIN_PASSWORD}";'
    )
    scram_jaas = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
    props = {
        "sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
        "listener.name.sasl_ssl.plain.sasl.jaas.config": plain_jaas,
        "listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config": scram_jaas,
        "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": scram_jaas,
        "listener.name.sasl_ssl.ssl.keystore.type": "PKCS12",
        "listener.name.sasl_ssl.ssl.keystore.location": str(keystore),
        "listener.name.sasl_ssl.ssl.keystore.password": KEYSTORE_PASSWORD,
        "listener.name.sasl_ssl.ssl.key.password": KEYSTORE_PASSWORD,
        "listener.name.ssl.ssl.keystore.type": "PKCS12",
        "listener.name.ssl.ssl.keystore.location": str(keystore),
        "listener.name.ssl.ssl.keystore.password": KEYSTORE_PASSWORD,
        "listener.name.ssl.ssl.key.password": KEYSTORE_PASSWORD,
        "listener.name.ssl.ssl.client.auth": "required",
        "listener.name.ssl.ssl.truststore.type": "PEM",
        "listener.name.ssl.ssl.truststore.location": str(tmp / "ca.pem"),
    }
    listeners = ["SASL_SSL", "SSL"]
    with KafkaBroker.start(tmp / "kafka", listeners=listeners, props=props) as broker:
        _add_scram_user(broker.bootstrap)
        plain = KafkaLog(broker.bootstrap)
        try:
            ensure_core_topics(plain)
        finally:
            plain.close()
        yield SecureBroker(broker, tmp)


def _add_scram_user(bootstrap: str) -> None:
    """The SCRAM users, through the broker's plaintext listener."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for mechanism in (ScramMechanism.SCRAM_SHA_256, ScramMechanism.SCRAM_SHA_512):
        # One alteration per user and request.
        upsert: list[UserScramCredentialAlteration] = [
            UserScramCredentialUpsertion(
                SCRAM_USER, ScramCredentialInfo(mechanism, 4096), SCRAM_PASSWORD.encode()
            )
        ]
        for future in admin.alter_user_scram_credentials(upsert).values():
            future.result(timeout=30)
    del admin


def _auditstream(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "auditstream", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _activity_count(bootstrap: str) -> int:
    log = KafkaLog(bootstrap)
    try:
        return sum(log.end_offsets(topics.ACTIVITY).values())
    finally:
        log.close()


@pytest.mark.parametrize(
    ("user", "password", "mechanism"),
    [
        (PLAIN_USER, PLAIN_PASSWORD, "PLAIN"),
        (SCRAM_USER, SCRAM_PASSWORD, "SCRAM-SHA-256"),
        (SCRAM_USER, SCRAM_PASSWORD, "SCRAM-SHA-512"),
    ],
)
def test_the_simulator_produces_over_sasl_ssl(
    secure_broker: SecureBroker, user: str, password: str, mechanism: str
) -> None:
    before = _activity_count(secure_broker.broker.bootstrap)
    result = _auditstream(
        secure_broker.env(user, password, mechanism),
        "simulate",
        "--events",
        "50",
        "--quiet",
    )
    assert result.returncode == 0, result.stderr
    assert "produced 50 events" in result.stdout
    assert password not in result.stdout + result.stderr
    assert _activity_count(secure_broker.broker.bootstrap) == before + 50


def test_a_wrong_password_is_reported_as_failed_authentication(
    secure_broker: SecureBroker,
) -> None:
    result = _auditstream(
        secure_broker.env(PLAIN_USER, WRONG_PASSWORD), "simulate", "--events", "1", "--quiet"
    )
    assert result.returncode == 2, result.stderr
    assert "auditstream: error: cannot connect to Kafka at" in result.stderr
    assert "Authentication failed" in result.stderr or "authentication" in result.stderr.lower()
    assert "AUDITSTREAM_KAFKA_SASL" in result.stderr  # the hint names the settings
    assert WRONG_PASSWORD not in result.stderr + result.stdout


def test_an_unknown_ca_is_reported_as_a_failed_certificate_check(
    secure_broker: SecureBroker,
) -> None:
    env = secure_broker.env(PLAIN_USER, PLAIN_PASSWORD, ca_file=secure_broker.other_ca_file)
    result = _auditstream(env, "simulate", "--events", "1", "--quiet")
    assert result.returncode == 2, result.stderr
    assert "certificate verify failed" in result.stderr
    assert PLAIN_PASSWORD not in result.stderr + result.stdout


def test_the_router_routes_over_sasl_ssl_and_stops_cleanly_on_sigterm(
    secure_broker: SecureBroker, tmp_path: Path
) -> None:
    """Settings, events and their routed copies (a Kafka transaction per batch) all over the
    SASL_SSL listener; the router's /readyz answers ready; SIGTERM ends it with status 0."""
    plain = KafkaLog(secure_broker.broker.bootstrap)
    try:
        ensure_core_topics(plain)
        publish_settings(plain, [SETTINGS], None)
        env = secure_broker.env(PLAIN_USER, PLAIN_PASSWORD)
        result = _auditstream(env, "simulate", "--account-ids", "acme", "--events", "40", "--quiet")
        assert result.returncode == 0, result.stderr
        port = free_port()
        args = ["router", "--stop-grace", "20", "--metrics-port", str(port)]
        reader = plain.reader(topics.destination_topic(DEST))
        try:
            with ProjectProcess(args, tmp_path / "router.log", env=env) as router:
                routed = 0
                deadline = time.monotonic() + 120
                while routed < 40:
                    assert router.alive(), router.output()
                    assert time.monotonic() < deadline, router.output()
                    routed += len(reader.poll(1000, 0.5))
                assert routed == 40
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as answer:
                    assert json.loads(answer.read())["ready"] is True
                code = router.stop(timeout=60)
        finally:
            reader.close()
    finally:
        plain.close()
    assert code == 0, router.output()
    assert PLAIN_PASSWORD not in router.output()


def test_a_client_certificate_with_an_encrypted_key_over_tls(
    secure_broker: SecureBroker,
) -> None:
    before = _activity_count(secure_broker.broker.bootstrap)
    result = _auditstream(
        secure_broker.mtls_env(with_certificate=True), "simulate", "--events", "20", "--quiet"
    )
    assert result.returncode == 0, result.stderr
    assert CLIENT_KEY_PASSWORD not in result.stdout + result.stderr
    assert _activity_count(secure_broker.broker.bootstrap) == before + 20


def test_without_the_client_certificate_the_broker_refuses(secure_broker: SecureBroker) -> None:
    result = _auditstream(
        secure_broker.mtls_env(with_certificate=False), "simulate", "--events", "1", "--quiet"
    )
    assert result.returncode == 2, result.stderr
    assert "auditstream: error: cannot connect to Kafka at" in result.stderr
    assert "SSL" in result.stderr  # the cause the client saw: the handshake
