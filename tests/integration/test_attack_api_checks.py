"""Destination checks as a way to exhaust the API.

A check runs on the API's worker threads and waits for the destination: a webhook check may
wait up to its ``timeout_s`` (120 s), an object store's SDK its own timeouts. Those threads are
the ones every request of every tenant needs (authentication runs on them too), so a tenant who
starts checks against a receiver that never answers could stall the API for everyone. Checks
are limited: one at a time per account, a few at a time in all; others answer 429 at once.
"""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from auditstream.api.app import create_app
from auditstream.api.options import ApiOptions
from auditstream.api.service import SettingsService
from auditstream.api.tokens import create_token
from auditstream.config.secrets import SecretBox
from auditstream.pipeline.embedded_log import EmbeddedLog
from auditstream.sinks.base import CheckResult

ACCOUNTS = ("acme", "globex", "initech")


class SlowCheck:
    """A check that waits until released, as one against a receiver that never answers."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.running = 0
        self._lock = threading.Lock()

    def __call__(self, *_args: object, **_kwargs: object) -> CheckResult:
        with self._lock:
            self.running += 1
        try:
            self.release.wait(30)
            return CheckResult(True, None, "ok", [])
        finally:
            with self._lock:
                self.running -= 1


class Api:
    def __init__(self, client: TestClient, auth: dict[str, dict[str, str]], slow: SlowCheck):
        self.client, self.auth, self.slow = client, auth, slow

    def check(self, account: str, destination_id: str = "files") -> Any:
        return self.client.post(
            f"/v1/accounts/{account}/destinations/{destination_id}/check",
            headers=self.auth[account],
        )

    def wait_running(self, n: int) -> None:
        deadline = time.monotonic() + 10
        while self.slow.running < n:
            assert time.monotonic() < deadline, "the checks did not start"
            time.sleep(0.01)


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    log = EmbeddedLog(tmp_path / "log.sqlite")
    options = ApiOptions(local_root=tmp_path / "out", max_concurrent_checks=2)
    slow = SlowCheck()
    service = SettingsService(log, SecretBox([SecretBox.generate_key()]), options, check=slow)
    auth = {}
    for account in ACCOUNTS:
        token, _ = create_token(log, account_id=account, user_id="ada", role="owner")
        auth[account] = {"Authorization": f"Bearer {token}"}
    try:
        with TestClient(create_app(service, options)) as client:
            for account in ACCOUNTS:
                for destination_id in ("files", "more"):
                    body = {
                        "id": f"{account}-{destination_id}",
                        "type": "local",
                        "path": f"{account}/{destination_id}",
                    }
                    created = client.post(
                        f"/v1/accounts/{account}/destinations", json=body, headers=auth[account]
                    )
                    assert created.status_code == 201, created.text
            yield Api(client, auth, slow)
    finally:
        slow.release.set()
        service.close()
        log.close()


def test_one_check_at_a_time_per_account_and_a_few_in_all(api: Api) -> None:
    with ThreadPoolExecutor(4) as pool:
        first = pool.submit(api.check, "acme", "acme-files")
        api.wait_running(1)
        again = api.check("acme", "acme-more")  # the same account: refused at once
        assert again.status_code == 429, again.text
        assert "acme-more" not in again.text
        assert int(again.headers["Retry-After"]) > 0
        second = pool.submit(api.check, "globex", "globex-files")
        api.wait_running(2)
        third = api.check("initech", "initech-files")  # every slot taken
        assert third.status_code == 429, third.text
        started = time.monotonic()
        listed = api.client.get("/v1/accounts/initech/destinations", headers=api.auth["initech"])
        assert listed.status_code == 200
        assert time.monotonic() - started < 5  # the API still answers everything else
        api.slow.release.set()
        assert first.result(30).status_code == 200
        assert second.result(30).status_code == 200
    assert api.check("initech", "initech-files").status_code == 200  # slots are given back


def test_a_failing_check_gives_its_slot_back(api: Api) -> None:
    api.slow.release.set()
    for _ in range(3):
        assert api.check("acme", "acme-files").status_code == 200
    assert api.check("acme", "nope").status_code == 404
    assert api.check("acme", "acme-files").status_code == 200
