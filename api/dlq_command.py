"""``auditstream dlq list|show|replay``: the dead-letter topic for operators.

The reading, filtering, escaping and replay records are in ``pipeline.dead_letter_queue``;
this module parses the options, loads a fixed value from a file, asks before a replay and
prints. Nothing read from the topic reaches the terminal unescaped.
"""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import re
import sys
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from auditstream.config.errors import ConfigError
from auditstream.errors import AuditstreamError
from auditstream.pipeline import dead_letter_queue as dlq
from auditstream.pipeline import topics
from auditstream.pipeline.dead_letter_queue import DeadLetter, Fix, Position, Selection

RuntimeOf = Callable[[argparse.Namespace], Any]
AddBackendArgs = Callable[[argparse.ArgumentParser], None]

log = logging.getLogger("auditstream")

_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_COLUMNS = ("dlq", "time", "stage", "reason", "account", "source", "size", "first_bytes")
_WIDTHS = {"reason": 24, "account": 24, "source": 40, "first_bytes": 140}
_PROGRESS_FROM = 10_000
_MAX_FIX_BYTES = 10 * 1024 * 1024


class NotFound(AuditstreamError):
    """No dead letter at the position asked for."""


def parse_since(text: str, now: datetime | None = None) -> int:
    """``--since``: a duration back from now (``30m``, ``2h``, ``7d``, ``90s``) or an ISO 8601
    time (UTC unless it names a zone); epoch milliseconds. Raises ``ConfigError``."""
    now = now or datetime.now(UTC)
    match = _RELATIVE.match(text.strip())
    if match:
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
        return int((now - timedelta(seconds=seconds)).timestamp() * 1000)
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(
            f"--since {text!r}: a duration (30m, 2h, 7d) or an ISO time (2026-11-29T06:00Z)"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1000)


def selection_of(args: argparse.Namespace) -> Selection:
    """The dead letters the options select. Raises ``ConfigError`` for a bad position or
    a number out of range."""
    for flag, value, least in (
        ("--limit", args.limit, 1),
        ("--bytes", getattr(args, "bytes", 0), 0),
        ("--from-offset", args.from_offset, 0),
        ("--to-offset", args.to_offset, 0),
    ):
        if value is not None and value < least:
            raise ConfigError(f"{flag} must be at least {least} (got {value})")
    try:
        positions = frozenset(dlq.parse_position(p) for p in getattr(args, "offset", None) or [])
    except ValueError as exc:
        raise ConfigError(f"--offset: {exc}") from None
    return Selection(
        positions=positions,
        reasons=frozenset(args.reason or ()),
        accounts=frozenset(args.account or ()),
        stages=frozenset(args.stage or ()),
        since_ms=None if args.since is None else parse_since(args.since),
        min_offset=args.from_offset,
        max_offset=args.to_offset,
    )


def _progress(read: int, total: int) -> None:
    if total >= _PROGRESS_FROM:
        print(f"dlq: read {read:,} of {total:,} dead letters", file=sys.stderr, flush=True)


def table(rows: list[dict[str, Any]]) -> str:
    """Rows as aligned text columns; long cells cut with ``...`` (cells are already safe)."""

    def cell(name: str, row: dict[str, Any]) -> str:
        value = row[name]
        text = "-" if value is None else str(value)
        if name == "size" and row.get("cut"):
            text += " (cut)"
        width = _WIDTHS.get(name)
        return text if width is None or len(text) <= width else text[: width - 3] + "..."

    cells = [[cell(c, r) for c in _COLUMNS] for r in rows]
    head = [c.upper().replace("_", " ") for c in _COLUMNS]
    widths = [max(len(x) for x in col) for col in zip(head, *cells, strict=True)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)).rstrip()]
    for cs in cells:
        lines.append("  ".join(c.ljust(w) for c, w in zip(cs, widths, strict=True)).rstrip())
    return "\n".join(lines)


def _open(args: argparse.Namespace, runtime: RuntimeOf) -> Any:
    from auditstream.pipeline.open_log import open_log

    return open_log(runtime(args))


