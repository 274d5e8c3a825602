"""The names each vendor accepts (pure): bucket, container and account names, regions, project
ids, role and key identifiers.

A name the vendor would refuse is refused when it is saved, with its rule, instead of on the
first delivery. Some of these names become part of a host name or a request path (an S3
bucket or region, an Azure account name, a GCS bucket), so a name that only the vendor's rules
allow also cannot move a request to another host or path. Each function returns ``None`` for a
valid name, else what the rule is (never the name itself: messages must not echo input).
"""

from __future__ import annotations

import ipaddress
import re

_LABEL = r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?"


def _is_ipv4(value: str) -> bool:
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        return False
    return True


# -- Amazon S3 ---------------------------------------------------------------------------------

_S3_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_S3_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_S3_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
S3_BUCKET_RULE = (
    "bucket must be 3-63 lower-case letters, digits, dots and hyphens, begin and end with a "
    "letter or digit, have no dot next to another dot or a hyphen, not look like an IP "
    "address, not start with "
    "xn--, sthree- or amzn-s3-demo- and not end with -s3alias, --ol-s3, .mrap, --x-s3 or "
    "--table-s3 (Amazon S3 bucket naming rules)"
)


def s3_bucket(value: str) -> str | None:
    """Amazon S3 general purpose bucket naming rules."""
    if (
        not _S3_BUCKET.fullmatch(value)
        or ".." in value
        or ".-" in value
        or "-." in value
        or _is_ipv4(value)
        or value.startswith(_S3_RESERVED_PREFIXES)
        or value.endswith(_S3_RESERVED_SUFFIXES)
    ):
        return S3_BUCKET_RULE
    return None


_AWS_REGION = re.compile(r"^[a-z]{2,4}(?:-[a-z]+)+-[0-9]{1,2}$")
_ENDPOINT_REGION = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
AWS_REGION_RULE = "region must be an AWS region code such as eu-west-1 or us-gov-west-1"
ENDPOINT_REGION_RULE = (
    "region must be 1-63 lower-case letters, digits and hyphens, beginning and ending with a "
    "letter or digit (e.g. us-east-1, or auto for stores that want it)"
)


def aws_region(value: str, *, custom_endpoint: bool) -> str | None:
    """An AWS region code; with an S3-compatible ``custom_endpoint``, any name botocore takes
    as a region (such stores name theirs freely: ``auto``, ``us-west-004``)."""
    if custom_endpoint:
        return None if _ENDPOINT_REGION.fullmatch(value) else ENDPOINT_REGION_RULE
    return None if _AWS_REGION.fullmatch(value) else AWS_REGION_RULE


_ROLE_ARN = re.compile(
    r"^arn:aws(?:-[a-z]+)*:iam::[0-9]{12}:role/(?:[A-Za-z0-9+=,.@_-]+/)*[A-Za-z0-9+=,.@_-]{1,64}$"
)
ROLE_ARN_RULE = (
    "role_arn must be an IAM role ARN such as arn:aws:iam::123456789012:role/auditstream-writer"
)


def role_arn(value: str) -> str | None:
    """An IAM role ARN (any partition, optional role path)."""
    return None if len(value) <= 2048 and _ROLE_ARN.fullmatch(value) else ROLE_ARN_RULE


_KEY_ID = r"(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})"
_ALIAS = r"alias/[A-Za-z0-9/_-]{1,250}"
_KMS_KEY = re.compile(
    rf"^(?:{_KEY_ID}|{_ALIAS}|arn:aws(?:-[a-z]+)*:kms:[a-z0-9-]+:[0-9]{{12}}:(?:key/{_KEY_ID}|{_ALIAS}))$"
)
_OTHER_KMS_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9/_:.+=@-]{0,2047}$")
KMS_KEY_RULE = "kms_key_id must be a KMS key id, key ARN, alias (alias/name) or alias ARN"
OTHER_KMS_KEY_RULE = (
    "kms_key_id must be 1-2048 letters, digits and / _ : . + = @ -, beginning with a letter or "
    "digit"
)


def kms_key_id(value: str, *, custom_endpoint: bool) -> str | None:
    """An AWS KMS key reference; with an S3-compatible ``custom_endpoint``, that store's own key
    name."""
    if custom_endpoint:
        return None if _OTHER_KMS_KEY.fullmatch(value) else OTHER_KMS_KEY_RULE
    return None if _KMS_KEY.fullmatch(value) else KMS_KEY_RULE


_EXTERNAL_ID = re.compile(r"^[A-Za-z0-9+=,.@:/_-]{2,1224}$")
EXTERNAL_ID_RULE = "external_id must be 2-1224 letters, digits and + = , . @ : / _ -"


