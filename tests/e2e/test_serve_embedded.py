"""`corral serve` on the embedded default, as a user runs it: start, kill -9, start again, SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from corral.adapters.embedded import EmbeddedPostgres
from tests.helpers import embedded_data_dir

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None


Proc = tuple[int, str]  # (pid, start time): a pid alone may be reused by then


def running(proc: Proc) -> bool:
    """True while the process runs (a zombie waiting for a non-reaping init does not count)."""
    fields = _stat(proc[0])
    return fields is not None and fields[19] == proc[1] and fields[0] not in ("Z", "X")


def descendants(pid: int) -> list[Proc]:
    stats = {int(e.name): _stat(int(e.name)) for e in Path("/proc").iterdir() if e.name.isdigit()}
    found: list[Proc] = []
    todo = [pid]
    while todo:
        current = todo.pop()
        kids = [child for child, fields in stats.items() if fields and int(fields[1]) == current]
        found += [(kid, stats[kid][19]) for kid in kids]  # type: ignore[index]
        todo += kids
    return found


class Serve:
    """One `python -m corral serve` process on a data directory and port."""

    def __init__(self, data_dir: Path, port: int) -> None:
        self.data_dir, self.port = data_dir, port
        self.proc: asyncio.subprocess.Process | None = None
        self.log = data_dir / "serve.log"

    async def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CORRAL_")}  # the embedded default
        env.update(CORRAL_DATA_DIR=str(self.data_dir), CORRAL_PORT=str(self.port))
        with self.log.open("ab") as log:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "corral", "serve", cwd=REPO, env=env, stdout=log, stderr=log
            )

    async def wait_healthy(self, timeout: float) -> None:
        assert self.proc is not None
        url = f"http://127.0.0.1:{self.port}/healthz"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
            while True:
                if self.proc.returncode is not None:
                    pytest.fail(f"corral serve exited with {self.proc.returncode}:\n{self.tail()}")
                try:
                    async with http.get(url) as resp:
                        if resp.status == 200:
                            assert (await resp.json())["status"] == "ok"
                            return
                except (aiohttp.ClientError, OSError, TimeoutError):
                    pass
                if loop.time() > deadline:
                    pytest.fail(f"{url} did not answer 200 within {timeout:.0f} s:\n{self.tail()}")
                await asyncio.sleep(0.1)

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


@pytest.fixture
def data_dir() -> Iterator[Path]:
    with embedded_data_dir("corral-e2e-serve-") as path:
        yield path


@pytest.fixture
async def serve_factory(data_dir: Path) -> AsyncIterator[list[Serve]]:
    started: list[Serve] = []
    yield started
    for server in started:  # whatever the test did, leave no server behind
        if server.proc is not None and server.proc.returncode is None:
            server.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(server.proc.wait(), 60)
            except TimeoutError:
                server.proc.kill()
                await server.proc.wait()


async def test_serve_survives_kill_9_and_stops_cleanly_on_sigterm(
    data_dir: Path, serve_factory: list[Serve]
) -> None:
    port = free_port()
    first = Serve(data_dir, port)
    serve_factory.append(first)
    await first.start()
    await first.wait_healthy(60)
    assert first.proc is not None

    dsn = EmbeddedPostgres(data_dir / "postgres").dsn()
    conn = await asyncpg.connect(dsn)
    await conn.execute("CREATE TABLE e2e_marker (note text); INSERT INTO e2e_marker VALUES ('first run')")
    await conn.close()

    first_children = descendants(first.proc.pid)
    assert first_children, "the embedded PostgreSQL and Valkey run as children of corral serve"
    first.proc.send_signal(signal.SIGKILL)
    await first.proc.wait()

    second = Serve(data_dir, port)
    serve_factory.append(second)
    await second.start()
    await second.wait_healthy(15)
    assert second.proc is not None
    assert not [p for p in first_children if running(p)], "servers of the killed run are still up"

    conn = await asyncpg.connect(dsn)
    assert await conn.fetchval("SELECT note FROM e2e_marker") == "first run"
    await conn.close()

    second_children = descendants(second.proc.pid)
    assert second_children
    second.proc.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(second.proc.wait(), 60) == 0, second.tail()
    assert not [p for p in second_children if running(p)], "SIGTERM left children running"