def cmd_list(args: argparse.Namespace, runtime: RuntimeOf) -> int:
    log_backend = _open(args, runtime)
    try:
        found, read = dlq.select(
            log_backend, selection_of(args), limit=args.limit, progress=_progress
        )
    finally:
        log_backend.close()
    rows = [dlq.listing_row(dl, args.bytes) for dl in found]
    if args.json:
        print(json.dumps(rows, indent=2))
    elif rows:
        print(table(rows))
    print(f"{len(rows)} of {read} dead letters shown", file=sys.stderr)
    return 0


def _find(log_backend: Any, position: Position) -> DeadLetter:
    found, _read = dlq.select(
        log_backend, Selection(positions=frozenset({position})), progress=_progress
    )
    if found:
        return found[0]
    ends = dlq.end_offsets(log_backend)
    if position.partition not in ends:
        where = f"{topics.DEAD_LETTERS} has partitions {sorted(ends) or 'none'}"
    else:
        where = f"partition {position.partition} ends at offset {ends[position.partition]}"
    raise NotFound(f"no dead letter at {position}: {where}")


def cmd_show(args: argparse.Namespace, runtime: RuntimeOf) -> int:
    try:
        position = dlq.parse_position(args.position)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if args.bytes < 0:
        raise ConfigError(f"--bytes must be at least 0 (got {args.bytes})")
    log_backend = _open(args, runtime)
    try:
        dl = _find(log_backend, position)
    finally:
        log_backend.close()
    shown = dlq.details(dl, args.bytes)
    if args.json:
        print(json.dumps(shown, indent=2))
        return 0
    for name in ("dlq", "time", "stage", "reason", "detail", "account", "source", "size"):
        print(f"{name + ':':<15}{shown[name]}")
    print(f"{'replays:':<15}{shown['replays']} (from {shown['replayed_from'] or '-'})")
    print(f"{'key:':<15}{shown['key'] if shown['key'] is not None else '-'}")
    print("headers:")
    for name, value in shown["headers"]:
        print(f"  {name}: {value}")
    print(f"value ({shown['size']} bytes):")
    for line in shown["hex"]:
        print(f"  {line}")
    if shown["event"] is not None:
        print("decoded event:")
        print(json.dumps(shown["event"], indent=2))
    else:
        print(f"does not decode as an audit event: {shown['decode_error']}")
    return 0


def load_fix(path: Path) -> Fix:
    """A fixed value from ``path``: an encoded event (Avro single-object bytes, as ``dlq
    show`` dumps them) or one event as JSON (as ``dlq show --json`` prints it under
    ``event``). The key and the category/activity headers are taken from the event. Raises
    ``ConfigError`` if it is not a valid event."""
    from auditstream.producers.errors import ValidationError
    from auditstream.producers.sdk import to_record
    from auditstream.schemas import codec
    from auditstream.schemas.errors import CodecError

    try:
        with path.open("rb") as f:
            data = f.read(_MAX_FIX_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"--value-file {path}: {exc.strerror or exc}") from None
    if len(data) > _MAX_FIX_BYTES:
        raise ConfigError(f"--value-file {path} is over {_MAX_FIX_BYTES} bytes: not one event")
    try:
        if data[:2] == codec.MARKER:
            event: dict[str, Any] = codec.decode(data)
        else:
            event = _event_from_json(json.loads(data))
        record = to_record(event)  # validates against the catalog and the schema
    except (CodecError, ValidationError, ValueError, TypeError) as exc:
        raise ConfigError(
            f"--value-file {path} is not a valid audit event: {dlq.safe_text(str(exc), 300)}"
        ) from None
    # Bytes as given are kept byte for byte (an older writer's may be the point of the fix).
    value = data if data[:2] == codec.MARKER else record.value
    return Fix(value=value, key=record.key or b"", headers=record.headers)


def _event_from_json(doc: Any) -> dict[str, Any]:
    if isinstance(doc, dict) and isinstance(doc.get("event"), dict):
        doc = doc["event"]  # the whole `dlq show --json` output
    if not isinstance(doc, dict):
        raise ValueError("expected a JSON object of one event")
    event = dict(doc)
    for name in ("occurred_at", "recorded_at"):
        if isinstance(event.get(name), str):
            event[name] = datetime.fromisoformat(event[name].replace("Z", "+00:00"))
    return event


