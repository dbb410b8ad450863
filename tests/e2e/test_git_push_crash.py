"""A push cut off by ``kill -9`` of Corral before git moved any ref, then retried by the client: a real Corral
process on PostgreSQL, the real git client, a TCP relay that holds back the push body's last bytes (so the
intent is written, git is receiving the pack, and no ref can move yet) while Corral is killed.

The abandoned intent must not be recorded by the recovery once the retry moved the ref as it asked: exactly one
``push`` outbox event and one ``repo.push`` audit row for that move. And the quarantine directory of the killed
receive-pack (``objects/tmp_objdir-incoming-*``) must not outlive the restart once it is stale.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from tests.e2e.corral_process import CorralProcess, admin_env
from tests.e2e.gitkit import git, write

pytestmark = pytest.mark.e2e

ADMIN = ("root", "correct horse battery staple")
DEADLINE = 60.0


def _env(db_dsn: str, valkey_url: str, **extra: str) -> dict[str, str]:
    return {
        "CORRAL_DATABASE_URL": db_dsn, "CORRAL_VALKEY_URL": valkey_url, "CORRAL_LOG_LEVEL": "warning",
        **admin_env(ADMIN),
        # the recovery looks every half second at intents older than a second (defaults: 60 s, 2 min)
        "CORRAL_GIT_PUSH_RECOVERY_SECONDS": "0.5", "CORRAL_GIT_PUSH_RECOVERY_GRACE_SECONDS": "1", **extra,
    }


def _token(base: str) -> str:
    import http.cookiejar

    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def call(path: str, body: object, headers: dict[str, str] | None = None) -> dict:
        req = urllib.request.Request(base + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json", **(headers or {})})
        with opener.open(req, timeout=10) as resp:
            return json.loads(resp.read())

    login = call("/api/v1/auth/login", {"name": ADMIN[0], "password": ADMIN[1]})
    with opener.open(base + "/api/v1/permissions", timeout=10) as resp:
        scopes = [p["name"] for p in json.loads(resp.read())["items"]]
    created = call("/api/v1/tokens", {"name": "git", "scopes": scopes, "project": None, "expires_at": None},
                   {"X-CSRF-Token": login["csrf_token"]})
    return str(created["token"])


def _project(base: str, token: str) -> None:
    req = urllib.request.Request(f"{base}/api/v1/projects", data=json.dumps({"name": "app"}).encode(),
                                 method="POST", headers={"Content-Type": "application/json",
                                                         "Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 201


class StallingRelay:
    """A TCP relay to ``target`` that holds back the last 4 bytes a client sends once a receive-pack POST
    started on the connection: git on the server side waits for the rest of the pack and moves no ref."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> StallingRelay:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def _handle(self, creader: asyncio.StreamReader, cwriter: asyncio.StreamWriter) -> None:
        try:
            sreader, swriter = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:  # Corral is gone (killed): the client sees the connection end
            cwriter.close()
            return

        async def up() -> None:
            stall, seen, tail = False, b"", b""
            while data := await creader.read(65536):
                if not stall:
                    window = seen + data
                    stall = b"POST " in window and b"/git-receive-pack" in window
                    seen = window[-8192:]
                if stall:
                    data, tail = (tail + data)[:-4], (tail + data)[-4:]
                swriter.write(data)
                await swriter.drain()

        async def down() -> None:
            while data := await sreader.read(65536):
                cwriter.write(data)
                await cwriter.drain()

        try:
            await asyncio.wait([asyncio.ensure_future(up()), asyncio.ensure_future(down())],
                               return_when=asyncio.FIRST_COMPLETED)
        except OSError:
            pass
        finally:
            for w in (swriter, cwriter):
                w.close()


async def _until(what: str, check, deadline: float = DEADLINE):  # type: ignore[no-untyped-def]
    end = time.monotonic() + deadline
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"not within {deadline} s: {what}")
        await asyncio.sleep(0.1)


def _descendants(pid: int) -> list[int]:
    """The processes below ``pid`` (from /proc), children first."""
    kids: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            kids.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for kid in kids.get(todo.pop(), []):
            found.append(kid)
            todo.append(kid)
    return found


