"""Vendor naming rules, from each vendor's documentation, as tables."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from auditstream.config import vendor_names as vn

MARKER = "zq-marker-71c"


def _case(rule: Callable[[str], str | None], value: str, ok: bool) -> None:
    problem = rule(value)
    if ok:
        assert problem is None, value
    else:
        assert problem is not None, value
        assert value not in problem or len(value) < 3  # the rule, never the name
        assert MARKER not in problem


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("acme-audit", True),
        ("abc", True),
        ("a.b.c", True),
        ("1-bucket-2", True),
        ("a" * 63, True),
        ("ab", False),
        ("a" * 64, False),
        ("Invalid_Bucket..Name", False),
        ("UpperCase", False),
        ("under_score", False),
        ("two..dots", False),
        ("dot.-hyphen", False),
        ("-start", False),
        ("end-", False),
        (".start", False),
        ("192.168.5.4", False),
        ("xn--bucket", False),
        ("sthree-bucket", False),
        ("amzn-s3-demo-bucket", False),
        ("bucket-s3alias", False),
        ("bucket--ol-s3", False),
        ("bucket.mrap", False),
        ("bucket--x-s3", False),
        ("bucket--table-s3", False),
        ("../../etc", False),
        ("eu/../x@host", False),
        ("a/b", False),
        ("a b", False),
        ("a\u00e9b", False),
        (MARKER + "_", False),
    ],
)
def test_s3_bucket(value: str, ok: bool) -> None:
    _case(vn.s3_bucket, value, ok)


@pytest.mark.parametrize(
    ("value", "custom", "ok"),
    [
        ("us-east-1", False, True),
        ("eu-west-3", False, True),
        ("ap-southeast-2", False, True),
        ("us-gov-west-1", False, True),
        ("cn-northwest-1", False, True),
        ("us-isob-east-1", False, True),
        ("eusc-de-east-1", False, True),
        ("auto", False, False),
        ("auto", True, True),
        ("us-west-004", True, True),
        ("eu/../x@host", False, False),
        ("eu/../x@host", True, False),
        ("us-east-1.evil.example.com", False, False),
        ("us-east-1.evil.example.com", True, False),
        ("us-east-1/", True, False),
        ("US-EAST-1", False, False),
        ("", True, False),
        ("-x", True, False),
        ("a" * 64, True, False),
    ],
)
def test_region(value: str, custom: bool, ok: bool) -> None:
    _case(lambda v: vn.aws_region(v, custom_endpoint=custom), value, ok)


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("arn:aws:iam::123456789012:role/auditstream-writer", True),
        ("arn:aws:iam::123456789012:role/path/to/name+=,.@_-", True),
        ("arn:aws-us-gov:iam::123456789012:role/x", True),
        ("arn:aws-cn:iam::123456789012:role/x", True),
        ("arn:aws:iam::1:role/x", False),
        ("arn:aws:iam::123456789012:user/x", False),
        ("arn:aws:sts::123456789012:assumed-role/x/y", False),
        ("arn:aws:iam::210987654321:role/", False),
        ("arn:aws:iam::123456789012:role/x y", False),
        ("arn:aws:iam::123456789012:role/" + "a" * 65, False),
        ("role/x", False),
    ],
)
def test_role_arn(value: str, ok: bool) -> None:
    _case(vn.role_arn, value, ok)


@pytest.mark.parametrize(
    ("value", "custom", "ok"),
    [
        ("1234abcd-12ab-34cd-56ef-1234567890ab", False, True),
        ("mrk-1234abcd12ab34cd56ef1234567890ab", False, True),
        ("alias/audit", False, True),
        ("alias/aws/s3", False, True),
        (
            "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            False,
            True,
        ),
        ("arn:aws:kms:us-east-1:123456789012:alias/audit", False, True),
        ("audit", False, False),
        ("audit", True, True),
        ("alias/a b", False, False),
        ("alias/a\nb", True, False),
        ("", True, False),
    ],
)
def test_kms_key_id(value: str, custom: bool, ok: bool) -> None:
    _case(lambda v: vn.kms_key_id(v, custom_endpoint=custom), value, ok)


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("auditstream:acme:5f2b", True),
        ("ab", True),
        ("a", False),
        ("a b", False),
        ("x" * 1225, False),
    ],
)
def test_external_id(value: str, ok: bool) -> None:
    _case(vn.external_id, value, ok)


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("acme-audit", True),
        ("acme_audit", True),
        ("audit.example.com", True),
        ("a" * 63, True),
        (".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 30]), True),
        ("a" * 64, False),
        ("ab", False),
        (".".join(["a" * 64, "b"]), False),
        ("a" * 223, False),
        ("a..b", False),
        ("Invalid_Bucket..Name", False),
        ("UPPER", False),
        ("-start", False),
        ("end_", False),
        ("192.168.5.4", False),
        ("goog-audit", False),
        ("my-google-bucket", False),
        ("my-g00gle-bucket", False),
        ("../../etc", False),
        ("eu/../x@host", False),
    ],
)
def test_gcs_bucket(value: str, ok: bool) -> None:
    _case(vn.gcs_bucket, value, ok)


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("my-project-123", True),
        ("example.com:my-project", True),
        ("123456789012", True),
        ("short", False),
        ("1starts-with-digit", False),
        ("ends-with-hyphen-", False),
        ("a" * 31, False),
        ("My-Project", False),
        ("../../etc", False),
        ("eu/../x@host", False),
    ],
)
def test_gcs_project(value: str, ok: bool) -> None:
    _case(vn.gcs_project, value, ok)


@pytest.mark.parametrize(
    ("value", "ok"),
    [("test", True), ("my_Project.1", True), ("eu/../x@host", False), ("-x", False), ("", False)],
)
def test_an_emulators_project(value: str, ok: bool) -> None:
    _case(lambda v: vn.gcs_project(v, custom_endpoint=True), value, ok)


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("projects/my-project/locations/europe-west1/keyRings/ring/cryptoKeys/key", True),
        ("projects/example.com:my-project/locations/us/keyRings/r/cryptoKeys/k", True),
        ("projects/my-project/locations/global/keyRings/r/cryptoKeys/k/cryptoKeyVersions/3", True),
        ("projects/my-project/locations/global/keyRings/r", False),
        ("projects/../locations/global/keyRings/r/cryptoKeys/k", False),
        ("zzkey", False),
        ("projects/my-project/locations/global/keyRings/r/cryptoKeys/k/../x", False),
    ],
)
def test_gcs_kms_key_name(value: str, ok: bool) -> None:
    _case(vn.gcs_kms_key_name, value, ok)


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("audit", True),
        ("audit-logs-2", True),
        ("a1b", True),
        ("a" * 63, True),
        ("$root", True),
        ("$web", True),
        ("$logs", False),
        ("ab", False),
        ("a" * 64, False),
        ("Audit", False),
        ("-audit", False),
        ("audit-", False),
        ("audit--logs", False),
        ("audit_logs", False),
        ("audit.logs", False),
        ("../../etc", False),
        ("eu/../x@host", False),
    ],
)
def test_azure_container(value: str, ok: bool) -> None:
    _case(vn.azure_container, value, ok)


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("acct", True),
        ("devstoreaccount1", True),
        ("a" * 24, True),
        ("ab", False),
        ("a" * 25, False),
        ("Acct", False),
        ("acct-1", False),
        ("127.0.0.1:10000", False),
    ],
)
def test_azure_account(value: str, ok: bool) -> None:
    _case(vn.azure_account, value, ok)


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("scope1", True),
        ("my-scope", True),
        ("ab", False),
        ("-scope", False),
        ("scope/x", False),
    ],
)
def test_azure_encryption_scope(value: str, ok: bool) -> None:
    _case(vn.azure_encryption_scope, value, ok)
