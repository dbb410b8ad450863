"""The in-memory leader lock passes the LeaderLock contract (one process: both replicas share one object)."""

from __future__ import annotations

import pytest

from corral.contracts.leader_lock import LeaderLockContract
from corral.fakes.observe import InMemoryLeaderLock


class TestInMemoryLeaderLock(LeaderLockContract):
    @pytest.fixture
    def leader_locks(self) -> tuple[InMemoryLeaderLock, InMemoryLeaderLock]:
        lock = InMemoryLeaderLock()
        return lock, lock
