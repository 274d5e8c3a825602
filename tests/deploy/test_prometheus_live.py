"""A real Prometheus server scrapes a router, a sink worker, the settings API and the indexer
(real processes on a real Kafka broker, the API and the indexer on one SQLite audit store,
its tables made by `auditstream store migrate` as a deployment does) under a small load;
every dashboard panel and every alert expression is evaluated through its HTTP API, the
destination-failing alert fires when a webhook destination answers 500, and the indexer's
dead-letter alert when a record it cannot store arrives.

The rules Prometheus loads here are a copy of deploy/prometheus/alerts.yaml whose ``for:``
durations are all 5 s (15 minutes of failure is not a test); the expressions are unchanged.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml

from auditstream.api.tokens import create_token
from auditstream.config.secrets import SecretBox
from auditstream.config.stream import AccountSettings
from auditstream.pipeline import topics
from auditstream.pipeline.kafka_log import KafkaLog
from auditstream.pipeline.log import OutgoingRecord
from auditstream.pipeline.produce_all import produce_all
from auditstream.pipeline.settings_writer import publish_settings
from auditstream.producers.sdk import ActivityProducer
from auditstream.schemas import codec
from devservices.kafka import KafkaBroker
from devservices.ports import free_port
from devservices.processes import ProjectProcess
from devservices.webhook_receiver import WebhookReceiver
from tests.deploy.prometheus_server import PrometheusServer, metric_names_in
from tests.deploy.tools import ALERTS, DASHBOARD
from tests.factories import make_event

pytestmark = pytest.mark.kafka

SECRET = b"prometheus-test-secret"
HEADERS = (("category", b"account"), ("activity", b"user_login"))
RATE_INTERVAL = "20s"  # what Grafana puts for $__rate_interval with 1 s scrapes (at least 4x)
SHORT_FOR = "5s"
GUARD_S = 150.0

# Alerts the test makes fire: a webhook answering 500 (failing), one answering 410
# (suspended at once), records the router, the sink worker and the indexer dead-letter.
EXPECTED_FIRING = (
    "AuditstreamDestinationFailing",
    "AuditstreamDestinationSuspended",
    "AuditstreamDeadLettersGrowing",
    "AuditstreamIndexerDeadLetters",
)
DEAD_LETTER_COUNTERS = (
    "auditstream_router_events_dead_lettered_total",
    "auditstream_sink_events_dead_lettered_total",
    "auditstream_indexer_events_dead_lettered_total",
)

JOBS = ("auditstream-router", "auditstream-sink-worker", "auditstream-api", "auditstream-indexer")
ACTIVITY = "/v1/accounts/acme/activity"
# Panels that must show data under this load (the others at least name known metrics).
MUST_HAVE_DATA = {
    "Events routed /s",
    "Events filtered /s",
    "Events dead-lettered /s",
    "Transaction latency",
    "Events delivered /s",
    "Failed batches /s",
    "Destinations by state",
    "Destination lag (top 20)",
    "Oldest undelivered event (top 20)",
    "Resident memory (RSS)",
    "Up",
    "Requests /s",
    "Events indexed /s",
    "Indexer dead-lettered /s",
    "Exports (last hour)",
    "Activity requests /s by route",
    "Activity request latency by route",
}


@dataclass(frozen=True)
class Query:
    where: str  # "panel <title>" or "alert <name>"
    expr: str


def dashboard_queries() -> list[Query]:
    """Every target expression of every panel, ``$__rate_interval`` filled in."""
    dashboard = json.loads(DASHBOARD.read_text())
    found = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"].replace("$__rate_interval", RATE_INTERVAL)
            assert "$" not in expr, f"{panel['title']}: a variable Prometheus cannot fill: {expr}"
            found.append(Query(f"panel {panel['title']}", expr))
    return found


def alert_queries() -> list[Query]:
    rules = yaml.safe_load(ALERTS.read_text())
    return [
        Query(f"alert {rule['alert']}", rule["expr"])
        for group in rules["groups"]
        for rule in group["rules"]
    ]


def _settings(failing_url: str, gone_url: str) -> AccountSettings:
    fast = {"max_events": 50, "max_age_s": 0.2}
    return AccountSettings.model_validate(
        {
            "account_id": "acme",
            "exclude_activities": ["user_logout"],
            "destinations": [
                {"id": "files", "type": "local", "path": "files", "batch": fast},
                # Answers 500: retried, then failing (AuditstreamDestinationFailing).
                {"id": "hook", "type": "webhook", "url": failing_url, "secret": SECRET.decode(),
                 "batch": fast},
                # Answers 410: the endpoint is gone, suspended at once.
                {"id": "gone", "type": "webhook", "url": gone_url, "secret": SECRET.decode(),
                 "batch": fast},
            ],
        }
    )  # fmt: skip


def _bad_records() -> list[OutgoingRecord]:
    """One record the router dead-letters (not an event) and one it passes but the sink
    worker and the indexer cannot decode (a known schema fingerprint, a corrupt body)."""
    corrupt = b"\xc3\x01" + codec.current().fingerprint_bytes + b"\xff\xff\xff\xff"
    return [
        OutgoingRecord(topics.ACTIVITY, b"this is not an event", b"acme", HEADERS),
        OutgoingRecord(topics.ACTIVITY, corrupt, b"acme", HEADERS),
    ]


def _prometheus_config(tmp_path: Path, ports: dict[str, int]) -> Path:
    rules = yaml.safe_load(ALERTS.read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = SHORT_FOR
    rules_file = tmp_path / "alerts.yaml"
    rules_file.write_text(yaml.safe_dump(rules, sort_keys=False))
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(rules_file)],
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": [f"127.0.0.1:{ports[job]}"]}]}
            for job in JOBS
        ],
    }
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.fixture
def receivers() -> Iterator[tuple[WebhookReceiver, WebhookReceiver]]:
    with WebhookReceiver(SECRET) as failing, WebhookReceiver(SECRET) as gone:
        failing.set_status(500)
        gone.set_status(410)
        yield failing, gone


def _firing(server: PrometheusServer, name: str) -> bool:
    return any(a["labels"]["alertname"] == name and a["state"] == "firing" for a in server.alerts())


def _has_data(server: PrometheusServer, expr: str) -> bool:
    return bool(server.query(expr))


def test_dashboard_and_alerts_on_a_real_prometheus(
    kafka_broker: KafkaBroker,
    tmp_path: Path,
    receivers: tuple[WebhookReceiver, WebhookReceiver],
) -> None:
    failing, gone = receivers
    log = KafkaLog(kafka_broker.bootstrap)
    backend = ["--bootstrap", kafka_broker.bootstrap]
    ports = {job: free_port() for job in JOBS}
    api_port = free_port()
    store = ["--store", f"sqlite:///{tmp_path / 'audit.sqlite'}"]
    report: list[str] = []
    try:
        publish_settings(log, [_settings(failing.url, gone.url)])
        token, _ = create_token(log, account_id="acme", user_id="ada", role="owner")
        migrated = subprocess.run(
            [sys.executable, "-m", "auditstream", "store", "migrate", *store],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert migrated.returncode == 0, migrated.stderr
        with (
            ProjectProcess(
                ["router", *backend, "--metrics-port", str(ports["auditstream-router"])],
                tmp_path / "router.log",
            ) as router,
            ProjectProcess(
                [
                    "sink-worker",
                    *backend,
                    "--metrics-port",
                    str(ports["auditstream-sink-worker"]),
                    "--local-root",
                    str(tmp_path / "out"),
                    "--allow-network",
                    "127.0.0.1/32",
                ],
                tmp_path / "worker.log",
            ) as worker,
            ProjectProcess(
                [
                    "api",
                    *backend,
                    "--port",
                    str(api_port),
                    "--metrics-port",
                    str(ports["auditstream-api"]),
                    *store,
                ],
                tmp_path / "api.log",
                env={"AUDITSTREAM_SECRET_KEYS": SecretBox.generate_key()},
            ) as api,
            ProjectProcess(
                [
                    "indexer",
                    *backend,
                    *store,
                    "--metrics-port",
                    str(ports["auditstream-indexer"]),
                ],
                tmp_path / "indexer.log",
            ) as indexer,
            PrometheusServer.start(_prometheus_config(tmp_path, ports), tmp_path / "prom") as prom,
            ActivityProducer(log) as producer,
            httpx.Client(base_url=f"http://127.0.0.1:{api_port}", timeout=5.0) as client,
        ):
            processes = {"router": router, "sink worker": worker, "api": api, "indexer": indexer}
            bearer = {"Authorization": f"Bearer {token}"}
            produce_all(log, _bad_records(), what="bad records")
            sent_bad_again = False

            def load() -> None:
                """A small steady load: events (some filtered out), API requests."""
                for _ in range(40):
                    producer.send(make_event(account_id="acme"))
                producer.send(make_event(account_id="acme", activity="user_logout"))
                producer.flush()
                for path in ("/healthz", "/v1/me"):  # /v1/me without a token: refused
                    with contextlib.suppress(httpx.TransportError):  # not listening yet
                        client.get(path)
                # The activity routes on the indexed events, and an export.
                for path in (ACTIVITY, f"{ACTIVITY}/export?format=ndjson"):
                    with contextlib.suppress(httpx.TransportError):
                        client.get(path, headers=bearer)

            def ready() -> bool:
                return (
                    all(_firing(prom, name) for name in EXPECTED_FIRING)
                    and all(h == "up" for h in prom.targets_up().values())
                    and _has_data(
                        prom, "sum(rate(auditstream_sink_events_delivered_total[20s])) > 0"
                    )
                    and _has_data(prom, "auditstream_api_auth_failures_total")
                    and _has_data(
                        prom, "sum(rate(auditstream_indexer_events_indexed_total[20s])) > 0"
                    )
                    and _has_data(
                        prom,
                        'auditstream_api_requests_total{route=~".*/activity/export",status="200"}',
                    )
                    # Sampled on a thread of the worker's own, every 15 s.
                    and _has_data(prom, "auditstream_sink_destination_lag_events")
                )

            deadline = time.monotonic() + GUARD_S
            while not ready():
                for name, proc in processes.items():
                    assert proc.alive(), f"{name} exited:\n{proc.output()[-3000:]}"
                assert time.monotonic() < deadline, (
                    f"not ready: alerts {prom.alerts()}, targets {prom.targets_up()}\n"
                    f"worker:\n{worker.output()[-3000:]}"
                )
                load()
                if not sent_bad_again and all(
                    _has_data(prom, name) for name in DEAD_LETTER_COUNTERS
                ):
                    # Once more now that Prometheus has the counters: increase() needs two
                    # samples of a series.
                    produce_all(log, _bad_records(), what="bad records")
                    sent_bad_again = True
                time.sleep(0.5)

            # The failing webhook's alert, with the job and instance of the worker.
            (alert,) = [
                a
                for a in prom.alerts()
                if a["labels"]["alertname"] == "AuditstreamDestinationFailing"
            ]
            assert alert["state"] == "firing"
            assert alert["labels"]["job"] == "auditstream-sink-worker"
            assert alert["labels"]["instance"] == f"127.0.0.1:{ports['auditstream-sink-worker']}"
            assert failing.requests > 0
            active = prom.alerts()
            states = sorted(f"{a['labels']['alertname']}={a['state']}" for a in active)
            report.append("alerts: " + ", ".join(states))
            # Every process is up and events are delivered: those alerts stay quiet.
            assert not {
                "AuditstreamProcessDown",
                "AuditstreamNoDeliveries",
                "AuditstreamIndexerStoreFailing",
                "AuditstreamIndexerNotIndexing",
            } & {a["labels"]["alertname"] for a in active}

            known = prom.metric_names()
            no_data: list[str] = []
            for q in [*dashboard_queries(), *alert_queries()]:
                names = metric_names_in(q.expr)
                assert names, f"{q.where}: no metric name found in {q.expr}"
                unknown = names - known
                assert not unknown, f"{q.where} names metrics Prometheus does not know: {unknown}"
                result = prom.query(q.expr)  # a bad expression fails here
                flat = " ".join(q.expr.split())
                report.append(f"{q.where}: {'data' if result else 'no data'}: {flat}")
                if not result:
                    no_data.append(q.where)
            missing = {f"panel {t}" for t in MUST_HAVE_DATA} & set(no_data)
            assert not missing, f"panels without data: {sorted(missing)}"
    finally:
        log.close()
        (tmp_path / "report.txt").write_text("\n".join(report) + "\n")
        print("\n".join(report))


def test_metric_names_are_read_from_expressions() -> None:
    expr = (
        'sum by (job) (increase(a_total{x="y{z}"}[15m])) > 0 or count by (job) '
        "((b unless b offset 15m) and on (job, instance) (up offset 15m)) "
        "or histogram_quantile(0.99, sum by (le) (rate(c_bucket[1m]))) + vector(0)"
    )
    assert metric_names_in(expr) == {"a_total", "b", "up", "c_bucket"}
