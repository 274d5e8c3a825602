"""A resolver without DNS, so tests of the address policy never send a query."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from auditstream.config.address_policy import Resolver


def fake_resolver(names: Mapping[str, Sequence[str]]) -> Resolver:
    """A resolver that knows only ``names`` (host → addresses); any other name does not
    resolve, so a test never sends a DNS query."""

    def resolve(host: str, _port: int) -> list[str]:
        try:
            return list(names[host.lower()])
        except KeyError:
            raise OSError(f"{host}: unknown name") from None

    return resolve
