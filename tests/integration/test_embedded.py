"""The embedded PostgreSQL and Valkey against the real wheels: start, reuse, recover after kill -9, stop."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as aioredis

from corral.adapters.embedded import EmbeddedPostgres, EmbeddedValkey, children
from corral.core.errors import Unavailable

pytestmark = pytest.mark.integration


@pytest.fixture
def root_dir() -> Iterator[Path]:
    """A private temporary directory outside pytest's own.

    As root the servers run as an unprivileged account that must traverse the path; pytest
    resets /tmp/pytest-of-<user> to 0700 whenever any pytest session starts on the machine.
    """
    path = Path(tempfile.mkdtemp(prefix="corral-embedded-"))
    yield path
    # A failed test may leave servers behind (the kill -9 tests make orphans on purpose).
    for sub, program in (("postgres", "postgres"), ("valkey", "valkey-server")):
        for pid in children.find_survivors(path / sub, program):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    shutil.rmtree(path, ignore_errors=True)


def gone(pid: int) -> bool:
    """True when pid no longer runs (a zombie waiting for a non-reaping init counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


async def wait_gone(pids: list[int], timeout: float = 15.0) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if all(gone(p) for p in pids):
            return True
        await asyncio.sleep(0.05)
    return False


async def test_both_start_answer_and_stop(root_dir: Path) -> None:
    pg, vk = EmbeddedPostgres(root_dir / "postgres"), EmbeddedValkey(root_dir / "valkey")
    dsn, url = await asyncio.gather(pg.start(), vk.start())
    pids = [pg.pid, vk.pid]
    try:
        conn = await asyncpg.connect(dsn)
        try:
            assert await conn.fetchval("SELECT 1") == 1
            assert await conn.fetchval("SELECT current_database()") == "corral"
        finally:
            await conn.close()
        assert url.startswith("redis://")
        assert "@127.0.0.1:" in url
        assert url.endswith("/0")
        client = aioredis.Redis.from_url(url)
        try:
            assert await client.ping() is True
        finally:
            await client.aclose()
        # Without the password the server refuses: other local users get nothing.
        bare = aioredis.Redis.from_url("redis://" + url.rpartition("@")[2])
        try:
            with pytest.raises(Exception, match=r"(?i)auth"):
                await bare.get("k")
        finally:
            await bare.aclose()
    finally:
        await asyncio.gather(pg.stop(), vk.stop())
    assert all(p is not None and gone(p) for p in pids)
    assert pg.pid is None
    assert vk.pid is None
    await pg.stop()  # idempotent
    await vk.stop()


async def test_valkey_memory_is_bounded_and_only_ttl_keys_are_evicted(root_dir: Path) -> None:
    from corral.adapters.valkey_authz import EPOCH_KEY

    vk = EmbeddedValkey(root_dir / "valkey", maxmemory_bytes=4 * 1024 * 1024)
    client = aioredis.Redis.from_url(await vk.start())
    try:
        config = await client.config_get("maxmemory*")
        assert config["maxmemory"] == str(4 * 1024 * 1024)
        assert config["maxmemory-policy"] == "volatile-lru"
        await client.incr(EPOCH_KEY)  # the authz epoch: no TTL, needed for correctness
        blob = b"x" * 1024
        for start in range(0, 20_000, 500):  # ~20 MB of cache entries into 4 MB
            async with client.pipeline(transaction=False) as pipe:
                for i in range(start, start + 500):
                    pipe.set(f"corral:authz:1:perm:{i}", blob, px=300_000)
                await pipe.execute()
        stats = await client.info("stats")
        assert stats["evicted_keys"] > 0
        assert (await client.info("memory"))["used_memory"] <= 5 * 1024 * 1024
        assert await client.get(EPOCH_KEY) == b"1"
        assert await client.incr(EPOCH_KEY) == 2  # writes still work at the bound
    finally:
        await client.aclose()
        await vk.stop()


def test_valkey_refuses_a_policy_that_may_evict_needed_keys(root_dir: Path) -> None:
    with pytest.raises(ValueError, match="volatile-lru"):
        EmbeddedValkey(root_dir / "valkey", maxmemory_policy="allkeys-lru")


async def test_second_start_reuses_the_data(root_dir: Path) -> None:
    pg, vk = EmbeddedPostgres(root_dir / "postgres"), EmbeddedValkey(root_dir / "valkey")
    dsn, url = await asyncio.gather(pg.start(), vk.start())
    conn = await asyncpg.connect(dsn)
    await conn.execute("CREATE TABLE kept (v text); INSERT INTO kept VALUES ('first run')")
    await conn.close()
    client = aioredis.Redis.from_url(url)
    await client.set("kept", "warm")
    await client.aclose()
    await asyncio.gather(pg.stop(), vk.stop())

    pg2, vk2 = EmbeddedPostgres(root_dir / "postgres"), EmbeddedValkey(root_dir / "valkey")
    dsn2, url2 = await asyncio.gather(pg2.start(), vk2.start())
    try:
        conn = await asyncpg.connect(dsn2)
        assert await conn.fetchval("SELECT v FROM kept") == "first run"
        await conn.close()
        client = aioredis.Redis.from_url(url2)
        assert await client.get("kept") == b"warm"
        await client.aclose()
    finally:
        await asyncio.gather(pg2.stop(), vk2.stop())


async def test_a_second_owner_of_the_same_root_is_refused(root_dir: Path) -> None:
    pg, vk = EmbeddedPostgres(root_dir / "postgres"), EmbeddedValkey(root_dir / "valkey")
    dsn, _url = await asyncio.gather(pg.start(), vk.start())
    try:
        with pytest.raises(Unavailable, match="in use by another Corral process"):
            await EmbeddedPostgres(root_dir / "postgres").start()
        with pytest.raises(Unavailable, match="in use by another Corral process"):
            await EmbeddedValkey(root_dir / "valkey").start()
        conn = await asyncpg.connect(dsn)  # the first owner's server was left alone
        assert await conn.fetchval("SELECT 1") == 1
        await conn.close()
    finally:
        await asyncio.gather(pg.stop(), vk.stop())


async def test_a_stale_postmaster_pid_naming_an_unrelated_process_is_cleared(root_dir: Path) -> None:
    pg = EmbeddedPostgres(root_dir / "postgres")
    await pg.start()
    await pg.stop()
    unrelated = subprocess.Popen(["sleep", "60"])
    try:
        # As if the postmaster had died and its pid been reused: PostgreSQL alone would refuse to start.
        (pg.data / "postmaster.pid").write_text(f"{unrelated.pid}\n{pg.data}\n0\n5432\n\n\n0 0\nready\n")
        dsn = await pg.start()
        conn = await asyncpg.connect(dsn)
        assert await conn.fetchval("SELECT 1") == 1
        await conn.close()
    finally:
        unrelated.kill()
        unrelated.wait()
        await pg.stop()


# A Corral stand-in that starts both servers, writes data, reports its children and waits to be killed.
_VICTIM = """
import asyncio, json, os, sys
from pathlib import Path
import asyncpg, redis.asyncio as aioredis
from corral.adapters.embedded import EmbeddedPostgres, EmbeddedValkey, children

if os.environ["EMBEDDED_TEST_NO_PDEATHSIG"] == "1":
    children.SETPRIV = None  # no parent-death signal: the servers outlive this process

async def main():
    root = Path(os.environ["EMBEDDED_TEST_ROOT"])
    pg, vk = EmbeddedPostgres(root / "postgres"), EmbeddedValkey(root / "valkey")
    try:
        dsn, url = await asyncio.gather(pg.start(), vk.start())
    except BaseException:
        await asyncio.gather(pg.stop(), vk.stop())
        raise
    conn = await asyncpg.connect(dsn)
    await conn.execute("CREATE TABLE survivor (v text); INSERT INTO survivor VALUES ('before kill -9')")
    await conn.close()
    client = aioredis.Redis.from_url(url)
    await client.set("survivor", "cached")
    await client.aclose()
    print(json.dumps({"pg": pg.pid, "vk": vk.pid}), flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


@pytest.mark.parametrize("orphans", [False, True], ids=["die-with-parent", "orphans-survive"])
async def test_start_after_kill_9_recovers_with_the_data(root_dir: Path, orphans: bool) -> None:
    env = {**os.environ, "EMBEDDED_TEST_ROOT": str(root_dir), "EMBEDDED_TEST_NO_PDEATHSIG": str(int(orphans))}
    victim = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _VICTIM, env=env, stdout=asyncio.subprocess.PIPE
    )
    try:
        assert victim.stdout is not None
        line = await asyncio.wait_for(victim.stdout.readline(), 120)
        old = json.loads(line)
    finally:
        victim.send_signal(signal.SIGKILL)
        await victim.wait()
    if orphans:  # the situation under test: the previous servers are still running
        assert not gone(old["pg"])
        assert not gone(old["vk"])
    else:  # the parent-death signal shut them down, cleanly
        assert await wait_gone([old["pg"], old["vk"]]), "the servers outlived their killed parent"
        assert "database system is shut down" in (root_dir / "postgres" / "postgres.log").read_text()

    pg, vk = EmbeddedPostgres(root_dir / "postgres"), EmbeddedValkey(root_dir / "valkey")
    dsn, url = await asyncio.gather(pg.start(), vk.start())
    try:
        assert gone(old["pg"])
        assert gone(old["vk"])
        assert pg.pid != old["pg"]
        assert vk.pid != old["vk"]
        conn = await asyncpg.connect(dsn)
        assert await conn.fetchval("SELECT v FROM survivor") == "before kill -9"
        await conn.close()
        client = aioredis.Redis.from_url(url)
        assert await client.get("survivor") == b"cached"
        await client.aclose()
    finally:
        await asyncio.gather(pg.stop(), vk.stop())


async def test_a_deep_data_directory_gets_its_socket_in_a_short_private_directory(root_dir: Path) -> None:
    pg = EmbeddedPostgres(root_dir / ("deep" * 20) / "postgres")
    assert not str(pg.socket_dir()).startswith(str(root_dir))  # the unix socket path limit is 108 bytes
    try:
        dsn = await pg.start()
        assert dsn == pg.dsn()
        conn = await asyncpg.connect(dsn)
        assert await conn.fetchval("SELECT 1") == 1
        await conn.close()
        assert pg.socket_dir().stat().st_mode & 0o077 == 0
    finally:
        await pg.stop()
        shutil.rmtree(pg.socket_dir(), ignore_errors=True)


async def test_a_server_dying_under_corral_is_reported(root_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    vk = EmbeddedValkey(root_dir / "valkey")
    await vk.start()
    try:
        assert vk.pid is not None
        os.kill(vk.pid, signal.SIGKILL)
        with caplog.at_level("ERROR", logger="corral.adapters.embedded"):
            for _ in range(200):
                if "exited unexpectedly" in caplog.text:
                    break
                await asyncio.sleep(0.05)
        assert "the embedded Valkey" in caplog.text
        assert "exited unexpectedly" in caplog.text
    finally:
        await vk.stop()
    assert vk.pid is None
