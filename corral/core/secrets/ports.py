"""Ports of the secrets domain: the cipher, the master-key wrapper, the store, and the authorisation hook.

Core never imports a cryptography library: the AEAD and the key wrapping
reach it through ``Cipher`` and ``KeyWrapper``.
"""

from __future__ import annotations

import uuid
from typing import Any, Protocol

from corral.core.secrets.model import Secret, SecretVersion, WrappedKey

__all__ = ["Actor", "Authorizer", "Cipher", "KeyRewrap", "KeyWrapper", "SecretStore"]


class Cipher(Protocol):
    """An authenticated cipher (AES-256-GCM in production) used with one data key per secret version."""

    def new_data_key(self) -> bytes:
        """A fresh random data key (32 bytes)."""
        ...

    def encrypt(self, key: bytes, plaintext: bytes, aad: bytes) -> bytes:
        """Seal ``plaintext`` bound to ``aad``; the result carries its own random nonce and tag."""
        ...

    def decrypt(self, key: bytes, sealed: bytes, aad: bytes) -> bytes:
        """Open what ``encrypt`` sealed with the same key and aad.

        Any change to ``sealed``, another ``aad`` or another key raises
        SecretUndecryptable (never returns garbage).
        """
        ...


class KeyWrapper(Protocol):
    """The master key ring: wraps data keys under the current master key, unwraps under any configured one.

    During a master-key rotation the ring holds the new key (current) and the
    previous one, so data keys wrapped under either stay readable.
    """

    @property
    def current_key_id(self) -> str:
        """The id of the master key new data keys are wrapped under (derived from the key, not secret)."""
        ...

    @property
    def key_ids(self) -> frozenset[str]:
        """Ids of every master key this ring can unwrap with."""
        ...

    def wrap(self, data_key: bytes, aad: bytes) -> WrappedKey:
        """Encrypt ``data_key`` under the current master key, bound to ``aad``."""
        ...

    def unwrap(self, wrapped: WrappedKey, aad: bytes) -> bytes:
        """The data key inside ``wrapped``.

        Raises SecretUndecryptable when ``wrapped.key_id`` is not in the ring
        (wrong or missing master key), or the blob or ``aad`` do not authenticate.
        """
        ...


class KeyRewrap(Protocol):
    """Another domain's data sealed under the master key ring (e.g. TOTP secrets), re-wrapped by a rotation."""

    @property
    def name(self) -> str:
        """What it is, for audit rows (``<name>.rewrap``)."""
        ...

    async def rewrap_batch(self, uow: Any, limit: int) -> tuple[int, set[str]]:
        """In ``uow``: re-wrap up to ``limit`` data keys not under the current master key, locking them
        (rows another unit holds are skipped); returns how many and the old key ids. 0 when done."""
        ...

    async def count_by_key(self, uow: Any) -> dict[str, int]:
        """How many of its data keys are wrapped under each master key id."""
        ...


class SecretStore(Protocol):
    """Secrets and their versions, bound to the current unit of work.

    ``project_id`` None addresses global secrets. Names are unique per project
    and among global secrets (case-sensitive). Versions are numbered from 1
    per secret and never reused.
    """

    async def get(self, project_id: uuid.UUID | None, name: str, *, for_update: bool = False) -> Secret | None:
        """The secret named ``name``, or None. ``for_update`` locks it until the unit of work ends."""
        ...

    async def in_scope(self, project_id: uuid.UUID | None) -> list[Secret]:
        """Every secret of the project (None: global secrets), ordered by name."""
        ...

    async def add(self, secret: Secret) -> None:
        """Insert a new secret; Conflict naming the secret when the name is taken."""
        ...

    async def update(self, secret: Secret) -> None:
        """Replace the stored metadata of ``secret`` (matched by id)."""
        ...

    async def delete(self, secret_id: uuid.UUID) -> None:
        """Remove the secret and every version of it (no-op when absent)."""
        ...

    async def add_version(self, version: SecretVersion) -> None:
        """Insert a version; Conflict when (secret, version) exists."""
        ...

    async def get_version(self, secret_id: uuid.UUID, version: int) -> SecretVersion | None:
        """One version, or None."""
        ...

    async def versions(self, secret_id: uuid.UUID) -> list[SecretVersion]:
        """Every kept version of the secret, oldest first."""
        ...

    async def update_version(self, version: SecretVersion) -> None:
        """Replace the stored version (soft delete, undelete, destroy, re-wrap)."""
        ...

    async def delete_versions(self, secret_id: uuid.UUID, versions: list[int]) -> None:
        """Remove the given versions entirely (pruning beyond max_versions)."""
        ...

    async def claim_for_rewrap(self, current_key_id: str, limit: int) -> list[tuple[Secret, SecretVersion]]:
        """Up to ``limit`` versions whose data key is wrapped under a key other than ``current_key_id``.

        Rows are locked until the unit of work ends and rows locked by another
        unit are skipped, so concurrent rotations never re-wrap the same key twice.
        """
        ...

    async def count_by_key(self) -> dict[str, int]:
        """How many wrapped data keys exist per master key id."""
        ...

    async def sample_wrapped(self, limit: int) -> list[tuple[Secret, SecretVersion]]:
        """A few versions holding a wrapped key (any), used to check the master key at start."""
        ...


class Actor(Protocol):
    """Who acts: the identity domain's Principal satisfies this."""

    @property
    def user_id(self) -> uuid.UUID: ...

    @property
    def name(self) -> str: ...


class Authorizer(Protocol):
    """The RBAC check (the identity domain's Authorizer satisfies this)."""

    async def authorize(self, principal: Any, permission: str, project_id: uuid.UUID | None) -> None:
        """Return when ``principal`` holds ``permission`` in ``project_id`` (None: global); else PermissionDenied."""
        ...
