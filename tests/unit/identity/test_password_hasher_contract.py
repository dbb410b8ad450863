"""The fake password hasher passes the PasswordHasher contract."""

from __future__ import annotations

import pytest

from corral.contracts.password_hasher import PasswordHasherContract
from corral.fakes.identity_services import InMemoryPasswordHasher


class TestInMemoryPasswordHasher(PasswordHasherContract):
    @pytest.fixture
    def password_hasher(self) -> InMemoryPasswordHasher:
        return InMemoryPasswordHasher()
