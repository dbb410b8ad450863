import pytest

from corral.contracts.telemetry_store import TelemetryStoreContract
from corral.fakes.observe import InMemoryTelemetryStore


class TestInMemoryTelemetryStore(TelemetryStoreContract):
    @pytest.fixture
    async def telemetry_store(self):
        return InMemoryTelemetryStore()
