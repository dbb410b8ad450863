"""Response shapes of the secrets API: names, versions and metadata. No class here carries a value."""

from __future__ import annotations

from datetime import datetime

import attrs

from corral.core.secrets.model import SecretScope
from corral.core.secrets.service import SecretInfo

__all__ = ["SecretOut", "SecretVersionOut", "SecretWrittenOut", "secret_out", "written_out"]


@attrs.frozen
class SecretVersionOut:
    """One kept version of a secret (never its value)."""

    version: int
    created_at: datetime
    deleted_at: datetime | None
    destroyed: bool


@attrs.frozen
class SecretOut:
    """A secret's metadata and kept versions (never its value)."""

    name: str
    version: int
    scope: SecretScope
    created_at: datetime
    updated_at: datetime
    versions: list[SecretVersionOut]


@attrs.frozen
class SecretWrittenOut:
    """The version a write created (never its value)."""

    name: str
    version: int
    scope: SecretScope
    created_at: datetime


def secret_out(info: SecretInfo) -> SecretOut:
    return SecretOut(
        name=info.name, version=info.version, scope=info.scope, created_at=info.created_at,
        updated_at=info.updated_at,
        versions=[SecretVersionOut(version=v.version, created_at=v.created_at, deleted_at=v.deleted_at,
                                   destroyed=v.destroyed) for v in info.versions],
    )


def written_out(info: SecretInfo) -> SecretWrittenOut:
    current = next((v for v in info.versions if v.version == info.version), None)
    return SecretWrittenOut(name=info.name, version=info.version, scope=info.scope,
                            created_at=current.created_at if current else info.updated_at)
