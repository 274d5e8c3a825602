"""A misconfigured destination (wrong credentials, missing bucket) is named precisely by the
check, is suspended at once by the worker with its cause (no retry fixes either without the
owner), keeps its events, and never blocks the others."""

from __future__ import annotations

import time
from pathlib import Path

from auditstream.config.stream import AccountSettings
from auditstream.pipeline import topics
from auditstream.pipeline.embedded_log import EmbeddedLog
from auditstream.pipeline.router import Router
from auditstream.pipeline.settings_writer import publish_settings
from auditstream.producers.sdk import ActivityProducer
from auditstream.sinks.check import check_destination
from auditstream.sinks.health import State
from auditstream.sinks.retry import RetryPolicy
from auditstream.sinks.worker import SinkWorker, WorkerOptions
from devservices.object_stores import AzureStore, GcsStore, S3Store
from devservices.stored_objects import decode_object
from tests.factories import make_event


def test_misconfigured_destinations_are_named_and_isolated(tmp_path: Path) -> None:
    azure, s3, gcs = (
        AzureStore(tmp_path / "az"),
        S3Store(tmp_path / "s3"),
        GcsStore(tmp_path / "gcs"),
    )
    try:
        wrong_key = azure.server.connection_string_for("d3Jvbmcta2V5LXdyb25nLWtleQ==")
        batch = {"max_events": 50, "max_age_s": 0.2}
        accounts = [
            AccountSettings.model_validate(
                {
                    "account_id": "acct-az",
                    "destinations": [
                        azure.destination("az-bad", connection_string=wrong_key, batch=batch)
                    ],
                }
            ),
            AccountSettings.model_validate(
                {
                    "account_id": "acct-s3",
                    "destinations": [
                        s3.destination("s3-bad", bucket="no-such-bucket", batch=batch)
                    ],
                }
            ),
            AccountSettings.model_validate(
                {
                    "account_id": "acct-gcs",
                    "destinations": [gcs.destination("gcs-good", batch=batch)],
                }
            ),
        ]
        causes = {a.destinations[0].id: check_destination(a.destinations[0]) for a in accounts}
        assert causes["az-bad"].cause == "bad_credentials"
        assert causes["s3-bad"].cause == "bucket_missing"
        assert causes["gcs-good"].ok, causes["gcs-good"].message
        for result in causes.values():
            assert "d3Jvbmcta2V5" not in result.message  # the key never shows

        log = EmbeddedLog(tmp_path / "log.sqlite")
        publish_settings(log, accounts)
        options = WorkerOptions(retry_policy=RetryPolicy(attempts=2, base=0.01, max_wait=0.05))
        router, worker = Router(log), SinkWorker(log, options=options)
        events = [
            make_event(account_id=a) for a in ("acct-az", "acct-s3", "acct-gcs") for _ in range(120)
        ]
        with ActivityProducer(log) as producer:
            for e in events:
                producer.send(e)
        want_gcs = {e["event_id"] for e in events if e["account_id"] == "acct-gcs"}

        def gcs_delivered() -> int:
            health = worker.health.get("gcs-good")
            return 0 if health is None else health.delivered_events

        deadline = time.monotonic() + 60
        while gcs_delivered() < len(want_gcs):
            assert time.monotonic() < deadline, worker.health
            router.step()
            worker.step()

        assert worker.health["az-bad"].state is State.SUSPENDED
        assert worker.health["az-bad"].last_cause == "bad_credentials"
        assert worker.health["s3-bad"].state is State.SUSPENDED
        assert worker.health["s3-bad"].last_cause == "bucket_missing"
        got = {str(e["event_id"]) for k, d in gcs.objects().items() for e in decode_object(k, d)}
        assert got == want_gcs
        # Nothing was acknowledged for the broken destinations: their events wait.
        for dest in ("az-bad", "s3-bad"):
            committed = log.committed_offsets(topics.SINK_GROUP, topics.destination_topic(dest))
            assert sum(committed.values()) == 0
        worker.close()
        router.close()
        log.close()
    finally:
        azure.stop()
        s3.stop()
        gcs.stop()
