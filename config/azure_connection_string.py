"""Azure Storage connection strings, read strictly, and every endpoint they can make a client use.

How azure-storage-blob reads one (``_shared/base_client.parse_connection_str``): it strips
trailing ``;`` (not whitespace), splits on ``;`` then on the first ``=``, upper-cases each key
(Python's ``str.upper``, which maps some non-ASCII letters onto ASCII ones) and lets a repeated
key win silently. ``UseDevelopmentStorage`` exactly ``true`` (case matters) means the emulator
at ``http://127.0.0.1:10000/devstoreaccount1`` and nothing else counts. Otherwise the blob
endpoint is ``BlobEndpoint`` (a value without a scheme gets ``https://``), else
``{DefaultEndpointsProtocol}://{AccountName}.blob.{EndpointSuffix}`` when all three are given,
else ``https://{AccountName}.blob.{EndpointSuffix or core.windows.net}``; the secondary is
``BlobSecondaryEndpoint`` or ``{AccountName}-secondary.blob.{EndpointSuffix}``.

A lenient reader that disagrees with it on any of that checks one host while the SDK connects to
another. So :func:`parse` refuses everything the SDK could read differently from us (spaces
around keys or values, non-ASCII or repeated keys, endpoints that are not plain http(s) URLs, an
account name or suffix that could carry a host or a port), and :func:`endpoints` yields *every*
URL the string can lead a blob client to.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

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
    }
)
_KEY = re.compile(r"^[A-Za-z]+$")
_ACCOUNT_NAME = re.compile(r"^[a-z0-9]{3,24}$")
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_SUFFIX = re.compile(rf"^{_LABEL}(?:\.{_LABEL})+$")
_PROTOCOLS = ("http", "https")
EMULATOR_ENDPOINT = "http://127.0.0.1:10000/devstoreaccount1"
DEFAULT_SUFFIX = "core.windows.net"


def parse(text: str) -> dict[str, str]:
    """``key -> value`` with lower-cased keys.

    Raises ``ValueError`` (naming the problem and the key, never a value) for an empty string,
    an item without ``=``, a key that is not plain ASCII letters, an unknown or repeated key,
    a value with surrounding whitespace or control characters, a ``UseDevelopmentStorage``
    other than ``true`` or ``false``, a ``DefaultEndpointsProtocol`` other than http or https,
    an account name that is not 3-24 lower-case letters and digits, an endpoint suffix that is
    not a plain DNS name, an endpoint that is not an http(s) URL with a host (and without
    credentials, query or fragment), or a secondary endpoint without its primary.
    """
    if text != text.strip():
        raise ValueError("remove the spaces or line breaks around the connection string")
    parts: dict[str, str] = {}
    for item in text.rstrip(";").split(";"):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError("every item must be Key=Value, separated by ';'")
        if not _KEY.fullmatch(key):
            raise ValueError(
                "a key is not plain letters (spaces, accents or other characters around or in "
                "it): type the key names again"
            )
        lowered = key.lower()
        if lowered not in _KNOWN_KEYS:
            raise ValueError("it holds an unknown key: keep only the keys Azure gives")
        if lowered in parts:
            raise ValueError(f"key {_canonical(lowered)} is given twice: keep one")
        if value != value.strip() or any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise ValueError(
                f"the value of {_canonical(lowered)} has spaces around it or control "
                "characters: remove them"
            )
        parts[lowered] = value
    _check_values(parts)
    return parts


def _canonical(key: str) -> str:
    names = {
        "blobendpoint": "BlobEndpoint",
        "blobsecondaryendpoint": "BlobSecondaryEndpoint",
        "defaultendpointsprotocol": "DefaultEndpointsProtocol",
        "accountname": "AccountName",
        "accountkey": "AccountKey",
        "sharedaccesssignature": "SharedAccessSignature",
        "endpointsuffix": "EndpointSuffix",
        "usedevelopmentstorage": "UseDevelopmentStorage",
    }
    return names.get(key, "an endpoint key")


def _check_values(parts: dict[str, str]) -> None:
    development = parts.get("usedevelopmentstorage")
    if development is not None and development not in ("true", "false"):
        raise ValueError("UseDevelopmentStorage must be true or false (lower case)")
    protocol = parts.get("defaultendpointsprotocol")
    if protocol is not None and protocol.lower() not in _PROTOCOLS:
        raise ValueError("DefaultEndpointsProtocol must be https or http")
    name = parts.get("accountname")
    if name is not None and not _ACCOUNT_NAME.fullmatch(name):
        raise ValueError("AccountName must be 3-24 lower-case letters and digits")
    suffix = parts.get("endpointsuffix")
    if suffix is not None and not _SUFFIX.fullmatch(suffix):
        raise ValueError("EndpointSuffix must be a lower-case DNS name such as core.windows.net")
    for key in (*_BLOB_KEYS, *_OTHER_SERVICE_KEYS):
        if key in parts and not _plain_url(parts[key]):
            raise ValueError(
                f"{_canonical(key)} must be an http(s) URL with an ASCII host (xn-- form) and "
                "without credentials, port 0, query or fragment, e.g. "
                "https://<account>.blob.core.windows.net"
            )
    if "blobsecondaryendpoint" in parts and "blobendpoint" not in parts:
        raise ValueError("BlobSecondaryEndpoint needs BlobEndpoint")
    if not (name or parts.get("blobendpoint") or _development(parts)):
        raise ValueError("set AccountName (or BlobEndpoint)")


def _plain_url(value: str) -> bool:
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018  (raises ValueError for a port that is not a number)
    except ValueError:
        return False
    return (
        parts.scheme in _PROTOCOLS
        and bool(parts.hostname)
        and (parts.hostname or "").isascii()  # resolvers and clients encode others differently
        and parts.port != 0
        and "@" not in parts.netloc
        and not parts.query
        and not parts.fragment
        and "\\" not in value
    )


def _development(parts: dict[str, str]) -> bool:
    return parts.get("usedevelopmentstorage") == "true"


def endpoints(parts: dict[str, str]) -> list[str]:
    """Every URL a blob client built from ``parts`` may connect to: the emulator's for
    development storage, its blob endpoints (primary and secondary), and the one derived from
    account name and suffix. Other services' endpoints are never used by a blob client, nor is
    a derived secondary (the sinks read and write the primary location only; the connection
    time check covers any other host a client would contact)."""
    out: list[str] = []
    if _development(parts):
        out.append(EMULATOR_ENDPOINT)
    out.extend(parts[k] for k in _BLOB_KEYS if parts.get(k))
    name = parts.get("accountname")
    if name and not parts.get("blobendpoint"):
        suffix = parts.get("endpointsuffix") or DEFAULT_SUFFIX
        protocol = (parts.get("defaultendpointsprotocol") or "https").lower()
        if "endpointsuffix" not in parts:
            protocol = "https"  # the SDK uses the protocol only together with the suffix
        out.append(f"{protocol}://{name}.blob.{suffix}")
    return list(dict.fromkeys(out))


def account_name(parts: dict[str, str]) -> str | None:
    return parts.get("accountname")
