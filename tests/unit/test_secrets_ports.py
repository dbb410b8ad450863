"""The secrets port contracts against the fakes and the AES-256-GCM adapter (pure CPU, no I/O)."""

from __future__ import annotations

import uuid

import pytest

from corral.adapters.crypto import AesGcmCipher, AesGcmKeyWrapper
from corral.contracts.secrets import CipherContract, KeyWrapperContract, SecretStoreContract
from corral.fakes.secrets import FakeCipher, FakeKeyWrapper
from tests.unit.secrets_support import new_db


class TestFakeCipher(CipherContract):
    @pytest.fixture
    def cipher(self):
        return FakeCipher()


class TestAesGcmCipher(CipherContract):
    @pytest.fixture
    def cipher(self):
        return AesGcmCipher()


class TestFakeKeyWrapper(KeyWrapperContract):
    @pytest.fixture
    def make_key_wrapper(self):
        return FakeKeyWrapper


class TestAesGcmKeyWrapper(KeyWrapperContract):
    @pytest.fixture
    def make_key_wrapper(self):
        return lambda *keys: AesGcmKeyWrapper(list(keys))


class TestInMemorySecretStore(SecretStoreContract):
    @pytest.fixture
    def uow_factory(self):
        return new_db()

    @pytest.fixture
    def project_id(self):
        return uuid.uuid4()


def test_aes_key_wrapper_rejects_bad_key_length():
    with pytest.raises(ValueError, match="32 bytes"):
        AesGcmKeyWrapper([b"short"])


def test_aes_key_wrapper_names_the_settings_when_a_master_key_is_missing():
    from corral.core.secrets.model import SecretUndecryptable

    old, new = AesGcmKeyWrapper([b"o" * 32]), AesGcmKeyWrapper([b"n" * 32])
    with pytest.raises(SecretUndecryptable, match="CORRAL_MASTER_KEY_PREVIOUS"):
        new.unwrap(old.wrap(b"k" * 32, b"aad"), b"aad")
