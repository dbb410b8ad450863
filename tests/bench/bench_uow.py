"""Cost of the unit-of-work layer: N small mutations (one audit row + one outbox event, committed)
through PostgresUnitOfWork against the same two INSERTs in a hand-written asyncpg transaction on the
same pool, same run. Also: outbox claim+mark throughput with FOR UPDATE SKIP LOCKED.

    ./dev bench bench_uow [N]
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from corral.adapters.clock import SystemClock
from corral.adapters.postgres.migrator import apply_migrations
from corral.adapters.postgres.pool import connect, create_pool
from corral.adapters.postgres.uow import PostgresUnitOfWorkFactory
from corral.core.audit.model import AuditEntry
from corral.core.ids import uuid7
from tests.servicekit import PostgresServer

CONCURRENCY = 8


async def _run(n: int, one: object) -> float:
    sem = asyncio.Semaphore(CONCURRENCY)

    async def task() -> None:
        async with sem:
            await one()  # type: ignore[operator]

    start = time.perf_counter()
    await asyncio.gather(*(task() for _ in range(n)))
    return n / (time.perf_counter() - start)


async def main(n: int) -> None:
    server = PostgresServer.start()
    try:
        conn = await connect(server.dsn())
        await apply_migrations(conn)
        await conn.close()
        pool = await create_pool(server.dsn(), min_size=CONCURRENCY, max_size=CONCURRENCY)
        clock = SystemClock()
        factory = PostgresUnitOfWorkFactory(pool, clock)
        actor = uuid.uuid4()

        def entry() -> AuditEntry:
            return AuditEntry(id=uuid7(), actor_id=actor, actor_name="bench", action="thing.update",
                              resource="thing", created_at=clock.now(), detail={"n": 1})  # fmt: skip

        async def raw() -> None:
            e = entry()
            async with pool.acquire() as c, c.transaction():
                await c.execute(
                    "INSERT INTO audit_log (id, actor_id, actor_name, action, resource, detail, created_at)"
                    " VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    e.id, e.actor_id, e.actor_name, e.action, e.resource, e.detail, e.created_at,
                )  # fmt: skip
                await c.execute(
                    "INSERT INTO outbox (id, topic, payload, created_at) VALUES ($1, $2, $3, $4)",
                    uuid7(), "bench", {"n": 1}, clock.now(),
                )  # fmt: skip

        async def unit() -> None:
            async with factory() as uow:
                await uow.audit.record(entry())
                await uow.outbox.add("bench", {"n": 1})
                await uow.commit()

        await _run(200, raw)  # warm up
        await _run(200, unit)
        baseline = await _run(n, raw)
        ours = await _run(n, unit)
        print(f"baseline: raw asyncpg transaction, 2 INSERTs: {baseline:,.0f} mutations/s")
        print(f"PostgresUnitOfWork, audit.record + outbox.add + commit: {ours:,.0f} mutations/s "
              f"({ours / baseline:.2f}x baseline)")  # fmt: skip

        async def relay() -> int:
            done = 0
            while True:
                async with factory() as uow:
                    events = await uow.outbox.claim(100)
                    if not events:
                        return done
                    await uow.outbox.mark_processed([e.id for e in events])
                    await uow.commit()
                    done += len(events)

        start = time.perf_counter()
        counts = await asyncio.gather(*(relay() for _ in range(4)))
        elapsed = time.perf_counter() - start
        async with pool.acquire() as c:
            total = await c.fetchval("SELECT count(*) FROM outbox")
        assert sum(counts) == total, (sum(counts), total)  # every event claimed exactly once
        print(f"outbox relay, 4 concurrent claimers x 100/batch: {sum(counts) / elapsed:,.0f} events/s "
              f"({total} events, each claimed exactly once)")  # fmt: skip
        await pool.close()
    finally:
        server.stop()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 5000))
