"""A secret that looks sealed. Sealed secrets are stored as ``enc:v1:<token>``, and a value that
already began with that marker was stored as it was, unsealed: reading the settings back then
tried to open it and failed, so no process could read the account's settings any more (each
logged that the secret keys were misconfigured) and the API answered the create with 404. New
secrets may not begin with the marker, and whatever a secret holds is sealed."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from auditstream.api import ops
from auditstream.api.errors import Invalid
from auditstream.config.destinations import STORED
from auditstream.config.fields import secret_fields
from auditstream.config.secrets import PREFIX, SecretBox
from auditstream.config.stream import AccountSettings
from auditstream.config.wire import decode_settings, encode_settings
from auditstream.sinks.registry import KINDS
from tests.integration.test_attack_api_input import SAMPLES, SECRET_SAMPLES

LOOKS_SEALED = PREFIX + "gAAAAABtenantChosenValue"
HOOK: dict[str, Any] = {
    "id": "hook",
    "type": "webhook",
    "url": "https://siem.example.com/in",
    "secret": "signing-Secret-31",
}


@pytest.mark.parametrize(
    "change",
    [{"secret": LOOKS_SEALED}, {"headers": {"Authorization": LOOKS_SEALED}}],
)
def test_a_new_secret_may_not_look_sealed(change: dict[str, Any]) -> None:
    with pytest.raises(Invalid) as refused:
        ops.parse_destination({**HOOK, **change})
    (loc, msg, _kind), *_ = refused.value.errors
    assert loc[:2] == ["body", next(iter(change))]
    assert LOOKS_SEALED not in msg


VALID_SECRETS = {
    ("azure_blob", "account_key"): "a2V5",
    ("azure_blob", "connection_string"): "AccountName=acct;AccountKey=a2V5",
}


def _secret_cases() -> list[tuple[str, str]]:
    return sorted((kind, name) for kind, k in KINDS.items() for name in secret_fields(k.model))


@pytest.mark.parametrize(("kind", "field"), _secret_cases())
def test_every_secret_field_of_every_kind_is_covered(kind: str, field: str) -> None:
    assert kind in SAMPLES, f"add a {kind} destination to SAMPLES"
    body = {**SAMPLES[kind], **SECRET_SAMPLES.get((kind, field), {}), "id": "d"}
    body.setdefault(field, VALID_SECRETS.get((kind, field)))
    KINDS[kind].model.model_validate(body)
    with pytest.raises(ValidationError) as refused:
        KINDS[kind].model.model_validate({**body, field: LOOKS_SEALED})
    assert any(e["loc"][:1] == (field,) for e in refused.value.errors()), refused.value


def test_whatever_a_stored_secret_holds_is_sealed_and_read_back() -> None:
    box = SecretBox([SecretBox.generate_key()])
    settings = AccountSettings.model_validate(
        {"account_id": "acme", "destinations": [{**HOOK, "secret": LOOKS_SEALED}]},
        context=STORED,
    )
    again = decode_settings(encode_settings(settings, box), box)
    assert again.destinations[0].secret.get_secret_value() == LOOKS_SEALED  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "destination",
    [
        {"id": "files", "type": "local", "path": "files", "prefix": PREFIX + "abc"},
        {"id": "files", "type": "local", "path": PREFIX + "abc"},
        {**HOOK, "headers": {"X-Note": "x"}, "url": "https://siem.example.com/" + PREFIX},
    ],
)
def test_text_that_looks_sealed_outside_secrets_is_read_back_as_it_was(
    destination: dict[str, Any],
) -> None:
    """Reading settings back opened every value that began with the marker, secret or not: a
    prefix or a path like that made the account's settings unreadable everywhere."""
    box = SecretBox([SecretBox.generate_key()])
    settings = AccountSettings.model_validate({"account_id": "acme", "destinations": [destination]})
    again = decode_settings(encode_settings(settings, box), box)
    assert again == settings
