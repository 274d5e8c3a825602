"""ECS (Elastic Common Schema): each event as an ECS document.

- ``@timestamp`` is ``occurred_at``; ``event.kind`` is ``event``; ``event.category`` and
  ``event.type`` follow the event's OCSF class (``ocsf_classes``): authentication (type
  ``start`` for a login or failed login, ``end`` for a logout, ``info`` otherwise), iam
  (``user`` or, for custom roles, ``admin``; with ``creation``, ``deletion`` or ``change``),
  configuration (``creation``, ``deletion``, ``access`` for a read, ``change`` otherwise).
- ``event.action`` is the activity key, ``event.outcome`` ``success`` or ``failure`` (a failed
  login is always ``failure``), ``event.reason`` the failure's reason, ``event.severity`` the
  OCSF severity id, ``event.id`` the event id, ``event.created`` the ``recorded_at``.
- ``user.*`` is the actor (``id``, ``name``, ``email``, ``roles``); ``user.target.*`` the user
  acted on in an iam event about a user (member, invitee); ``source.ip`` the request's IP when
  it is an IP address; ``user_agent.original``; ``related.user`` every user id, name and email
  of the event; ``organization.id`` the account; ``http.request.id`` the request id.
- Fields ECS has no place for are under ``auditstream.*`` (category, resource, changes,
  details, session id, way of signing in, a request IP that is not an IP address).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from auditstream.sinks.shapes.common import (
    PRODUCT,
    activity_name,
    changes,
    compact,
    details,
    ip,
    part,
    text,
    when,
)
from auditstream.sinks.shapes.ocsf import mapping_of
from auditstream.sinks.shapes.ocsf_classes import ACCOUNT_CHANGE, AUTHENTICATION

ECS_VERSION = "8.11.0"

_USER_TARGETS = ("invite_", "member_", "delegated_admin_added", "delegated_admin_removed")


def _category_and_type(event: Mapping[str, Any]) -> tuple[str, list[str]]:
    row = mapping_of(event)
    activity = str(event.get("activity") or "")
    if row.class_uid == AUTHENTICATION:
        return "authentication", [{1: "start", 2: "end"}.get(row.activity_id, "info")]
    if row.class_uid == ACCOUNT_CHANGE:
        subject = "admin" if activity.startswith("role_") else "user"
        change = {1: "creation", 6: "deletion"}.get(row.activity_id, "change")
        return "iam", [subject, change]
    return "configuration", [
        {1: "creation", 4: "deletion", 2: "access"}.get(row.activity_id, "change")
    ]


def _target(event: Mapping[str, Any], resource: Mapping[str, Any]) -> dict[str, Any] | None:
    activity = str(event.get("activity") or "")
    if not resource or not activity.startswith(_USER_TARGETS):
        return None
    return compact({"id": text(resource.get("id")), "name": text(resource.get("name"))}) or None


def render(event: Mapping[str, Any]) -> dict[str, Any]:
    """``event`` (a decoded ``ActivityEvent``) as an ECS document."""
    actor, resource = part(event, "actor"), part(event, "resource")
    outcome, request = part(event, "outcome"), part(event, "request")
    category, types = _category_and_type(event)
    failed = outcome.get("status") == "failure" or event.get("activity") == "user_login_failed"
    succeeded = outcome.get("status") == "success" and not failed
    target = _target(event, resource)
    role = text(actor.get("role"))
    user = compact(
        {
            "id": text(actor.get("user_id")),
            "name": text(actor.get("name")),
            "email": text(actor.get("email")),
            "roles": [role] if role else None,
            "target": target,
        }
    )
    related = [
        v
        for v in (
            text(actor.get("user_id")),
            text(actor.get("name")),
            text(actor.get("email")),
            *((target or {}).get(k) for k in ("id", "name")),
        )
        if v
    ]
    raw_ip = text(request.get("ip"))
    address = ip(raw_ip)
    document: dict[str, Any] = {
        "@timestamp": when(event.get("occurred_at")),
        "ecs": {"version": ECS_VERSION},
        "message": activity_name(event.get("activity")),
        "event": compact(
            {
                "kind": "event",
                "category": [category],
                "type": types,
                "action": text(event.get("activity")),
                "outcome": "failure" if failed else "success" if succeeded else "unknown",
                "reason": text(outcome.get("reason")),
                "severity": mapping_of(event).severity_id,
                "id": str(event.get("event_id") or "") or None,
                "created": when(event.get("recorded_at")),
                "provider": PRODUCT,
                "dataset": f"{PRODUCT}.activity",
            }
        ),
        "user": user,
        "source": {"ip": address} if address else None,
        "user_agent": compact({"original": text(request.get("user_agent"))}),
        "related": {"user": list(dict.fromkeys(related))} if related else None,
        "organization": compact({"id": text(event.get("account_id"))}),
        "http": compact({"request": compact({"id": text(request.get("request_id"))})}),
        "auditstream": compact(
            {
                "category": text(event.get("category")),
                "resource": compact(
                    {k: text(resource.get(k)) for k in ("type", "id", "name", "folder")}
                ),
                "changes": changes(event),
                "details": details(event),
                "session_id": text(request.get("session_id")),
                "auth_method": text(actor.get("auth_method")),
                "request_ip": raw_ip if raw_ip and address is None else None,
            }
        ),
    }
    return compact(document)
