"""Secrets, their versions, and the wrapped data keys that protect them."""

from __future__ import annotations

import enum
import re
import uuid
from datetime import datetime

import attrs

from corral.core.errors import CorralError, InvalidInput

__all__ = [
    "DEFAULT_MAX_VERSIONS",
    "MAX_VALUE_BYTES",
    "Secret",
    "SecretScope",
    "SecretUndecryptable",
    "SecretVersion",
    "WrappedKey",
    "associated_data",
    "check_name",
    "check_value",
]

DEFAULT_MAX_VERSIONS = 10
MAX_VALUE_BYTES = 64 * 1024
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


class SecretScope(enum.StrEnum):
    """Who may consume a secret's plaintext: one kind of reader, or all of them."""

    PIPELINE = "pipeline"
    AGENT = "agent"
    DEPLOY = "deploy"
    ALL = "all"

    def allows(self, purpose: SecretScope) -> bool:
        """A reader acting for ``purpose`` (pipeline/agent/deploy) may read a secret of this scope."""
        return self is SecretScope.ALL or self is purpose

    @classmethod
    def parse(cls, raw: object, field: str = "scope") -> SecretScope:
        """The scope named by ``raw``; InvalidInput naming ``field`` otherwise."""
        try:
            return cls(str(raw))
        except ValueError:
            allowed = ", ".join(s.value for s in cls)
            raise InvalidInput(f"{field} must be one of {allowed}", field=field) from None


class SecretUndecryptable(CorralError):
    """A stored secret failed authentication: tampered, moved to another row, or the master key is wrong.

    The message names the secret and version, never any key or plaintext.
    """

    title = "Secret cannot be decrypted"


def check_name(name: object, field: str = "name") -> str:
    """A secret name: letters, digits and underscores, not starting with a digit, at most 128 chars."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidInput(
            f"{field} must be 1-128 letters, digits or underscores and not start with a digit (like API_TOKEN)",
            field=field,
        )
    return name


def check_value(value: object, field: str = "value") -> bytes:
    """A secret value: a non-empty string of at most 64 KiB (UTF-8)."""
    if not isinstance(value, str) or value == "":
        raise InvalidInput(f"{field} must be a non-empty string", field=field)
    data = value.encode()
    if len(data) > MAX_VALUE_BYTES:
        raise InvalidInput(f"{field} must be at most {MAX_VALUE_BYTES} bytes", field=field)
    return data


def associated_data(project_id: uuid.UUID | None, name: str, version: int) -> bytes:
    """The AEAD associated data binding a ciphertext to its row: (project or global, name, version).

    A ciphertext (or wrapped key) copied onto any other secret, project or
    version no longer authenticates.
    """
    owner = project_id.hex if project_id is not None else "global"
    return f"corral-secret/v1\x00{owner}\x00{name}\x00{version}".encode()


@attrs.frozen
class WrappedKey:
    """A data key encrypted under the master key identified by ``key_id``."""

    key_id: str
    blob: bytes = attrs.field(repr=False)


@attrs.frozen
class Secret:
    """A named secret of a project (``project_id``) or global (None); values live in its versions."""

    id: uuid.UUID
    project_id: uuid.UUID | None
    name: str
    scope: SecretScope
    current_version: int
    created_at: datetime
    updated_at: datetime
    created_by: uuid.UUID | None = None
    max_versions: int = DEFAULT_MAX_VERSIONS


@attrs.frozen
class SecretVersion:
    """One version of a secret's value: ciphertext under its own data key, which is wrapped by the master key.

    Soft-deleted versions keep their ciphertext (undelete restores them);
    destroyed versions have ``ciphertext`` and ``wrapped_key`` removed for good.
    """

    secret_id: uuid.UUID
    version: int
    created_at: datetime
    ciphertext: bytes | None = attrs.field(default=None, repr=False)
    wrapped_key: WrappedKey | None = None
    created_by: uuid.UUID | None = None
    deleted_at: datetime | None = None
    destroyed_at: datetime | None = None

    @property
    def readable(self) -> bool:
        """Has a value that may be decrypted (not soft-deleted, not destroyed)."""
        return self.deleted_at is None and self.destroyed_at is None and self.ciphertext is not None
