"""The words the simulator draws from: names of companies, people, apps and resources, user
agents, documentation address ranges and failure reasons.

Changing a table changes the generated sequence for every seed.
"""

# Accounts and people

COMPANIES = (
    "Acme", "Globex", "Initech", "Umbrella", "Hooli", "Soylent", "Vandelay", "Wonka",
    "Cyberdyne", "Tyrell", "Oscorp", "Aperture", "Monarch", "Stark", "Wayne", "Dunder Mifflin",
    "Pied Piper", "Massive Dynamic", "Gringotts", "Nakatomi", "Prestige", "Sirius", "Zorg",
    "Bluth", "Krusty", "Duff", "Gekko", "Ollivander", "Wernham Hogg", "Los Pollos",
)  # fmt: skip
TEAM_SUFFIXES = ("Inc", "Corp", "Group", "Labs", "Holdings", "Ltd", "Co", "Systems")
FIRST_NAMES = (
    "Ada", "Alan", "Grace", "Linus", "Margaret", "Ken", "Barbara", "Dennis", "Frances", "Edsger",
    "Radia", "Tim", "Hedy", "Donald", "Katherine", "John", "Sophie", "Guido", "Anita", "Bjarne",
    "Joan", "Niklaus", "Shafi", "Leslie", "Adele", "Yukihiro", "Carol", "Rasmus", "Lynn",
    "Whitfield", "Priya", "Mateo", "Aisha", "Kenji", "Olga", "Tariq", "Ingrid", "Chen", "Amara",
    "Diego",
)  # fmt: skip
LAST_NAMES = (
    "Lovelace", "Turing", "Hopper", "Torvalds", "Hamilton", "Thompson", "Liskov", "Ritchie",
    "Allen", "Dijkstra", "Perlman", "Berners-Lee", "Lamarr", "Knuth", "Johnson", "McCarthy",
    "Wilson", "van Rossum", "Borg", "Stroustrup", "Clarke", "Wirth", "Goldwasser", "Lamport",
    "Goldberg", "Matsumoto", "Shaw", "Lerdorf", "Conway", "Diffie", "Raman", "Silva", "Okafor",
    "Tanaka", "Petrova", "Haddad", "Nilsson", "Wei", "Mensah", "Ortega",
)  # fmt: skip
CUSTOM_ROLES = (
    "Integration Developer", "Recipe Operator", "Auditor", "Analyst", "Support Engineer",
    "Release Manager", "Read Only", "Data Steward", "API Product Owner",
)  # fmt: skip
PRIVILEGE_SETS = (
    "recipes:view",
    "recipes:view,recipes:run",
    "recipes:edit,connections:view",
    "recipes:edit,connections:edit,folders:edit",
    "recipes:edit,connections:edit,lookup_tables:edit,properties:edit",
    "activity_audit:view",
    "api_platform:edit,recipes:view",
    "recipe_lifecycle:export,recipe_lifecycle:import,recipes:view",
)
# Resource names

APPS = (
    "Salesforce", "NetSuite", "Zendesk", "Jira", "Slack", "Workday", "ServiceNow", "HubSpot",
    "Snowflake", "Google Sheets", "SAP", "Marketo", "Shopify", "Stripe", "Box", "Okta",
    "Microsoft Teams", "Coupa", "Greenhouse", "BambooHR", "PostgreSQL", "Amazon S3",
)  # fmt: skip
OBJECTS = (
    "accounts", "contacts", "invoices", "orders", "tickets", "leads", "employees",
    "opportunities", "payments", "purchase orders", "candidates", "shipments", "incidents",
)  # fmt: skip
RECIPE_VERBS = ("Sync new", "Create", "Update", "Upsert", "Archive", "Enrich", "Route")
ENVIRONMENTS = ("Production", "Sandbox", "Staging", "Dev")
FOLDER_NAMES = (
    "Sales Ops", "Finance", "HR Onboarding", "Support", "Marketing", "Data Pipelines",
    "IT Automation", "Shared", "Archive", "Customer Success", "Procurement", "Security",
    "Experiments", "Billing", "Partners", "Legacy",
)  # fmt: skip
LOOKUP_TABLES = (
    "Country codes", "Region mapping", "Product SKUs", "Cost centers", "Currency codes",
    "Owner routing", "Holiday calendar", "Status mapping", "Department codes",
)  # fmt: skip
MESSAGE_TEMPLATES = (
    "Welcome email", "Invoice reminder", "Incident alert", "Weekly digest", "Approval request",
    "Escalation notice", "Onboarding checklist", "Payment receipt",
)  # fmt: skip
PROPERTIES = (
    "SALESFORCE_INSTANCE_URL", "DEFAULT_CURRENCY", "ALERT_CHANNEL", "NETSUITE_ACCOUNT_ID",
    "RETRY_LIMIT", "BATCH_SIZE", "SUPPORT_EMAIL", "FISCAL_YEAR_START", "SYNC_WINDOW_HOURS",
)  # fmt: skip
PROPERTY_VALUES = ("true", "false", "30", "100", "500", "USD", "EUR", "#alerts", "#ops-oncall")
TOPICS = (
    "orders.created", "orders.shipped", "customers.updated", "invoices.paid",
    "tickets.escalated", "employees.hired", "inventory.low",
)  # fmt: skip
API_COLLECTIONS = (
    "Orders API", "Customer 360", "HR Self-service", "Partner Portal", "Inventory API",
    "Billing API",
)  # fmt: skip
HTTP_METHODS = ("GET", "GET", "GET", "POST", "PUT", "PATCH", "DELETE")
API_CUSTOMERS = (
    "Mobile app", "Partner portal", "Data warehouse", "Internal tools", "Reseller network",
    "Customer web app",
)  # fmt: skip
RATE_LIMITS = ("60/min", "100/min", "500/min", "1000/min", "10000/day", "unlimited")
DATA_MODELS = ("Customer", "Order", "Invoice", "Employee", "Product", "Ticket", "Address")
CONNECTOR_NAMES = (
    "Internal billing", "Legacy ERP", "Warehouse scanner", "Partner gateway", "Pricing engine",
    "Feature flags", "Ticket router",
)  # fmt: skip

API_POLICY_TIERS = ("Standard", "Partner", "Internal", "Trial")

# Requests: browsers for people, clients for API keys, documentation address ranges (RFC 5737)

BROWSERS = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/123.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.51",
)
API_CLIENTS = (
    "curl/8.6.0",
    "python-requests/2.31.0",
    "Go-http-client/2.0",
    "terraform-provider/1.4.2",
    "PostmanRuntime/7.37.3",
)
IP_PREFIXES = ("192.0.2", "198.51.100", "203.0.113")

# Settings values and failure reasons

STREAM_CONTENTS = ("user_activity", "recipe_activity", "connection_activity", "api_activity")

# (reason, percent of the failed logins of that login method)
PASSWORD_FAILURES = (
    ("invalid_password", 75),
    ("two_factor_failed", 15),
    ("account_locked", 10),
)
SSO_FAILURES = (
    ("sso_assertion_invalid", 85),
    ("account_locked", 15),
)
CONNECT_FAILURES = ("invalid_credentials", "oauth_consent_denied", "connection_timeout")
IMPORT_FAILURES = ("invalid_package", "missing_dependency", "folder_conflict")
SYSTEM_STOP_REASONS = ("error_threshold_exceeded", "connection_invalid", "plan_limit_reached")
