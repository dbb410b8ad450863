"""UnitOfWorkContract: transaction semantics every unit of work must have.

Needs a fixture ``uow_factory`` (a UnitOfWorkFactory on an empty or migrated store, able to
hold two units open at once). The checks go through ``uow.audit`` and ``uow.outbox``, the two
stores every unit of work carries.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from corral.core.audit.model import AuditEntry, AuditQuery
from corral.core.ids import uuid7

__all__ = ["UnitOfWorkContract", "audit_entry"]

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def audit_entry(actor: str, **kw: Any) -> AuditEntry:
    """A valid entry by ``actor`` (tests filter on their own unique actor name)."""
    values: dict[str, Any] = {
        "id": uuid7(),
        "actor_id": uuid.uuid4(),
        "actor_name": actor,
        "action": "thing.create",
        "resource": "thing",
        "created_at": T0,
    }
    values.update(kw)
    return AuditEntry(**values)


def _actor() -> str:
    return f"actor-{uuid.uuid4().hex[:10]}"


async def _ids(uow_factory: Any, actor: str) -> set[uuid.UUID]:
    async with uow_factory() as uow:
        page = await uow.audit.query(AuditQuery(actor=actor, limit=500))
    return {e.id for e in page.items}


class _Boom(Exception):
    pass


class UnitOfWorkContract:
    async def test_commit_persists(self, uow_factory: Any) -> None:
        actor, entry = _actor(), None
        async with uow_factory() as uow:
            entry = audit_entry(actor)
            await uow.audit.record(entry)
            await uow.commit()
        assert await _ids(uow_factory, actor) == {entry.id}

    async def test_leaving_without_commit_rolls_back(self, uow_factory: Any) -> None:
        actor = _actor()
        async with uow_factory() as uow:
            await uow.audit.record(audit_entry(actor))
            await uow.outbox.add("contract.rollback", {"actor": actor})
        assert await _ids(uow_factory, actor) == set()
        async with uow_factory() as uow:
            events = await uow.outbox.claim(500)
        assert not [e for e in events if e.payload.get("actor") == actor]

    async def test_exception_rolls_back_and_propagates(self, uow_factory: Any) -> None:
        actor = _actor()

        async def fail() -> None:
            async with uow_factory() as uow:
                await uow.audit.record(audit_entry(actor))
                raise _Boom

        with pytest.raises(_Boom):
            await fail()
        assert await _ids(uow_factory, actor) == set()

    async def test_two_units_are_isolated_until_commit(self, uow_factory: Any) -> None:
        actor = _actor()
        async with uow_factory() as first:
            entry = audit_entry(actor)
            await first.audit.record(entry)
            async with uow_factory() as second:
                seen = await second.audit.query(AuditQuery(actor=actor))
                assert seen.items == []
            # the writer sees its own uncommitted work
            assert [e.id for e in (await first.audit.query(AuditQuery(actor=actor))).items] == [entry.id]
            await first.commit()
        assert await _ids(uow_factory, actor) == {entry.id}

    async def test_explicit_rollback_discards_and_the_unit_goes_on(self, uow_factory: Any) -> None:
        actor = _actor()
        async with uow_factory() as uow:
            dropped, kept = audit_entry(actor), audit_entry(actor)
            await uow.audit.record(dropped)
            await uow.rollback()
            await uow.audit.record(kept)
            await uow.commit()
        assert await _ids(uow_factory, actor) == {kept.id}

    async def test_work_after_a_commit_needs_its_own_commit(self, uow_factory: Any) -> None:
        actor = _actor()
        async with uow_factory() as uow:
            first, second = audit_entry(actor), audit_entry(actor)
            await uow.audit.record(first)
            await uow.commit()
            await uow.audit.record(second)
        assert await _ids(uow_factory, actor) == {first.id}

    async def test_a_unit_is_used_once(self, uow_factory: Any) -> None:
        uow = uow_factory()
        async with uow:
            pass
        with pytest.raises(RuntimeError):
            async with uow:
                pass

    async def test_commit_outside_the_block_is_refused(self, uow_factory: Any) -> None:
        uow = uow_factory()
        with pytest.raises(RuntimeError):
            await uow.commit()
