"""Issue 19 with external services: PostgreSQL and Valkey killed and started again under a running Corral.

Each test owns its servers (tests/servicekit, restarted on the same port and data by ``kill()`` and
``resume()``), so the session's shared servers are never disturbed. Under load every answer is a success or
a clean 503 with Retry-After, every acknowledged write is there afterwards, /healthz stays 200 (an external
dependency being down is readiness, not liveness), /readyz names the failing dependency and only
administrators see why, and a token revoked while Valkey is down stays refused after it comes back.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.e2e.corral_process import CorralProcess
from tests.e2e.outage_load import ADMIN_ENV, Load, admin_token, wait_for_status
from tests.servicekit.postgres import PostgresServer
from tests.servicekit.valkey import ValkeyServer


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    # synchronous_commit on: a commit acknowledged before its WAL reached the kernel is lost in a crash
    server = PostgresServer.start(settings={"synchronous_commit": "on"})
    yield server
    server.stop()


@pytest.fixture
def own_valkey() -> Iterator[ValkeyServer]:
    server = ValkeyServer.start()
    yield server
    server.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        yield session


async def _status(http: aiohttp.ClientSession, url: str, token: str | None = None) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with http.get(url, headers=headers) as resp:
        return resp.status


async def test_postgres_and_valkey_restarts_are_ridden_out(
    tmp_path: Path, own_postgres: PostgresServer, own_valkey: ValkeyServer, http: aiohttp.ClientSession
) -> None:
    server = CorralProcess.start(tmp_path, {
        **ADMIN_ENV, "CORRAL_DATABASE_URL": own_postgres.dsn("postgres"), "CORRAL_VALKEY_URL": own_valkey.url(),
    }, timeout=120)
    try:
        base = server.base_url
        admin, _ = await admin_token(base)
        victim, victim_id = await admin_token(base, scopes=["project:read"])
        load = Load(base, admin)
        await load.create_project()
        load.start()
        await asyncio.sleep(1.5)

        # PostgreSQL crashes and stays down for 2 s
        down = time.monotonic()
        await asyncio.to_thread(own_postgres.kill)
        anonymous = await wait_for_status(http, base + "/readyz", 503, timeout=15)
        assert anonymous["checks"]["postgresql"] == "unavailable", anonymous
        assert str(own_postgres.port) not in str(anonymous), "addresses are for administrators"
        assert await _status(http, base + "/healthz") == 200
        await asyncio.sleep(2.0)
        await asyncio.to_thread(own_postgres.resume)
        back = time.monotonic()
        pg_recovery = await load.recovered_since(back, timeout=30)
        await wait_for_status(http, base + "/readyz", 200, timeout=30)

        # Valkey crashes (losing its data); a token is revoked while it is down
        me = base + "/api/v1/me"
        for _ in range(3):
            assert await _status(http, me, victim) == 200  # cached locally and in Valkey
        await asyncio.to_thread(own_valkey.kill)
        anonymous = await wait_for_status(http, base + "/readyz", 503, timeout=15)
        assert anonymous["checks"]["valkey"] == "unavailable" and "valkey" in anonymous["detail"]
        async with http.get(base + "/readyz", headers={"Authorization": f"Bearer {admin}"}) as resp:
            detailed = await resp.json()
        assert detailed["checks"]["valkey"].startswith("failing: "), detailed
        async with http.delete(f"{base}/api/v1/tokens/{victim_id}", headers={"Authorization": f"Bearer {admin}"}) as r:
            assert r.status in (200, 204), await r.text()
        assert await _status(http, me, victim) == 401, "a token revoked while Valkey is down must be refused"
        assert await _status(http, me, admin) == 200, "authentication works without the cache"
        assert await _status(http, base + "/healthz") == 200
        await asyncio.sleep(2.0)
        await asyncio.to_thread(own_valkey.resume)
        await wait_for_status(http, base + "/readyz", 200, timeout=30)
        for _ in range(3):
            assert await _status(http, me, victim) == 401
        valkey_recovery = await load.recovered_since(time.monotonic(), timeout=30)
        await asyncio.sleep(1.0)
        await load.stop()

        assert server.proc.poll() is None
        assert not load.bad, load.bad[:10]
        assert load.statuses[503] > 0, "the outage was seen by the load"
        await load.verify()
        print(f"external PostgreSQL down {back - down:.1f} s, writes again {pg_recovery:.2f} s after it was back; "
              f"after Valkey came back writes ok within {valkey_recovery:.2f} s; {dict(load.statuses)}")
    finally:
        code = server.stop()
        print("\n".join(line[:4000] for line in server.log_text().splitlines() if _worth_showing(line)))
    assert code == 0


def _worth_showing(line: str) -> bool:
    """Corral's log without its access log (but with errors, which the access logger also reports)."""
    return '"corral.http"' not in line or '"error"' in line
