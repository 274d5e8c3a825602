"""An account's redaction setting removes personal data from what its destinations receive."""

from __future__ import annotations

import gzip
import time
from pathlib import Path

from auditstream.config.stream import AccountSettings
from auditstream.pipeline.embedded_log import EmbeddedLog
from auditstream.pipeline.router import Router
from auditstream.pipeline.settings_writer import publish_settings
from auditstream.producers.sdk import ActivityProducer
from auditstream.sinks.worker import SinkWorker
from tests.e2e.harness import read_object
from tests.factories import make_event


def test_redacted_fields_never_reach_the_destination(tmp_path: Path) -> None:
    log = EmbeddedLog(tmp_path / "log.sqlite")
    publish_settings(
        log,
        [
            AccountSettings.model_validate(
                {
                    "account_id": "acme",
                    "redact": ["actor_email", "ip_address"],
                    "destinations": [
                        {
                            "id": "files",
                            "type": "local",
                            "path": "files",
                            "batch": {"max_events": 10, "max_age_s": 0.1},
                        }
                    ],
                }
            )
        ],
    )
    router, worker = Router(log), SinkWorker(log, local_root=tmp_path / "out")
    with ActivityProducer(log) as producer:
        for _ in range(25):
            producer.send(make_event(account_id="acme"))
    deadline = time.monotonic() + 30
    while sum(h.delivered_events for h in worker.health.values()) < 25:
        assert time.monotonic() < deadline
        router.step()
        worker.step()
    files = [p for p in (tmp_path / "out").rglob("*.gz")]
    events = [e for p in files for e in read_object(p)]
    assert len(events) == 25
    raw = b"".join(gzip.decompress(p.read_bytes()) for p in files)
    assert b"ada@example.com" not in raw
    for e in events:
        assert e["actor"]["email"] is None
        assert e["request"]["ip"] is None
        assert e["request"]["user_agent"] == "Mozilla/5.0"
        assert e["actor"]["name"] == "Ada"
    worker.close()
    router.close()
