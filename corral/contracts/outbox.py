"""OutboxContract: what every Outbox does.

Needs a fixture ``uow_factory`` (a UnitOfWorkFactory whose units carry ``outbox``, able to hold
two units open at once). Each test first drains what earlier tests left unprocessed.
"""

from __future__ import annotations

from typing import Any

import pytest

from corral.core.errors import InvalidInput
from corral.core.ids import uuid7

__all__ = ["OutboxContract"]


async def _drain(uow_factory: Any) -> None:
    async with uow_factory() as uow:
        while events := await uow.outbox.claim(100):
            await uow.outbox.mark_processed([e.id for e in events])
        await uow.commit()


async def _add(uow_factory: Any, count: int, topic: str = "contract.event") -> list[Any]:
    async with uow_factory() as uow:
        events = [await uow.outbox.add(topic, {"n": n}) for n in range(count)]
        await uow.commit()
    return events


class OutboxContract:
    async def test_committed_event_is_claimed_as_written(self, uow_factory: Any) -> None:
        await _drain(uow_factory)
        project, ref = uuid7(), uuid7()
        async with uow_factory() as uow:
            added = await uow.outbox.add("push", {"ref": ref, "before": "a" * 40, "n": [1, 2]}, project_id=project)
            await uow.commit()
        async with uow_factory() as uow:
            claimed = await uow.outbox.claim(10)
        assert [e.id for e in claimed] == [added.id]
        event = claimed[0]
        assert event.topic == "push"
        assert event.payload == {"ref": str(ref), "before": "a" * 40, "n": [1, 2]}
        assert event.project_id == project
        assert event.processed_at is None
        assert event.created_at.tzinfo is not None
        assert added.payload == event.payload

    async def test_uncommitted_events_are_not_claimable(self, uow_factory: Any) -> None:
        await _drain(uow_factory)
        async with uow_factory() as writer:
            await writer.outbox.add("contract.event", {})
            async with uow_factory() as relay:
                assert await relay.outbox.claim(10) == []

    async def test_claim_is_oldest_first_and_respects_the_limit(self, uow_factory: Any) -> None:
        await _drain(uow_factory)
        events = await _add(uow_factory, 5)
        async with uow_factory() as uow:
            claimed = await uow.outbox.claim(3)
        assert [e.id for e in claimed] == [e.id for e in events[:3]]

    async def test_processed_events_are_never_claimed_again(self, uow_factory: Any) -> None:
        await _drain(uow_factory)
        events = await _add(uow_factory, 3)
        async with uow_factory() as uow:
            claimed = await uow.outbox.claim(2)
            await uow.outbox.mark_processed([e.id for e in claimed])
            await uow.commit()
        async with uow_factory() as uow:
            again = await uow.outbox.claim(10)
        assert [e.id for e in again] == [events[2].id]

    async def test_a_claim_without_commit_is_released(self, uow_factory: Any) -> None:
        await _drain(uow_factory)
        events = await _add(uow_factory, 2)
        async with uow_factory() as uow:  # a relay that crashes before committing
            claimed = await uow.outbox.claim(10)
            await uow.outbox.mark_processed([e.id for e in claimed])
        async with uow_factory() as uow:
            again = await uow.outbox.claim(10)
        assert [e.id for e in again] == [e.id for e in events]

    async def test_concurrent_units_claim_disjoint_sets(self, uow_factory: Any) -> None:
        await _drain(uow_factory)
        events = await _add(uow_factory, 5)
        async with uow_factory() as first:
            a = await first.outbox.claim(3)
            async with uow_factory() as second:
                b = await second.outbox.claim(10)
                async with uow_factory() as third:
                    assert await third.outbox.claim(10) == []
        assert {e.id for e in a}.isdisjoint({e.id for e in b})
        assert {e.id for e in a} | {e.id for e in b} == {e.id for e in events}

    async def test_marking_unknown_or_no_ids_is_harmless(self, uow_factory: Any) -> None:
        await _drain(uow_factory)
        async with uow_factory() as uow:
            await uow.outbox.mark_processed([])
            await uow.outbox.mark_processed([uuid7()])
            await uow.commit()

    async def test_bad_arguments_are_refused(self, uow_factory: Any) -> None:
        async with uow_factory() as uow:
            with pytest.raises(InvalidInput) as caught:
                await uow.outbox.claim(0)
            assert caught.value.field == "limit"
            with pytest.raises(InvalidInput) as caught:
                await uow.outbox.add("", {})
            assert caught.value.field == "topic"

    async def test_purge_deletes_only_processed_events_older_than_the_cutoff(self, uow_factory: Any) -> None:
        from datetime import UTC, datetime, timedelta

        await _drain(uow_factory)
        done = await _add(uow_factory, 3, topic="contract.purge")
        async with uow_factory() as uow:
            claimed = await uow.outbox.claim(10)
            await uow.outbox.mark_processed([e.id for e in claimed])
            await uow.commit()
        pending = await _add(uow_factory, 2, topic="contract.pending")
        async with uow_factory() as uow:
            long_ago = datetime(2000, 1, 1, tzinfo=UTC)
            assert await uow.outbox.purge_processed(long_ago, 100) == 0
            future = datetime.now(UTC) + timedelta(days=1)
            assert await uow.outbox.purge_processed(future, 2) == 2
            assert await uow.outbox.purge_processed(future, 100) >= 1
            await uow.commit()
        async with uow_factory() as uow:
            left = await uow.outbox.claim(100)
            assert {e.id for e in left} == {e.id for e in pending}
            assert not {e.id for e in left} & {e.id for e in done}
            with pytest.raises(InvalidInput):
                await uow.outbox.purge_processed(future, 0)
