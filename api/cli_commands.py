"""The command-line side of the settings API: ``api``, ``keys generate``, ``tokens create``,
``settings get/set`` and ``destinations ...``.

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
from datetime import timedelta
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
        )
    except ValueError as exc:
        raise ConfigError(f"settings API options: {exc}") from None
    settings = runtime(args)
    if settings.metrics_port is not None:
        from prometheus_client import start_http_server

        start_http_server(settings.metrics_port, addr=settings.metrics_host)
    log_backend = open_log(settings)
    service = SettingsService(log_backend, box, options)
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
    return 0


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
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    finally:
        log_backend.close()
    print(token)
    print(
        f"token {principal.token_id} for {principal.user_id} ({principal.role}) of account "
        f"{principal.account_id}: shown only now, store it safely",
        file=sys.stderr,
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
        help="serve the settings API (HTTP)",
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
    p.add_argument("--metrics-port", type=int, help="serve /metrics on this port")
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

    p = sub.add_parser("tokens", help="API tokens")
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
    backend_args(t)
    t.set_defaults(func=lambda a: cmd_tokens_create(a, runtime))

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
