"""Envelope encryption: one data key per secret version, wrapped by the master key, both bound to the row."""

from __future__ import annotations

import uuid

import attrs

from corral.core.secrets.model import SecretUndecryptable, WrappedKey, associated_data
from corral.core.secrets.ports import Cipher, KeyWrapper

__all__ = ["Envelope"]

_DEK_SUFFIX = b"\x00data-key"


@attrs.frozen
class Envelope:
    """Seals and opens secret values; re-wraps data keys under the current master key."""

    cipher: Cipher
    keys: KeyWrapper

    def seal(self, project_id: uuid.UUID | None, name: str, version: int, plaintext: bytes) -> tuple[bytes, WrappedKey]:
        """Encrypt ``plaintext`` under a fresh data key; return the ciphertext and the wrapped data key."""
        aad = associated_data(project_id, name, version)
        data_key = self.cipher.new_data_key()
        return self.cipher.encrypt(data_key, plaintext, aad), self.keys.wrap(data_key, aad + _DEK_SUFFIX)

    def open(
        self, project_id: uuid.UUID | None, name: str, version: int, ciphertext: bytes, wrapped: WrappedKey
    ) -> bytes:
        """The plaintext; SecretUndecryptable naming the secret if anything does not authenticate."""
        aad = associated_data(project_id, name, version)
        try:
            data_key = self.keys.unwrap(wrapped, aad + _DEK_SUFFIX)
            return self.cipher.decrypt(data_key, ciphertext, aad)
        except SecretUndecryptable as exc:
            raise SecretUndecryptable(f"secret {_where(project_id, name)} version {version}: {exc.message}") from None

    def rewrap(self, project_id: uuid.UUID | None, name: str, version: int, wrapped: WrappedKey) -> WrappedKey:
        """The same data key wrapped under the current master key (the ciphertext is untouched)."""
        aad = associated_data(project_id, name, version) + _DEK_SUFFIX
        try:
            data_key = self.keys.unwrap(wrapped, aad)
        except SecretUndecryptable as exc:
            raise SecretUndecryptable(f"secret {_where(project_id, name)} version {version}: {exc.message}") from None
        return self.keys.wrap(data_key, aad)


def _where(project_id: uuid.UUID | None, name: str) -> str:
    return f"{name} (global)" if project_id is None else f"{name} (project {project_id})"
