"""The inclusion filter: does an account's stream include an event? (pure)"""

from __future__ import annotations

from enum import StrEnum

from auditstream.config.stream import AccountSettings


class Decision(StrEnum):
    """Why an event is or is not streamed. Values are metric label values."""

    INCLUDED = "included"
    NO_SETTINGS = "no_settings"
    STREAMING_DISABLED = "streaming_disabled"
    CATEGORY_NOT_INCLUDED = "category_not_included"
    ACTIVITY_NOT_INCLUDED = "activity_not_included"
    ACTIVITY_EXCLUDED = "activity_excluded"
    NO_DESTINATIONS = "no_destinations"


def decide(settings: AccountSettings | None, category: str, activity: str) -> Decision:
    """Apply one account's settings to an event's category and activity keys."""
    if settings is None:
        return Decision.NO_SETTINGS
    if not settings.streaming_enabled:
        return Decision.STREAMING_DISABLED
    if settings.include_categories is not None and category not in settings.include_categories:
        return Decision.CATEGORY_NOT_INCLUDED
    if settings.include_activities and activity not in settings.include_activities:
        return Decision.ACTIVITY_NOT_INCLUDED
    if activity in settings.exclude_activities:
        return Decision.ACTIVITY_EXCLUDED
    if not any(d.enabled and not d.deleting for d in settings.destinations):
        return Decision.NO_DESTINATIONS
    return Decision.INCLUDED