def external_id(value: str) -> str | None:
    """An STS ``ExternalId``."""
    return None if _EXTERNAL_ID.fullmatch(value) else EXTERNAL_ID_RULE


# -- Google Cloud Storage ----------------------------------------------------------------------

_GCS_BUCKET = re.compile(r"^[a-z0-9][a-z0-9._-]*[a-z0-9]$")
_GOOGLE_LIKE = re.compile(r"g[o0]{2}g[l1]e")
GCS_BUCKET_RULE = (
    "bucket must be 3-63 lower-case letters, digits, hyphens, underscores and dots (up to 222 "
    "with dots, at most 63 between two dots), begin and end with a letter or digit, not look "
    "like an IP address, not start with goog and not contain google (Cloud Storage bucket "
    "naming rules)"
)


def gcs_bucket(value: str) -> str | None:
    """Cloud Storage bucket naming rules."""
    components = value.split(".")
    limit = 222 if "." in value else 63
    if (
        not 3 <= len(value) <= limit
        or not _GCS_BUCKET.fullmatch(value)
        or any(not c or len(c) > 63 for c in components)
        or _is_ipv4(value)
        or value.startswith("goog")
        or _GOOGLE_LIKE.search(value)
    ):
        return GCS_BUCKET_RULE
    return None


_PROJECT = rf"(?:(?:{_LABEL}\.)*{_LABEL}:)?[a-z][a-z0-9-]{{4,28}}[a-z0-9]|[0-9]{{1,20}}"
_GCS_PROJECT = re.compile(rf"^(?:{_PROJECT})$")
GCS_PROJECT_RULE = (
    "project must be a project id (6-30 lower-case letters, digits and hyphens, starting with a "
    "letter, not ending with a hyphen; domain-scoped ids as example.com:my-project) or a "
    "project number"
)


_OTHER_PROJECT = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._:-]{0,98}[A-Za-z0-9])?$")
OTHER_PROJECT_RULE = (
    "project must be 1-100 letters, digits and . _ : -, beginning and ending with a letter or digit"
)


def gcs_project(value: str, *, custom_endpoint: bool = False) -> str | None:
    """A Google Cloud project id (optionally domain-scoped) or project number; with a
    ``custom_endpoint`` (an emulator), any plain name."""
    if custom_endpoint:
        return None if _OTHER_PROJECT.fullmatch(value) else OTHER_PROJECT_RULE
    return None if _GCS_PROJECT.fullmatch(value) else GCS_PROJECT_RULE


_GCS_KMS_KEY = re.compile(
    rf"^projects/(?:{_PROJECT})/locations/[a-z0-9-]{{1,63}}/keyRings/[A-Za-z0-9_-]{{1,63}}"
    r"/cryptoKeys/[A-Za-z0-9_-]{1,63}(?:/cryptoKeyVersions/[0-9]{1,20})?$"
)
GCS_KMS_KEY_RULE = (
    "kms_key_name must be projects/<project>/locations/<location>/keyRings/<ring>/cryptoKeys/<key>"
)


def gcs_kms_key_name(value: str) -> str | None:
    """A Cloud KMS key resource name."""
    return None if _GCS_KMS_KEY.fullmatch(value) else GCS_KMS_KEY_RULE


# -- Azure Blob Storage ------------------------------------------------------------------------

_AZURE_CONTAINER = re.compile(r"^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}$")
_AZURE_SPECIAL_CONTAINERS = frozenset({"$root", "$web"})
AZURE_CONTAINER_RULE = (
    "container must be 3-63 lower-case letters, digits and hyphens, begin with a letter or "
    "digit, with every hyphen between letters or digits (or $root or $web)"
)


def azure_container(value: str) -> str | None:
    """Azure Blob Storage container naming rules."""
    if value in _AZURE_SPECIAL_CONTAINERS or _AZURE_CONTAINER.fullmatch(value):
        return None
    return AZURE_CONTAINER_RULE


_AZURE_ACCOUNT = re.compile(r"^[a-z0-9]{3,24}$")
AZURE_ACCOUNT_RULE = "account_name must be 3-24 lower-case letters and digits"


def azure_account(value: str) -> str | None:
    """An Azure storage account name."""
    return None if _AZURE_ACCOUNT.fullmatch(value) else AZURE_ACCOUNT_RULE


_AZURE_SCOPE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{1,61}[A-Za-z0-9])$")
AZURE_SCOPE_RULE = (
    "encryption_scope must be 3-63 letters, digits and hyphens, beginning and ending with a "
    "letter or digit"
)


def azure_encryption_scope(value: str) -> str | None:
    """An Azure Storage encryption scope name."""
    return None if _AZURE_SCOPE.fullmatch(value) else AZURE_SCOPE_RULE
