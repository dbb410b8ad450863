from __future__ import annotations

import pytest

from corral.contracts.identity_resolver import ResolverContract
from corral.fakes.identity_uow import IdentityMemory


class TestInMemoryResolver(ResolverContract):
    @pytest.fixture
    def identity_uow_factory(self):
        # a fresh memory per call: each hypothesis example starts empty
        return lambda: IdentityMemory()()
