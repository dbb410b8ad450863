"""The whole platform on PostgreSQL + Valkey (start_platform, every wiring), driven by the real git CLI:
push, push event in the PostgreSQL outbox, concurrent issue numbers, merge conflict 409."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from corral.core.identity.commands import NewToken, NewUser
from corral.core.identity.kit import IdentityServices
from corral.core.identity.service import SYSTEM
from corral.entrypoints.bootstrap import start_platform
from corral.entrypoints.config import Settings
from corral.entrypoints.web.app import create_app
from tests.e2e.gitkit import _HOME, git, write

pytestmark = pytest.mark.e2e


@pytest.fixture
async def platform_app(tmp_path: Path, db_dsn: str, valkey_url: str):
    _HOME[:] = [tmp_path / ".home"]
    settings = Settings(database_url=db_dsn, valkey_url=valkey_url, data_dir=tmp_path / "data",
                        webhook_allow_private_targets=True)
    platform = await start_platform(settings)
    platform.start_background()
    runner = web.AppRunner(create_app(platform))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
    yield platform, base
    await runner.cleanup()
    await platform.aclose()


async def test_platform_push_issues_and_conflict(platform_app, tmp_path: Path) -> None:
    platform, base = platform_app
    ids: IdentityServices = platform.resolve(IdentityServices)
    await ids.users.create(SYSTEM, NewUser(name="alice", email="alice@example.com", password="correct horse battery",
                                           admin=True))
    held = await ids.authorizer.user_permissions((await ids.users.get("alice")).id, None)
    token = (await ids.tokens.create(SYSTEM, NewToken(name="t", scopes=sorted(held), user="alice"))).secret
    auth = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(headers=auth) as s:
        async with s.post(f"{base}/api/v1/projects", json={"name": "app"}) as r:
            assert r.status == 201, await r.text()
        url = f"{base}/alice/app.git"
        work = tmp_path / "w"
        await git(tmp_path, "clone", url, "w", token=token)
        write(work / "a.txt", "base\n")
        await git(work, "add", ".")
        await git(work, "commit", "-qm", "base")
        await git(work, "push", "origin", "main", token=token)
        await git(work, "checkout", "-qb", "clash")
        write(work / "a.txt", "clash\n")
        await git(work, "commit", "-qam", "clash")
        await git(work, "push", "origin", "clash", token=token)
        await git(work, "checkout", "-q", "main")
        write(work / "a.txt", "moved\n")
        await git(work, "commit", "-qam", "moved")
        await git(work, "push", "origin", "main", token=token)
        pool = platform.pg_pool
        topics = [r["topic"] for r in await pool.fetch("SELECT topic FROM outbox ORDER BY id")]
        assert topics.count("push") == 3
        assert await pool.fetchval("SELECT count(*) FROM git_push_intents") == 0  # each claimed by its record

        async def create(i: int) -> int:
            async with s.post(f"{base}/api/v1/projects/alice/app/issues", json={"title": f"t{i}"}) as r:
                assert r.status == 201, await r.text()
                return (await r.json())["number"]

        numbers = await asyncio.gather(*(create(i) for i in range(200)))
        assert sorted(numbers) == list(range(1, 201))
        async with s.post(f"{base}/api/v1/projects/alice/app/merge-requests",
                          json={"source_branch": "clash", "target_branch": "main", "title": "x"}) as r:
            assert r.status == 201
        heads = (await git(work, "ls-remote", url, token=token)).stdout
        async with s.post(f"{base}/api/v1/projects/alice/app/merge-requests/1/merge", json={}) as r:
            assert r.status == 409
            assert (await r.json())["paths"] == ["a.txt"]
        assert (await git(work, "ls-remote", url, token=token)).stdout == heads
        audit = [r["action"] for r in await pool.fetch("SELECT action FROM audit_log")]
        assert audit.count("issue.create") == 200 and "project.create" in audit and "repo.push" in audit
