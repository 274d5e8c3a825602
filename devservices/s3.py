"""A real S3 endpoint for tests and benchmarks: ``moto_server`` on 127.0.0.1.

``moto_server`` is the HTTP server of the Python package moto (``moto[s3,server]`` with
flask and flask-cors, all in the dev extras). It keeps everything in memory: data is lost
when it stops, including across :meth:`S3Server.restart`.

Authentication: by default moto accepts any access key and any signature. With
``enforce_auth=True`` it checks SigV4 signatures against IAM: the server creates an IAM user
allowed ``s3:*`` and its access key (``server.access_key_id`` / ``server.secret_access_key``),
then switches on moto's IAM checks (``INITIAL_NO_AUTH_ACTION_COUNT`` set to 0 through
``/moto-api/reset-auth``). From then on an unknown key id answers 403 ``InvalidAccessKeyId``
and a wrong secret 403 ``SignatureDoesNotMatch``.
"""

from __future__ import annotations

import http.client
import json
import os
import sys
from pathlib import Path
from typing import Any, Self

import boto3
from botocore.config import Config

from .local_process import HOST, LocalServer, http_status, log_tail

REGION = "us-east-1"
DUMMY_KEY = "testing"
INSTALL_HINT = "run deploy/local/emulators.sh install"

# With a fixed seed, moto generates the same IAM access key after every restart.
_AUTH_SEED = 20240601
_AUTH_USER = "auditstream-tests"
_ALLOW_S3 = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
}


def _post(port: int, path: str, body: bytes) -> None:
    """``POST path`` on 127.0.0.1:``port``; raises ``RuntimeError`` unless it answers 200."""
    connection = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        connection.request("POST", path, body=body, headers={"Content-Type": "text/plain"})
        response = connection.getresponse()
        answer = response.read()
        if response.status != 200:
            raise RuntimeError(f"POST {path} answered {response.status}: {answer[:500]!r}")
    finally:
        connection.close()


def moto_server_command() -> list[str]:
    """The command that runs ``moto_server``: the console script next to this Python, if any."""
    script = Path(sys.executable).parent / "moto_server"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "moto.server"]


class S3Server(LocalServer):
    """A running ``moto_server`` listening on 127.0.0.1 only.

    Use ``S3Server.start(workdir)`` (or ``with S3Server.start(workdir) as s3:``), then
    ``s3.client()`` or any S3 client pointed at ``s3.endpoint_url`` with path-style
    addressing. Buckets and objects live in the server's memory only: they are gone after
    :meth:`restart` (which comes back on the same port; with ``enforce_auth`` the same IAM
    access key is set up again).
    """

    name = "moto_server"
    log_name = "moto.log"
    install_hint = INSTALL_HINT

    def __init__(self, workdir: Path, port: int, *, enforce_auth: bool) -> None:
        """Describe a server in ``workdir`` on ``port``; use :meth:`start` to run one."""
        super().__init__(workdir, port)
        self.endpoint_url = f"http://{HOST}:{port}"
        self.region = REGION
        self.enforce_auth = enforce_auth
        self.access_key_id = DUMMY_KEY
        self.secret_access_key = DUMMY_KEY

    @classmethod
    def start(cls, workdir: Path, *, enforce_auth: bool = False) -> Self:
        """Start ``moto_server`` on a free port and wait (up to 60 s) until it answers.

        ``workdir`` (created if missing) holds the log. ``enforce_auth`` makes the server
        reject requests not signed with ``access_key_id`` / ``secret_access_key`` (see the
        module documentation); without it, any credentials are accepted. Raises
        ``RuntimeError`` with the tail of the log if the server does not come up; no server
        process is left running in that case.
        """
        return cls._start_on_free_port(workdir, enforce_auth=enforce_auth)

    def client(
        self,
        *,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        **config: Any,
    ) -> Any:
        """A boto3 S3 client for this server: path-style addressing, region us-east-1.

        Credentials default to the server's (``testing``/``testing`` unless
        ``enforce_auth``); pass others to test rejected credentials. ``config`` adds
        ``botocore.config.Config`` options (for example ``retries``).
        """
        options: dict[str, Any] = {"s3": {"addressing_style": "path"}, **config}
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=access_key_id if access_key_id is not None else self.access_key_id,
            aws_secret_access_key=(
                secret_access_key if secret_access_key is not None else self.secret_access_key
            ),
            config=Config(**options),
        )

    def _command(self) -> list[str]:
        return [*moto_server_command(), "--host", HOST, "--port", str(self.port)]

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        # Authentication is switched on explicitly, after the IAM user exists.
        env.pop("INITIAL_NO_AUTH_ACTION_COUNT", None)
        return env

    def _ready(self) -> bool:
        return http_status(self.port, "/moto-api/") is not None

    def _prepare(self) -> None:
        if not self.enforce_auth:
            return
        try:
            self._enable_auth()
        except Exception as exc:
            raise RuntimeError(
                f"enabling authentication on moto_server failed: {exc}\n{log_tail(self.log_path)}"
            ) from exc

    def _enable_auth(self) -> None:
        _post(self.port, f"/moto-api/seed?a={_AUTH_SEED}", b"")
        iam = boto3.client(
            "iam",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=DUMMY_KEY,
            aws_secret_access_key=DUMMY_KEY,
        )
        iam.create_user(UserName=_AUTH_USER)
        iam.put_user_policy(
            UserName=_AUTH_USER, PolicyName="allow-s3", PolicyDocument=json.dumps(_ALLOW_S3)
        )
        key = iam.create_access_key(UserName=_AUTH_USER)["AccessKey"]
        if self.access_key_id not in (DUMMY_KEY, key["AccessKeyId"]):
            raise RuntimeError(
                f"the IAM access key changed across the restart ({self.access_key_id} became "
                f"{key['AccessKeyId']})"
            )
        self.access_key_id = str(key["AccessKeyId"])
        self.secret_access_key = str(key["SecretAccessKey"])
        _post(self.port, "/moto-api/reset-auth", b"0")
