"""The in-memory live tail passes the LiveTail contract (one process: both replicas share one object)."""

from __future__ import annotations

import pytest

from corral.contracts.live_tail import LiveTailContract
from corral.fakes.observe import InMemoryLiveTail


class TestInMemoryLiveTail(LiveTailContract):
    @pytest.fixture
    def live_tails(self) -> tuple[InMemoryLiveTail, InMemoryLiveTail]:
        tail = InMemoryLiveTail()
        return tail, tail
