"""Per-account stream settings: streaming on/off, data inclusion, destinations."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from auditstream.config.destinations import Destination
from auditstream.schemas import catalog


def _positions(indexes: list[int]) -> str:
    """``0, 3`` (list positions, counted from 0)."""
    return ", ".join(str(i) for i in indexes)


class AccountSettings(BaseModel):
    """What one account streams and where. ``include_categories`` None means every category;
    ``include_activities`` non-empty means only those activities; ``exclude_activities`` always
    wins."""

    model_config = ConfigDict(extra="forbid")

    account_id: str = Field(min_length=1, max_length=200)
    streaming_enabled: bool = True
    include_categories: list[str] | None = None
    include_activities: list[str] = Field(default_factory=list)
    exclude_activities: list[str] = Field(default_factory=list)
    redact: list[Literal["actor_email", "ip_address", "user_agent"]] = Field(
        default_factory=list,
        description="Personal data removed from every event before it leaves (set to null).",
    )
    destinations: list[Destination] = Field(default_factory=list)

    @field_validator("include_categories")
    @classmethod
    def _known_categories(cls, v: list[str] | None) -> list[str] | None:
        if v is None:
            return v
        known = {c.key for c in catalog.CATEGORIES}
        unknown = [i for i, c in enumerate(v) if c not in known]
        if unknown:
            # Positions, not values: validation errors never echo input.
            raise ValueError(
                f"unknown categories at positions {_positions(unknown)}; valid: {sorted(known)}"
            )
        return v

    @field_validator("include_activities", "exclude_activities")
    @classmethod
    def _known_activities(cls, v: list[str]) -> list[str]:
        known = {a.key for a in catalog.ACTIVITIES}
        unknown = [i for i, a in enumerate(v) if a not in known]
        if unknown:
            raise ValueError(
                f"unknown activities at positions {_positions(unknown)}; see `auditstream "
                "catalog` for valid keys"
            )
        return v

    @model_validator(mode="after")
    def _unique_destinations(self) -> AccountSettings:
        ids = [d.id for d in self.destinations]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"destination ids must be unique, repeated: {dupes}")
        return self


class SettingsFile(BaseModel):
    """The YAML file ``auditstream settings apply -f`` and ``demo --config`` read."""

    model_config = ConfigDict(extra="forbid")

    accounts: list[AccountSettings]

    @model_validator(mode="after")
    def _unique(self) -> SettingsFile:
        accounts = [a.account_id for a in self.accounts]
        dest = [d.id for a in self.accounts for d in a.destinations]
        for what, ids in (("account ids", accounts), ("destination ids", dest)):
            dupes = sorted({i for i in ids if ids.count(i) > 1})
            if dupes:
                raise ValueError(f"{what} must be unique across the file, repeated: {dupes}")
        return self
