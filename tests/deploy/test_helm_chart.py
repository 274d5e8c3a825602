"""The Helm chart (deploy/helm/auditstream): `helm lint` passes, and what `helm template`
renders for several sets of values is valid against the Kubernetes schemas
(kubernetes-validate, strict: no unknown fields) and wired together: each role's Deployment
runs a real `auditstream` command line, its probes name its ports, the PodDisruptionBudgets,
Services and ServiceMonitor select its pods, the secret key comes from a Secret.

helm is built by deploy/local/helm.sh into .tools/bin (deploy/local/test.sh does it once)."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

from auditstream.cli import build_parser
from tests.deploy.tools import ALERTS, CHART, helm

KUBE_VERSION = "1.30.0"
ROLES = {"router": "router", "sinkWorker": "sink-worker", "api": "api", "indexer": "indexer"}
STORE_ROLES = {"api", "indexer"}
POSTGRES_STORE = ["--set", "store.enabled=true", "--set", "store.existingSecret=auditstream-store"]
CRDS = {"ServiceMonitor", "PrometheusRule"}  # Prometheus Operator kinds: no schema shipped
SECRET_FILE = "/etc/auditstream/secrets/secret-keys"

VARIANTS: dict[str, list[str]] = {
    "defaults": [],
    "operator": ["--set", "serviceMonitor.enabled=true", "--set", "prometheusRule.enabled=true"],
    "chart-made secret": [
        "--set", "secrets.create=true",
        "--set", "secrets.secretKeys=a-key",
        "--set", "secrets.externalIdKey=true",
        "--set", "secrets.externalIdKeyValue=an-external-id-key",
    ],
    "scaled and tuned": [
        "--set", "router.replicas=6",
        "--set", "sinkWorker.replicas=4",
        "--set", "sinkWorker.localRoot=/data/out",
        "--set-json", 'sinkWorker.args=["--delivery-threads","64","--no-address-check"]',
        "--set-json", 'extraVolumes=[{"name":"out","emptyDir":{}}]',
        "--set-json", 'extraVolumeMounts=[{"name":"out","mountPath":"/data/out"}]',
        "--set-json", 'extraEnvFrom=[{"secretRef":{"name":"cloud-credentials"}}]',
        "--set", "extraEnv.AUDITSTREAM_EMBEDDED_PATH=/tmp/unused.sqlite",
        "--set", "api.pdb.minAvailable=1",
    ],
    "api only": ["--set", "router.enabled=false", "--set", "sinkWorker.enabled=false"],
    "store on PostgreSQL": [*POSTGRES_STORE, "--set", "serviceMonitor.enabled=true"],
    "store on SQLite (dev)": [
        "--set", "store.enabled=true",
        "--set", "store.sqlite.existingClaim=audit-store",
        "--set", "api.replicas=1",
        "--set", "indexer.replicas=1",
    ],
}  # fmt: skip


def _helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([helm(), *args], capture_output=True, text=True, timeout=120, check=False)


def _render(values: Sequence[str]) -> list[dict[str, Any]]:
    result = _helm(
        "template", "prod", str(CHART), "--namespace", "audit",
        "--kube-version", KUBE_VERSION, *values,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def _by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def test_helm_lint() -> None:
    for values in (
        [],
        VARIANTS["operator"],
        VARIANTS["chart-made secret"],
        VARIANTS["store on PostgreSQL"],
        VARIANTS["store on SQLite (dev)"],
    ):
        result = _helm("lint", "--strict", str(CHART), "--kube-version", KUBE_VERSION, *values)
        assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_rendered_manifests_are_valid_kubernetes_objects(variant: str) -> None:
    docs = _render(VARIANTS[variant])
    assert docs
    for doc in docs:
        if doc["kind"] in CRDS:
            continue
        try:
            kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{variant}: {doc['kind']} {doc['metadata']['name']}: {exc}")


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_each_role_is_wired_together(variant: str) -> None:
    docs = _render(VARIANTS[variant])
    deployments = _by_kind(docs, "Deployment")
    services = _by_kind(docs, "Service")
    pdbs = _by_kind(docs, "PodDisruptionBudget")
    parser = build_parser()
    assert deployments
    for deployment in deployments:
        name = deployment["metadata"]["name"]
        pod = deployment["spec"]["template"]
        labels = pod["metadata"]["labels"]
        assert _selects(deployment["spec"]["selector"]["matchLabels"], labels)
        (container,) = pod["spec"]["containers"]
        args = parser.parse_args(container["args"])  # a real command line of ours
        assert args.command in ROLES.values(), name
        assert container["resources"]["requests"], name
        # Non-root, read-only root filesystem (a writable /tmp), nothing added.
        assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        assert "/tmp" in mounts
        # Probes: httpGet on a port the container declares.
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports["metrics"] == args.metrics_port, name
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["AUDITSTREAM_METRICS_PORT"] == str(args.metrics_port)
        for probe in ("livenessProbe", "readinessProbe"):
            assert container[probe]["httpGet"]["port"] in ports, f"{name} {probe}"
        # The secret key is a file from the Secret volume, never a value in the manifest.
        assert env["AUDITSTREAM_SECRET_KEYS_FILE"] == SECRET_FILE
        assert "AUDITSTREAM_SECRET_KEYS" not in env
        secret_volume = mounts["/etc/auditstream/secrets"]
        (volume,) = [v for v in pod["spec"]["volumes"] if v["name"] == secret_volume]
        assert volume["secret"]["secretName"]
        # Settings from the ConfigMap.
        (config_ref,) = [
            e["configMapRef"]["name"] for e in container["envFrom"] if "configMapRef" in e
        ]
        (config,) = [c for c in _by_kind(docs, "ConfigMap") if c["metadata"]["name"] == config_ref]
        assert config["data"]["AUDITSTREAM_BACKEND"] == "kafka"
        assert config["data"]["AUDITSTREAM_METRICS_HOST"] == "0.0.0.0"
        # One PodDisruptionBudget and one Service select exactly this role's pods.
        assert [p for p in pdbs if _selects(p["spec"]["selector"]["matchLabels"], labels)]
        (service,) = [s for s in services if _selects(s["spec"]["selector"], labels)]
        assert "metrics" in {p["name"] for p in service["spec"]["ports"]}
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz", name
        if args.command != "api":
            assert container["livenessProbe"]["httpGet"]["path"] == "/healthz", name
            assert container["readinessProbe"]["httpGet"]["port"] == "metrics", name
        if args.command == "api":
            assert args.host == "0.0.0.0"
            assert ports["http"] == args.port


def test_defaults_run_every_role_with_its_replicas_and_grace() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    docs = _render([])
    by_role = {
        d["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"]: d
        for d in _by_kind(docs, "Deployment")
    }
    # The indexer runs only with the audit store, which is off by default.
    assert set(by_role) == set(ROLES.values()) - {"indexer"}
    assert not _by_kind(docs, "Job")
    for key, command in ROLES.items():
        if command == "indexer":
            continue
        spec = by_role[command]["spec"]
        assert spec["replicas"] == values[key]["replicas"]
        grace = spec["template"]["spec"]["terminationGracePeriodSeconds"]
        assert grace == values[key]["terminationGracePeriodSeconds"]
    # The sink worker gets longer than its 30 s drain after SIGTERM.
    assert values["sinkWorker"]["terminationGracePeriodSeconds"] > 30
    # The Secret is expected to exist: the chart makes none by default.
    assert not _by_kind(docs, "Secret")
    assert not [d for d in docs if d["kind"] in CRDS]


def test_scaled_values_reach_the_objects() -> None:
    docs = _render(VARIANTS["scaled and tuned"])
    by_name = {d["metadata"]["name"]: d for d in _by_kind(docs, "Deployment")}
    assert by_name["prod-auditstream-router"]["spec"]["replicas"] == 6
    worker = by_name["prod-auditstream-sink-worker"]["spec"]["template"]["spec"]
    (container,) = worker["containers"]
    args = build_parser().parse_args(container["args"])
    assert args.delivery_threads == 64
    assert args.address_check is False
    assert str(args.local_root) == "/data/out"
    assert {"name": "out", "mountPath": "/data/out"} in container["volumeMounts"]
    assert {"secretRef": {"name": "cloud-credentials"}} in container["envFrom"]
    (pdb,) = [
        p for p in _by_kind(docs, "PodDisruptionBudget") if p["metadata"]["name"].endswith("-api")
    ]
    assert pdb["spec"] == {**pdb["spec"], "minAvailable": 1}
    assert "maxUnavailable" not in pdb["spec"]


def test_a_chart_made_secret_holds_the_keys() -> None:
    docs = _render(VARIANTS["chart-made secret"])
    (secret,) = _by_kind(docs, "Secret")
    assert secret["stringData"] == {"secret-keys": "a-key", "external-id-key": "an-external-id-key"}
    for deployment in _by_kind(docs, "Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert volumes["secrets"]["secret"]["secretName"] == secret["metadata"]["name"]
        env = {e["name"]: e["value"] for e in pod["containers"][0]["env"]}
        assert env["AUDITSTREAM_EXTERNAL_ID_KEY_FILE"] == "/etc/auditstream/secrets/external-id-key"


def test_a_chart_made_secret_needs_its_key() -> None:
    result = _helm(
        "template", "prod", str(CHART), "--kube-version", KUBE_VERSION,
        "--set", "secrets.create=true",
    )  # fmt: skip
    assert result.returncode != 0
    assert "secrets.secretKeys" in result.stderr


def test_service_monitor_and_prometheus_rule() -> None:
    docs = _render(VARIANTS["operator"])
    (monitor,) = _by_kind(docs, "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    selected = [
        s
        for s in _by_kind(docs, "Service")
        if _selects(monitor["spec"]["selector"]["matchLabels"], s["metadata"]["labels"])
    ]
    assert len(selected) == 3
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics"
    for service in selected:
        assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
        # The job label is the Service name; the alerts match jobs containing "auditstream".
        assert "auditstream" in service["metadata"]["name"]
    assert "jobLabel" not in monitor["spec"]
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["audit"]}
    (rule,) = _by_kind(docs, "PrometheusRule")
    assert rule["spec"]["groups"] == yaml.safe_load(ALERTS.read_text())["groups"]


def _store_env(container: dict[str, Any]) -> dict[str, Any]:
    (env,) = [e for e in container["env"] if e["name"] == "AUDITSTREAM_STORE"]
    found: dict[str, Any] = env
    return found


def test_the_store_url_comes_from_its_secret_to_the_indexer_api_and_migrate_job() -> None:
    docs = _render(VARIANTS["store on PostgreSQL"])
    from_secret = {"secretKeyRef": {"name": "auditstream-store", "key": "url"}}
    by_role = {
        d["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"]: d
        for d in _by_kind(docs, "Deployment")
    }
    assert set(by_role) == set(ROLES.values())
    for role, deployment in by_role.items():
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        names = {e["name"] for e in container["env"]}
        if role in STORE_ROLES:
            assert _store_env(container) == {"name": "AUDITSTREAM_STORE", "valueFrom": from_secret}
        else:
            assert "AUDITSTREAM_STORE" not in names, role
    indexer = by_role["indexer"]["spec"]
    assert indexer["replicas"] == 2
    (container,) = indexer["template"]["spec"]["containers"]
    # Liveness is the process alone: a database that is down never restarts the indexer.
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert build_parser().parse_args(container["args"]).metrics_port == 9104
    (job,) = _by_kind(docs, "Job")
    annotations = job["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert "before-hook-creation" in annotations["helm.sh/hook-delete-policy"]
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    args = build_parser().parse_args(container["args"])
    assert (args.command, args.store_command) == ("store", "migrate")
    assert container["env"] == [{"name": "AUDITSTREAM_STORE", "valueFrom": from_secret}]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    # Run before the release's other objects exist: it must not need the ConfigMap.
    assert "envFrom" not in container
    # The ServiceMonitor scrapes the indexer too.
    (monitor,) = _by_kind(docs, "ServiceMonitor")
    selected = [
        s["metadata"]["name"]
        for s in _by_kind(docs, "Service")
        if _selects(monitor["spec"]["selector"]["matchLabels"], s["metadata"]["labels"])
    ]
    assert "prod-auditstream-indexer" in selected
    assert "postgresql://" not in yaml.safe_dump_all(docs), "no URL in the manifests"


def test_a_sqlite_store_is_a_file_on_the_claim_for_one_replica() -> None:
    docs = _render(VARIANTS["store on SQLite (dev)"])
    pods = [
        d["spec"]["template"]["spec"]
        for d in [*_by_kind(docs, "Deployment"), *_by_kind(docs, "Job")]
    ]
    with_store = 0
    for pod in pods:
        (container,) = pod["containers"]
        if not any(e["name"] == "AUDITSTREAM_STORE" for e in container["env"]):
            continue
        with_store += 1
        assert _store_env(container)["value"] == "sqlite:////var/lib/auditstream/store/audit.sqlite"
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        assert mounts["store"] == "/var/lib/auditstream/store"
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert volumes["store"]["persistentVolumeClaim"] == {"claimName": "audit-store"}
    assert with_store == 3  # the API, the indexer, the migrate Job


@pytest.mark.parametrize(
    ("values", "said"),
    [
        (["--set", "store.enabled=true"], "store.existingSecret"),
        (
            [*POSTGRES_STORE, "--set", "store.sqlite.existingClaim=c"],
            "not both",
        ),
        (
            ["--set", "store.enabled=true", "--set", "store.sqlite.existingClaim=c"],
            "api.replicas=1 and indexer.replicas=1",
        ),
        ([*POSTGRES_STORE, "--set", "store.urlKey="], "store.urlKey"),
    ],
)
def test_store_values_that_cannot_work_fail_saying_what_to_set(
    values: list[str], said: str
) -> None:
    result = _helm("template", "prod", str(CHART), "--kube-version", KUBE_VERSION, *values)
    assert result.returncode != 0
    assert said in result.stderr


def test_a_sqlite_store_counts_only_the_replicas_of_roles_that_run() -> None:
    docs = _render(
        [
            "--set", "store.enabled=true",
            "--set", "store.sqlite.existingClaim=audit-store",
            "--set", "api.enabled=false",
            "--set", "indexer.replicas=1",
        ]
    )  # fmt: skip
    names = {d["metadata"]["name"] for d in _by_kind(docs, "Deployment")}
    assert "prod-auditstream-indexer" in names
    assert "prod-auditstream-api" not in names


def test_the_migrate_job_can_be_turned_off() -> None:
    docs = _render([*POSTGRES_STORE, "--set", "store.migrate.enabled=false"])
    assert not _by_kind(docs, "Job")
    assert [d for d in _by_kind(docs, "Deployment") if d["metadata"]["name"].endswith("-indexer")]
