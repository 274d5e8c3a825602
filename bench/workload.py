"""The simulated activity and the stream settings the benchmarks feed through the stream."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from auditstream.config.stream import AccountSettings
from auditstream.producers.simulator import Simulator, SimulatorConfig

SEED = 20261127
SIM_START = datetime(2026, 11, 27, tzinfo=UTC)


def simulator(accounts: Sequence[str], seed: int = SEED) -> Simulator:
    """The simulator's realistic mix of activity over ``accounts``, the same on every run
    (fixed seed and clock)."""
    return Simulator(SimulatorConfig(accounts=list(accounts), seed=seed, start=SIM_START))


def local_destination(dest_id: str, path: str, **extra: Any) -> dict[str, Any]:
    """A local-directory destination at ``path`` (under the worker's local root)."""
    return {"id": dest_id, "type": "local", "path": path, **extra}


def account_settings(account_id: str, destination: dict[str, Any]) -> AccountSettings:
    """An account streaming every event to ``destination`` with the default batch limits."""
    return AccountSettings.model_validate({"account_id": account_id, "destinations": [destination]})
