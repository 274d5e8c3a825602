"""The OCSF mapping of the activity catalog: one row per catalog activity.

Each row names the OCSF class (``class_uid``), the class's ``activity_id`` and the
``severity_id`` of the activity. ``CLASSES`` says, for each class used, its name, its
category, the attributes OCSF requires of it and the captions of its activities. Facts from
OCSF 1.5.0 (``type_uid = class_uid * 100 + activity_id``, ``category_uid = class_uid // 1000``).

Severity ids: 1 Informational, 2 Low, 3 Medium (OCSF's scale; 4 High and above are left to
detections). Routine work is 1; a change to who may do what or to credentials is 2; an
activity an intruder would perform to keep access or hide (failed login, two-factor turned
off, delegated administration given, audit streaming changed, API key refreshed) is 3.

A unit test checks that every catalog activity has exactly one row, and that every row's
activity exists in its class.
"""

from __future__ import annotations

from dataclasses import dataclass

OCSF_VERSION = "1.5.0"
"""The OCSF schema version the mapping follows (``metadata.version`` of every event)."""

ACCOUNT_CHANGE = 3001
AUTHENTICATION = 3002
ENTITY_MANAGEMENT = 3004

INFORMATIONAL, LOW, MEDIUM = 1, 2, 3

SEVERITY_NAMES = {0: "Unknown", 1: "Informational", 2: "Low", 3: "Medium", 4: "High"}


@dataclass(frozen=True, slots=True)
class OcsfClass:
    uid: int
    name: str
    category_name: str
    required: tuple[str, ...]
    """The attributes OCSF requires of an event of this class (without profiles)."""
    activities: dict[int, str]
    """activity_id → caption."""


_BASE_REQUIRED = (
    "activity_id",
    "category_uid",
    "class_uid",
    "metadata",
    "severity_id",
    "time",
    "type_uid",
)

CLASSES: dict[int, OcsfClass] = {
    ACCOUNT_CHANGE: OcsfClass(
        ACCOUNT_CHANGE,
        "Account Change",
        "Identity & Access Management",
        (*_BASE_REQUIRED, "user"),
        {
            0: "Unknown",
            1: "Create",
            2: "Enable",
            3: "Password Change",
            4: "Password Reset",
            5: "Disable",
            6: "Delete",
            7: "Attach Policy",
            8: "Detach Policy",
            9: "Lock",
            10: "MFA Factor Enable",
            11: "MFA Factor Disable",
            12: "Unlock",
            99: "Other",
        },
    ),
    AUTHENTICATION: OcsfClass(
        AUTHENTICATION,
        "Authentication",
        "Identity & Access Management",
        (*_BASE_REQUIRED, "user", "dst_endpoint"),  # service or dst_endpoint
        {0: "Unknown", 1: "Logon", 2: "Logoff", 99: "Other"},
    ),
    ENTITY_MANAGEMENT: OcsfClass(
        ENTITY_MANAGEMENT,
        "Entity Management",
        "Identity & Access Management",
        (*_BASE_REQUIRED, "entity"),
        {
            0: "Unknown",
            1: "Create",
            2: "Read",
            3: "Update",
            4: "Delete",
            5: "Move",
            8: "Enable",
            9: "Disable",
            10: "Activate",
            11: "Deactivate",
            99: "Other",
        },
    ),
}


@dataclass(frozen=True, slots=True)
class OcsfMapping:
    activity: str
    """Catalog activity key."""
    class_uid: int
    activity_id: int
    severity_id: int


_A, _U, _E = ACCOUNT_CHANGE, AUTHENTICATION, ENTITY_MANAGEMENT
_I, _L, _M = INFORMATIONAL, LOW, MEDIUM

