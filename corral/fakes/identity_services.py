"""Fakes of the identity ports that are not stores: password hasher and the authz cache (with replicas)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from datetime import datetime

import attrs

from corral.core.clock import Clock
from corral.core.identity.ports import CachedCredential
from corral.core.identity.totp_seal import TotpSealer
from corral.fakes.secrets import FakeCipher, FakeKeyWrapper

__all__ = ["InMemoryAuthzCache", "InMemoryCacheBus", "InMemoryPasswordHasher", "fake_totp_sealer"]


class InMemoryPasswordHasher:
    """Salted SHA-256: fast, for tests only (the real one is argon2id)."""

    def __init__(self) -> None:
        self.verifications = 0

    async def hash(self, password: str) -> str:
        salt = secrets.token_hex(8)
        return f"fake${salt}${hashlib.sha256((salt + password).encode()).hexdigest()}"

    async def verify(self, password_hash: str, password: str) -> bool:
        self.verifications += 1
        parts = password_hash.split("$")
        if len(parts) != 3 or parts[0] != "fake":
            return False
        want = hashlib.sha256((parts[1] + password).encode()).hexdigest()
        return hmac.compare_digest(want, parts[2])


@attrs.define
class InMemoryCacheBus:
    """Stands for Valkey pub/sub between replicas: invalidating one cache clears all attached."""

    caches: list[InMemoryAuthzCache] = attrs.field(factory=list)
    published: list[str] = attrs.field(factory=list)


@attrs.define
class InMemoryAuthzCache:
    """AuthzCache of one replica; replicas sharing a bus invalidate each other. Unlike Valkey, a replica's
    entries are its own (another replica does not serve them); entries expire at ``valid_until`` on ``clock``."""

    clock: Clock
    bus: InMemoryCacheBus = attrs.field(factory=InMemoryCacheBus)
    permissions: dict[tuple[uuid.UUID, uuid.UUID | None], tuple[frozenset[str], datetime]] = attrs.field(
        factory=dict
    )
    credentials: dict[str, tuple[CachedCredential, datetime]] = attrs.field(factory=dict)
    hits: int = 0
    misses: int = 0

    def generation(self) -> int:
        return len(self.bus.published)

    def __attrs_post_init__(self) -> None:
        self.bus.caches.append(self)

    async def get_permissions(
        self, user_id: uuid.UUID, project_id: uuid.UUID | None
    ) -> frozenset[str] | None:
        item = self.permissions.get((user_id, project_id))
        if item is None or item[1] <= self.clock.now():
            self.misses += 1
            return None
        self.hits += 1
        return item[0]

    async def put_permissions(
        self,
        user_id: uuid.UUID,
        project_id: uuid.UUID | None,
        permissions: frozenset[str],
        valid_until: datetime,
        generation: int,
    ) -> None:
        if generation == self.generation():
            self.permissions[(user_id, project_id)] = (permissions, valid_until)

    async def get_credential(self, key: str) -> CachedCredential | None:
        item = self.credentials.get(key)
        if item is None or item[1] <= self.clock.now():
            self.misses += 1
            return None
        self.hits += 1
        return item[0]

    async def put_credential(
        self, key: str, credential: CachedCredential, valid_until: datetime, generation: int
    ) -> None:
        if generation == self.generation():
            self.credentials[key] = (credential, valid_until)

    async def invalidate(self, reason: str) -> None:
        self.bus.published.append(reason)
        for cache in self.bus.caches:
            cache.permissions.clear()
            cache.credentials.clear()


def fake_totp_sealer(*master_keys: bytes) -> TotpSealer:
    """A TOTP sealer over the fake cipher and key ring (a random master key unless given)."""
    return TotpSealer(FakeCipher(), FakeKeyWrapper(*(master_keys or (secrets.token_bytes(32),))))
