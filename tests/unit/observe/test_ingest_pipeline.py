import asyncio
import uuid

import pytest

from corral.contracts.telemetry_store import log_row
from corral.core.errors import RateLimited, Unavailable
from corral.core.observe.envelope import UnknownProjects
from corral.core.observe.ingest import IngestPipeline
from corral.core.observe.model import TelemetryBatch
from corral.fakes.observe import InMemoryProjectDirectory, InMemoryTelemetryStore
from tests.helpers import wait_until


def batch(n):
    return TelemetryBatch(logs=[log_row(i) for i in range(n)])


@pytest.fixture
async def store():
    return InMemoryTelemetryStore()


async def test_submit_returns_only_after_the_write_committed(store):
    writing, release = asyncio.Event(), asyncio.Event()
    write = store.write

    async def held_write(b):
        writing.set()
        await release.wait()
        await write(b)

    store.write = held_write
    pipe = IngestPipeline(writer=store)
    await pipe.start()
    task = asyncio.create_task(pipe.submit(batch(3)))
    await asyncio.wait_for(writing.wait(), 10)  # the write is in progress, not committed
    await asyncio.sleep(0.01)
    assert not task.done()
    assert store.logs == []
    release.set()
    await asyncio.wait_for(task, 10)
    assert len(store.logs) == 3
    await pipe.stop()


async def test_concurrent_requests_are_merged_into_few_transactions(store):
    store.delay = 0.02
    pipe = IngestPipeline(writer=store, writers=1, batch_records=1000)
    await pipe.start()
    await asyncio.gather(*(pipe.submit(batch(10)) for _ in range(20)))
    assert len(store.logs) == 200
    assert len(store.batches) < 20
    assert pipe.stats.committed_records == 200
    await pipe.stop()


async def test_full_queue_refuses_at_once_with_retry_after(store):
    store.delay = 0.2
    pipe = IngestPipeline(writer=store, writers=1, max_queued_records=25, retry_after_seconds=3)
    await pipe.start()
    first = asyncio.create_task(pipe.submit(batch(20)))
    await wait_until(lambda: pipe.queued_records == 20, what="the first batch to be queued")
    with pytest.raises(RateLimited) as exc:
        await pipe.submit(batch(10))
    assert exc.value.retry_after == 3
    await first
    assert len(store.logs) == 20
    await pipe.stop()


async def test_storage_failure_fails_every_waiting_request_and_recovers(store):
    store.fail_next = ConnectionError("db down")
    pipe = IngestPipeline(writer=store)
    await pipe.start()
    with pytest.raises(Unavailable):
        await pipe.submit(batch(2))
    assert store.logs == []
    await pipe.submit(batch(2))
    assert len(store.logs) == 2
    assert pipe.queued_records == 0
    await pipe.stop()


async def test_stop_drains_the_queue_then_refuses(store):
    store.delay = 0.01
    pipe = IngestPipeline(writer=store, writers=1)
    await pipe.start()
    tasks = [asyncio.create_task(pipe.submit(batch(5))) for _ in range(5)]
    await wait_until(lambda: pipe.stats.accepted_records == 25, what="every batch to be accepted")
    await pipe.stop()
    await asyncio.gather(*tasks)
    assert len(store.logs) == 25
    with pytest.raises(Unavailable):
        await pipe.submit(batch(1))


async def test_ingest_resolves_unknown_projects_once(store):
    pid = uuid.uuid4()
    directory = InMemoryProjectDirectory({"acme/app": pid})
    pipe = IngestPipeline(writer=store)
    await pipe.start()

    def convert(lookup):
        found = lookup("acme/app")
        if not isinstance(found, uuid.UUID):
            raise UnknownProjects({"acme/app"})
        return TelemetryBatch(logs=[log_row(0, project_id=found)])

    await pipe.ingest(convert, directory)
    await pipe.ingest(convert, directory)
    assert directory.lookups == 1
    assert [r["project_id"] for r in store.logs] == [pid, pid]
    await pipe.stop()
