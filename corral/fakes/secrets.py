"""In-memory fakes of the secrets ports: a store, and a (non-production) authenticated cipher and key ring."""

from __future__ import annotations

import hashlib
import hmac
import os
import uuid
from typing import Any

import attrs

from corral.core.errors import Conflict, PermissionDenied
from corral.core.secrets.keyring import MasterKeyRing
from corral.core.secrets.model import Secret, SecretUndecryptable, SecretVersion

__all__ = ["AllowAllAuthorizer", "FakeCipher", "FakeKeyWrapper", "InMemorySecretStore", "SecretTables"]


class FakeCipher:
    """SHA-256 keystream + HMAC tag: authenticates like AES-GCM (tamper, wrong aad, wrong key all fail).

    For tests only: it keeps the fakes free of the cryptography package.
    """

    def new_data_key(self) -> bytes:
        return os.urandom(32)

    @staticmethod
    def _stream(key: bytes, nonce: bytes, n: int) -> bytes:
        out = bytearray()
        counter = 0
        while len(out) < n:
            out += hashlib.sha256(key + nonce + counter.to_bytes(8, "big")).digest()
            counter += 1
        return bytes(out[:n])

    def encrypt(self, key: bytes, plaintext: bytes, aad: bytes) -> bytes:
        nonce = os.urandom(12)
        body = bytes(a ^ b for a, b in zip(plaintext, self._stream(key, nonce, len(plaintext)), strict=True))
        tag = hmac.new(key, nonce + len(aad).to_bytes(8, "big") + aad + body, hashlib.sha256).digest()[:16]
        return nonce + body + tag

    def decrypt(self, key: bytes, sealed: bytes, aad: bytes) -> bytes:
        if len(sealed) < 28:
            raise SecretUndecryptable("ciphertext is truncated")
        nonce, body, tag = sealed[:12], sealed[12:-16], sealed[-16:]
        want = hmac.new(key, nonce + len(aad).to_bytes(8, "big") + aad + body, hashlib.sha256).digest()[:16]
        if not hmac.compare_digest(tag, want):
            raise SecretUndecryptable("ciphertext does not authenticate (tampered, moved, or wrong key)")
        return bytes(a ^ b for a, b in zip(body, self._stream(key, nonce, len(body)), strict=True))


class FakeKeyWrapper(MasterKeyRing):
    """A key ring over FakeCipher: ``keys[0]`` is current, the rest are previous keys."""

    def __init__(self, *keys: bytes) -> None:
        super().__init__(FakeCipher(), keys, lambda k: hashlib.sha256(b"fake-key-id" + k).hexdigest()[:16])


@attrs.define
class SecretTables:
    """The state the in-memory store works on (a component of the fake database; rows are replaced, never mutated)."""

    secrets: dict[uuid.UUID, Secret] = attrs.field(factory=dict)
    versions: dict[tuple[uuid.UUID, int], SecretVersion] = attrs.field(factory=dict)


@attrs.define
class InMemorySecretStore:
    """SecretStore over dicts; records nothing beyond its tables."""

    tables: SecretTables = attrs.field(factory=SecretTables)

    async def get(self, project_id: uuid.UUID | None, name: str, *, for_update: bool = False) -> Secret | None:
        for s in self.tables.secrets.values():
            if s.project_id == project_id and s.name == name:
                return s
        return None

    async def in_scope(self, project_id: uuid.UUID | None) -> list[Secret]:
        return sorted((s for s in self.tables.secrets.values() if s.project_id == project_id), key=lambda s: s.name)

    async def add(self, secret: Secret) -> None:
        if await self.get(secret.project_id, secret.name) is not None or secret.id in self.tables.secrets:
            raise Conflict(f"secret {secret.name} already exists")
        self.tables.secrets[secret.id] = secret

    async def update(self, secret: Secret) -> None:
        if secret.id in self.tables.secrets:
            self.tables.secrets[secret.id] = secret

    async def delete(self, secret_id: uuid.UUID) -> None:
        self.tables.secrets.pop(secret_id, None)
        for key in [k for k in self.tables.versions if k[0] == secret_id]:
            del self.tables.versions[key]

    async def add_version(self, version: SecretVersion) -> None:
        key = (version.secret_id, version.version)
        if key in self.tables.versions:
            raise Conflict(f"version {version.version} already exists")
        self.tables.versions[key] = version

    async def get_version(self, secret_id: uuid.UUID, version: int) -> SecretVersion | None:
        return self.tables.versions.get((secret_id, version))

    async def versions(self, secret_id: uuid.UUID) -> list[SecretVersion]:
        return sorted((v for k, v in self.tables.versions.items() if k[0] == secret_id), key=lambda v: v.version)

    async def update_version(self, version: SecretVersion) -> None:
        key = (version.secret_id, version.version)
        if key in self.tables.versions:
            self.tables.versions[key] = version

    async def delete_versions(self, secret_id: uuid.UUID, versions: list[int]) -> None:
        for n in versions:
            self.tables.versions.pop((secret_id, n), None)

    async def claim_for_rewrap(self, current_key_id: str, limit: int) -> list[tuple[Secret, SecretVersion]]:
        out = []
        for v in sorted(self.tables.versions.values(), key=lambda v: (v.secret_id, v.version)):
            if v.wrapped_key is not None and v.wrapped_key.key_id != current_key_id:
                out.append((self.tables.secrets[v.secret_id], v))
                if len(out) >= limit:
                    break
        return out

    async def count_by_key(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for v in self.tables.versions.values():
            if v.wrapped_key is not None:
                counts[v.wrapped_key.key_id] = counts.get(v.wrapped_key.key_id, 0) + 1
        return counts

    async def sample_wrapped(self, limit: int) -> list[tuple[Secret, SecretVersion]]:
        out = [(self.tables.secrets[v.secret_id], v) for v in self.tables.versions.values() if v.wrapped_key]
        return out[:limit]


@attrs.define
class AllowAllAuthorizer:
    """Authorizer fake: allows everything except the (principal name, permission, project) triples in ``deny``."""

    deny: set[tuple[str, str, uuid.UUID | None]] = attrs.field(factory=set)
    calls: list[tuple[str, str, uuid.UUID | None]] = attrs.field(factory=list)

    async def authorize(self, principal: Any, permission: str, project_id: uuid.UUID | None) -> None:
        self.calls.append((principal.name, permission, project_id))
        if (principal.name, permission, project_id) in self.deny:
            raise PermissionDenied(f"{principal.name} lacks the permission {permission}")
