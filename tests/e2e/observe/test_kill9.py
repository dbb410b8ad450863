"""kill -9 during sustained ingest loses no acknowledged record."""

from __future__ import annotations

import asyncio
import os
import time

import aiohttp
import asyncpg
import pytest

from tests.e2e.observe.conftest import TOKEN
from tests.otlp_payloads import logs_request

pytestmark = pytest.mark.e2e

BATCH = 500


async def sender(url: str, name: str, acked: list[str], stop: asyncio.Event) -> int:
    """POST batches until the server dies; remember every batch answered 200."""
    sent = 0
    async with aiohttp.ClientSession(
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/x-protobuf"}
    ) as http:
        seq = 0
        while not stop.is_set():
            tag = f"k9-{name}-{seq}-end"
            body = logs_request(BATCH, message=tag, service="kill9").SerializeToString()
            seq += 1
            try:
                async with http.post(url, data=body, timeout=aiohttp.ClientTimeout(total=30)) as r:
                    await r.read()
                    if r.status == 200:
                        acked.append(tag)
            except (TimeoutError, aiohttp.ClientError, OSError):
                await asyncio.sleep(0.05)
            sent += 1
    return sent


async def test_kill_minus_9_during_sustained_ingest_loses_no_acknowledged_record(corral):
    acked: list[str] = []
    stop = asyncio.Event()
    tasks = [asyncio.create_task(sender(f"{corral.otlp}/v1/logs", str(i), acked, stop)) for i in range(6)]
    deadline = time.monotonic() + 60
    while len(acked) < 20 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert len(acked) >= 20, "the server acknowledged too little before the kill"
    os.kill(corral.proc.pid, 9)  # mid-stream: requests are in the queue and in COPY right now
    await asyncio.sleep(0.5)
    stop.set()
    await asyncio.gather(*tasks)
    conn = await asyncpg.connect(corral.dsn)
    try:
        rows = await conn.fetch("SELECT message, count(*) FROM log_entries WHERE service = 'kill9' GROUP BY message")
    finally:
        await conn.close()
    stored = {r[0]: r[1] for r in rows}
    missing = [tag for tag in acked if stored.get(tag, 0) < BATCH]
    assert missing == []
    # batches are all-or-nothing: a batch is stored whole or not at all
    assert all(count == BATCH for count in stored.values())
    # and the restarted server serves them
    corral.start()
    status, page = corral.get(f"/api/v1/observe/logs?q={acked[-1]}&limit=500")
    assert status == 200
    assert len(page["items"]) == BATCH
