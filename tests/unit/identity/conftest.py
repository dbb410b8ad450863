from __future__ import annotations

import pytest

from corral.core.identity.kit import IdentityServices
from corral.core.identity.service import SYSTEM, ensure_system_roles
from corral.fakes.clock import FakeClock
from corral.fakes.identity_services import InMemoryAuthzCache, InMemoryPasswordHasher, fake_totp_sealer
from corral.fakes.identity_uow import IdentityMemory
from tests.unit.identity.webkit import identity_client


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def memory():
    return IdentityMemory()


@pytest.fixture
async def ids(memory, clock):
    kit = IdentityServices(memory, InMemoryAuthzCache(clock), InMemoryPasswordHasher(), clock,
                           totp_sealer=fake_totp_sealer())
    await ensure_system_roles(memory, clock)
    return kit


@pytest.fixture
def system():
    return SYSTEM


@pytest.fixture
async def web():
    """(client, ids, memory) of an app over the in-memory identity services (``webkit.identity_client``)."""
    client, ids, memory = await identity_client()
    yield client, ids, memory
    await client.close()
