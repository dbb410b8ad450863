"""Issue 19 with external services: PostgreSQL and Valkey killed and started again under a running Corral.

Each test owns its servers (tests/servicekit, restarted on the same port and data by ``kill()`` and
``resume()``), so the session's shared servers are never disturbed. Under load every answer is a success or
a clean 503 with Retry-After, every acknowledged write is there afterwards, /healthz stays 200 (an external
dependency being down is readiness, not liveness), /readyz names the failing dependency and only
administrators see why, and a token revoked while Valkey is down stays refused after it comes back.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.e2e.corral_process import CorralProcess
from tests.e2e.outage_load import ADMIN, ADMIN_ENV, PROJECT, SERVICE, Load, _otlp_logs, admin_token, wait_for_status
from tests.servicekit.postgres import PostgresServer
from tests.servicekit.s3 import S3Server
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
def own_s3() -> Iterator[S3Server]:
    server = S3Server.start()
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


async def _log_messages(http: aiohttp.ClientSession, base: str, token: str) -> list[str]:
    async with http.get(f"{base}/api/v1/observe/logs?service={SERVICE}&limit=500&since=1h",
                        headers={"Authorization": f"Bearer {token}"}) as resp:
        assert resp.status == 200, await resp.text()
        return [item["message"] for item in (await resp.json())["items"]]


async def test_object_store_outage_is_ridden_out(
    tmp_path: Path, own_postgres: PostgresServer, own_valkey: ValkeyServer, own_s3: S3Server,
    http: aiohttp.ClientSession,
) -> None:
    bucket = own_s3.new_bucket()
    server = CorralProcess.start(tmp_path, {
        **ADMIN_ENV, "CORRAL_DATABASE_URL": own_postgres.dsn("postgres"), "CORRAL_VALKEY_URL": own_valkey.url(),
        "CORRAL_S3_ENDPOINT": own_s3.endpoint, "CORRAL_S3_BUCKET": bucket, "CORRAL_S3_REGION": own_s3.region,
        "CORRAL_S3_ACCESS_KEY": own_s3.access_key, "CORRAL_S3_SECRET_KEY": own_s3.secret_key,
    }, timeout=120)
    try:
        base = server.base_url
        admin, _ = await admin_token(base)
        auth = {"Authorization": f"Bearer {admin}"}
        await Load(base, admin).create_project()
        content = b"large file contents " * 1000
        oid = hashlib.sha256(content).hexdigest()
        lfs = f"{base}/{ADMIN[0]}/{PROJECT}/info/lfs/objects/{oid}"
        async with http.put(lfs, data=content, headers={**auth, "Content-Type": "application/octet-stream"}) as r:
            assert r.status in (200, 201, 204), await r.text()
        async with http.get(lfs, headers=auth) as r:
            assert r.status == 200 and await r.read() == content
        sent = [f"cold {i}" for i in range(20)]
        for message in sent:
            async with http.post(f"{base}/v1/logs", json=_otlp_logs(message), headers=auth) as r:
                assert r.status == 200, await r.text()
        deadline = time.monotonic() + 20
        while set(sent) - set(await _log_messages(http, base, admin)):
            assert time.monotonic() < deadline, "the log records were not ingested"
            await asyncio.sleep(0.2)

        down = time.monotonic()
        await asyncio.to_thread(own_s3.kill)
        anonymous = await wait_for_status(http, base + "/readyz", 503, timeout=30)
        assert anonymous["checks"]["object_store"] == "unavailable", anonymous
        assert own_s3.endpoint not in str(anonymous), "addresses are for administrators"
        assert await _status(http, base + "/healthz") == 200
        async with http.get(lfs, headers=auth) as r:
            assert r.status == 503 and r.headers.get("Retry-After"), (r.status, await r.text())
        batch = {"operation": "download", "objects": [{"oid": oid, "size": len(content)}]}
        async with http.post(f"{base}/{ADMIN[0]}/{PROJECT}/info/lfs/objects/batch", json=batch,
                             headers={**auth, "Accept": "application/vnd.git-lfs+json"}) as r:
            assert r.status == 503 and r.headers.get("Retry-After"), (r.status, await r.text())
        async with http.post(f"{base}/api/v1/observe/rotate?older_than=0s", headers=auth) as r:
            assert r.status == 503 and r.headers.get("Retry-After"), (r.status, await r.text())
        assert set(sent) <= set(await _log_messages(http, base, admin)), "hot rows kept while S3 is down"
        answered_503 = time.monotonic() - down

        await asyncio.to_thread(own_s3.resume)
        back = time.monotonic()
        while True:
            async with http.get(lfs, headers=auth) as r:
                if r.status == 200:
                    assert await r.read() == content
                    break
                assert r.status == 503 and time.monotonic() - back < 30, (r.status, await r.text())
            await asyncio.sleep(0.1)
        recovery = time.monotonic() - back
        await wait_for_status(http, base + "/readyz", 200, timeout=30)
        async with http.post(f"{base}/api/v1/observe/rotate?older_than=0s", headers=auth) as r:
            assert r.status == 200, await r.text()
            report = await r.json()
        assert report["rows"] >= len(sent), report
        assert set(sent) <= set(await _log_messages(http, base, admin)), "rows lost in the rotation"
        assert server.proc.poll() is None
        print(f"S3 down: 503s within {answered_503:.2f} s; LFS downloads again {recovery:.2f} s after S3 was back;"
              f" rotation after: {report}")
    finally:
        code = server.stop()
        print("\n".join(line[:4000] for line in server.log_text().splitlines() if _worth_showing(line)))
    assert code == 0


def _worth_showing(line: str) -> bool:
    """Corral's log without its access log (but with errors, which the access logger also reports)."""
    return '"corral.http"' not in line or '"error"' in line
