"""CloudEvents 1.0, structured JSON: each event as a CloudEvent whose ``data`` is the event.

- ``specversion`` ``1.0``; ``id`` the event id (receivers dedup on ``source`` + ``id``);
  ``source`` ``/auditstream/accounts/{account}`` (the account id percent-encoded: a URI
  reference); ``type`` ``io.auditstream.activity.{activity}``; ``subject``
  ``{resource type}/{resource id}`` when the event names a resource; ``time`` the
  ``occurred_at`` (RFC 3339, UTC); ``datacontenttype`` ``application/json``; ``data`` the
  event in the native shape.
- A batch is a JSON array of such events: the webhook sends it with Content-Type
  ``application/cloudevents-batch+json`` (the JSON batch format); objects and collectors carry
  one structured event per line or log.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from auditstream.sinks.shapes.common import part, text, when

BATCH_MEDIA_TYPE = "application/cloudevents-batch+json"


def render(event: Mapping[str, Any]) -> dict[str, Any]:
    """``event`` (a decoded ``ActivityEvent``) as a structured-mode CloudEvent."""
    account = quote(str(event.get("account_id") or ""), safe="")
    activity = text(event.get("activity")) or "unknown"
    document: dict[str, Any] = {
        "specversion": "1.0",
        "id": str(event.get("event_id") or "") or "unknown",
        "source": f"/auditstream/accounts/{account}",
        "type": f"io.auditstream.activity.{activity}",
        "datacontenttype": "application/json",
    }
    resource = part(event, "resource")
    if resource:
        document["subject"] = f"{resource.get('type') or ''}/{resource.get('id') or ''}"
    occurred = when(event.get("occurred_at"))
    if occurred is not None:
        document["time"] = occurred
    document["data"] = event
    return document
