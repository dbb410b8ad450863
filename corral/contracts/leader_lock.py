"""LeaderLockContract: what every LeaderLock does.

Needs a fixture ``leader_locks``: two LeaderLock handles on the same lock domain, standing for two replicas
(a single-process implementation may hand out the same object twice).
"""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["LeaderLockContract"]


async def _hold(lock: Any, name: str, got: asyncio.Future[bool]) -> None:
    async with lock.lead(name) as leading:
        got.set_result(leading)
        await asyncio.Event().wait()  # hold until cancelled


class LeaderLockContract:
    async def test_only_one_holder_per_name(self, leader_locks: tuple[Any, Any]) -> None:
        a, b = leader_locks
        async with a.lead("rotation") as first, b.lead("rotation") as second, a.lead("rotation") as third:
            assert (first, second, third) == (True, False, False)
            async with b.lead("alerts") as other_name:
                assert other_name is True

    async def test_a_released_lock_can_be_taken_by_another(self, leader_locks: tuple[Any, Any]) -> None:
        a, b = leader_locks
        async with a.lead("rotation") as first:
            assert first is True
        async with b.lead("rotation") as second:
            assert second is True
            async with a.lead("rotation") as again:
                assert again is False
        async with a.lead("rotation") as back:
            assert back is True

    async def test_a_loser_leaving_does_not_release_the_holder(self, leader_locks: tuple[Any, Any]) -> None:
        a, b = leader_locks
        async with a.lead("rotation") as first:
            assert first is True
            async with b.lead("rotation") as loser:
                assert loser is False
            async with b.lead("rotation") as still_loser:
                assert still_loser is False

    async def test_a_holder_that_dies_releases_the_lock(self, leader_locks: tuple[Any, Any]) -> None:
        a, b = leader_locks
        got: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        holder = asyncio.create_task(_hold(a, "rotation", got))
        assert await asyncio.wait_for(got, 10) is True
        async with b.lead("rotation") as while_held:
            assert while_held is False
        holder.cancel()
        await asyncio.gather(holder, return_exceptions=True)
        async with b.lead("rotation") as after_death:
            assert after_death is True

    async def test_an_error_inside_the_lead_releases_it(self, leader_locks: tuple[Any, Any]) -> None:
        a, b = leader_locks
        try:
            async with a.lead("rotation") as first:
                assert first is True
                raise KeyError("the leader's work failed")
        except KeyError:
            pass
        async with b.lead("rotation") as second:
            assert second is True
