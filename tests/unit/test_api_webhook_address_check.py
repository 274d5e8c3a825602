"""The webhook sink applies the address policy before each POST (delivery time)."""

from __future__ import annotations

import httpx
import pytest

from auditstream.config.address_policy import AddressPolicy, parse_networks
from auditstream.config.destinations import WebhookDestination
from auditstream.pipeline.log import Record
from auditstream.sinks.batch import Batch
from auditstream.sinks.errors import PermanentError, TransientError
from auditstream.sinks.webhook import WebhookSink
from tests.factories import make_event
from tests.fake_resolver import fake_resolver

NAMES = {
    "siem.example.com": ["93.184.216.34"],
    "rebound.example.com": ["169.254.169.254"],
    "loop.example.com": ["127.0.0.1"],
}


def _sink(url: str, policy: AddressPolicy | None, sent: list[httpx.Request]) -> WebhookSink:
    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200)

    destination = WebhookDestination.model_validate({"id": "h", "url": url, "secret": "s"})
    client = httpx.Client(transport=httpx.MockTransport(handler))
    return WebhookSink(destination, client=client, address_policy=policy)


def _batch() -> Batch:
    batch = Batch("h", "acme", "auditstream.dest.h", 0)
    batch.records.append(Record("auditstream.dest.h", 0, 0, b"acme", b""))
    batch.events.append(make_event())
    return batch


POLICY = AddressPolicy(resolver=fake_resolver(NAMES))


def test_public_address_is_posted() -> None:
    sent: list[httpx.Request] = []
    _sink("https://siem.example.com/in", POLICY, sent).write(_batch())
    assert len(sent) == 1


@pytest.mark.parametrize(
    "url",
    [
        "https://rebound.example.com/in",  # a name now resolving to the metadata service
        "https://loop.example.com/in",
        "https://127.0.0.1/in",
        "https://[::1]/in",
        "https://10.0.0.1/in",
    ],
)
def test_refused_address_is_not_posted(url: str) -> None:
    sent: list[httpx.Request] = []
    with pytest.raises(PermanentError) as caught:
        _sink(url, POLICY, sent).write(_batch())
    assert caught.value.cause == "address_refused"
    assert sent == []


def test_unresolvable_host_is_transient() -> None:
    sent: list[httpx.Request] = []
    with pytest.raises(TransientError) as caught:
        _sink("https://gone.example.com/in", POLICY, sent).write(_batch())
    assert caught.value.cause == "unreachable"
    assert sent == []


def test_allowed_network_and_no_policy() -> None:
    sent: list[httpx.Request] = []
    allowed = AddressPolicy(
        allowed_networks=parse_networks(["127.0.0.1/32"]), resolver=fake_resolver(NAMES)
    )
    _sink("http://127.0.0.1:9/in", allowed, sent).write(_batch())
    _sink("http://127.0.0.1:9/in", None, sent).write(_batch())  # no policy: as before
    assert len(sent) == 2
