"""The master key ring over any Cipher: what the AES-GCM adapter and the test fake share."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Sequence

from corral.core.secrets.model import SecretUndecryptable, WrappedKey
from corral.core.secrets.ports import Cipher

__all__ = ["MasterKeyRing"]


class MasterKeyRing:
    """A KeyWrapper: ``master_keys[0]`` is current, the others are previous keys (during a rotation).

    ``key_id`` derives each key's stable, non-secret id; ``missing_hint`` ends the message raised when a data
    key names a master key that is not configured (e.g. which setting to fix)."""

    def __init__(
        self, cipher: Cipher, master_keys: Sequence[bytes], key_id: Callable[[bytes], str], *, missing_hint: str = ""
    ) -> None:
        if not master_keys:
            raise ValueError("at least one master key is needed")
        self._cipher = cipher
        self._keys = {key_id(k): k for k in master_keys}
        self._current = key_id(master_keys[0])
        self._missing_hint = missing_hint

    @property
    def current_key_id(self) -> str:
        return self._current

    @property
    def key_ids(self) -> frozenset[str]:
        return frozenset(self._keys)

    def derive_key(self, label: str) -> bytes:
        """A 32-byte key for ``label`` derived from the current master key (HMAC-SHA256): the same on every
        replica and across restarts, independent of the master key for any other label."""
        return hmac.new(self._keys[self._current], b"corral derived key: " + label.encode(), hashlib.sha256).digest()

    def wrap(self, data_key: bytes, aad: bytes) -> WrappedKey:
        return WrappedKey(self._current, self._cipher.encrypt(self._keys[self._current], data_key, aad))

    def unwrap(self, wrapped: WrappedKey, aad: bytes) -> bytes:
        key = self._keys.get(wrapped.key_id)
        if key is None:
            raise SecretUndecryptable(
                f"data key is wrapped under master key {wrapped.key_id}, which is not configured"
                + (f" ({self._missing_hint})" if self._missing_hint else "")
            )
        return self._cipher.decrypt(key, wrapped.blob, aad)
