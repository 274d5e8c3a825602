"""An Azure Monitor Logs emulator on 127.0.0.1: Microsoft Entra ID's token endpoint and the
Logs Ingestion API, over HTTPS (azure-identity accepts only https authorities).

It implements what the Azure Monitor Logs sink uses, answering as the services document:

- ``GET /{tenant}/v2.0/.well-known/openid-configuration``: the OpenID discovery document MSAL
  reads first (its ``token_endpoint`` on this server); ``400 invalid_tenant`` (AADSTS90002)
  for a tenant it does not know.
- ``POST /{tenant}/oauth2/v2.0/token`` (client credentials, form body): ``200`` with a bearer
  token for the known application and secret and a ``*/.default`` scope of
  ``monitor.azure.com``; ``401 invalid_client`` (AADSTS7000215) for a wrong secret, ``400
  invalid_client`` (AADSTS700016) for an unknown application, ``400 invalid_scope``.
- ``POST /dataCollectionRules/{dcr}/streams/{stream}?api-version=2023-01-01``: ``401`` without
  a token it issued, ``404`` for a rule or stream it does not know, ``403`` when the
  application has no Monitoring Metrics Publisher role (``publisher = False``), ``413`` over
  1 MiB (on the wire or decompressed), ``400`` for a body that is not a JSON array of objects
  or a row without ``TimeGenerated``, ``204`` otherwise (the rows kept in ``rows``).

:func:`local_tls` makes a private CA and a certificate for 127.0.0.1 (``cryptography``), so
tests serve HTTPS and trust it through a CA file. By hand: ``python -m
devservices.azure_monitor_receiver --folder DIR`` prints the URL (use it as the endpoint and as
``AUDITSTREAM_AZURE_AUTHORITY_HOST``, with ``DIR/ca.pem`` as the CA file) and serves until
SIGTERM or Ctrl-C.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import secrets
import ssl
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from .collector_server import Answer, CollectorServer, Request, serve_until_signal

API_VERSION = "2023-01-01"
MAX_BODY_BYTES = 1024 * 1024
SCOPES = ("https://monitor.azure.com/.default", "https://monitor.azure.com//.default")
CHECK_COLUMN = "auditstream_check"


@dataclass(frozen=True)
class LocalTls:
    """A private CA (``ca_file``, PEM) and a server context for 127.0.0.1 it signed."""

    ca_file: Path
    server: ssl.SSLContext


def local_tls(folder: Path) -> LocalTls:
    """Make a CA and a certificate for 127.0.0.1 in ``folder`` (valid one day)."""
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "auditstream test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    (folder / "ca.pem").write_bytes(ca.public_bytes(pem))
    (folder / "server.pem").write_bytes(cert.public_bytes(pem))
    (folder / "server.key").write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(folder / "server.pem", folder / "server.key")
    return LocalTls(folder / "ca.pem", server)


def _aad_error(status: int, error: str, description: str) -> Answer:
    return Answer(status, {"error": error, "error_description": description, "error_codes": []})


def _api_error(status: int, code: str, message: str) -> Answer:
    return Answer(status, {"error": {"code": code, "message": message}})


class AzureMonitorReceiver(CollectorServer):
    """Entra ID for one application of one tenant, and one data collection rule with its
    streams. ``publisher`` is whether the application holds the Monitoring Metrics Publisher
    role on the rule."""

    def __init__(
        self,
        *,
        tenant_id: str,
        client_id: str,
        client_secret: str,
        dcr_id: str,
        streams: tuple[str, ...] = ("Custom-AuditStream_CL",),
        tls: ssl.SSLContext,
        port: int = 0,
    ) -> None:
        super().__init__(port=port, tls=tls)
        self.tenant_id = tenant_id
        self.client_id = client_id
        self.client_secret = client_secret
        self.dcr_id = dcr_id
        self.streams = set(streams)
        self.publisher = True
        self.rows: list[dict[str, Any]] = []
        """Every row kept, in arrival order (repeats included)."""
        self.deliveries: list[tuple[str, ...]] = []
        """The ``event_id`` of each row (check rows left out) of each accepted request."""
        self.token_endpoint: str | None = None
        """Replaces the discovery document's ``token_endpoint`` (a test of where the client
        sends its secret)."""
        self.token_requests = 0
        self.discovery_requests = 0
        self._tokens: set[str] = set()

    # -- what was kept -----------------------------------------------------------------------

    def event_ids(self) -> list[str]:
        """The ``event_id`` of every kept row (check rows left out), repeats included."""
        with self.lock:
            return [str(r.get("event_id")) for r in self.rows if CHECK_COLUMN not in r]

    def check_rows(self) -> list[dict[str, Any]]:
        with self.lock:
            return [r for r in self.rows if CHECK_COLUMN in r]

    # -- answers -----------------------------------------------------------------------------

    def answer(self, request: Request) -> Answer:
        parts = request.path.strip("/").split("/")
        if request.method == "GET" and parts[1:] == ["v2.0", ".well-known", "openid-configuration"]:
            return self._discovery(parts[0])
        if request.method == "POST" and parts[1:] == ["oauth2", "v2.0", "token"]:
            return self._token(parts[0], request)
        if len(parts) == 4 and parts[0] == "dataCollectionRules" and parts[2] == "streams":
            if request.method != "POST":
                return _api_error(405, "MethodNotAllowed", "Use POST.")
            return self._ingest(parts[1], parts[3], request)
        return _api_error(404, "NotFound", "No such resource.")

    def _discovery(self, tenant: str) -> Answer:
        with self.lock:
            self.discovery_requests += 1
        if tenant != self.tenant_id:
            return _aad_error(
                400, "invalid_tenant", f"AADSTS90002: Tenant '{tenant[:40]}' not found."
            )
        base = f"{self.base_url}/{tenant}"
        return Answer(
            200,
            {
                "token_endpoint": self.token_endpoint or f"{base}/oauth2/v2.0/token",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "issuer": f"{base}/v2.0",
                "token_endpoint_auth_methods_supported": ["client_secret_post"],
                "response_types_supported": ["code", "id_token", "token"],
            },
        )

    def _token(self, tenant: str, request: Request) -> Answer:
        with self.lock:
            self.token_requests += 1
        if tenant != self.tenant_id:
            return _aad_error(400, "invalid_tenant", "AADSTS90002: Tenant not found.")
        form = parse_qs((request.body or b"").decode("utf-8", "replace"))

        def one(name: str) -> str:
            values = form.get(name) or [""]
            return values[0]

        if one("grant_type") != "client_credentials":
            return _aad_error(400, "unsupported_grant_type", "AADSTS70003: grant type.")
        if one("client_id") != self.client_id:
            return _aad_error(
                400, "unauthorized_client", "AADSTS700016: Application not found in the directory."
            )
        if not secrets.compare_digest(one("client_secret"), self.client_secret):
            return _aad_error(401, "invalid_client", "AADSTS7000215: Invalid client secret.")
        if one("scope") not in SCOPES:
            return _aad_error(400, "invalid_scope", "AADSTS1002012: The provided scope is invalid.")
        token = secrets.token_urlsafe(24)
        with self.lock:
            self._tokens.add(token)
        return Answer(
            200,
            {
                "token_type": "Bearer",
                "expires_in": 3599,
                "ext_expires_in": 3599,
                "access_token": token,
            },
        )

    def _ingest(self, dcr: str, stream: str, request: Request) -> Answer:
        if request.query.get("api-version") != [API_VERSION]:
            return _api_error(400, "InvalidApiVersion", "api-version must be 2023-01-01.")
        authorization = request.headers.get("authorization", "")
        scheme, _, token = authorization.partition(" ")
        with self.lock:
            known = scheme == "Bearer" and token in self._tokens
        if not known:
            return _api_error(401, "InvalidToken", "The token is missing or not valid.")
        if dcr != self.dcr_id:
            return _api_error(404, "NotFound", f"Data collection rule '{dcr[:60]}' not found.")
        if stream not in self.streams:
            return _api_error(404, "InvalidStream", "The stream is not declared by the rule.")
        if not self.publisher:
            return _api_error(
                403, "OperationFailed", "The token does not have access to ingest data."
            )
        body = request.body
        if request.wire_bytes > MAX_BODY_BYTES or (body is not None and len(body) > MAX_BODY_BYTES):
            return _api_error(413, "ContentLengthLimitExceeded", "Maximum body size is 1 MB.")
        if body is None:
            return _api_error(400, "InvalidContentEncoding", "The body does not decompress.")
        try:
            rows = json.loads(body)
        except ValueError:
            return _api_error(400, "InvalidPayload", "The body is not JSON.")
        if not isinstance(rows, list) or not all(
            isinstance(r, dict) and "TimeGenerated" in r for r in rows
        ):
            return _api_error(400, "InvalidPayload", "Send a JSON array of rows.")
        with self.lock:
            self.received += len(rows)
            if self.keep:
                self.rows.extend(rows)
                self.deliveries.append(
                    tuple(str(r.get("event_id")) for r in rows if CHECK_COLUMN not in r)
                )
            self.lock.notify_all()
        return Answer(204)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devservices.azure_monitor_receiver",
        description="Serve an Entra ID and Logs Ingestion API emulator on 127.0.0.1 (HTTPS).",
    )
    parser.add_argument("--folder", type=Path, required=True, help="where the CA is written")
    parser.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    parser.add_argument("--tenant-id", default="00000000-0000-0000-0000-000000000001")
    parser.add_argument("--client-id", default="00000000-0000-0000-0000-000000000002")
    parser.add_argument("--client-secret", required=True)
    parser.add_argument("--dcr-id", default="dcr-" + "0" * 32)
    parser.add_argument("--stream", action="append", default=None)
    args = parser.parse_args(argv)
    tls = local_tls(args.folder)
    receiver = AzureMonitorReceiver(
        tenant_id=args.tenant_id,
        client_id=args.client_id,
        client_secret=args.client_secret,
        dcr_id=args.dcr_id,
        streams=tuple(args.stream or ["Custom-AuditStream_CL"]),
        tls=tls.server,
        port=args.port,
    )
    print(f"CA file: {tls.ca_file}", flush=True)
    return serve_until_signal(receiver)


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["AzureMonitorReceiver", "LocalTls", "local_tls"]
