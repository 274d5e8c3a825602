"""Destinations created and deleted in a loop.

``max_destinations`` counted only destinations not being deleted, and every destination has its
own topic: a tenant could create and delete (forced) two hundred destinations in under a second,
each creating a topic that waits out its grace period before it is deleted, or keep any number of
destinations ``deleting``. Destinations being deleted and removed ones whose topics are not
deleted yet now count too, up to twice the limit.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

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

LIMIT = 3


class Api:
    def __init__(self, client: TestClient, auth: dict[str, dict[str, str]]) -> None:
        self.client, self.auth = client, auth

    def create(self, account: str, n: int) -> int:
        body = {"id": f"{account}-{n}", "type": "local", "path": "files", "prefix": f"p{n}"}
        answer = self.client.post(
            f"/v1/accounts/{account}/destinations", json=body, headers=self.auth[account]
        )
        return int(answer.status_code)

    def delete(self, account: str, n: int, *, force: bool) -> int:
        answer = self.client.delete(
            f"/v1/accounts/{account}/destinations/{account}-{n}",
            params={"force": "true"} if force else None,
            headers=self.auth[account],
        )
        return int(answer.status_code)


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    log = EmbeddedLog(tmp_path / "log.sqlite")
    options = ApiOptions(max_destinations=LIMIT, delete_grace=600, janitor_interval=600)
    service = SettingsService(log, SecretBox([SecretBox.generate_key()]), options)
    auth = {}
    for account in ("acme", "globex"):
        token, _ = create_token(log, account_id=account, user_id="ada", role="owner")
        auth[account] = {"Authorization": f"Bearer {token}"}
    try:
        with TestClient(create_app(service, options)) as client:
            yield Api(client, auth)
    finally:
        service.close()
        log.close()


def test_create_and_force_delete_in_a_loop_is_bounded(api: Api) -> None:
    answers = []
    for n in range(4 * LIMIT):
        answers.append(api.create("acme", n))
        if answers[-1] == 201:
            assert api.delete("acme", n, force=True) == 204
    assert answers.count(201) == 2 * LIMIT
    assert set(answers[2 * LIMIT :]) == {409}
    assert api.create("globex", 0) == 201  # another account is not held back


def test_destinations_being_deleted_count_until_removed(api: Api) -> None:
    created = 0
    for n in range(4 * LIMIT):
        if api.create("acme", n) != 201:
            break
        created += 1
        assert api.delete("acme", n, force=False) == 202  # deleting: delivered until drained
    assert created == 2 * LIMIT
