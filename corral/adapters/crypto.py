"""AES-256-GCM from the cryptography package: the Cipher and the master-key KeyWrapper."""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from corral.core.secrets.keyring import MasterKeyRing
from corral.core.secrets.model import SecretUndecryptable

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


class AesGcmKeyWrapper(MasterKeyRing):
    """Wraps data keys with AES-256-GCM under master keys: the first is current, the others previous."""

    def __init__(self, master_keys: Sequence[bytes]) -> None:
        for key in master_keys:
            if len(key) != KEY_BYTES:
                raise ValueError(f"a master key must be {KEY_BYTES} bytes")
        super().__init__(
            AesGcmCipher(), master_keys, key_id_of,
            missing_hint="wrong CORRAL_MASTER_KEY, or a rotation needs CORRAL_MASTER_KEY_PREVIOUS",
        )