def _confirm(question: str) -> bool:
    print(question, end=" ", file=sys.stderr, flush=True)
    try:
        answer = input()
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")


def cmd_replay(args: argparse.Namespace, runtime: RuntimeOf) -> int:
    selection = selection_of(args)
    if not selection.narrowed and not args.all:
        raise ConfigError(
            "dlq replay: select dead letters with --offset or a filter (--reason, --account, "
            "--stage, --since, --from-offset, --to-offset), or pass --all"
        )
    if args.value_file is not None and len(selection.positions) != 1:
        raise ConfigError("--value-file replaces the value of one record: name it with --offset")
    if args.max_replays < 1:
        raise ConfigError(f"--max-replays must be at least 1 (got {args.max_replays})")
    fixes: dict[Position, Fix] = {}
    if args.value_file is not None:
        (position,) = selection.positions
        fixes[position] = load_fix(args.value_file)
    log_backend = _open(args, runtime)
    try:
        found, _read = dlq.select(log_backend, selection, limit=args.limit, progress=_progress)
        missing = sorted(selection.positions - {dl.position for dl in found})
        if missing:
            raise NotFound(
                "no dead letter at " + ", ".join(str(p) for p in missing) + " (nothing replayed)"
            )
        plan = dlq.plan_replay(found, fixes, max_replays=args.max_replays, force=args.force)
        for dl, why in plan.refused:
            print(f"skipped {dl.position}: {why}", file=sys.stderr)
        if not plan.sends:
            print("nothing to replay", file=sys.stderr)
            return 1 if plan.refused else 0
        for dl, record in plan.sends:
            print(_sent_line(dl, record, dl.position in plan.fixed, dry_run=args.dry_run))
        if args.dry_run:
            print(f"dry run: {len(plan.sends)} records would be replayed", file=sys.stderr)
            return 0
        if not args.yes and not _confirm(
            f"replay {len(plan.sends)} records to {dlq.REPLAY_TARGET} as {args.actor}? [y/N]"
        ):
            print("nothing replayed", file=sys.stderr)
            return 1
        replay_id = str(uuid.uuid4())
        audit = dlq.replay_audit_record(
            plan, actor=args.actor, now=datetime.now(UTC), replay_id=replay_id
        )
        dlq.send_replay(log_backend, plan, audit)
    finally:
        log_backend.close()
    log.info(
        "dlq replay %s by %s: %d records to %s (%s), recorded in %s",
        replay_id,
        dlq.safe_text(args.actor),
        len(plan.sends),
        dlq.REPLAY_TARGET,
        ", ".join(str(dl.position) for dl, _r in plan.sends),
        dlq.REPLAYS_TOPIC,
    )
    print(f"replayed {len(plan.sends)} records (replay {replay_id}, in {dlq.REPLAYS_TOPIC})")
    return 0


def _sent_line(dl: DeadLetter, record: Any, fixed: bool, *, dry_run: bool) -> str:
    verb = "would send" if dry_run else "send"
    key = "-" if record.key is None else dlq.escape_bytes(record.key, 60)
    return (
        f"{verb} {dl.position} ({dl.stage}/{dl.reason}) -> {record.topic}: key {key}, "
        f"{len(record.value)} bytes{', fixed value' if fixed else ''}, "
        f"replay {dl.replay_count + 1}"
    )


def _default_actor() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _filter_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("selection (all given must match)")
    g.add_argument("--reason", action="append", help="dlq.reason, e.g. malformed (repeatable)")
    g.add_argument("--account", action="append", help="account id, the record key (repeatable)")
    g.add_argument("--stage", action="append", choices=["router", "sink"], help="dlq.stage")
    g.add_argument("--since", help="dead-lettered at or after: 30m, 2h, 7d or an ISO time")
    g.add_argument("--from-offset", type=int, help="lowest DLQ offset")
    g.add_argument("--to-offset", type=int, help="highest DLQ offset")
    g.add_argument("--limit", type=int, help="only the newest N that match")


