"""Standard Webhooks signing: vectors checked by hand and by the ``standardwebhooks`` package,
the destination's ``signing`` option and its secret rules, and the sink's headers."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from auditstream.config.destinations import WebhookDestination
from auditstream.config.errors import ConfigError
from auditstream.pipeline.log import Record
from auditstream.sinks.batch import Batch
from auditstream.sinks.errors import PermanentError, TransientError
from auditstream.sinks.health import SUSPEND_AT_ONCE
from auditstream.sinks.signature import (
    IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
    STANDARD_ID_HEADER,
    STANDARD_SIGNATURE_HEADER,
    STANDARD_TIMESTAMP_HEADER,
    TIMESTAMP_HEADER,
    standard_key,
    standard_sign,
    verify,
)
from auditstream.sinks.webhook import WebhookSink, classify_response

# The example secret of the Standard Webhooks specification's test vectors.
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
OLD_KEY = bytes(range(32))
NEW_KEY = bytes(range(100, 132))
OLD_SECRET = "whsec_" + base64.b64encode(OLD_KEY).decode()
NEW_SECRET = "whsec_" + base64.b64encode(NEW_KEY).decode()


def by_hand(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    message = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, message, hashlib.sha256).digest()).decode()


# -- secrets ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SecretCase:
    secret: str
    key: bytes | None  # None: refused
    why: str = ""


SECRET_CASES = [
    SecretCase(SPEC_SECRET, base64.b64decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), "spec example"),
    SecretCase(OLD_SECRET, OLD_KEY, "32 bytes"),
    SecretCase("whsec_" + base64.b64encode(b"k" * 64).decode(), b"k" * 64, "64 bytes"),
    SecretCase("whsec_" + base64.b64encode(b"k" * 23).decode(), None, "too short"),
    SecretCase("whsec_" + base64.b64encode(b"k" * 65).decode(), None, "too long"),
    SecretCase(base64.b64encode(OLD_KEY).decode(), None, "no prefix"),
    SecretCase("whsec-" + base64.b64encode(OLD_KEY).decode(), None, "wrong prefix"),
    SecretCase("whsec_not*base64!at-all-but-long-enough-here", None, "not base64"),
    SecretCase("whsec_" + base64.b64encode(OLD_KEY).decode()[:-1], None, "bad padding"),
    SecretCase("whsec_ÄÖÜ" + base64.b64encode(OLD_KEY).decode(), None, "not ASCII"),
    SecretCase("", None, "empty"),
]


@pytest.mark.parametrize("case", SECRET_CASES, ids=[c.why for c in SECRET_CASES])
def test_standard_key(case: SecretCase) -> None:
    if case.key is None:
        with pytest.raises(ValueError, match="whsec_") as info:
            standard_key(case.secret)
        if case.secret:
            assert case.secret not in str(info.value)
    else:
        assert standard_key(case.secret) == case.key


@pytest.mark.parametrize("case", SECRET_CASES, ids=[c.why for c in SECRET_CASES])
def test_destination_accepts_the_same_secrets(case: SecretCase) -> None:
    settings = {"id": "d", "url": "https://r.example.test/x", "signing": "standard_webhooks"}
    if case.key is None:
        with pytest.raises(ValidationError) as info:
            WebhookDestination.model_validate({**settings, "secret": case.secret})
        message = str(info.value)
        if case.secret:  # an empty secret is refused by the rule of every webhook
            assert "python -c" in message  # says how to make one
            assert case.secret not in message
    else:
        destination = WebhookDestination.model_validate({**settings, "secret": case.secret})
        assert destination.signing == "standard_webhooks"


# -- signatures ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignCase:
    keys: tuple[bytes, ...]
    msg_id: str
    timestamp: int
    body: bytes
    expected: str


SIGN_CASES = [
    # The specification's published vector.
    SignCase(
        (standard_key(SPEC_SECRET),),
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        1614265330,
        b'{"test": 2432232314}',
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    ),
    SignCase(
        (OLD_KEY,),
        "d:0:5-9",
        1_795_000_000,
        b"[]",
        by_hand(OLD_KEY, "d:0:5-9", 1_795_000_000, b"[]"),
    ),
    SignCase(
        (OLD_KEY, NEW_KEY),
        "d:1:0-0:replay:r1",
        1_795_000_001,
        b'{"event_id":"\xc3\xa9"}\n',
        by_hand(OLD_KEY, "d:1:0-0:replay:r1", 1_795_000_001, b'{"event_id":"\xc3\xa9"}\n')
        + " "
        + by_hand(NEW_KEY, "d:1:0-0:replay:r1", 1_795_000_001, b'{"event_id":"\xc3\xa9"}\n'),
    ),
]


@pytest.mark.parametrize("case", SIGN_CASES)
def test_standard_sign(case: SignCase) -> None:
    assert standard_sign(case.keys, case.msg_id, case.timestamp, case.body) == case.expected


@pytest.mark.parametrize("case", SIGN_CASES)
def test_the_package_verifies_each_key(case: SignCase) -> None:
    now = int(time.time())
    signature = standard_sign(case.keys, case.msg_id, now, case.body)
    headers = {
        STANDARD_ID_HEADER: case.msg_id,
        STANDARD_TIMESTAMP_HEADER: str(now),
        STANDARD_SIGNATURE_HEADER: signature,
    }
    for key in case.keys:
        Webhook(key).verify(case.body, headers, json_parse=False)
    with pytest.raises(WebhookVerificationError):
        Webhook(b"x" * 32).verify(case.body, headers, json_parse=False)
    with pytest.raises(WebhookVerificationError):
        Webhook(case.keys[0]).verify(case.body + b" ", headers, json_parse=False)
    tampered = {**headers, STANDARD_ID_HEADER: case.msg_id + "x"}
    with pytest.raises(WebhookVerificationError):
        Webhook(case.keys[0]).verify(case.body, tampered, json_parse=False)


# -- the destination's option -------------------------------------------------------------------


@dataclass(frozen=True)
class OptionCase:
    settings: dict[str, Any]
    error: str | None  # a piece of the refusal, None: accepted
    why: str


OPTION_CASES = [
    OptionCase({"secret": "s3cret-value"}, None, "default auditstream, any secret"),
    OptionCase({"secret": "s3cret-value", "next_secret": "n3xt-value"}, None, "rotation"),
    OptionCase({"secret": "s3cret-value", "next_secret": "  "}, "next_secret", "blank next"),
    OptionCase({"secret": OLD_SECRET, "signing": "standard_webhooks"}, None, "whsec"),
    OptionCase(
        {"secret": OLD_SECRET, "next_secret": NEW_SECRET, "signing": "standard_webhooks"},
        None,
        "whsec rotation",
    ),
    OptionCase(
        {"secret": "s3cret-value", "signing": "standard_webhooks"}, "secret is not", "plain"
    ),
    OptionCase(
        {"secret": OLD_SECRET, "next_secret": "n3xt-value", "signing": "standard_webhooks"},
        "next_secret is not",
        "plain next",
    ),
    OptionCase({"secret": OLD_SECRET, "signing": "svix"}, "signing", "unknown scheme"),
]


@pytest.mark.parametrize("case", OPTION_CASES, ids=[c.why for c in OPTION_CASES])
def test_signing_option(case: OptionCase) -> None:
    settings = {"id": "d", "url": "https://r.example.test/x", **case.settings}
    if case.error is None:
        WebhookDestination.model_validate(settings)
        return
    with pytest.raises(ValidationError, match=case.error) as info:
        WebhookDestination.model_validate(settings)
    for value in ("s3cret-value", "n3xt-value"):
        assert value not in str(info.value)


def test_stored_settings_are_read_back_without_the_secret_rule() -> None:
    settings = {"id": "d", "url": "https://r.example.test/x", "secret": "s3cret-value"}
    stored = WebhookDestination.model_validate(
        {**settings, "signing": "standard_webhooks"}, context={"stored": True}
    )
    with pytest.raises(ConfigError) as info:
        WebhookSink(
            stored,
            client=httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(200))),
        )
    assert "whsec_" in str(info.value)
    assert "s3cret-value" not in str(info.value)


# -- the sink's headers -------------------------------------------------------------------------

SIGNED_AT = 1_795_000_000


def make_batch(replay_id: str | None = None) -> Batch:
    topic = "auditstream.dest.siem-1"
    return Batch(
        destination_id="siem-1",
        account_id="acct-1",
        topic=topic,
        partition=2,
        records=[Record(topic, 2, 40 + i, b"acct-1", b"") for i in range(3)],
        events=[],
        replay_id=replay_id,
    )


def make_sink(**settings: Any) -> WebhookSink:
    destination = WebhookDestination.model_validate(
        {"id": "siem-1", "url": "https://r.example.test/x", **settings}
    )
    client = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(200)))
    return WebhookSink(destination, client=client, clock=lambda: SIGNED_AT + 0.5)


@dataclass(frozen=True)
class HeaderCase:
    settings: dict[str, Any]
    replay_id: str | None
    keys: tuple[bytes, ...]
    why: str


HEADER_CASES = [
    HeaderCase({"secret": OLD_SECRET}, None, (OLD_KEY,), "one secret"),
    HeaderCase({"secret": OLD_SECRET, "next_secret": NEW_SECRET}, None, (OLD_KEY, NEW_KEY), "two"),
    HeaderCase({"secret": OLD_SECRET}, "r-7", (OLD_KEY,), "replay"),
]


@pytest.mark.parametrize("case", HEADER_CASES, ids=[c.why for c in HEADER_CASES])
def test_standard_webhooks_headers(case: HeaderCase) -> None:
    sink = make_sink(signing="standard_webhooks", **case.settings)
    body = b'[{"event_id":"e-1"}]'

    headers = sink.build_headers(make_batch(case.replay_id), body, SIGNED_AT)

    key = "siem-1:2:40-42" + ("" if case.replay_id is None else f":replay:{case.replay_id}")
    assert headers[IDEMPOTENCY_HEADER] == key
    assert headers[STANDARD_ID_HEADER] == key
    assert headers[STANDARD_TIMESTAMP_HEADER] == str(SIGNED_AT)
    assert headers[STANDARD_SIGNATURE_HEADER] == " ".join(
        by_hand(k, key, SIGNED_AT, body) for k in case.keys
    )
    assert TIMESTAMP_HEADER not in headers
    assert SIGNATURE_HEADER not in headers


def test_retries_keep_the_delivery_id() -> None:
    sink = make_sink(signing="standard_webhooks", secret=OLD_SECRET)
    first = sink.build_headers(make_batch(), b"[]", SIGNED_AT)
    again = sink.build_headers(make_batch(), b"[]", SIGNED_AT + 30)
    replay = sink.build_headers(make_batch("r-1"), b"[]", SIGNED_AT + 60)
    assert first[STANDARD_ID_HEADER] == again[STANDARD_ID_HEADER]
    assert replay[STANDARD_ID_HEADER] != first[STANDARD_ID_HEADER]


def test_auditstream_signing_signs_with_both_secrets_during_rotation() -> None:
    sink = make_sink(secret="old-s3cret", next_secret="new-s3cret")
    body = b"[]"
    headers = sink.build_headers(make_batch(), body, SIGNED_AT)
    assert STANDARD_SIGNATURE_HEADER not in headers
    for secret in (b"old-s3cret", b"new-s3cret"):
        assert verify(
            secret, headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER], body, now=SIGNED_AT
        )
    assert headers[SIGNATURE_HEADER].count("v1=") == 2


@pytest.mark.parametrize(
    "name", ["webhook-id", "Webhook-Timestamp", "WEBHOOK-SIGNATURE", "Idempotency-Key"]
)
def test_signature_headers_cannot_be_overridden(name: str) -> None:
    with pytest.raises(ConfigError, match="set by the webhook sink"):
        make_sink(signing="standard_webhooks", secret=OLD_SECRET, headers={name: "x"})


# -- receiver answers (already classified by the sink; checked, not re-implemented) -------------


@dataclass(frozen=True)
class AnswerCase:
    status: int
    error: type[Exception]
    retry_after: float | None = None
    headers: tuple[tuple[str, str], ...] = ()


ANSWER_CASES = [
    AnswerCase(410, PermanentError),
    AnswerCase(429, TransientError, 12.0, (("Retry-After", "12"),)),
    AnswerCase(502, TransientError),
    AnswerCase(503, TransientError, 3.0, (("Retry-After", "3"),)),
    AnswerCase(504, TransientError),
]


@pytest.mark.parametrize("case", ANSWER_CASES, ids=[str(c.status) for c in ANSWER_CASES])
def test_receiver_answers(case: AnswerCase) -> None:
    error = classify_response(case.status, dict(case.headers), SIGNED_AT)
    assert type(error) is case.error
    if isinstance(error, TransientError):
        assert error.retry_after == case.retry_after
    if case.status == 410:
        assert error is not None
        assert error.cause in SUSPEND_AT_ONCE
