"""How often each catalog activity occurs and who performs it: one profile per activity.

``PROFILES`` has one entry per activity of ``schemas.catalog`` (a unit test keeps it so). An
activity the catalog gains and this table lacks is simulated with ``DEFAULT_PROFILE``, so every
catalog activity always occurs; an entry naming an activity the catalog lacks is an error.
"""

from __future__ import annotations

from dataclasses import dataclass

from auditstream.schemas import catalog

__all__ = [
    "ACTIVITY_WEIGHTS",
    "DEFAULT_PROFILE",
    "DEFAULT_WEIGHT",
    "PROFILES",
    "Profile",
    "Spec",
    "specs",
]


@dataclass(frozen=True, slots=True)
class Profile:
    """How one activity is simulated."""

    weight: float
    """Relative frequency (all weights sum to about 90)."""
    api_key_share: float = 0.0
    """Share performed through the platform API (auth method ``api_key``)."""
    system_share: float = 0.0
    """Share performed by the platform itself (actor ``system``, no request)."""
    admin_only: bool = False
    """Only the owner or an admin performs it."""
    sessionless: bool = False
    """Performed before login: the request carries no session."""
    ends_session: bool = False
    """The actor's session ends with it."""


DEFAULT_WEIGHT = 0.1
DEFAULT_PROFILE = Profile(DEFAULT_WEIGHT)

PROFILES: dict[str, Profile] = {
    # Account
    "user_login": Profile(27.0),
    "user_login_failed": Profile(6.0, sessionless=True),
    "user_logout": Profile(6.0, ends_session=True),
    "password_changed": Profile(0.4, ends_session=True),
    "user_switched_team": Profile(1.5),
    "account_email_updated": Profile(0.1),
    "user_name_updated": Profile(0.1),
    "password_reset_requested": Profile(0.4, sessionless=True),
    "delegated_admin_added": Profile(0.06, admin_only=True),
    "delegated_admin_password_updated": Profile(0.06),
    "delegated_admin_removed": Profile(0.06, admin_only=True),
    "enabled_two_factor_authentication": Profile(0.2),
    "disabled_two_factor_authentication": Profile(0.06),
    "viewed_two_factor_authentication_recovery_codes": Profile(0.1),
    "api_key_refreshed": Profile(0.1),
    "error_notifications_email_updated": Profile(0.1, admin_only=True),
    "error_notification_throttling": Profile(0.08, admin_only=True),
    "audit_log_streaming": Profile(0.06, admin_only=True),
    "audit_log_streaming_data_inclusion": Profile(0.06, admin_only=True),
    "audit_log_streaming_destination_updated": Profile(0.06, admin_only=True),
    # Team
    "invite_created": Profile(0.6, admin_only=True),
    "invite_accepted": Profile(0.45, sessionless=True),
    "invite_modified": Profile(0.1, admin_only=True),
    "invite_canceled": Profile(0.1, admin_only=True),
    "member_updated": Profile(0.3, admin_only=True),
    "member_deleted": Profile(0.15, admin_only=True),
    "role_created": Profile(0.08, admin_only=True),
    "role_updated": Profile(0.15, admin_only=True),
    "role_deleted": Profile(0.06, admin_only=True),
    # Recipe
    "recipe_started": Profile(9.0, api_key_share=0.15),
    "recipe_stopped": Profile(7.0, api_key_share=0.15, system_share=0.12),
    "recipe_created": Profile(2.0, api_key_share=0.05),
    "recipe_updated": Profile(8.0, api_key_share=0.05),
    "recipe_renamed": Profile(0.8),
    "recipe_moved": Profile(0.6),
    "recipe_cloned": Profile(0.6),
    "recipe_access_scope_updated": Profile(0.2),
    "recipe_deleted": Profile(0.5),
    # Connection
    "connection_created": Profile(1.0),
    "connection_updated": Profile(1.2, api_key_share=0.05),
    "connection_connected": Profile(1.5),
    "connection_disconnected": Profile(0.8, system_share=0.35),
    "connection_deleted": Profile(0.3),
    # Folder
    "folder_created": Profile(0.8),
    "folder_deleted": Profile(0.3),
    "folder_renamed": Profile(0.3),
    "folder_moved": Profile(0.3),
    # Package
    "manifest_created": Profile(0.3, api_key_share=0.1),
    "manifest_updated": Profile(0.4),
    "manifest_deleted": Profile(0.1),
    "package_exported": Profile(0.6, api_key_share=0.3),
    "package_imported": Profile(0.5, api_key_share=0.3),
    # Connector SDK
    "custom_connector_created": Profile(0.1),
    "custom_connector_updated": Profile(0.6),
    "custom_connector_released": Profile(0.2),
    "custom_connector_deleted": Profile(0.06),
    # Common data model
    "common_data_model_created": Profile(0.15),
    "common_data_model_updated": Profile(0.3),
    "common_data_model_deleted": Profile(0.06),
    # Lookup table
    "lookup_table_created": Profile(0.3),
    "lookup_table_updated": Profile(1.2, api_key_share=0.3),
    "lookup_table_deleted": Profile(0.1),
    # Message template
    "message_template_created": Profile(0.15),
    "message_template_updated": Profile(0.3),
    "message_template_deleted": Profile(0.06),
    # Properties
    "property_created": Profile(0.3),
    "property_updated": Profile(0.6, api_key_share=0.2),
    "property_deleted": Profile(0.1),
    # Pub/Sub topic
    "pubsub_topic_created": Profile(0.1),
    "pubsub_topic_updated": Profile(0.2),
    # API collection
    "api_collection_created": Profile(0.15),
    "api_collection_updated": Profile(0.3),
    "api_collection_deleted": Profile(0.06),
    # API endpoint
    "api_endpoint_created": Profile(0.3),
    "api_endpoint_updated": Profile(0.5),
    "api_endpoint_deleted": Profile(0.08),
    "api_endpoint_activated": Profile(0.3),
    "api_endpoint_deactivated": Profile(0.15),
    # API customer
    "api_customer_created": Profile(0.1),
    "api_customer_updated": Profile(0.15),
    "api_customer_deleted": Profile(0.06),
    # API access profile
    "api_access_profile_created": Profile(0.1),
    "api_access_profile_updated": Profile(0.15),
    "api_access_profile_deleted": Profile(0.06),
    "api_access_profile_token_refreshed": Profile(0.2, api_key_share=0.3),
    # API policy
    "api_policy_created": Profile(0.06),
    "api_policy_updated": Profile(0.1),
    "api_policy_deleted": Profile(0.06),
}

ACTIVITY_WEIGHTS: dict[str, float] = {key: p.weight for key, p in PROFILES.items()}
"""Relative weight of each activity; an activity this table lacks gets ``DEFAULT_WEIGHT``."""


@dataclass(frozen=True, slots=True)
class Spec:
    """A catalog activity with its profile."""

    category: str
    key: str
    profile: Profile


def specs() -> list[Spec]:
    """One spec per catalog activity, in catalog order.

    Raises ``RuntimeError`` if ``PROFILES`` names an activity the catalog lacks.
    """
    unknown = set(PROFILES) - {a.key for a in catalog.ACTIVITIES}
    if unknown:
        raise RuntimeError(f"PROFILES names unknown activities: {sorted(unknown)}")
    return [
        Spec(a.category, a.key, PROFILES.get(a.key, DEFAULT_PROFILE)) for a in catalog.ACTIVITIES
    ]
