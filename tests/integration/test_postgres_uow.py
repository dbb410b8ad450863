"""PostgresUnitOfWork, PostgresAuditLog and PostgresOutbox against a real PostgreSQL (the shared
contracts), plus the pool and error translation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from corral.adapters.postgres.errors import translate_errors
from corral.adapters.postgres.pool import connect, create_pool, redact_dsn
from corral.adapters.postgres.uow import PostgresUnitOfWorkFactory
from corral.contracts.audit import AuditLogContract
from corral.contracts.outbox import OutboxContract
from corral.contracts.uow import UnitOfWorkContract, audit_entry
from corral.core.errors import Conflict, InvalidInput, NotFound, Unavailable
from corral.fakes.clock import FakeClock

pytestmark = pytest.mark.integration


@pytest.fixture
async def pg_pool(db_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(db_dsn, min_size=1, max_size=4)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
def uow_factory(pg_pool: asyncpg.Pool) -> PostgresUnitOfWorkFactory:
    return PostgresUnitOfWorkFactory(pg_pool, FakeClock())


class TestPostgresUnitOfWork(UnitOfWorkContract):
    pass


class TestPostgresAuditLog(AuditLogContract):
    pass


class TestPostgresOutbox(OutboxContract):
    pass


async def test_connections_go_back_to_the_pool(pg_pool: asyncpg.Pool, uow_factory: PostgresUnitOfWorkFactory) -> None:
    for _ in range(10):  # more units than the pool has connections
        with pytest.raises(RuntimeError):
            async with uow_factory():
                raise RuntimeError("boom")
        async with uow_factory() as uow:
            await uow.commit()
    assert pg_pool.get_idle_size() == pg_pool.get_size()


async def test_release_sends_no_reset_query_but_ends_an_open_transaction(db_dsn: str) -> None:
    pool = await create_pool(db_dsn, min_size=1, max_size=1)
    try:
        seen: list[str] = []
        async with pool.acquire() as conn:
            conn.add_query_logger(lambda record: seen.append(record.query))
            await conn.fetchval("SELECT 1")
        assert seen == ["SELECT 1"]  # released without asyncpg's reset query (one round trip less per use)
        async with pool.acquire() as conn:
            conn.add_query_logger(lambda record: seen.append(record.query))
            await conn.execute("BEGIN")
            await conn.execute("SET LOCAL statement_timeout = 1234")
        async with pool.acquire() as conn:  # the same connection: its transaction and SET LOCAL are gone
            assert not conn.is_in_transaction()
            assert await conn.fetchval("SHOW statement_timeout") != "1234ms"
    finally:
        await pool.close()


async def test_cancelled_unit_rolls_back_and_releases(
    pg_pool: asyncpg.Pool, uow_factory: PostgresUnitOfWorkFactory
) -> None:
    entry = audit_entry("cancelled")
    started = asyncio.Event()

    async def slow() -> None:
        async with uow_factory() as uow:
            await uow.audit.record(entry)
            started.set()
            await asyncio.sleep(60)
            await uow.commit()

    task = asyncio.create_task(slow())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    async with pg_pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM audit_log WHERE id = $1", entry.id) == 0
    assert pg_pool.get_idle_size() == pg_pool.get_size()


async def test_audit_and_outbox_share_the_transaction(
    pg_pool: asyncpg.Pool, uow_factory: PostgresUnitOfWorkFactory
) -> None:
    async with uow_factory() as uow:
        await uow.audit.record(audit_entry("both"))
        await uow.outbox.add("both", {})
        await uow.commit()
        await uow.audit.record(audit_entry("both"))
        await uow.outbox.add("both", {})
    async with pg_pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM audit_log WHERE actor_name = 'both'") == 1
        assert await conn.fetchval("SELECT count(*) FROM outbox WHERE topic = 'both'") == 1


async def test_jsonb_codec_round_trips_python_values(db_dsn: str) -> None:
    conn = await connect(db_dsn)
    try:
        value = await conn.fetchval("SELECT $1::jsonb", {"a": [1, 2.5, None, "x"], "b": {"c": True}})
        assert value == {"a": [1, 2.5, None, "x"], "b": {"c": True}}
        assert await conn.fetchval("SELECT '{\"k\": 1}'::json") == {"k": 1}
    finally:
        await conn.close()


async def test_unreachable_database_is_unavailable_without_the_password() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    dsn = f"postgresql://corral:hunter2secret@127.0.0.1:{port}/corral"
    with pytest.raises(Unavailable) as caught:
        await create_pool(dsn, timeout=2)
    assert "hunter2secret" not in str(caught.value)
    assert f"127.0.0.1:{port}/corral" in str(caught.value)
    with pytest.raises(Unavailable):
        await connect(dsn, timeout=2)


async def test_missing_database_is_unavailable(db_dsn: str) -> None:
    dsn = db_dsn.rsplit("/", 1)[0] + "/no_such_database_here"
    with pytest.raises(Unavailable, match="no_such_database_here"):
        await connect(dsn)


def test_redact_dsn_never_shows_credentials() -> None:
    assert redact_dsn("postgresql://u:p4ss@db.example:6543/corral") == "db.example:6543/corral"
    assert "p4ss" not in redact_dsn("postgresql://u:p4ss@db/x?sslmode=require")


async def test_driver_errors_are_translated(db_dsn: str) -> None:
    conn = await connect(db_dsn)
    try:
        await conn.execute(
            "CREATE TABLE translate_probe (id int PRIMARY KEY, ref uuid REFERENCES users(id), n int CHECK (n > 0))"
        )
        await conn.execute("INSERT INTO translate_probe (id, n) VALUES (1, 1)")
        with pytest.raises(Conflict, match="thing already exists"), translate_errors("thing"):
            await conn.execute("INSERT INTO translate_probe (id, n) VALUES (1, 1)")
        with pytest.raises(NotFound), translate_errors("thing"):
            await conn.execute("INSERT INTO translate_probe (id, ref, n) VALUES (2, gen_random_uuid(), 1)")
        with pytest.raises(InvalidInput), translate_errors("thing"):
            await conn.execute("INSERT INTO translate_probe (id, n) VALUES (3, 0)")
    finally:
        await conn.close()


async def test_savepoints_inside_a_unit(uow_factory: PostgresUnitOfWorkFactory, pg_pool: asyncpg.Pool) -> None:
    kept, dropped, after = audit_entry("sp"), audit_entry("sp"), audit_entry("sp")
    async with uow_factory() as uow:
        await uow.audit.record(kept)

        async def nested() -> None:
            async with uow.connection.transaction():
                await uow.audit.record(dropped)
                raise RuntimeError("undo the savepoint only")

        with pytest.raises(RuntimeError):
            await nested()
        await uow.audit.record(after)
        await uow.commit()
    async with pg_pool.acquire() as conn:
        rows = await conn.fetch("SELECT id FROM audit_log WHERE actor_name = 'sp'")
    assert {r["id"] for r in rows} == {kept.id, after.id}


async def test_the_transaction_opens_on_the_first_statement(uow_factory: PostgresUnitOfWorkFactory) -> None:
    async with uow_factory() as uow:
        raw = uow.connection.raw  # type: ignore[attr-defined]
        assert not raw.is_in_transaction()  # entering costs no round trip
        await uow.audit.record(audit_entry("lazy"))
        assert raw.is_in_transaction()
        await uow.commit()
        assert not raw.is_in_transaction()  # no empty transaction left to roll back
        await uow.outbox.add("lazy", {})
        assert raw.is_in_transaction()


async def test_commit_after_a_failed_statement_is_loud_and_commits_nothing(
    uow_factory: PostgresUnitOfWorkFactory, pg_pool: asyncpg.Pool
) -> None:
    first = audit_entry("aborted")
    async with uow_factory() as uow:
        await uow.audit.record(first)
        with pytest.raises(Conflict):
            await uow.audit.record(first)  # duplicate id: PostgreSQL aborts the transaction
        with pytest.raises(Conflict, match="nothing was committed"):
            await uow.commit()
        # the unit goes on in a fresh transaction
        second = audit_entry("aborted")
        await uow.audit.record(second)
        await uow.commit()
    async with pg_pool.acquire() as conn:
        rows = await conn.fetch("SELECT id FROM audit_log WHERE actor_name = 'aborted'")
    assert [r["id"] for r in rows] == [second.id]


async def test_a_failure_inside_a_savepoint_does_not_poison_the_unit(
    uow_factory: PostgresUnitOfWorkFactory, pg_pool: asyncpg.Pool
) -> None:
    entry = audit_entry("recovered")
    async with uow_factory() as uow:
        await uow.audit.record(entry)

        async def duplicate() -> None:
            async with uow.connection.transaction():
                await uow.audit.record(entry)

        with pytest.raises(Conflict):
            await duplicate()
        await uow.commit()
    async with pg_pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM audit_log WHERE actor_name = 'recovered'") == 1
