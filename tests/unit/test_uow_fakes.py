"""The in-memory unit of work, audit log and outbox: the shared contracts plus fake-only behaviour."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from corral.contracts.audit import AuditLogContract
from corral.contracts.outbox import OutboxContract
from corral.contracts.uow import UnitOfWorkContract, audit_entry
from corral.core.errors import Conflict
from corral.core.ids import uuid7
from corral.fakes.clock import FakeClock
from corral.fakes.uow import InMemoryUnitOfWorkFactory


@pytest.fixture
def uow_factory() -> InMemoryUnitOfWorkFactory:
    return InMemoryUnitOfWorkFactory(clock=FakeClock())


class TestInMemoryUnitOfWork(UnitOfWorkContract):
    pass


class TestInMemoryAuditLog(AuditLogContract):
    pass


class TestInMemoryOutbox(OutboxContract):
    pass


async def test_concurrent_commits_of_the_same_row_conflict(uow_factory: InMemoryUnitOfWorkFactory) -> None:
    async with uow_factory() as uow:
        event = await uow.outbox.add("t", {})
        await uow.commit()
    async with uow_factory() as first, uow_factory() as second:
        await first.outbox.mark_processed([event.id])
        uow_factory.clock.advance(1)  # type: ignore[attr-defined]  # a different value for the same row
        await second.outbox.mark_processed([event.id])
        await first.commit()
        with pytest.raises(Conflict, match="changed concurrently"):
            await second.commit()
    assert uow_factory.db.outbox.events[event.id].processed_at is not None


async def test_concurrent_commits_of_different_rows_both_land(uow_factory: InMemoryUnitOfWorkFactory) -> None:
    async with uow_factory() as first, uow_factory() as second:
        a, b = audit_entry("a"), audit_entry("b")
        await first.audit.record(a)
        await second.audit.record(b)
        await first.commit()
        await second.commit()
    assert set(uow_factory.db.audit.entries) == {a.id, b.id}


async def test_a_failed_commit_applies_nothing(uow_factory: InMemoryUnitOfWorkFactory) -> None:
    async with uow_factory() as uow:
        event = await uow.outbox.add("t", {})
        await uow.commit()
    async with uow_factory() as first, uow_factory() as second:
        await first.outbox.mark_processed([event.id])
        uow_factory.clock.advance(1)  # type: ignore[attr-defined]  # a different value for the same row
        await second.outbox.mark_processed([event.id])
        entry = audit_entry("late")
        await second.audit.record(entry)
        await first.commit()
        with pytest.raises(Conflict):
            await second.commit()
    assert entry.id not in uow_factory.db.audit.entries


async def test_appends_to_a_shared_list_merge(uow_factory: InMemoryUnitOfWorkFactory) -> None:
    t = datetime(2026, 1, 1, tzinfo=UTC)
    async with uow_factory() as first, uow_factory() as second:
        first._work["identity"].failures.append(("user:a", t))
        second._work["identity"].failures.append(("ip:b", t))
        await first.commit()
        await second.commit()
    assert uow_factory.db.identity.failures == [("user:a", t), ("ip:b", t)]


async def test_the_unit_carries_every_domain_store(uow_factory: InMemoryUnitOfWorkFactory) -> None:
    async with uow_factory() as uow:
        for name in ("audit", "outbox", "users", "roles", "delegations", "tokens", "sessions", "totp", "secrets"):
            assert getattr(uow, name) is not None


async def test_recorded_entries_are_inspectable(uow_factory: InMemoryUnitOfWorkFactory) -> None:
    async with uow_factory() as uow:
        entry = audit_entry("x", project_id=uuid7())
        await uow.audit.record(entry)
        assert uow.audit.entries == [entry]
        await uow.commit()
    assert list(uow_factory.db.audit.entries.values()) == [entry]


def test_fake_clock_is_settable_and_advanceable() -> None:
    clock = FakeClock()
    start = clock.now()
    clock.advance(90)
    assert clock.now() - start == timedelta(seconds=90)
    assert clock.monotonic() == 1090.0
    later = datetime(2030, 5, 1, tzinfo=UTC)
    clock.set(later)
    assert clock.now() == later
    with pytest.raises(ValueError, match="backwards"):
        clock.advance(-1)
    with pytest.raises(ValueError, match="timezone"):
        clock.set(datetime(2030, 5, 1))


def test_real_time_fake_clock_follows_the_wall_clock() -> None:
    clock = FakeClock.real_time()
    before = datetime.now(UTC)
    clock.advance(3600)
    assert clock.now() >= before + timedelta(seconds=3600)


def test_both_units_carry_the_same_stores_and_every_port_store(uow_factory: InMemoryUnitOfWorkFactory) -> None:
    from corral.adapters.clock import SystemClock
    from corral.adapters.postgres.uow import PostgresUnitOfWork

    def stores(unit: object) -> set[str]:
        return {name for name in vars(unit) if not name.startswith("_") and name not in {"db", "clock"}}

    postgres = PostgresUnitOfWork(pool=None, clock=SystemClock())  # type: ignore[arg-type]
    postgres._bind(None)  # type: ignore[arg-type]  # stores only keep the connection
    assert stores(postgres) == stores(uow_factory())
    # ... and every store the UnitOfWork port promises
    from corral.core.uow import UnitOfWork

    assert set(UnitOfWork.__annotations__) <= stores(postgres)
