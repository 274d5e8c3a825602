"""Names of new resources, by resource type: recipes read like integrations, endpoints like
HTTP routes, invitations are e-mail addresses of the account's domain."""

from __future__ import annotations

import random
from collections.abc import Callable

from auditstream.producers.simulator import vocabulary as words

__all__ = ["NAMERS", "resource_name"]

Namer = Callable[[random.Random, str], str]
"""(random sequence, account domain) -> a name."""


def _one_of(choices: tuple[str, ...]) -> Namer:
    return lambda rng, _domain: rng.choice(choices)


def _recipe(rng: random.Random, _domain: str) -> str:
    c = rng.choice
    return f"{c(words.RECIPE_VERBS)} {c(words.OBJECTS)} from {c(words.APPS)} to {c(words.APPS)}"


def _connection(rng: random.Random, _domain: str) -> str:
    return f"{rng.choice(words.APPS)} {rng.choice(words.ENVIRONMENTS).lower()}"


def _manifest(rng: random.Random, _domain: str) -> str:
    return f"{rng.choice(words.FOLDER_NAMES)} release {rng.randint(1, 60)}"


def _custom_connector(rng: random.Random, _domain: str) -> str:
    return f"{rng.choice(words.CONNECTOR_NAMES)} connector"


def _api_endpoint(rng: random.Random, _domain: str) -> str:
    obj = rng.choice(words.OBJECTS).replace(" ", "_")
    return f"{rng.choice(words.HTTP_METHODS)} /{obj}" + ("/{id}" if rng.random() < 0.5 else "")


def _api_access_profile(rng: random.Random, _domain: str) -> str:
    return f"{rng.choice(words.API_CUSTOMERS)} {rng.choice(words.ENVIRONMENTS).lower()}"


def _api_policy(rng: random.Random, _domain: str) -> str:
    return f"{rng.choice(words.API_POLICY_TIERS)} policy"


def _invitation(rng: random.Random, domain: str) -> str:
    first, last = rng.choice(words.FIRST_NAMES), rng.choice(words.LAST_NAMES)
    return f"{first}.{last}@{domain}".lower().replace(" ", "").replace("-", "")


NAMERS: dict[str, Namer] = {
    "recipe": _recipe,
    "connection": _connection,
    "folder": _one_of(words.FOLDER_NAMES),
    "manifest": _manifest,
    "custom_connector": _custom_connector,
    "common_data_model": _one_of(words.DATA_MODELS),
    "lookup_table": _one_of(words.LOOKUP_TABLES),
    "message_template": _one_of(words.MESSAGE_TEMPLATES),
    "property": _one_of(words.PROPERTIES),
    "pubsub_topic": _one_of(words.TOPICS),
    "api_collection": _one_of(words.API_COLLECTIONS),
    "api_endpoint": _api_endpoint,
    "api_customer": _one_of(words.API_CUSTOMERS),
    "api_access_profile": _api_access_profile,
    "api_policy": _api_policy,
    "invitation": _invitation,
}
"""How each resource type is named; a type without an entry gets a numbered generic name."""


def resource_name(rng: random.Random, rtype: str, domain: str) -> str:
    """A name for a new resource of type ``rtype`` in the account of ``domain``."""
    namer = NAMERS.get(rtype)
    if namer is None:
        return f"{rtype.replace('_', ' ')} {rng.randint(1, 999)}"
    return namer(rng, domain)