@pytest.fixture
async def pool(db_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    p = await asyncpg.create_pool(db_dsn, min_size=1, max_size=2)
    yield p
    await p.close()


@pytest.fixture
def servers() -> Iterator[list[CorralProcess]]:
    started: list[CorralProcess] = []
    yield started
    for server in started:
        server.kill()


async def _pushes(pool: asyncpg.Pool, after: str) -> tuple[int, int]:
    events = await pool.fetchval("SELECT count(*) FROM outbox WHERE topic = 'push' AND payload->>'after' = $1", after)
    audits = await pool.fetchval(
        "SELECT count(*) FROM audit_log, jsonb_array_elements(detail->'refs') AS r"
        " WHERE action = 'repo.push' AND r->>'after' = $1", after)
    return int(events), int(audits)


async def test_a_push_killed_before_any_ref_moved_then_retried_is_recorded_once(
    db_dsn: str, valkey_url: str, pool: asyncpg.Pool, servers: list[CorralProcess], tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    env = _env(db_dsn, valkey_url)
    server = CorralProcess.start(data, env)
    servers.append(server)
    token = await asyncio.to_thread(_token, server.base_url)
    await asyncio.to_thread(_project, server.base_url, token)
    work = tmp_path / "w"
    await git(tmp_path, "init", "-q", "-b", "main", str(work))
    write(work / "a.txt", "a")
    await git(work, "add", ".")
    await git(work, "commit", "-qm", "a")
    first = (await git(work, "rev-parse", "HEAD")).stdout.strip()
    await git(work, "push", f"{server.base_url}/root/app.git", "main", token=token)
    write(work / "b.bin", os.urandom(64 * 1024))  # a pack of some size: git is still receiving it
    await git(work, "add", ".")
    await git(work, "commit", "-qm", "b")
    second = (await git(work, "rev-parse", "HEAD")).stdout.strip()

    port = int(server.base_url.rsplit(":", 1)[1])
    async with StallingRelay(port) as relay:
        cut = asyncio.ensure_future(
            git(work, "push", f"http://127.0.0.1:{relay.port}/root/app.git", "main", token=token, check=False))
        try:
            await _until("the push's intent is written",
                         lambda: pool.fetchval("SELECT count(*) FROM git_push_intents"))
        except AssertionError:
            raise AssertionError(f"no intent; git: {await cut if cut.done() else 'running'}\n"
                                 f"{server.log_text()[-3000:]}") from None
        objects = data / "repos"

        async def receiving() -> list[Path]:
            return list(objects.rglob("tmp_objdir-incoming-*"))

        await _until("git receives the pack into its quarantine", receiving)
        # kill -9 of the whole process tree (an OOM kill of the container): git gets no chance to clean up
        # (all stopped first: a git that saw Corral die before its own SIGKILL would clean up after itself)
        os.kill(server.proc.pid, signal.SIGSTOP)
        victims = [*_descendants(server.proc.pid), server.proc.pid]
        for sig in (signal.SIGSTOP, signal.SIGKILL):
            for pid in victims:
                with contextlib.suppress(ProcessLookupError):  # a short-lived child may be gone already
                    os.kill(pid, sig)
        server.proc.wait(10)
        refused = await asyncio.wait_for(cut, DEADLINE)
    assert refused.returncode != 0
    (quarantine,) = list(objects.rglob("tmp_objdir-incoming-*"))
    assert await pool.fetchval("SELECT count(*) FROM git_push_intents") == 1  # abandoned, nothing moved
    assert await _pushes(pool, second) == (0, 0)
    past = time.time() - 2 * 3600  # as if the crash was two hours ago: stale for any replica
    for path in [*quarantine.rglob("*"), quarantine]:
        os.utime(path, (past, past))

    server = CorralProcess.start(data, env)
    servers.append(server)

    async def cleaned() -> bool:
        return not quarantine.exists()

    await _until("the stale quarantine is removed after the start", cleaned)
    url = f"{server.base_url}/root/app.git"
    assert (await git(work, "ls-remote", url, "refs/heads/main", token=token)).stdout.split()[0] == first
    await asyncio.sleep(2)  # the recovery sees the intent (older than its grace), nothing moved: kept
    assert await pool.fetchval("SELECT count(*) FROM git_push_intents") == 1
    await git(work, "push", url, "main", token=token)  # the client's retry: same first -> second
    assert (await git(work, "ls-remote", url, "refs/heads/main", token=token)).stdout.split()[0] == second

    async def settled() -> bool:
        return await pool.fetchval("SELECT count(*) FROM git_push_intents") == 0

    await _until("the recovery settles the abandoned intent", settled)
    await asyncio.sleep(1.5)  # a few more recovery rounds: nothing left to record twice
    assert await _pushes(pool, second) == (1, 1)
    assert await pool.fetchval("SELECT count(*) FROM outbox WHERE topic = 'push'") == 2  # first push, retry
    assert server.stop() == 0, server.log_text()[-3000:]
