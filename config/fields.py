"""What a destination setting *is*, declared by its type, so security checks find fields by type.

Every text-bearing field of a destination model carries exactly one :class:`Role` in its type:

- :data:`Address` — a URL the platform's workers connect to (webhook URL, S3 endpoint, ...):
  the address policy refuses private and metadata hosts, and audit events show only its origin.
- :data:`RelativePath` — a path below a root the platform owns (a local directory, an object-key
  prefix): it must stay below that root.
- :data:`WorkerFile` — a file on the sink workers' own disk (a CA bundle): only an operator may
  allow tenants to name one.
- :data:`Text` — text that is neither of those (a bucket name, a region, a role ARN).
- ``SecretStr`` (pydantic's own type) — a secret: sealed at rest, masked on read, redacted in
  audit events. A secret that also *holds* addresses (an Azure connection string, a GCS
  service-account JSON) is a :data:`AddressBearingSecret`; its model yields those addresses
  through ``nested_addresses()`` so the same policy applies to them.

A ``str`` field without a role is a programming error: :func:`unclassified_fields` finds it and
the destination registry refuses such a model when it loads (fail closed, not open).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, SecretStr


class RoleKind(StrEnum):
    ADDRESS = "address"
    RELATIVE_PATH = "relative_path"
    WORKER_FILE = "worker_file"
    TEXT = "text"
    ADDRESS_BEARING_SECRET = "address_bearing_secret"  # noqa: S105  (a role name)


@dataclass(frozen=True, slots=True)
class Role:
    """Metadata marking what a field is (see the module docstring)."""

    kind: RoleKind


Address = Annotated[str, Role(RoleKind.ADDRESS)]
RelativePath = Annotated[str, Role(RoleKind.RELATIVE_PATH)]
WorkerFile = Annotated[str, Role(RoleKind.WORKER_FILE)]
Text = Annotated[str, Role(RoleKind.TEXT)]
AddressBearingSecret = Annotated[SecretStr, Role(RoleKind.ADDRESS_BEARING_SECRET)]


def _leaves(annotation: Any) -> list[Any]:
    """The member types of ``X | None`` (or ``X`` itself), ``None`` dropped."""
    if get_origin(annotation) in (Union, UnionType):
        return [a for a in get_args(annotation) if a is not type(None)]
    return [annotation]


def _role_of(annotation: Any, metadata: list[Any]) -> RoleKind | None:
    for item in metadata:
        if isinstance(item, Role):
            return item.kind
    for leaf in _leaves(annotation):
        if get_origin(leaf) is Annotated:
            for item in get_args(leaf)[1:]:
                if isinstance(item, Role):
                    return item.kind
    return None


def field_role(model: type[BaseModel], name: str) -> RoleKind | None:
    """The role of ``model``'s field ``name``, or None when it carries none."""
    info = model.model_fields[name]
    return _role_of(info.annotation, list(info.metadata))


def fields_with_role(model: type[BaseModel], kind: RoleKind) -> tuple[str, ...]:
    """The names of ``model``'s fields of role ``kind``, in declaration order."""
    return tuple(n for n in model.model_fields if field_role(model, n) is kind)


def is_secret(annotation: Any) -> bool:
    """``SecretStr`` or ``SecretStr | None``, roles included (not a container of secrets)."""
    for leaf in _leaves(annotation):
        base = get_args(leaf)[0] if get_origin(leaf) is Annotated else leaf
        if base is SecretStr:
            return True
    return False


def secret_fields(model: type[BaseModel]) -> frozenset[str]:
    """The names of ``model``'s secret fields (a plain or address-bearing ``SecretStr``)."""
    return frozenset(n for n, f in model.model_fields.items() if is_secret(f.annotation))


def _holds_text(annotation: Any) -> bool:
    """Whether values of ``annotation`` can be free text (``str`` anywhere inside it, except
    in a ``Literal`` of fixed choices or as a mapping's keys)."""
    origin = get_origin(annotation)
    if annotation is str:
        return True
    if origin is Literal:
        return False
    if origin is Annotated:
        return _holds_text(get_args(annotation)[0])
    if origin in (Union, UnionType, list, tuple, set, frozenset):
        return any(_holds_text(a) for a in get_args(annotation) if a is not Ellipsis)
    if origin is dict:
        return _holds_text(get_args(annotation)[1])
    return False


def unclassified_fields(model: type[BaseModel]) -> list[str]:
    """Fields of ``model`` (and of the models it nests) that can hold free text but declare no
    role and are not secrets. Must be empty for every destination model."""
    out: list[str] = []
    for name, info in model.model_fields.items():
        annotation = info.annotation
        if _role_of(annotation, list(info.metadata)) is not None or is_secret(annotation):
            continue
        if get_origin(annotation) is dict and is_secret(get_args(annotation)[1]):
            continue  # a mapping of secrets (webhook headers)
        for leaf in _leaves(annotation):
            if isinstance(leaf, type) and issubclass(leaf, BaseModel):
                out.extend(f"{name}.{inner}" for inner in unclassified_fields(leaf))
        if _holds_text(annotation):
            out.append(name)
    return out


def holds_secrets(value: Any) -> bool:
    """Whether ``value`` (settings: a model, or mappings and lists of them) holds a secret
    that is set, found by type (``SecretStr``) wherever it is nested."""
    if isinstance(value, SecretStr):
        return bool(value.get_secret_value())
    if isinstance(value, BaseModel):
        return any(holds_secrets(getattr(value, name)) for name in type(value).model_fields)
    if isinstance(value, dict):
        return any(holds_secrets(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(holds_secrets(v) for v in value)
    return False


def secret_values(value: Any) -> list[str]:
    """The plain text of every secret (``SecretStr``) in ``value`` (settings: a model, or
    mappings and lists of them), found by type wherever it is nested."""
    if isinstance(value, SecretStr):
        return [value.get_secret_value()]
    if isinstance(value, BaseModel):
        return [t for name in type(value).model_fields for t in secret_values(getattr(value, name))]
    if isinstance(value, dict):
        return [t for v in value.values() for t in secret_values(v)]
    if isinstance(value, list | tuple):
        return [t for v in value for t in secret_values(v)]
    return []
