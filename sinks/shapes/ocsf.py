"""OCSF: each event as an event of the OCSF class its activity maps to (``ocsf_classes``).

- Every event: ``class_uid``, ``category_uid``, ``activity_id``, ``type_uid``,
  ``severity_id`` from the table (with their names), ``time`` (``occurred_at``, epoch ms),
  ``metadata`` (``uid`` the event id, ``version`` the OCSF version, ``product``,
  ``tenant_uid`` the account, ``event_code`` the activity key, ``logged_time`` the
  ``recorded_at``), ``status_id`` 1 Success or 2 Failure with ``status_detail`` the reason,
  ``actor.user`` (and ``actor.session``), ``src_endpoint.ip`` when the request's IP is an IP
  address, ``http_request`` (user agent, request id), ``message`` the activity's display
  name, and ``unmapped`` for what OCSF has no attribute for (category and activity keys,
  changes, details, the actor's role and way of signing in, a request IP that is not one).
- Authentication (3002): ``user`` is the actor, ``dst_endpoint.svc_name`` the product. A
  failed login is a Logon with status Failure.
- Account Change (3001): ``user`` is the resource acted on (the member, invitee or role; a
  role is a user of type Other) or, without one, the actor. Delegated administration given or
  taken is Attach or Detach Policy with ``policy`` named ``delegated_admin``.
- Entity Management (3004): ``entity`` is the resource (``uid``, ``name``, ``type``, the
  folder in ``data``), or the activity's category when the event names none.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from auditstream.sinks.shapes.common import (
    PRODUCT,
    activity_name,
    changes,
    compact,
    details,
    epoch_ms,
    ip,
    part,
    text,
)
from auditstream.sinks.shapes.ocsf_classes import (
    ACCOUNT_CHANGE,
    AUTHENTICATION,
    BY_ACTIVITY,
    CLASSES,
    OCSF_VERSION,
    SEVERITY_NAMES,
    UNKNOWN_ACTIVITY,
    OcsfMapping,
)

# Addresses of the form OCSF's email type accepts (a stricter spelling: anything else is left
# out of email_addr and kept in unmapped).
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+", re.ASCII)
_USER_TYPES = {"user", "member", "collaborator", "invite", "invitation"}


def mapping_of(event: Mapping[str, Any]) -> OcsfMapping:
    """The table's row for the event's activity (the unknown-activity row when it has none)."""
    key = event.get("activity")
    return BY_ACTIVITY.get(key, UNKNOWN_ACTIVITY) if isinstance(key, str) else UNKNOWN_ACTIVITY


def _email(value: object) -> str | None:
    found = text(value)
    return found if found is not None and _EMAIL.fullmatch(found) else None


def _actor_user(actor: Mapping[str, Any]) -> dict[str, Any]:
    system = actor.get("auth_method") == "system"
    return compact(
        {
            "uid": str(actor.get("user_id") or ""),
            "name": text(actor.get("name")),
            "email_addr": _email(actor.get("email")),
            "type_id": 3 if system else 1,
            "type": "System" if system else "User",
        }
    )


def _target_user(resource: Mapping[str, Any], actor: Mapping[str, Any]) -> dict[str, Any]:
    if not resource:
        return _actor_user(actor)
    kind = text(resource.get("type")) or "unknown"
    is_user = kind.lower() in _USER_TYPES
    return compact(
        {
            "uid": str(resource.get("id") or ""),
            "name": text(resource.get("name")),
            "type_id": 1 if is_user else 99,
            "type": "User" if is_user else kind,
        }
    )


def _entity(event: Mapping[str, Any], resource: Mapping[str, Any]) -> dict[str, Any]:
    if not resource:
        category = text(event.get("category")) or "unknown"
        return {"name": category, "type": category}
    folder = text(resource.get("folder"))
    return compact(
        {
            "uid": str(resource.get("id") or ""),
            "name": text(resource.get("name")),
            "type": text(resource.get("type")),
            "data": {"folder": folder} if folder else None,
        }
    )


def _unmapped(event: Mapping[str, Any], actor: Mapping[str, Any], raw_ip: object) -> Any:
    request_ip = text(raw_ip)
    email = text(actor.get("email"))
    return compact(
        {
            "category": text(event.get("category")),
            "activity": text(event.get("activity")),
            "changes": changes(event),
            "details": details(event),
            "actor_role": text(actor.get("role")),
            "auth_method": text(actor.get("auth_method")),
            "actor_email": email if email is not None and _email(email) is None else None,
            "request_ip": request_ip if request_ip is not None and ip(raw_ip) is None else None,
        }
    )


def render(event: Mapping[str, Any]) -> dict[str, Any]:
    """``event`` (a decoded ``ActivityEvent``) as an OCSF event."""
    row = mapping_of(event)
    cls = CLASSES[row.class_uid]
    actor, resource = part(event, "actor"), part(event, "resource")
    outcome, request = part(event, "outcome"), part(event, "request")
    activity = event.get("activity")
    failed = outcome.get("status") == "failure" or activity == "user_login_failed"
    name = activity_name(activity)
    activity_caption = name if row.activity_id == 99 else cls.activities[row.activity_id]
    occurred = epoch_ms(event.get("occurred_at"))
    session_id = text(request.get("session_id"))
    document: dict[str, Any] = {
        "class_uid": cls.uid,
        "class_name": cls.name,
        "category_uid": cls.uid // 1000,
        "category_name": cls.category_name,
        "activity_id": row.activity_id,
        "activity_name": activity_caption,
        "type_uid": cls.uid * 100 + row.activity_id,
        "type_name": f"{cls.name}: {activity_caption}",
        "severity_id": row.severity_id,
        "severity": SEVERITY_NAMES[row.severity_id],
        "time": occurred if occurred is not None else epoch_ms(event.get("recorded_at")) or 0,
        "message": name,
        "status_id": 2 if failed else 1,
        "status": "Failure" if failed else "Success",
        "metadata": compact(
            {
                "uid": str(event.get("event_id") or ""),
                "version": OCSF_VERSION,
                "product": {"name": PRODUCT, "vendor_name": PRODUCT},
                "tenant_uid": text(event.get("account_id")),
                "event_code": text(activity),
                "logged_time": epoch_ms(event.get("recorded_at")),
                "correlation_uid": text(request.get("request_id")),
            }
        ),
        "actor": compact(
            {
                "user": _actor_user(actor),
                "session": {"uid": session_id} if session_id else None,
            }
        ),
    }
    reason = text(outcome.get("reason"))
    if reason:
        document["status_detail"] = reason
    address = ip(request.get("ip"))
    if address:
        document["src_endpoint"] = {"ip": address}
    http_request = compact(
        {"user_agent": text(request.get("user_agent")), "uid": text(request.get("request_id"))}
    )
    if http_request:
        document["http_request"] = http_request
    if cls.uid == AUTHENTICATION:
        document["user"] = _actor_user(actor)
        # OCSF asks for service or dst_endpoint; dst_endpoint, as a collector's reserved
        # ``service`` attribute (Datadog's) must not be shadowed.
        document["dst_endpoint"] = {"svc_name": PRODUCT}
    elif cls.uid == ACCOUNT_CHANGE:
        document["user"] = _target_user(resource, actor)
        if row.activity_id in (7, 8):  # Attach Policy, Detach Policy
            document["policy"] = {"name": "delegated_admin"}
    else:
        document["entity"] = _entity(event, resource)
    unmapped = _unmapped(event, actor, request.get("ip"))
    if unmapped:
        document["unmapped"] = unmapped
    return document
