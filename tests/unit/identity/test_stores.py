from __future__ import annotations

import pytest

from corral.contracts.identity_stores import IdentityStoresContract
from corral.fakes.identity_uow import IdentityMemory


class TestInMemoryIdentityStores(IdentityStoresContract):
    @pytest.fixture
    def identity_uow_factory(self):
        return IdentityMemory()
