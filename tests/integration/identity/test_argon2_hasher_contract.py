"""Argon2PasswordHasher passes the PasswordHasher contract (cheap parameters; the algorithm is the same)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from corral.adapters.argon2_hasher import Argon2PasswordHasher
from corral.contracts.password_hasher import PasswordHasherContract

pytestmark = pytest.mark.integration


class TestArgon2PasswordHasher(PasswordHasherContract):
    @pytest.fixture
    def password_hasher(self) -> Iterator[Argon2PasswordHasher]:
        hasher = Argon2PasswordHasher(threads=2, time_cost=1, memory_cost=8 * 1024)
        yield hasher
        hasher.close()


async def test_hashes_are_argon2id_with_the_configured_cost() -> None:
    hasher = Argon2PasswordHasher(threads=1, time_cost=1, memory_cost=8 * 1024)
    try:
        hashed = await hasher.hash("secret")
        assert hashed.startswith("$argon2id$") and "m=8192,t=1" in hashed
    finally:
        hasher.close()
