"""API tokens from the command line to running API replicas.

- revocation: a token revoked with ``auditstream tokens revoke`` is refused by every running
  API replica within the documented propagation time (:data:`api.tokens.PROPAGATION_S`), on
  the embedded log and on a real Kafka broker; polled, never slept through;
- expiry: an expired token gets the API's 401 for an unknown token, nothing more;
- ``tokens list`` and ``tokens revoke``: no secret or hash shown, unknown, malformed and other
  accounts' ids refused with exit status 2;
- the README's "API tokens" block, run as written on the embedded log.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shlex
import time
from collections.abc import Iterator
from contextlib import ExitStack, closing
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from auditstream.api.app import create_app
from auditstream.api.options import ApiOptions
from auditstream.api.service import SettingsService
from auditstream.api.tokens import PROPAGATION_S, create_token, token_id_of
from auditstream.cli import main
from auditstream.config.secrets import SecretBox
from auditstream.pipeline.embedded_log import EmbeddedLog
from auditstream.pipeline.log import Log
from devservices.ports import free_port
from tests.api_server import serve
from tests.readme_blocks import commands, section, sh_blocks

ROOT = Path(__file__).resolve().parents[2]


def _backend_flags(log: Log) -> list[str]:
    if log.name == "kafka":
        return ["--bootstrap", str(getattr(log, "bootstrap"))]  # noqa: B009
    return ["--backend", "embedded", "--db", str(getattr(log, "path"))]  # noqa: B009


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def _me(url: str, token: str) -> httpx.Response:
    return httpx.get(f"{url}/v1/me", headers={"Authorization": f"Bearer {token}"}, timeout=10)


def _until_ok(url: str, token: str, timeout: float = 10.0) -> None:
    """A token made after a replica started works once the replica has read it (at once: an
    unknown id makes it read the topic)."""
    deadline = time.monotonic() + timeout
    while (status := _me(url, token).status_code) != 200:
        assert time.monotonic() < deadline, f"{url}: {status}"
        time.sleep(0.05)


def _secret(token: str) -> str:
    return token.split("_", 2)[2]


@pytest.fixture
def replicas(any_log: Log, tmp_path: Path) -> Iterator[list[str]]:
    """Two API replicas on 127.0.0.1 over the same log."""
    box = SecretBox([SecretBox.generate_key()])
    options = ApiOptions(local_root=tmp_path / "out")
    with ExitStack() as stack:
        urls = []
        for _ in range(2):
            service = stack.enter_context(closing(SettingsService(any_log, box, options)))
            urls.append(stack.enter_context(serve(create_app(service, options), free_port())))
        yield urls


def test_a_revoked_token_is_refused_by_every_replica_within_the_documented_time(
    any_log: Log,
    replicas: list[str],
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    flags = _backend_flags(any_log)
    made = []
    for user in ("ada", "bo"):
        code, out, err = _cli(
            capsys, "tokens", "create", "--account", "acme", "--user", user, "--role", "admin",
            "--expires-in", "1h", *flags,
        )  # fmt: skip
        assert code == 0, err
        made.append(out.strip())
    token, kept = made
    for url in replicas:
        _until_ok(url, token)
        _until_ok(url, kept)

    # revoked by the whole token: only its id is used, and the secret is never repeated
    code, out, err = _cli(capsys, "tokens", "revoke", token, "--account", "acme", *flags)
    revoked_at = time.monotonic()
    assert code == 0, err
    assert f"within {PROPAGATION_S} s" in out
    assert token_id_of(token) in out
    for text in (out, err, caplog.text):
        assert _secret(token) not in text

    refused: dict[str, float] = {}
    while len(refused) < len(replicas):
        for url in replicas:
            if url not in refused and _me(url, token).status_code == 401:
                refused[url] = time.monotonic() - revoked_at
        waited = time.monotonic() - revoked_at
        assert waited <= PROPAGATION_S or len(refused) == len(replicas), (
            f"still accepted {waited:.2f} s after revocation (documented: {PROPAGATION_S} s); "
            f"refused so far: {refused}"
        )
        time.sleep(0.05)
    assert max(refused.values()) <= PROPAGATION_S, refused

    for url in replicas:
        for _ in range(3):  # and it stays refused
            answer = _me(url, token)
            assert answer.status_code == 401
            assert answer.json() == {"detail": "invalid token"}
        assert _me(url, kept).status_code == 200  # the other token is untouched

    # revoking it again, or re-creating: the old token never comes back
    code, _, err = _cli(capsys, "tokens", "revoke", token_id_of(token), *flags)
    assert code == 2
    assert "already revoked" in err
    code, again, err = _cli(
        capsys, "tokens", "create", "--account", "acme", "--user", "ada", "--role", "admin",
        *flags,
    )  # fmt: skip
    assert code == 0, err
    assert token_id_of(again) != token_id_of(token)
    for url in replicas:
        _until_ok(url, again.strip())
        assert _me(url, token).status_code == 401


def test_an_expired_token_gets_the_answer_of_an_unknown_one(tmp_path: Path) -> None:
    log = EmbeddedLog(tmp_path / "log.sqlite")
    options = ApiOptions(local_root=tmp_path / "out")
    service = SettingsService(log, SecretBox([SecretBox.generate_key()]), options)
    two_days_ago = time.time() - 2 * 86400
    expired, _ = create_token(
        log,
        account_id="acme",
        user_id="ada",
        role="owner",
        expires_in=timedelta(days=1),
        clock=lambda: two_days_ago,
    )
    current, _ = create_token(
        log, account_id="acme", user_id="ada", role="owner", expires_in=timedelta(days=1)
    )
    unknown = "ast_0123456789abcdef_" + _secret(current)
    try:
        with serve(create_app(service, options), free_port()) as url:
            assert _me(url, current).status_code == 200
            answers = [_me(url, t) for t in (expired, unknown)]
            settings = httpx.get(
                f"{url}/v1/accounts/acme/stream",
                headers={"Authorization": f"Bearer {expired}"},
                timeout=10,
            )
    finally:
        service.close()
        log.close()
    for answer in [*answers, settings]:
        assert answer.status_code == 401
        assert answer.json() == {"detail": "invalid token"}
        assert answer.headers["www-authenticate"] == "Bearer"


@pytest.fixture
def flags(tmp_path: Path) -> list[str]:
    return ["--backend", "embedded", "--db", str(tmp_path / "log.sqlite")]


def test_list_shows_every_live_token_and_no_secret(
    flags: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = EmbeddedLog(tmp_path / "log.sqlite")
    try:
        old, old_principal = create_token(
            log,
            account_id="acme",
            user_id="ada",
            role="admin",
            expires_in=timedelta(hours=1),
            clock=lambda: time.time() - 7200,
        )
        new, new_principal = create_token(
            log,
            account_id="acme",
            user_id="bo",
            role="member",
            privileges=frozenset({"activity_audit"}),
            expires_in=timedelta(days=90),
        )
        other, other_principal = create_token(log, account_id="globex", user_id="cy", role="owner")
    finally:
        log.close()
    tokens = (old, new, other)

    code, out, err = _cli(capsys, "tokens", "list", *flags)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == [
        "ID", "ACCOUNT", "USER", "ROLE", "PRIVILEGES", "CREATED", "EXPIRES", "EXPIRED",
    ]  # fmt: skip
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert set(rows) == {old_principal.token_id, new_principal.token_id, other_principal.token_id}
    assert rows[old_principal.token_id][1:5] == ["acme", "ada", "admin", "-"]
    assert rows[old_principal.token_id][7] == "yes"
    assert rows[new_principal.token_id][1:5] == ["acme", "bo", "member", "activity_audit"]
    assert rows[new_principal.token_id][7] == "no"
    assert rows[other_principal.token_id][6:] == ["never", "no"]

    code, out, err = _cli(capsys, "tokens", "list", "--account", "acme", "--json", *flags)
    assert code == 0, err
    listed = json.loads(out)
    assert new_principal.expires_at is not None
    assert [t["token_id"] for t in listed] == [old_principal.token_id, new_principal.token_id]
    assert listed[1] == {
        "token_id": new_principal.token_id,
        "account_id": "acme",
        "user_id": "bo",
        "role": "member",
        "privileges": ["activity_audit"],
        "created_at": listed[1]["created_at"],
        "expires_at": new_principal.expires_at.isoformat(),
        "expired": False,
    }
    assert listed[0]["expired"] is True

    for args in (["list"], ["list", "--json"]):
        _, out, err = _cli(capsys, "tokens", *args, *flags)
        for token in tokens:
            secret = _secret(token)
            assert secret not in out + err
            assert hashlib.sha256(secret.encode()).hexdigest() not in out + err


def test_revoke_refuses_what_it_cannot_revoke(
    flags: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _cli(
        capsys, "tokens", "create", "--account", "acme", "--user", "ada", "--role", "owner",
        *flags,
    )  # fmt: skip
    assert code == 0, err
    token = out.strip()
    token_id = token_id_of(token)

    code, _, err = _cli(capsys, "tokens", "revoke", "0123456789abcdef", *flags)
    assert (code, err.strip()) == (
        2,
        "auditstream: error: no live token 0123456789abcdef (never created, or already revoked)",
    )
    # another account's token, named with --account: refused like an unknown one
    code, _, err = _cli(capsys, "tokens", "revoke", token_id, "--account", "globex", *flags)
    assert code == 2
    assert f"no live token {token_id} of account globex" in err
    # a mistyped token: refused without repeating it
    mistyped = token.replace("ast_", "ats_")
    code, out, err = _cli(capsys, "tokens", "revoke", mistyped, *flags)
    assert code == 2
    assert "neither a token id" in err
    assert _secret(token) not in out + err

    code, out, _ = _cli(capsys, "tokens", "list", "--json", *flags)
    assert [t["token_id"] for t in json.loads(out)] == [token_id]  # still live


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0d", "more than 0"),
        ("366d", "at most 365 days"),
        ("99999999999999999999d", "at most 365 days"),
        ("1y", "such as 90d"),
        ("-3h", "such as 90d"),
    ],
)
def test_create_refuses_a_bad_expires_in(
    flags: list[str], capsys: pytest.CaptureFixture[str], value: str, message: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["tokens", "create", "--account", "a", "--user", "u", "--role", "owner",
              f"--expires-in={value}", *flags])  # fmt: skip
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_the_readme_block_runs_as_written(
    flags: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    text = section((ROOT / "README.md").read_text(encoding="utf-8"), "API tokens")
    (block,) = sh_blocks(text)
    assert f"within {PROPAGATION_S} s" in text
    created = ""
    outputs: list[Any] = []
    for command in commands(block):
        argv = shlex.split(command.text.replace("--bootstrap 127.0.0.1:9092", " ".join(flags)))
        assert argv[0] == "auditstream"
        if argv[1:3] == ["tokens", "revoke"]:
            assert re.fullmatch(r"[0-9a-f]{16}", argv[3])  # an example id
            argv[3] = token_id_of(created)
        code, out, err = _cli(capsys, *argv[1:])
        assert code == 0, (command.text, err)
        outputs.append(out)
        if argv[1:3] == ["tokens", "create"]:
            created = out.strip()
    assert created
    assert token_id_of(created) in outputs[1]  # listed
    assert "revoked" in outputs[2]
    code, out, _ = _cli(capsys, "tokens", "list", "--json", *flags)
    assert json.loads(out) == []
