"""RecentRequestsContract: what every RecentRequests (the OTLP retry dedupe memory) does.

Needs a fixture ``recent_requests`` and a method ``async let_time_pass(seconds)`` on the test class that makes
``seconds`` pass for the store under test (a fake clock moved, or a real sleep).
"""

from __future__ import annotations

from typing import Any

__all__ = ["RecentRequestsContract"]


class RecentRequestsContract:
    async def let_time_pass(self, seconds: float) -> None:
        raise NotImplementedError

    async def test_a_remembered_key_is_seen_and_others_are_not(self, recent_requests: Any) -> None:
        assert await recent_requests.seen("token-a:sha256-1") is False
        await recent_requests.remember("token-a:sha256-1", 600)
        assert await recent_requests.seen("token-a:sha256-1") is True
        assert await recent_requests.seen("token-b:sha256-1") is False  # same body, another caller
        assert await recent_requests.seen("token-a:sha256-2") is False

    async def test_a_key_is_forgotten_after_its_ttl_and_remembering_again_renews_it(
        self, recent_requests: Any
    ) -> None:
        await recent_requests.remember("short", 1)
        await recent_requests.remember("renewed", 1)
        await recent_requests.remember("renewed", 600)
        await recent_requests.remember("long", 600)
        assert await recent_requests.seen("short") is True
        await self.let_time_pass(1.5)
        assert await recent_requests.seen("short") is False
        assert await recent_requests.seen("renewed") is True
        assert await recent_requests.seen("long") is True

    async def test_odd_keys_never_raise(self, recent_requests: Any) -> None:
        for key in ("", "with space", "ünïcode", "x" * 300, "a:b:c*?[]"):
            await recent_requests.remember(key, 60)
            assert await recent_requests.seen(key) is True
