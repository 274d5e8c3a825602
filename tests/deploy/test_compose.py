"""deploy/compose/compose.yaml, checked without a Docker engine: valid against the Compose
specification's JSON schema (the copy check-jsonschema ships), every command of our image a
real `auditstream` command line, and the pieces wired to each other (Kafka, the scrape
targets, the mounted rules, dashboard and Grafana provisioning)."""

from __future__ import annotations

import base64
import copy
import importlib.resources
import json
import re
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema  # type: ignore[import-untyped]
import pytest
import yaml

from auditstream.cli import build_parser
from tests.deploy.tools import DEPLOY, ROOT, SCRAPE_CONFIG

COMPOSE = DEPLOY / "compose" / "compose.yaml"
OUR_ROLES = {"router", "sink-worker", "api", "indexer"}
STORE_URL = "postgresql://auditstream@postgres:5432/auditstream"
PASSWORD_SECRET = "/run/secrets/postgres_password"


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def _validator() -> Any:
    vendored = importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
    schema = json.loads((vendored / "compose-spec.json").read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def _ours(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: service
        for name, service in compose["services"].items()
        if str(service.get("image", "")).startswith("auditstream:")
    }


def _long_running(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Our services that stay up (not the one-shot store-migrate)."""
    return {n: s for n, s in _ours(compose).items() if s.get("restart") != "no"}


def _host_path(source: str) -> Path:
    return (COMPOSE.parent / source).resolve()


def test_valid_against_the_compose_schema() -> None:
    validator = _validator()
    errors = [f"{e.json_path}: {e.message}" for e in validator.iter_errors(_compose())]
    assert not errors, "\n".join(errors)


def test_the_schema_check_catches_mistakes() -> None:
    validator = _validator()
    broken = copy.deepcopy(_compose())
    broken["services"]["router"]["comand"] = ["router"]
    assert list(validator.iter_errors(broken))
    broken = copy.deepcopy(_compose())
    broken["services"]["api"]["ports"] = "8080:8080"
    assert list(validator.iter_errors(broken))


def test_each_role_runs_a_real_cli_command_of_ours() -> None:
    services = _long_running(_compose())
    parser = build_parser()
    roles = set()
    for name, service in services.items():
        command = service["command"]
        assert isinstance(command, list), f"{name}: exec form, no shell"
        try:
            args = parser.parse_args(command)
        except SystemExit:
            pytest.fail(f"{name}: `auditstream {' '.join(command)}` does not parse")
        assert callable(args.func), name
        roles.add(args.command)
        # The metrics port of the command is the one the image's HEALTHCHECK probes.
        port = args.metrics_port
        assert port is not None, f"{name}: no --metrics-port"
        assert service["environment"]["AUDITSTREAM_METRICS_PORT"] == str(port), name
        assert service["environment"]["AUDITSTREAM_METRICS_HOST"] == "0.0.0.0", name
        assert service["build"]["dockerfile"] == "deploy/docker/Dockerfile"
        assert _host_path(service["build"]["context"]) == ROOT
        assert service["depends_on"]["kafka"]["condition"] == "service_healthy"
        # Each process's readiness: /readyz on the metrics port (the API's on its own port).
        if args.command != "api":
            assert f"127.0.0.1:{port}/readyz" in " ".join(service["healthcheck"]["test"]), name
    assert roles == OUR_ROLES


def test_processes_reach_kafka_and_read_the_secret_key_from_a_secret() -> None:
    compose = _compose()
    kafka = compose["services"]["kafka"]
    env = kafka["environment"]
    pom = (ROOT / "deploy" / "local" / "kafka" / "pom.xml").read_text()
    version = re.search(r"<kafka.version>([^<]+)</kafka.version>", pom)
    assert version is not None
    assert kafka["image"] == f"apache/kafka:{version.group(1)}", "the release the tests run"
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "1@kafka:9093"
    assert env["KAFKA_ADVERTISED_LISTENERS"] == "PLAINTEXT://kafka:9092"
    for single in ("OFFSETS_TOPIC", "TRANSACTION_STATE_LOG"):
        assert env[f"KAFKA_{single}_REPLICATION_FACTOR"] == 1
    cluster_id = env["CLUSTER_ID"]
    assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16, "a base64 UUID"
    secret_file = "/run/secrets/auditstream_secret_keys"
    assert compose["secrets"]["auditstream_secret_keys"] == {
        "environment": "AUDITSTREAM_SECRET_KEYS"
    }
    for name, service in _long_running(compose).items():
        assert service["environment"]["AUDITSTREAM_KAFKA_BOOTSTRAP"] == "kafka:9092", name
        assert service["environment"]["AUDITSTREAM_SECRET_KEYS_FILE"] == secret_file, name
        assert "auditstream_secret_keys" in service["secrets"], name
        assert "AUDITSTREAM_SECRET_KEYS" not in service["environment"], "no key in the env"


def test_prometheus_scrapes_every_role_and_loads_the_rules() -> None:
    compose = _compose()
    scrape = yaml.safe_load(SCRAPE_CONFIG.read_text())
    targets = {
        target
        for job in scrape["scrape_configs"]
        for group in job["static_configs"]
        for target in group["targets"]
    }
    for name, service in _long_running(compose).items():
        port = service["environment"]["AUDITSTREAM_METRICS_PORT"]
        assert f"{name}:{port}" in targets, f"{name} is not scraped"
    mounts = {
        v.split(":")[1]: v.split(":")[0] for v in compose["services"]["prometheus"]["volumes"]
    }
    config = mounts["/etc/prometheus/prometheus.yml"]
    assert _host_path(config) == SCRAPE_CONFIG
    for rule_file in scrape["rule_files"]:
        mounted = mounts[f"/etc/prometheus/{rule_file}"]
        assert _host_path(mounted) == SCRAPE_CONFIG.parent / rule_file


def test_grafana_is_provisioned_with_the_dashboard_and_prometheus() -> None:
    grafana = _compose()["services"]["grafana"]
    mounts = {}
    for volume in grafana["volumes"]:
        source, target = volume.split(":")[:2]
        mounts[target] = source
    for source in mounts.values():
        if source.startswith("."):
            assert _host_path(source).exists(), source
    providers_dir = _host_path(mounts["/etc/grafana/provisioning/dashboards"])
    (provider,) = yaml.safe_load((providers_dir / "auditstream.yaml").read_text())["providers"]
    dashboard_in = provider["options"]["path"]
    assert _host_path(mounts[f"{dashboard_in}/auditstream.json"]).name == "auditstream.json"
    sources_dir = _host_path(mounts["/etc/grafana/provisioning/datasources"])
    (source,) = yaml.safe_load((sources_dir / "prometheus.yaml").read_text())["datasources"]
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"
    assert source["isDefault"] is True


def test_images_are_pinned_and_ports_published_on_loopback_only() -> None:
    compose = _compose()
    for name, service in compose["services"].items():
        image = service["image"]
        assert ":" in image, f"{name}: no tag"
        assert not image.endswith(":latest"), name
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name}: {port} is published on every address"


def test_the_audit_store_runs_on_postgres_with_the_password_from_a_secret() -> None:
    compose = _compose()
    services = compose["services"]
    postgres = services["postgres"]
    assert postgres["environment"]["POSTGRES_PASSWORD_FILE"] == PASSWORD_SECRET
    assert "POSTGRES_PASSWORD" not in postgres["environment"]
    assert postgres["secrets"] == ["postgres_password"]
    assert compose["secrets"]["postgres_password"] == {"environment": "POSTGRES_PASSWORD"}
    assert "postgres-data:/var/lib/postgresql/data" in postgres["volumes"]
    assert "postgres-data" in compose["volumes"]
    # Over TCP: the image's initialisation server listens on the socket only.
    assert postgres["healthcheck"]["test"][1:4] == ["pg_isready", "--host", "127.0.0.1"]
    assert urlsplit(STORE_URL).password is None
    assert "ports" not in postgres, "the database is reached inside the Compose network only"
    parser = build_parser()
    migrate = services["store-migrate"]
    args = parser.parse_args(migrate["command"])
    assert (args.command, args.store_command) == ("store", "migrate")
    assert migrate["restart"] == "no"
    assert migrate["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for name in ("store-migrate", "indexer", "api"):
        service = services[name]
        assert service["environment"]["AUDITSTREAM_STORE"] == STORE_URL, name
        assert "postgres_password" in service["secrets"], name
        assert service["entrypoint"][:2] == ["sh", "-c"], name
        assert PASSWORD_SECRET in service["entrypoint"][2], name
        # No password in the environment or on a command line.
        for value in [*service["environment"].values(), *service["command"]]:
            assert "PGPASSWORD" not in str(value), name
        if name != "store-migrate":
            assert service["depends_on"]["store-migrate"] == {
                "condition": "service_completed_successfully"
            }, name
    assert parser.parse_args(services["indexer"]["command"]).command == "indexer"


def _run_entrypoint(
    tmp_path: Path, password: bytes | None, *args: str
) -> subprocess.CompletedProcess[str]:
    """The store services' entrypoint script, its secret's path moved under tmp_path and
    `auditstream` a stand-in that prints its environment's PGPASSWORD and its arguments."""
    (script,) = {
        tuple(s["entrypoint"]) for n, s in _compose()["services"].items() if "entrypoint" in s
    }
    secret = tmp_path / "postgres_password"
    if password is not None:
        secret.write_bytes(password)
    # Compose turns $$ into $ before the container runs it.
    shell = script[2].replace("$$", "$").replace(PASSWORD_SECRET, str(secret))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "auditstream"
    fake.write_text(
        "#!/bin/sh\n"
        'printf "password=%s\\n" "$PGPASSWORD"\n'
        'for a in "$@"; do printf "arg=%s\\n" "$a"; done\n'
    )
    fake.chmod(0o755)
    return subprocess.run(
        [script[0], script[1], shell, script[3], *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={"PATH": f"{bin_dir}:/usr/bin:/bin"},
    )


@pytest.mark.parametrize(
    "password",
    [b"s3cret", b"p'a\"ss $(touch x) `id` ; -- \\n", "pässwörd 密码".encode(), b"x" * 4096],
)
def test_the_entrypoint_hands_the_password_in_the_environment_only(
    tmp_path: Path, password: bytes
) -> None:
    args = ("indexer", "--metrics-port", "9104", "an arg with spaces", "$HOME", "")
    done = _run_entrypoint(tmp_path, password, *args)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"password={password.decode()}"
    assert lines[1:] == [f"arg={a}" for a in args], "arguments passed unchanged"
    assert not (tmp_path / "x").exists(), "the password is data, never run"


def test_the_entrypoint_stops_without_its_secret(tmp_path: Path) -> None:
    done = _run_entrypoint(tmp_path, None, "indexer")
    assert done.returncode != 0
    assert "postgres_password" in done.stderr
    assert "password=" not in done.stdout, "auditstream never started"
