"""Catalog of the activities recorded in the activity audit log.

The catalog mirrors the product's activity reference: every category and
every activity it lists, with display names and descriptions written exactly
as the reference writes them, in the reference's order.

Category and activity keys are stable API: they are stored in audit records
and used by consumers to filter streams. Never rename or reuse a key; when the
product adds an activity, add a new entry with a new key.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ACTIVITIES",
    "CATEGORIES",
    "Activity",
    "Category",
    "activities_in",
    "activity",
    "as_json_records",
    "category",
    "is_known",
]


@dataclass(frozen=True, slots=True)
class Category:
    """A group of related activities, e.g. Account or Connection."""

    key: str
    """Stable snake_case identifier."""
    name: str
    """Display name, e.g. ``"Connector SDK"``."""
    description: str
    """What the activities of this category relate to."""


@dataclass(frozen=True, slots=True)
class Activity:
    """One kind of audited user action."""

    category: str
    """Key of the category the activity belongs to."""
    name: str
    """Display name, e.g. ``"User login failed"``."""
    key: str
    """Stable snake_case identifier, unique across all categories."""
    description: str
    """What the user did to trigger the activity."""


CATEGORIES: tuple[Category, ...] = (
    Category(
        key="account",
        name="Account",
        description=(
            "Activities related to the Workato account, including user logins, password and "
            "email changes, and account setting modifications."
        ),
    ),
    Category(
        key="team",
        name="Team",
        description=(
            "Activities related to Workato teams, including collaborator invitation, role, and "
            "member modifications."
        ),
    ),
    Category(
        key="recipe",
        name="Recipe",
        description="Activities related to recipes.",
    ),
    Category(
        key="connection",
        name="Connection",
        description="Activities related to connections.",
    ),
    Category(
        key="folder",
        name="Folder",
        description="Activities related to folders.",
    ),
    Category(
        key="package",
        name="Package",
        description="Activities related to Recipe lifecycle management manifests and packages.",
    ),
    Category(
        key="connector_sdk",
        name="Connector SDK",
        description="Activities related to the Connector SDK.",
    ),
    Category(
        key="common_data_model",
        name="Common data model",
        description="Activities related to Common data models.",
    ),
    Category(
        key="lookup_table",
        name="Lookup table",
        description="Activities related to Lookup tables.",
    ),
    Category(
        key="message_template",
        name="Message template",
        description="Activities related to Message templates.",
    ),
    Category(
        key="properties",
        name="Properties",
        description="Activities related to Account properties.",
    ),
    Category(
        key="pubsub_topic",
        name="Pub/Sub topic",
        description="Activities related to Pub/Sub topics.",
    ),
    Category(
        key="api_collection",
        name="API collection",
        description="Activities related to API collections.",
    ),
    Category(
        key="api_endpoint",
        name="API endpoint",
        description="Activities related to API endpoints.",
    ),
    Category(
        key="api_customer",
        name="API customer",
        description="Activities related to API customers.",
    ),
    Category(
        key="api_access_profile",
        name="API access profile",
        description="Activities related to API access profiles.",
    ),
    Category(
        key="api_policy",
        name="API policy",
        description="Activities related to API policies.",
    ),
)

ACTIVITIES: tuple[Activity, ...] = (
    # Account
    Activity(
        category="account",
        name="User login",
        key="user_login",
        description="User logged in through SSO or using a password.",
    ),
    Activity(
        category="account",
        name="User login failed",
        key="user_login_failed",
        description=(
            "User login attempt failed. Select the activity to find out if the user was logging "
            "in through SSO or using a password."
        ),
    ),
    Activity(
        category="account",
        name="User logout",
        key="user_logout",
        description="User logged out of Workato.",
    ),
    Activity(
        category="account",
        name="Password changed",
        key="password_changed",
        description="User changed their password by going to Account Settings > Change password.",
    ),
    Activity(
        category="account",
        name="User switched team",
        key="user_switched_team",
        description=(
            "User switched to another team account. In audit logs for the account the user "
            "switched to, this is shown as User login. Select the activity to view the value of "
            "the Activity attribute in the details section; a value of switch_team indicates the "
            "user switched to another team."
        ),
    ),
    Activity(
        category="account",
        name="Account email updated",
        key="account_email_updated",
        description=(
            "User updated their email by going to Account Settings > Account and modifying the "
            "Account email field."
        ),
    ),
    Activity(
        category="account",
        name="User name updated",
        key="user_name_updated",
        description=(
            "User updated their username by going to Account Settings > Profile and modifying "
            "the Username field."
        ),
    ),
    Activity(
        category="account",
        name="Password reset requested",
        key="password_reset_requested",
        description=(
            "User requested to reset their password by clicking Forgot password? during login. "
            "In the next screen, by providing the email and clicking the Reset password user "
            "confirms the intent to reset their password."
        ),
    ),
    Activity(
        category="account",
        name="Delegated admin added",
        key="delegated_admin_added",
        description=(
            "User gave another Workato user delegated administration access by going to Account "
            "Settings > Delegated administrator."
        ),
    ),
    Activity(
        category="account",
        name="Delegated admin password updated",
        key="delegated_admin_password_updated",
        description=(
            "User changed their delegated administrator password by going to Account Settings > "
            "Change password > Delegated administrator password and updating it with a new "
            "password."
        ),
    ),
    Activity(
        category="account",
        name="Delegated admin removed",
        key="delegated_admin_removed",
        description=(
            "User removed another Workato user's delegated administration access by going to "
            "Account Settings > Delegated administrator."
        ),
    ),
    Activity(
        category="account",
        name="Enabled two-factor authentication",
        key="enabled_two_factor_authentication",
        description=(
            "User enabled two-factor authentication by going to Account Settings > Two-Factor "
            "Authentication."
        ),
    ),
    Activity(
        category="account",
        name="Disabled two-factor authentication",
        key="disabled_two_factor_authentication",
        description=(
            "User disabled two-factor authentication by going to Account Settings > Two-Factor "
            "Authentication and clicking Disable Two-Factor Authentication."
        ),
    ),
    Activity(
        category="account",
        name="Viewed two-factor authentication recovery codes",
        key="viewed_two_factor_authentication_recovery_codes",
        description=(
            "User viewed the two-factor authentication recovery codes by going to Account "
            "Settings > Two-Factor Authentication and clicking View recovery codes."
        ),
    ),
    Activity(
        category="account",
        name="API key refreshed",
        key="api_key_refreshed",
        description=(
            "User refreshed the API key used to connect to Workato platform APIs by going to "
            "Account Settings > API key and clicking Refresh key."
        ),
    ),
    Activity(
        category="account",
        name="Error notifications email updated",
        key="error_notifications_email_updated",
        description=(
            "User updated the list of emails receiving error notifications from Workato by going "
            "to Account Settings > Jobs settings and entering emails in the Error notifications "
            "field."
        ),
    ),
    Activity(
        category="account",
        name="Error notification throttling",
        key="error_notification_throttling",
        description=(
            "User enabled or disabled notification throttling by going to Account Settings > "
            "Jobs settings and toggling the Error notification throttling checkbox."
        ),
    ),
    Activity(
        category="account",
        name="Audit log streaming",
        key="audit_log_streaming",
        description=(
            "User enabled or disabled audit log streaming by going to Account Settings > Audit "
            "log streaming and toggling the Enable audit log streaming toggle."
        ),
    ),
    Activity(
        category="account",
        name="Audit log streaming data inclusion",
        key="audit_log_streaming_data_inclusion",
        description=(
            "User updated audit log streaming contents by selecting or deselecting one or more "
            "options under Include in stream in Account Settings > Audit log streaming."
        ),
    ),
    Activity(
        category="account",
        name="Audit log streaming destination updated",
        key="audit_log_streaming_destination_updated",
        description=(
            "User updated the destination where streaming audit logs are sent in Account "
            "Settings > Audit log streaming > Audit stream destination."
        ),
    ),
    # Team
    Activity(
        category="team",
        name="Invite created",
        key="invite_created",
        description=(
            "User invited a collaborator by going to Tools > Teams and clicking Invite "
            "collaborator."
        ),
    ),
    Activity(
        category="team",
        name="Invite accepted",
        key="invite_accepted",
        description=(
            "User accepted the invite to join the team by clicking the Accept invite button in "
            "the invitation email."
        ),
    ),
    Activity(
        category="team",
        name="Invite modified",
        key="invite_modified",
        description="User modified the invitation in the Team > Pending invitations tab.",
    ),
    Activity(
        category="team",
        name="Invite canceled",
        key="invite_canceled",
        description=(
            "User canceled the invitation sent to a collaborator by clicking the Delete button "
            "in the Team > Pending invitations tab."
        ),
    ),
    Activity(
        category="team",
        name="Member updated",
        key="member_updated",
        description=(
            "User updated a team member (for example, changing a role) by clicking the Edit "
            "button in the Team > Collaborators tab."
        ),
    ),
    Activity(
        category="team",
        name="Member deleted",
        key="member_deleted",
        description=(
            "User deleted a team member by clicking the Delete button in the Team > "
            "Collaborators tab."
        ),
    ),
    Activity(
        category="team",
        name="Role created",
        key="role_created",
        description=(
            "User added a new custom role by going to the Team > Roles tab and clicking Add new "
            "role."
        ),
    ),
    Activity(
        category="team",
        name="Role updated",
        key="role_updated",
        description=(
            "User updated a custom role by going to the Team > Roles tab and clicking the Edit "
            "button of the custom role from the list of custom roles."
        ),
    ),
    Activity(
        category="team",
        name="Role deleted",
        key="role_deleted",
        description=(
            "User deleted a custom role by going to the Team > Roles tab and clicking the Delete "
            "button."
        ),
    ),
    # Recipe
    Activity(
        category="recipe",
        name="Started",
        key="recipe_started",
        description=(
            "User started a recipe by clicking the Start recipe button from the Recipe details "
            "page."
        ),
    ),
    Activity(
        category="recipe",
        name="Stopped",
        key="recipe_stopped",
        description=(
            "User stopped a recipe by clicking the Stop recipe button from the Recipe details page."
        ),
    ),
    Activity(
        category="recipe",
        name="Created",
        key="recipe_created",
        description=(
            "User created a new recipe by clicking the Create a new recipe button from the "
            "Recipes page."
        ),
    ),
    Activity(
        category="recipe",
        name="Updated",
        key="recipe_updated",
        description=(
            "User modified a recipe by going to the Recipe details page, editing, and saving the "
            "recipe."
        ),
    ),
    Activity(
        category="recipe",
        name="Renamed",
        key="recipe_renamed",
        description="User renamed a recipe by clicking the recipe title, editing, and saving it.",
    ),
    Activity(
        category="recipe",
        name="Moved",
        key="recipe_moved",
        description=(
            "User moved a recipe from one folder to another by dragging and dropping the recipe "
            "from the Recipes page."
        ),
    ),
    Activity(
        category="recipe",
        name="Cloned/Copy",
        key="recipe_cloned",
        description=(
            "User cloned a recipe by clicking ... > Clone recipe in the Recipes page or clicking "
            "the Copy button in the Recipe details page."
        ),
    ),
    Activity(
        category="recipe",
        name="Access scope updated",
        key="recipe_access_scope_updated",
        description=(
            "User updated the access scope (public or private) of a recipe by toggling the Is "
            "this a public recipe setting found in the Recipe details > Settings tab."
        ),
    ),
    Activity(
        category="recipe",
        name="Deleted",
        key="recipe_deleted",
        description=(
            "User deleted a recipe by clicking ... > Delete recipe in the Recipes page or "
            "clicking the Delete button in the Recipe details page."
        ),
    ),
    # Connection
    Activity(
        category="connection",
        name="Connection is created",
        key="connection_created",
        description=(
            "User created a new connection by clicking the Create a new connection button on the "
            "App connections page."
        ),
    ),
    Activity(
        category="connection",
        name="Connection is updated",
        key="connection_updated",
        description=(
            "User updated an existing connection by going to the App connections page or the "
            "Recipe details > Connections tab, disconnecting the connection, and then modifying "
            "its settings."
        ),
    ),
    Activity(
        category="connection",
        name="Connection is connected",
        key="connection_connected",
        description=(
            "User connected an account to or provided credentials for a connection in its "
            "Connection settings page."
        ),
    ),
    Activity(
        category="connection",
        name="Connection is disconnected",
        key="connection_disconnected",
        description=(
            "User disconnected a connection by clicking the Disconnect button in its Connection "
            "settings page."
        ),
    ),
    Activity(
        category="connection",
        name="Connection is deleted",
        key="connection_deleted",
        description=(
            "User deleted a connection by going to App connections, selecting a connection, and "
            "clicking Delete connection."
        ),
    ),
    # Folder
    Activity(
        category="folder",
        name="Folder created",
        key="folder_created",
        description=(
            "User created a new folder by clicking the + Create new folder in the Recipes page."
        ),
    ),
    Activity(
        category="folder",
        name="Folder deleted",
        key="folder_deleted",
        description=(
            "User deleted a folder by clicking the gear button on the folder and selecting "
            "Delete from the menu."
        ),
    ),
    Activity(
        category="folder",
        name="Folder renamed",
        key="folder_renamed",
        description=(
            "User renamed a folder by clicking the gear button on the folder and selecting "
            "Rename from the menu."
        ),
    ),
    Activity(
        category="folder",
        name="Folder moved",
        key="folder_moved",
        description=(
            "User moved a folder by dragging and dropping it to a new destination in the Recipes "
            "page."
        ),
    ),
    # Package
    Activity(
        category="package",
        name="Manifest created",
        key="manifest_created",
        description=(
            "User created a new manifest by going to Tools > Recipe lifecycle management and "
            "clicking Create new manifest."
        ),
    ),
    Activity(
        category="package",
        name="Manifest updated",
        key="manifest_updated",
        description=(
            "User updated an existing manifest by going to Tools > Recipe lifecycle management > "
            "Export tab, selecting a manifest, and clicking the Edit manifest button."
        ),
    ),
    Activity(
        category="package",
        name="Manifest deleted",
        key="manifest_deleted",
        description=(
            "User deleted a manifest by going to Tools > Recipe lifecycle management > Export "
            "tab, selecting a manifest, and clicking ... > Delete manifest."
        ),
    ),
    Activity(
        category="package",
        name="Package exported",
        key="package_exported",
        description=(
            "User exported a package by going to the Recipe lifecycle management page and "
            "creating, building, and packaging the manifest to a .zip file."
        ),
    ),
    Activity(
        category="package",
        name="Package imported",
        key="package_imported",
        description=(
            "User imported a package by going to Tools > Recipe lifecycle management > Imports "
            "tab and clicking Import package to a new folder."
        ),
    ),
    # Connector SDK
    Activity(
        category="connector_sdk",
        name="Custom connector created",
        key="custom_connector_created",
        description=(
            "User created a new connector by going to Tools > Connector SDK and clicking Create "
            "connector."
        ),
    ),
    Activity(
        category="connector_sdk",
        name="Custom connector updated",
        key="custom_connector_updated",
        description=(
            "User updated a connector by going to Tools > Connector SDK, selecting the "
            "connector, and modifying its source code."
        ),
    ),
    Activity(
        category="connector_sdk",
        name="Custom connector released",
        key="custom_connector_released",
        description=(
            "User released a new version of the latest connector changes by going to Tools > "
            "Connector SDK, selecting the connector, clicking Release latest version."
        ),
    ),
    Activity(
        category="connector_sdk",
        name="Custom connector deleted",
        key="custom_connector_deleted",
        description=(
            "User deleted a connector by going to Tools > Connector SDK, selecting the "
            "connector, and clicking Delete."
        ),
    ),
    # Common data model
    Activity(
        category="common_data_model",
        name="Common data model created",
        key="common_data_model_created",
        description=(
            "User created a new data model by going to Tools > Common data models and clicking "
            "Create a new data model."
        ),
    ),
    Activity(
        category="common_data_model",
        name="Common data model updated",
        key="common_data_model_updated",
        description=(
            "User updated a data model by going to Tools > Common data models, selecting the "
            "data model, and modifying it."
        ),
    ),
    Activity(
        category="common_data_model",
        name="Common data model deleted",
        key="common_data_model_deleted",
        description=(
            "User deleted a data model by going to Tools > Common data models, selecting the "
            "data model, and clicking Delete data model."
        ),
    ),
    # Lookup table
    Activity(
        category="lookup_table",
        name="Lookup table created",
        key="lookup_table_created",
        description=(
            "User created a new lookup table by going to Tools > Lookup table and clicking "
            "Create a new lookup table."
        ),
    ),
    Activity(
        category="lookup_table",
        name="Lookup table updated",
        key="lookup_table_updated",
        description=(
            "User updated a lookup table by going to Tools > Lookup table, selecting the lookup "
            "table, and modifying it."
        ),
    ),
    Activity(
        category="lookup_table",
        name="Lookup table deleted",
        key="lookup_table_deleted",
        description=(
            "User deleted a lookup table by going to Tools > Lookup table, selecting the lookup "
            "table, and clicking Delete table."
        ),
    ),
    # Message template
    Activity(
        category="message_template",
        name="Message template created",
        key="message_template_created",
        description=(
            "User created a new message template by going to Tools > Message templates and "
            "clicking Create a new template."
        ),
    ),
    Activity(
        category="message_template",
        name="Message template updated",
        key="message_template_updated",
        description=(
            "User updated a message template by going to Tools > Message templates, selecting "
            "the message template, and modifying it."
        ),
    ),
    Activity(
        category="message_template",
        name="Message template deleted",
        key="message_template_deleted",
        description=(
            "User deleted a message template by going to Tools > Message templates, selecting "
            "the message template, and clicking Delete template."
        ),
    ),
    # Properties
    Activity(
        category="properties",
        name="Property created",
        key="property_created",
        description=(
            "User created a new property by going to Tools > Properties and clicking Add new "
            "property."
        ),
    ),
    Activity(
        category="properties",
        name="Property updated",
        key="property_updated",
        description=(
            "User updated a property by going to Tools > Properties, clicking the Edit button "
            "for the property, and modifying it."
        ),
    ),
    Activity(
        category="properties",
        name="Property deleted",
        key="property_deleted",
        description=(
            "User deleted a property by going to Tools > Properties and clicking the Delete "
            "button for the property."
        ),
    ),
    # Pub/Sub topic
    Activity(
        category="pubsub_topic",
        name="Pub/Sub topic created",
        key="pubsub_topic_created",
        description=(
            "User created a new Pub/Sub topic by going to Tools > Pub/Sub topics and clicking "
            "Create a new topic."
        ),
    ),
    Activity(
        category="pubsub_topic",
        name="Pub/Sub topic updated",
        key="pubsub_topic_updated",
        description=(
            "User updated a Pub/Sub topic by going to Tools > Pub/Sub topics, selecting the "
            "topic, and modifying it."
        ),
    ),
    # API collection
    Activity(
        category="api_collection",
        name="API collection created",
        key="api_collection_created",
        description=(
            "User created an new API collection by going to Tools > API platform > API "
            "Collections tab and clicking Add a new API collection."
        ),
    ),
    Activity(
        category="api_collection",
        name="API collection updated",
        key="api_collection_updated",
        description=(
            "User updated an API collection by going to Tools > API platform > API Collections "
            "tab, clicking ... > Edit collection for the collection, and modifying it."
        ),
    ),
    Activity(
        category="api_collection",
        name="API collection deleted",
        key="api_collection_deleted",
        description=(
            "User deleted an API collection by going to Tools > API platform > API Collections "
            "tab and clicking ... > Delete collection for the collection."
        ),
    ),
    # API endpoint
    Activity(
        category="api_endpoint",
        name="API endpoint created",
        key="api_endpoint_created",
        description=(
            "User created a new API endpoint by going to Tools > API platform > API Collections "
            "tab, selecting an API collection from the list, and clicking Create a new endpoint."
        ),
    ),
    Activity(
        category="api_endpoint",
        name="API endpoint updated",
        key="api_endpoint_updated",
        description=(
            "User updated an API endpoint by going to Tools > API platform > API Collections "
            "tab, selecting an API collection from the list, clicking ... > Edit endpoint for "
            "the endpoint, and modifying it."
        ),
    ),
    Activity(
        category="api_endpoint",
        name="API endpoint deleted",
        key="api_endpoint_deleted",
        description=(
            "User deleted an API endpoint by going to Tools > API platform > API Collections "
            "tab, selecting an API collection from the list, and clicking ... > Delete endpoint "
            "for the endpoint."
        ),
    ),
    Activity(
        category="api_endpoint",
        name="API endpoint activated",
        key="api_endpoint_activated",
        description=(
            "User activated an API endpoint by going to Tools > API platform > API Collections "
            "tab, selecting an API collection from the list, selecting an API endpoint from the "
            "collection, and toggling to activate."
        ),
    ),
    Activity(
        category="api_endpoint",
        name="API endpoint deactivated",
        key="api_endpoint_deactivated",
        description=(
            "User deactivated an API endpoint by going to Tools > API platform > API Collections "
            "tab, selecting an API collection from the list, selecting an API endpoint from the "
            "collection, and toggling to deactivate."
        ),
    ),
    # API customer
    Activity(
        category="api_customer",
        name="API customer created",
        key="api_customer_created",
        description=(
            "User created a new API customer by going to Tools > API platform > Clients tab and "
            "clicking Add new client."
        ),
    ),
    Activity(
        category="api_customer",
        name="API customer updated",
        key="api_customer_updated",
        description=(
            "User updated an API customer by going to Tools > API platform > Clients tab, "
            "clicking ... > Edit client for the customer, and modifying it."
        ),
    ),
    Activity(
        category="api_customer",
        name="API customer deleted",
        key="api_customer_deleted",
        description=(
            "User deleted an API customer by going to Tools > API platform > Clients tab and "
            "clicking ... > Delete client for the customer."
        ),
    ),
    # API access profile
    Activity(
        category="api_access_profile",
        name="API access profile created",
        key="api_access_profile_created",
        description=(
            "User created a new API access profile by going to Tools > API platform > Clients "
            "tab, selecting a client from the list, and clicking Create access profile."
        ),
    ),
    Activity(
        category="api_access_profile",
        name="API access profile updated",
        key="api_access_profile_updated",
        description=(
            "User updated an API access profile by going to Tools > API platform > Clients tab, "
            "selecting a client from the list, clicking ... > Edit access profile for the access "
            "profile, and modifying it."
        ),
    ),
    Activity(
        category="api_access_profile",
        name="API access profile deleted",
        key="api_access_profile_deleted",
        description=(
            "User deleted an API access profile by going to Tools > API platform > Clients tab, "
            "selecting a client from the list, and clicking ... > Delete access profile for the "
            "access profile."
        ),
    ),
    Activity(
        category="api_access_profile",
        name="API access profile token refreshed",
        key="api_access_profile_token_refreshed",
        description=(
            "User refreshed an API token associated with an API access profile by going to Tools "
            "> API platform > Clients tab, selecting a client from the list, and clicking "
            "Refresh."
        ),
    ),
    # API policy
    Activity(
        category="api_policy",
        name="API policy created",
        key="api_policy_created",
        description=(
            "User created a new API policy by going to Tools > API platform > Policies tab and "
            "clicking Create new policy."
        ),
    ),
    Activity(
        category="api_policy",
        name="API policy updated",
        key="api_policy_updated",
        description=(
            "User updated an API policy by going to Tools > API platform > Policies tab, "
            "selecting a policy from the list, clicking ... > Edit policy for the policy, and "
            "modifying it."
        ),
    ),
    Activity(
        category="api_policy",
        name="API policy deleted",
        key="api_policy_deleted",
        description=(
            "User deleted an API policy by going to Tools > API platform > Policies tab, "
            "selecting a client from the list, and clicking ... > Delete policy for the policy."
        ),
    ),
)

_CATEGORY_BY_KEY: dict[str, Category] = {c.key: c for c in CATEGORIES}
_ACTIVITY_BY_KEY: dict[str, Activity] = {a.key: a for a in ACTIVITIES}
_ACTIVITIES_BY_CATEGORY: dict[str, tuple[Activity, ...]] = {
    c.key: tuple(a for a in ACTIVITIES if a.category == c.key) for c in CATEGORIES
}


def category(key: str) -> Category:
    """Return the category with ``key``; raise ``KeyError`` if there is none."""
    try:
        return _CATEGORY_BY_KEY[key]
    except KeyError:
        valid = ", ".join(_CATEGORY_BY_KEY)
        raise KeyError(f"unknown category {key!r}; valid keys: {valid}") from None


def activity(key: str) -> Activity:
    """Return the activity with ``key``; raise ``KeyError`` if there is none."""
    try:
        return _ACTIVITY_BY_KEY[key]
    except KeyError:
        raise KeyError(
            f"unknown activity {key!r}; see ACTIVITIES for the {len(_ACTIVITY_BY_KEY)} valid keys"
        ) from None


def activities_in(category_key: str) -> tuple[Activity, ...]:
    """Return the activities of a category in reference order.

    Raises ``KeyError`` if the category is unknown.
    """
    category(category_key)
    return _ACTIVITIES_BY_CATEGORY[category_key]


def is_known(category_key: str, activity_key: str) -> bool:
    """Tell whether ``activity_key`` exists and belongs to ``category_key``."""
    found = _ACTIVITY_BY_KEY.get(activity_key)
    return found is not None and found.category == category_key


def as_json_records() -> list[dict[str, str]]:
    """Return the catalog as JSON-ready records, one per activity.

    Each record has ``category`` (the category display name),
    ``category_key``, ``name``, ``key`` and ``description``.
    """
    return [
        {
            "category": _CATEGORY_BY_KEY[a.category].name,
            "category_key": a.category,
            "name": a.name,
            "key": a.key,
            "description": a.description,
        }
        for a in ACTIVITIES
    ]