def add_dlq_command(sub: Any, backend_args: AddBackendArgs, runtime: RuntimeOf) -> None:
    """Register ``dlq`` and its subcommands on the ``auditstream`` parser's subparsers."""
    p = sub.add_parser(
        "dlq",
        help="list, show and replay dead letters (auditstream.dlq)",
        description="Records the router or a sink worker could not handle are kept in "
        "auditstream.dlq with the reason (dlq.reason), a sentence (dlq.detail), the stage and "
        "where they came from. List them, look at one, and send them back to the activity "
        "topic, unchanged or fixed. Everything read from the topic is printed escaped.",
    )
    ds = p.add_subparsers(dest="dlq_command", required=True, metavar="ACTION")

    def run(fn: Callable[[argparse.Namespace, RuntimeOf], int]) -> Callable[..., int]:
        return lambda args: fn(args, runtime)

    a = ds.add_parser(
        "list",
        help="one line per dead letter: position, time, stage, reason, account, source",
        description="One line per dead letter: its DLQ position (partition:offset), when it "
        "was dead-lettered, the stage (router or sink), the reason, the account (the record "
        "key), the source topic@partition:offset, the size and the first bytes, escaped. "
        "A count goes to stderr, and progress on large topics.",
    )
    _filter_args(a)
    a.add_argument("--bytes", type=int, default=dlq.PREVIEW_BYTES, help="first bytes shown")
    a.add_argument("--json", action="store_true", help="a JSON array instead of a table")
    backend_args(a)
    a.set_defaults(func=run(cmd_list))

    s = ds.add_parser(
        "show",
        help="one dead letter: headers, detail, a hex dump, the decoded event",
        description="Everything about one dead letter: every header (escaped), the detail, a "
        "hex dump of the first --bytes bytes, and the event as JSON if the value decodes as "
        "one (else why not). The JSON form (--json) under `event` is what `dlq replay "
        "--value-file` takes, once corrected.",
    )
    s.add_argument("position", metavar="POSITION", help="PARTITION:OFFSET, or OFFSET (0:OFFSET)")
    s.add_argument("--bytes", type=int, default=256, help="bytes in the hex dump (default 256)")
    s.add_argument("--json", action="store_true", help="print JSON")
    backend_args(s)
    s.set_defaults(func=run(cmd_show))

    r = ds.add_parser(
        "replay",
        help="send dead letters back to the activity topic, unchanged or fixed",
        description="Sends the selected dead letters back to auditstream.activity (never to "
        "another topic) with their key and headers, without the dlq.* ones, plus "
        "replayed.from (the DLQ position) and replayed.count; the router then checks and "
        "routes them like new events. A record that fails again is dead-lettered again with "
        "those headers, and one replayed --max-replays times is refused unless --force. "
        "Sink-stage dead letters are re-routed to every destination the account includes; "
        "copies of one event from several destinations are sent once, and one whose event "
        "decodes (it failed for one destination only: the others have it) only with --force. "
        "The records and a "
        "record of the replay (who, when, which positions) in auditstream.dlq.replays are "
        "stored in one transaction. Asks before sending unless --yes.",
    )
    r.add_argument(
        "--offset",
        action="append",
        metavar="POSITION",
        help="a DLQ position, PARTITION:OFFSET or OFFSET (repeatable)",
    )
    _filter_args(r)
    r.add_argument("--all", action="store_true", help="every dead letter (no selection given)")
    r.add_argument(
        "--value-file",
        type=Path,
        help="replace the value of the one --offset record: an encoded event, or one event "
        "as JSON (as `dlq show --json` prints it); key and category/activity headers follow "
        "the event",
    )
    r.add_argument("--dry-run", action="store_true", help="print what would be sent, send nothing")
    r.add_argument("--yes", action="store_true", help="do not ask before sending")
    r.add_argument(
        "--actor",
        default=_default_actor(),
        help="who replays, recorded in auditstream.dlq.replays (default: the OS user)",
    )
    r.add_argument(
        "--max-replays",
        type=int,
        default=dlq.DEFAULT_MAX_REPLAYS,
        help="refuse records already replayed this many times (default 3)",
    )
    r.add_argument("--force", action="store_true", help="replay even past --max-replays")
    backend_args(r)
    r.set_defaults(func=run(cmd_replay))
