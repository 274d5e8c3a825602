"""The command-line side of the settings API: ``api``, ``keys generate``, ``tokens
create/list/revoke``, ``settings get/set`` and ``destinations ...``.

``settings get/set`` and ``destinations`` are clients of a running ``auditstream api`` (every
change is then checked, access-controlled and recorded as an audit event in one place);
``api``, ``keys`` and ``tokens`` work on the log directly.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from auditstream.config.errors import ConfigError

RuntimeOf = Callable[[argparse.Namespace], Any]
AddBackendArgs = Callable[[argparse.ArgumentParser], None]

ENV_API_URL = "AUDITSTREAM_API_URL"
ENV_API_TOKEN = "AUDITSTREAM_API_TOKEN"  # noqa: S105 (a variable name)
DEFAULT_API_URL = "http://127.0.0.1:8080"


def _print(data: Any) -> None:
    print(json.dumps(data, indent=2, sort_keys=False))


# -- server side -------------------------------------------------------------------------------


def cmd_api(args: argparse.Namespace, runtime: RuntimeOf) -> int:
    from auditstream.api.app import openapi_document

    if args.print_openapi:
        print(json.dumps(openapi_document(), indent=2))
        return 0

    import uvicorn

    from auditstream.api.app import create_app
    from auditstream.api.options import ApiOptions
    from auditstream.api.service import SettingsService
    from auditstream.config.address_policy import parse_networks
    from auditstream.config.external_id import key_from_environment
    from auditstream.config.secrets import box_from_environment
    from auditstream.pipeline.health_server import ProcessHealth
    from auditstream.pipeline.open_log import open_log

    box = box_from_environment()
    if box is None:
        raise ConfigError(
            "the settings API needs a secret key to seal destination secrets at rest: set "
            "AUDITSTREAM_SECRET_KEYS (or AUDITSTREAM_SECRET_KEYS_FILE); make a key with "
            "`auditstream keys generate`"
        )
    try:
        networks = parse_networks(args.allow_network or [])
        options = ApiOptions(
            max_destinations=args.max_destinations,
            retention=timedelta(days=args.retention_days),
            suspend_after=timedelta(days=args.suspend_after_days),
            allow_http=args.allow_http,
            allowed_networks=networks,
            allow_ambient_credentials=args.allow_ambient_credentials,
            local_root=args.local_root,
            allowed_key_file_urls=tuple(args.allow_key_file_url or ()),
            external_id_key=key_from_environment(),
            activity_reads_per_second=args.activity_reads_per_second,
            activity_read_burst=args.activity_read_burst,
            exports_per_account=args.exports_per_account,
        )
    except ValueError as exc:
        raise ConfigError(f"settings API options: {exc}") from None
    settings = runtime(args)
    # /metrics, /healthz and /readyz (ready once the log is open, until the server stops).
    health = ProcessHealth(settings.metrics_host, settings.metrics_port, loop=False)
    audit_store = None
    try:
        audit_store = _open_audit_store(args.store)
        log_backend = open_log(settings)
        service = SettingsService(log_backend, box, options, audit_store=audit_store)
    except BaseException:
        if audit_store is not None:
            audit_store.close()
        health.close()
        raise
    health.readiness.connected()
    logging.getLogger("auditstream").info(
        "settings API on http://%s:%d (%s log)", args.host, args.port, settings.backend
    )
    try:
        uvicorn.run(
            create_app(service, options),
            host=args.host,
            port=args.port,
            log_level="info",
            # The server's lines go through the CLI's handler, which redacts URLs and secrets;
            # uvicorn's own logging configuration would give them handlers of their own.
            log_config=None,
            server_header=False,
            proxy_headers=bool(args.forwarded_allow_ips),
            forwarded_allow_ips=args.forwarded_allow_ips,
        )
    finally:
        service.close()
        log_backend.close()
        if audit_store is not None:
            audit_store.close()
        health.close()
    return 0


def _open_audit_store(given: str | None) -> Any:
    """The audit store the activity routes read: ``given`` (``--store``), else
    ``AUDITSTREAM_STORE``, else the SQLite file ``auditstream-audit.db`` in the working folder.
    A store named by the flag or the variable that cannot be opened stops the command; the
    default one only logs why (the settings API serves on, the activity routes answer 503),
    so a deployment without a writable working folder keeps its settings API."""
    from auditstream.store.errors import StoreError
    from auditstream.store.open_store import DEFAULT_STORE, STORE_ENV, open_store

    if given or os.environ.get(STORE_ENV):
        return open_store(given)
    try:
        return open_store(DEFAULT_STORE)
    except StoreError as exc:
        logging.getLogger("auditstream").warning(
            "no activity audit log: the default store %s cannot be opened (%s); pass --store "
            "or set %s",
            DEFAULT_STORE,
            exc,
            STORE_ENV,
        )
        return None


def cmd_keys_generate(_args: argparse.Namespace) -> int:
    from auditstream.config.secrets import ENV_KEYS, SecretBox

    print(SecretBox.generate_key())
    print(
        f"store it in a secret manager; give it to every process as {ENV_KEYS} "
        "(current key first, comma-separated)",
        file=sys.stderr,
    )
    return 0


def cmd_tokens_create(args: argparse.Namespace, runtime: RuntimeOf) -> int:
    from auditstream.api.tokens import create_token
    from auditstream.pipeline.open_log import open_log
    from auditstream.pipeline.topic_setup import ensure_core_topics

    log_backend = open_log(runtime(args))
    try:
        ensure_core_topics(log_backend)
        token, principal = create_token(
            log_backend,
            account_id=args.account,
            user_id=args.user,
            role=args.role,
            privileges=frozenset(args.privilege or []),
            expires_in=args.expires_in,
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    finally:
        log_backend.close()
    print(token)
    expires = principal.expires_at
    print(
        f"token {principal.token_id} for {principal.user_id} ({principal.role}) of account "
        f"{principal.account_id}, expires {'never' if expires is None else expires.isoformat()}: "
        "shown only now, store it safely",
        file=sys.stderr,
    )
    return 0


def _when(iso: str) -> str:
    """An ISO time to the second, for a listing."""
    try:
        return datetime.fromisoformat(iso).isoformat(timespec="seconds")
    except ValueError:
        return iso or "-"


def cmd_tokens_list(args: argparse.Namespace, runtime: RuntimeOf) -> int:
    import time

    from auditstream.api.tokens import live_tokens
    from auditstream.pipeline.open_log import open_log

    log_backend = open_log(runtime(args))
    try:
        tokens = live_tokens(log_backend)
    finally:
        log_backend.close()
    now = time.time()
    rows: list[dict[str, Any]] = []
    for stored in tokens:
        p = stored.principal
        if args.account is not None and p.account_id != args.account:
            continue
        rows.append(
            {
                "token_id": p.token_id,
                "account_id": p.account_id,
                "user_id": p.user_id,
                "role": p.role,
                "privileges": sorted(p.privileges),
                "created_at": _when(stored.created_at),
                "expires_at": None if p.expires_at is None else p.expires_at.isoformat(),
                "expired": p.expired(now),
            }
        )
    if args.json:
        _print(rows)
        return 0
    table = [["ID", "ACCOUNT", "USER", "ROLE", "PRIVILEGES", "CREATED", "EXPIRES", "EXPIRED"]]
    table += [
        [
            r["token_id"],
            r["account_id"],
            r["user_id"],
            r["role"],
            ",".join(r["privileges"]) or "-",
            r["created_at"],
            r["expires_at"] or "never",
            "yes" if r["expired"] else "no",
        ]
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        print("  ".join(cells).rstrip())
    return 0


def cmd_tokens_revoke(args: argparse.Namespace, runtime: RuntimeOf) -> int:
    from auditstream.api.tokens import PROPAGATION, revoke_token, token_id_of
    from auditstream.pipeline.open_log import open_log

    try:
        token_id = token_id_of(args.token)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    log_backend = open_log(runtime(args))
    try:
        principal = revoke_token(log_backend, token_id, account_id=args.account).principal
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    finally:
        log_backend.close()
    print(
        f"token {token_id} of {principal.user_id} ({principal.role}) of account "
        f"{principal.account_id} revoked: {PROPAGATION}"
    )
    return 0


# -- client side -------------------------------------------------------------------------------

Command = Callable[[argparse.Namespace], int]


def _refusals_exit_1(command: Command) -> Command:
    """An answer the API refused is exit status 1 (usage and configuration errors stay 2)."""

    def run(args: argparse.Namespace) -> int:
        from auditstream.api.client import ApiRefused

        try:
            return command(args)
        except ApiRefused as exc:
            print(f"auditstream: the settings API refused: {exc}", file=sys.stderr)
            return 1

    return run


def _client(args: argparse.Namespace) -> Any:
    from auditstream.api.client import ApiClient

    token = args.token or os.environ.get(ENV_API_TOKEN)
    if not token:
        raise ConfigError(f"no API token: pass --token or set {ENV_API_TOKEN}")
    url = args.api_url or os.environ.get(ENV_API_URL) or DEFAULT_API_URL
    return ApiClient(url, token)


def _account(args: argparse.Namespace, client: Any) -> str:
    if args.account:
        return str(args.account)
    return str(client.me()["account_id"])


def _read_body(args: argparse.Namespace) -> dict[str, Any]:
    import yaml

    if args.json:
        text, source = args.json, "--json"
    elif args.file:
        path = Path(args.file)
        try:
            text = sys.stdin.read() if args.file == "-" else path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
        source = str(path)
    else:
        raise ConfigError("give the destination settings with -f FILE (JSON or YAML) or --json")
    try:
        data = yaml.safe_load(text)  # JSON is YAML too
    except yaml.YAMLError:
        raise ConfigError(f"{source} is not valid JSON or YAML") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected an object of destination settings")
    return data


_READ_ONLY = {
    "id": "a destination's id cannot change: add a new destination instead",
    "paused": "use `destinations pause` or `destinations resume`",
    "deleting": "use `destinations delete`",
    "replay": "use `destinations replay`",
}
"""Fields ``destinations get`` shows that an update cannot change, and what changes them."""


def _without_read_only(patch: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    """``patch`` without the read-only fields it repeats unchanged (so what ``destinations get``
    printed can be edited and sent back). Raises :class:`ConfigError` naming the command for
    one it changes."""
    out = dict(patch)
    for name, how in _READ_ONLY.items():
        if name not in out:
            continue
        if out[name] != current.get(name):
            raise ConfigError(f"{name} cannot be changed by an update: {how}")
        del out[name]
    return out


def _split(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def cmd_settings_get(args: argparse.Namespace) -> int:
    client = _client(args)
    try:
        _print(client.request("GET", client.account_path(_account(args, client), "stream")))
    finally:
        client.close()
    return 0


def cmd_settings_set(args: argparse.Namespace) -> int:
    client = _client(args)
    try:
        path = client.account_path(_account(args, client), "stream")
        current = client.request("GET", path)
        body = {
            k: current[k]
            for k in (
                "streaming_enabled",
                "include_categories",
                "include_activities",
                "exclude_activities",
                "redact",
            )
        }
        if args.enable:
            body["streaming_enabled"] = True
        if args.disable:
            body["streaming_enabled"] = False
        if args.categories is not None:
            body["include_categories"] = (
                None if args.categories.strip() == "all" else _split(args.categories)
            )
        if args.include_activities is not None:
            body["include_activities"] = _split(args.include_activities)
        if args.exclude_activities is not None:
            body["exclude_activities"] = _split(args.exclude_activities)
        if args.redact is not None:
            body["redact"] = _split(args.redact)
        _print(client.request("PUT", path, json=body))
    finally:
        client.close()
    return 0


def cmd_destinations(args: argparse.Namespace) -> int:
    client = _client(args)
    try:
        account = _account(args, client)
        action = args.destinations_command
        if action == "list":
            result = client.request("GET", client.account_path(account, "destinations"))
        elif action == "add":
            result = client.request(
                "POST", client.account_path(account, "destinations"), json=_read_body(args)
            )
        else:
            path = client.account_path(account, "destinations", args.id)
            if action == "get":
                result = client.request("GET", path)
            elif action == "update":
                current = client.request("GET", path)
                patch = _without_read_only(_read_body(args), current)
                patch.setdefault("type", current["type"])
                result = client.request("PATCH", path, json=patch)
            elif action == "delete":
                result = client.request(
                    "DELETE", path, params={"force": "true"} if args.force else None
                )
                if result is None:
                    result = {"id": args.id, "removed": True}
            elif action == "status":
                result = client.request("GET", path + "/status")
            elif action == "replay":
                result = client.request(
                    "POST", path + "/replay", json={"from_time": args.from_time}
                )
            else:  # check, pause, resume
                result = client.request("POST", f"{path}/{action}")
        _print(result)
    finally:
        client.close()
    if action == "check" and not result.get("ok"):
        return 1
    return 0


# -- registration ------------------------------------------------------------------------------


def _expires_in(text: str) -> Any:
    from auditstream.api.tokens import parse_expires_in

    try:
        return parse_expires_in(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_tokens_commands(sub: Any, backend_args: AddBackendArgs, runtime: RuntimeOf) -> None:
    from auditstream.api.tokens import MAX_EXPIRES_IN, PROPAGATION_S, REFRESH_INTERVAL_S

    p = sub.add_parser(
        "tokens",
        help="API tokens",
        description="API tokens, on the log directly (an operator's tool: any account). A "
        f"revoked token is refused by every API replica within {PROPAGATION_S} s: each reads "
        f"the tokens topic again every {REFRESH_INTERVAL_S:g} s. An expired token is refused "
        "at once, as an unknown one is; expiry is compared with each API replica's clock.",
    )
    ts = p.add_subparsers(dest="tokens_command", required=True, metavar="ACTION")
    t = ts.add_parser(
        "create",
        help="create a token and print it (once)",
        description="Creates an API token for a user of an account. Only its hash is stored: "
        "the token is printed now and never again.",
    )
    t.add_argument("--account", required=True, help="account id")
    t.add_argument("--user", required=True, help="user id the token acts as")
    t.add_argument("--role", required=True, choices=["owner", "admin", "member"])
    t.add_argument(
        "--privilege",
        action="append",
        choices=["activity_audit"],
        help="activity_audit: a member may read the streaming settings",
    )
    t.add_argument(
        "--expires-in",
        type=_expires_in,
        default=None,
        metavar="DURATION",
        help="the token stops working this long after now: days, hours or minutes such as "
        f"90d, 12h, 30m, at most {MAX_EXPIRES_IN.days}d; none (the default): never expires",
    )
    backend_args(t)
    t.set_defaults(func=lambda a: cmd_tokens_create(a, runtime))

    t = ts.add_parser(
        "list",
        help="list the tokens not revoked (never their secrets)",
        description="One line per token not revoked: id, account, user, role, privileges, "
        "creation and expiry times (UTC) and whether it has expired (by this machine's clock). "
        "Secrets are not stored and their hashes are never shown.",
    )
    t.add_argument("--account", help="only this account's tokens")
    t.add_argument("--json", action="store_true", help="a JSON array instead of a table")
    backend_args(t)
    t.set_defaults(func=lambda a: cmd_tokens_list(a, runtime))

    t = ts.add_parser(
        "revoke",
        help=f"revoke a token (refused everywhere within {PROPAGATION_S} s)",
        description="Revokes a token by its id (`tokens list`), or by the whole token (only its "
        "id is used; prefer the id: a command line is seen by ps and kept in shell history). "
        f"Every API replica refuses it within {PROPAGATION_S} s: each reads the "
        f"tokens topic again every {REFRESH_INTERVAL_S:g} s. An unknown or already revoked id "
        "is an error (exit 2).",
    )
    t.add_argument("token", metavar="TOKEN_ID", help="the token's id, or the whole token")
    t.add_argument(
        "--account", help="refuse unless the token belongs to this account (a safety check)"
    )
    backend_args(t)
    t.set_defaults(func=lambda a: cmd_tokens_revoke(a, runtime))


def _client_args(p: argparse.ArgumentParser, account: bool = True) -> None:
    g = p.add_argument_group("settings API")
    g.add_argument(
        "--api-url", help=f"settings API base URL (env {ENV_API_URL}, default {DEFAULT_API_URL})"
    )
    g.add_argument("--token", help=f"API token (env {ENV_API_TOKEN})")
    if account:
        g.add_argument("--account", help="account id (default: the token's account)")


def add_commands(
    sub: Any,
    settings_sub: Any,
    backend_args: AddBackendArgs,
    runtime: RuntimeOf,
) -> None:
    """Register the commands on the ``auditstream`` parser's subparsers."""
    p = sub.add_parser(
        "api",
        help="serve the HTTP API: streaming settings, the activity audit log and its viewer page",
        description="Serves the stream settings API. Needs AUDITSTREAM_SECRET_KEYS (or _FILE): "
        "destination secrets are sealed with it. With AUDITSTREAM_EXTERNAL_ID_KEY (or _FILE; "
        "make one with `auditstream keys generate` and keep it for good) S3 destinations may "
        "assume a role, with the account's external id. Tokens: `auditstream tokens create`.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    p.add_argument(
        "--print-openapi",
        action="store_true",
        help="print the OpenAPI document and exit (auditstream api --print-openapi > "
        "docs/openapi.json)",
    )
    p.add_argument("--max-destinations", type=int, default=10, help="per account (default 10)")
    p.add_argument("--retention-days", type=float, default=7.0, help="replay window (default 7)")
    p.add_argument(
        "--suspend-after-days",
        type=float,
        default=6.0,
        help="a destination failing this long is reported suspended (default 6)",
    )
    p.add_argument("--allow-http", action="store_true", help="allow http:// destination URLs")
    p.add_argument(
        "--allow-network",
        action="append",
        metavar="CIDR",
        help="a private network destinations may reach (repeatable), e.g. 10.20.0.0/16",
    )
    p.add_argument(
        "--allow-ambient-credentials",
        action="store_true",
        help="let S3/GCS destinations use the sink workers' own credentials (single tenant)",
    )
    p.add_argument(
        "--allow-key-file-url",
        action="append",
        metavar="URL",
        help="a URL a key file may hold besides the vendor's own, e.g. an emulator's token "
        "endpoint (repeatable)",
    )
    p.add_argument(
        "--local-root", type=Path, help="folder relative local destination paths start from"
    )
    p.add_argument(
        "--metrics-port", type=int, help="serve /metrics, /healthz and /readyz on this port"
    )
    p.add_argument(
        "--store",
        metavar="URL",
        help="the audit store the activity audit log is read from: sqlite:///path.db or "
        "postgresql://user@host/database (env AUDITSTREAM_STORE, default "
        "sqlite:///auditstream-audit.db)",
    )
    p.add_argument(
        "--activity-reads-per-second",
        type=float,
        default=20.0,
        help="activity audit log reads of one token per second (default 20)",
    )
    p.add_argument(
        "--activity-read-burst",
        type=int,
        default=40,
        help="activity audit log reads of one token at once (default 40)",
    )
    p.add_argument(
        "--exports-per-account",
        type=int,
        default=2,
        help="activity exports of one account streaming at once (default 2)",
    )
    p.add_argument(
        "--forwarded-allow-ips",
        help="trust X-Forwarded-For from these proxy addresses (comma-separated)",
    )
    backend_args(p)
    p.set_defaults(func=lambda a: cmd_api(a, runtime))

    p = sub.add_parser("keys", help="secret keys that seal destination secrets")
    ks = p.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    k = ks.add_parser("generate", help="print a new key (for AUDITSTREAM_SECRET_KEYS)")
    k.set_defaults(func=cmd_keys_generate)

    _add_tokens_commands(sub, backend_args, runtime)

    g = settings_sub.add_parser("get", help="print the account's stream settings (via the API)")
    _client_args(g)
    g.set_defaults(func=_refusals_exit_1(cmd_settings_get))
    s = settings_sub.add_parser(
        "set",
        help="change the account's stream settings (via the API)",
        description="Changes only what is given; the rest stays as it is.",
    )
    on_off = s.add_mutually_exclusive_group()
    on_off.add_argument("--enable", action="store_true", help="turn streaming on")
    on_off.add_argument("--disable", action="store_true", help="turn streaming off")
    s.add_argument("--categories", help="comma-separated category keys, or `all`")
    s.add_argument("--include-activities", help="comma-separated activity keys ('' = all)")
    s.add_argument("--exclude-activities", help="comma-separated activity keys")
    s.add_argument("--redact", help="comma-separated: actor_email, ip_address, user_agent")
    _client_args(s)
    s.set_defaults(func=_refusals_exit_1(cmd_settings_set))

    p = sub.add_parser("destinations", help="the account's destinations (via the API)")
    ds = p.add_subparsers(dest="destinations_command", required=True, metavar="ACTION")
    d = ds.add_parser("list", help="list destinations")
    _client_args(d)
    d = ds.add_parser("add", help="add a destination from -f FILE or --json")
    d.add_argument("-f", "--file", help="destination settings, JSON or YAML (- for stdin)")
    d.add_argument("--json", help="destination settings as a JSON string")
    _client_args(d)
    for name, text in (
        ("get", "show a destination (secrets masked)"),
        ("update", "change some fields, from -f FILE or --json"),
        ("delete", "delete (drained first; --force: now)"),
        ("check", "check that the destination accepts a write (exit 1 if not)"),
        ("status", "delivery state, last error, events waiting"),
        ("pause", "hold deliveries"),
        ("resume", "resume deliveries"),
        ("replay", "deliver again everything since --from"),
    ):
        d = ds.add_parser(name, help=text)
        d.add_argument("id", help="destination id")
        if name == "update":
            d.add_argument("-f", "--file", help="changes, JSON or YAML (- for stdin)")
            d.add_argument("--json", help="changes as a JSON string")
        if name == "delete":
            d.add_argument("--force", action="store_true", help="remove it and its events now")
        if name == "replay":
            d.add_argument(
                "--from", dest="from_time", required=True, help="ISO-8601 time with a zone"
            )
        _client_args(d)
    for parser in ds.choices.values():
        parser.set_defaults(func=_refusals_exit_1(cmd_destinations))
