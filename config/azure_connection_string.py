"""Azure Storage connection strings, read strictly, and every endpoint they can make a client use.

The Azure SDK splits on ``;`` then on the first ``=``, upper-cases keys and lets a repeated key
win silently; it builds the blob endpoint from ``BlobEndpoint`` or from ``AccountName`` and
``EndpointSuffix``. A lenient reader that disagrees with it on any of that (a key with a trailing
space, a key given twice) checks one host while the SDK connects to another. So this reader
refuses what is ambiguous, and :func:`endpoints` yields *every* URL the string can lead to.
"""

from __future__ import annotations

import re

_BLOB_KEYS = ("blobendpoint", "blobsecondaryendpoint")
_OTHER_SERVICE_KEYS = (
    "queueendpoint",
    "queuesecondaryendpoint",
    "tableendpoint",
    "tablesecondaryendpoint",
    "fileendpoint",
    "filesecondaryendpoint",
    "dfsendpoint",
    "dfssecondaryendpoint",
)
_KNOWN_KEYS = frozenset(
    {
        *_BLOB_KEYS,
        *_OTHER_SERVICE_KEYS,
        "defaultendpointsprotocol",
        "accountname",
        "accountkey",
        "sharedaccesssignature",
        "endpointsuffix",
        "usedevelopmentstorage",
        "developmentstorageproxyuri",
    }
)
_ACCOUNT_NAME = re.compile(r"^[a-z0-9]{3,24}$")
_SUFFIX = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$")
EMULATOR_ENDPOINT = "http://127.0.0.1:10000"


def parse(text: str) -> dict[str, str]:
    """``key -> value`` with lower-cased keys.

    Raises ``ValueError`` (naming the problem, never echoing a value) for an empty string, an
    item without ``=``, a key with surrounding whitespace, an unknown or repeated key, an account
    name that is not 3-24 lower-case letters and digits, or an endpoint suffix that is not a
    plain DNS name.
    """
    parts: dict[str, str] = {}
    for item in text.strip().rstrip(";").split(";"):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError("every item must be Key=Value, separated by ';'")
        if key != key.strip() or key.strip() != key.strip().strip("\ufeff"):
            raise ValueError("a key has spaces around it: remove them")
        lowered = key.lower()
        if lowered not in _KNOWN_KEYS:
            raise ValueError(f"unknown key {key[:40]!r}")
        if lowered in parts:
            raise ValueError(f"key {key} is given twice")
        parts[lowered] = value
    name = parts.get("accountname")
    if name is not None and not _ACCOUNT_NAME.match(name):
        raise ValueError("AccountName must be 3-24 lower-case letters and digits")
    suffix = parts.get("endpointsuffix")
    if suffix is not None and not _SUFFIX.match(suffix.lower()):
        raise ValueError("EndpointSuffix must be a DNS name such as core.windows.net")
    if not (name or parts.get("blobendpoint") or _development(parts)):
        raise ValueError("set AccountName (or BlobEndpoint)")
    return parts


def _development(parts: dict[str, str]) -> bool:
    return parts.get("usedevelopmentstorage", "").strip().lower() == "true"


def endpoints(parts: dict[str, str]) -> list[str]:
    """Every URL a blob client built from ``parts`` may connect to: its blob endpoints (primary
    and secondary), else the one derived from account name and suffix, and the emulator's for
    development storage. Other services' endpoints are never used by a blob client."""
    out = [parts[k] for k in _BLOB_KEYS if parts.get(k)]
    if _development(parts):
        out.append(parts.get("developmentstorageproxyuri") or EMULATOR_ENDPOINT)
    name = parts.get("accountname")
    if name and not parts.get("blobendpoint"):
        protocol = parts.get("defaultendpointsprotocol", "https").strip().lower() or "https"
        suffix = parts.get("endpointsuffix", "core.windows.net")
        out.append(f"{protocol}://{name}.blob.{suffix}")
    return out


def account_name(parts: dict[str, str]) -> str | None:
    return parts.get("accountname")
