"""AES-256-GCM from the cryptography package: the Cipher and the master-key KeyWrapper."""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from corral.core.secrets.model import SecretUndecryptable, WrappedKey

__all__ = ["KEY_BYTES", "AesGcmCipher", "AesGcmKeyWrapper", "key_id_of"]

KEY_BYTES = 32
_NONCE = 12
_VERSION = b"\x01"  # format byte: 0x01 = 96-bit random nonce || AES-256-GCM ciphertext+tag


def key_id_of(master_key: bytes) -> str:
    """A stable, non-secret id of a master key (HMAC of a constant under the key; reveals nothing about it)."""
    return hmac.new(master_key, b"corral master key id v1", hashlib.sha256).hexdigest()[:16]


class AesGcmCipher:
    """AES-256-GCM with a random 96-bit nonce per encryption (one data key encrypts one value)."""

    def new_data_key(self) -> bytes:
        return AESGCM.generate_key(bit_length=256)

    def encrypt(self, key: bytes, plaintext: bytes, aad: bytes) -> bytes:
        nonce = os.urandom(_NONCE)
        return _VERSION + nonce + AESGCM(key).encrypt(nonce, plaintext, aad)

    def decrypt(self, key: bytes, sealed: bytes, aad: bytes) -> bytes:
        if len(sealed) < 1 + _NONCE + 16 or sealed[:1] != _VERSION:
            raise SecretUndecryptable("ciphertext is truncated or of an unknown format")
        try:
            return AESGCM(key).decrypt(sealed[1 : 1 + _NONCE], sealed[1 + _NONCE :], aad)
        except (InvalidTag, ValueError):
            raise SecretUndecryptable("ciphertext does not authenticate (tampered, moved, or wrong key)") from None


class AesGcmKeyWrapper:
    """Wraps data keys with AES-256-GCM under master keys: the first is current, the others previous."""

    def __init__(self, master_keys: Sequence[bytes]) -> None:
        if not master_keys:
            raise ValueError("at least one master key is needed")
        for key in master_keys:
            if len(key) != KEY_BYTES:
                raise ValueError(f"a master key must be {KEY_BYTES} bytes")
        self._cipher = AesGcmCipher()
        self._keys = {key_id_of(k): k for k in master_keys}
        self._current = key_id_of(master_keys[0])

    @property
    def current_key_id(self) -> str:
        return self._current

    @property
    def key_ids(self) -> frozenset[str]:
        return frozenset(self._keys)

    def wrap(self, data_key: bytes, aad: bytes) -> WrappedKey:
        return WrappedKey(self._current, self._cipher.encrypt(self._keys[self._current], data_key, aad))

    def unwrap(self, wrapped: WrappedKey, aad: bytes) -> bytes:
        key = self._keys.get(wrapped.key_id)
        if key is None:
            raise SecretUndecryptable(
                f"data key is wrapped under master key {wrapped.key_id}, which is not configured "
                "(wrong CORRAL_MASTER_KEY, or a rotation needs CORRAL_MASTER_KEY_PREVIOUS)"
            )
        return self._cipher.decrypt(key, wrapped.blob, aad)