# fmt: off
MAPPINGS: tuple[OcsfMapping, ...] = tuple(OcsfMapping(*row) for row in (
    # activity                                          class  activity_id  severity
    # Account
    ("user_login",                                      _U,  1, _I),   # Logon
    ("user_login_failed",                               _U,  1, _M),   # Logon, status Failure
    ("user_logout",                                     _U,  2, _I),   # Logoff
    ("password_changed",                                _A,  3, _L),   # Password Change
    ("user_switched_team",                              _U, 99, _I),   # Other
    ("account_email_updated",                           _A, 99, _L),   # Other
    ("user_name_updated",                               _A, 99, _I),   # Other
    ("password_reset_requested",                        _A,  4, _L),   # Password Reset
    ("delegated_admin_added",                           _A,  7, _M),   # Attach Policy
    ("delegated_admin_password_updated",                _A,  3, _L),   # Password Change
    ("delegated_admin_removed",                         _A,  8, _L),   # Detach Policy
    ("enabled_two_factor_authentication",               _A, 10, _L),   # MFA Factor Enable
    ("disabled_two_factor_authentication",              _A, 11, _M),   # MFA Factor Disable
    ("viewed_two_factor_authentication_recovery_codes", _A, 99, _L),   # Other
    ("api_key_refreshed",                               _A, 99, _M),   # Other
    ("error_notifications_email_updated",               _E,  3, _I),   # Update
    ("error_notification_throttling",                   _E,  3, _I),   # Update
    ("audit_log_streaming",                             _E,  3, _M),   # Update
    ("audit_log_streaming_data_inclusion",              _E,  3, _M),   # Update
    ("audit_log_streaming_destination_updated",         _E,  3, _M),   # Update
    # Team
    ("invite_created",                                  _A,  1, _L),   # Create
    ("invite_accepted",                                 _A,  2, _L),   # Enable
    ("invite_modified",                                 _A, 99, _L),   # Other
    ("invite_canceled",                                 _A,  6, _L),   # Delete
    ("member_updated",                                  _A, 99, _L),   # Other (role change)
    ("member_deleted",                                  _A,  6, _L),   # Delete
    ("role_created",                                    _A,  1, _L),   # Create
    ("role_updated",                                    _A, 99, _L),   # Other
    ("role_deleted",                                    _A,  6, _L),   # Delete
    # Recipe
    ("recipe_started",                                  _E, 10, _I),   # Activate
    ("recipe_stopped",                                  _E, 11, _I),   # Deactivate
    ("recipe_created",                                  _E,  1, _I),   # Create
    ("recipe_updated",                                  _E,  3, _I),   # Update
    ("recipe_renamed",                                  _E,  3, _I),   # Update
    ("recipe_moved",                                    _E,  5, _I),   # Move
    ("recipe_cloned",                                   _E,  1, _I),   # Create
    ("recipe_access_scope_updated",                     _E,  3, _L),   # Update
    ("recipe_deleted",                                  _E,  4, _I),   # Delete
    # Connection
    ("connection_created",                              _E,  1, _I),   # Create
    ("connection_updated",                              _E,  3, _L),   # Update
    ("connection_connected",                            _E,  8, _I),   # Enable
    ("connection_disconnected",                         _E,  9, _I),   # Disable
    ("connection_deleted",                              _E,  4, _I),   # Delete
    # Folder
    ("folder_created",                                  _E,  1, _I),   # Create
    ("folder_deleted",                                  _E,  4, _I),   # Delete
    ("folder_renamed",                                  _E,  3, _I),   # Update
    ("folder_moved",                                    _E,  5, _I),   # Move
    # Package
    ("manifest_created",                                _E,  1, _I),   # Create
    ("manifest_updated",                                _E,  3, _I),   # Update
    ("manifest_deleted",                                _E,  4, _I),   # Delete
    ("package_exported",                                _E,  2, _L),   # Read
    ("package_imported",                                _E,  3, _L),   # Update
    # Connector SDK
    ("custom_connector_created",                        _E,  1, _I),   # Create
    ("custom_connector_updated",                        _E,  3, _I),   # Update
    ("custom_connector_released",                       _E, 99, _I),   # Other
    ("custom_connector_deleted",                        _E,  4, _I),   # Delete
    # Common data model
    ("common_data_model_created",                       _E,  1, _I),   # Create
    ("common_data_model_updated",                       _E,  3, _I),   # Update
    ("common_data_model_deleted",                       _E,  4, _I),   # Delete
    # Lookup table
    ("lookup_table_created",                            _E,  1, _I),   # Create
    ("lookup_table_updated",                            _E,  3, _I),   # Update
    ("lookup_table_deleted",                            _E,  4, _I),   # Delete
    # Message template
    ("message_template_created",                        _E,  1, _I),   # Create
    ("message_template_updated",                        _E,  3, _I),   # Update
    ("message_template_deleted",                        _E,  4, _I),   # Delete
    # Properties
    ("property_created",                                _E,  1, _I),   # Create
    ("property_updated",                                _E,  3, _I),   # Update
    ("property_deleted",                                _E,  4, _I),   # Delete
    # Pub/Sub topic
    ("pubsub_topic_created",                            _E,  1, _I),   # Create
    ("pubsub_topic_updated",                            _E,  3, _I),   # Update
    # API collection
    ("api_collection_created",                          _E,  1, _I),   # Create
    ("api_collection_updated",                          _E,  3, _I),   # Update
    ("api_collection_deleted",                          _E,  4, _I),   # Delete
    # API endpoint
    ("api_endpoint_created",                            _E,  1, _I),   # Create
    ("api_endpoint_updated",                            _E,  3, _I),   # Update
    ("api_endpoint_deleted",                            _E,  4, _I),   # Delete
    ("api_endpoint_activated",                          _E, 10, _I),   # Activate
    ("api_endpoint_deactivated",                        _E, 11, _I),   # Deactivate
    # API customer
    ("api_customer_created",                            _E,  1, _I),   # Create
    ("api_customer_updated",                            _E,  3, _I),   # Update
    ("api_customer_deleted",                            _E,  4, _I),   # Delete
    # API access profile
    ("api_access_profile_created",                      _E,  1, _L),   # Create
    ("api_access_profile_updated",                      _E,  3, _L),   # Update
    ("api_access_profile_deleted",                      _E,  4, _L),   # Delete
    ("api_access_profile_token_refreshed",              _E,  3, _M),   # Update
    # API policy
    ("api_policy_created",                              _E,  1, _L),   # Create
    ("api_policy_updated",                              _E,  3, _L),   # Update
    ("api_policy_deleted",                              _E,  4, _L),   # Delete
))
# fmt: on

BY_ACTIVITY: dict[str, OcsfMapping] = {m.activity: m for m in MAPPINGS}

UNKNOWN_ACTIVITY = OcsfMapping("", ENTITY_MANAGEMENT, 99, INFORMATIONAL)
"""The row of an activity the catalog does not know (an event newer than this table)."""
