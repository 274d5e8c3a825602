"""Handlers of the audit log streaming settings activities: streaming on or off, what the
stream includes, where it goes."""

from __future__ import annotations

from auditstream.producers.simulator import vocabulary as words
from auditstream.producers.simulator.handlers.parts import Handler, Parts, change, enabled
from auditstream.producers.simulator.state import Account, Member
from auditstream.producers.simulator.world import World

__all__ = ["HANDLERS"]


def _streaming(_world: World, acct: Account, _member: Member | None, _key: str) -> Parts:
    old = acct.streaming
    acct.streaming = not old
    return Parts(None, [change("audit_log_streaming", enabled(old), enabled(not old))], {})


def _contents(world: World, acct: Account, _member: Member | None, _key: str) -> Parts:
    rng = world.rng
    all_contents = words.STREAM_CONTENTS
    old = acct.stream_contents
    chosen = rng.sample(all_contents, rng.randint(1, len(all_contents)))
    new = ",".join(c for c in all_contents if c in chosen)
    if new == old:
        new = ",".join(all_contents)
    if new == old:
        new = all_contents[0]
    acct.stream_contents = new
    return Parts(None, [change("include_in_stream", old, new)], {})


def _destination(world: World, acct: Account, _member: Member | None, _key: str) -> Parts:
    old = acct.stream_destination
    s = acct.slug
    options = (
        f"s3://{s}-audit/activity",
        f"gs://{s}-audit-logs/stream",
        f"https://siem.{s}.example/ingest/audit",
        f"azure://{s.replace('-', '')}audit/activity",
    )
    new = world.rng.choice([o for o in options if o != old])
    acct.stream_destination = new
    kind = new.split(":", 1)[0]
    return Parts(None, [change("destination", old, new)], {"destination_type": kind})


HANDLERS: dict[str, Handler] = {
    "audit_log_streaming": _streaming,
    "audit_log_streaming_data_inclusion": _contents,
    "audit_log_streaming_destination_updated": _destination,
}
