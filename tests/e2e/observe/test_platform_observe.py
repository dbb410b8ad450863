"""The whole platform (start_platform, every wiring: identity tokens, projects, observability) on
PostgreSQL + Valkey, fed by the real OpenTelemetry SDK exporters with a project-restricted token."""

from __future__ import annotations

import asyncio
import logging
import uuid
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
from tests.e2e.observe.test_otlp_e2e import send_with_sdk

pytestmark = pytest.mark.e2e


@pytest.fixture
async def platform_app(tmp_path: Path, db_dsn: str, valkey_url: str):
    settings = Settings(database_url=db_dsn, valkey_url=valkey_url, data_dir=tmp_path / "data",
                        validate_responses=True)  # every JSON answer must match its documented schema
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


async def test_sdk_telemetry_with_a_project_token_on_the_full_platform(platform_app, caplog) -> None:
    caplog.set_level(logging.INFO, logger="corral")  # as `corral serve` logs by default (CORRAL_LOG_LEVEL=info)
    platform, base = platform_app
    ids: IdentityServices = platform.resolve(IdentityServices)
    await ids.users.create(SYSTEM, NewUser(name="alice", email="alice@example.com", password="correct horse battery",
                                           admin=True))
    held = await ids.authorizer.user_permissions((await ids.users.get("alice")).id, None)
    admin_token = (
        await ids.tokens.create(SYSTEM, NewToken(name="admin", scopes=sorted(held), user="alice"))
    ).secret
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {admin_token}"}) as s:
        async with s.post(f"{base}/api/v1/projects", json={"name": "app"}) as r:
            assert r.status == 201, await r.text()
            project_id = uuid.UUID((await r.json())["id"])
        async with s.post(
            f"{base}/api/v1/tokens",
            json={"name": "agent", "project": "alice/app", "scopes": ["observe:write", "observe:read"]},
        ) as r:
            assert r.status == 201, await r.text()
            agent_token = (await r.json())["token"]

    session_id = f"sess-{uuid.uuid4().hex[:8]}"
    needle = uuid.uuid4().hex
    trace_id = await asyncio.to_thread(
        send_with_sdk, base, session_id, needle, agent_token, {"corral.project": "alice/app"}
    )
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {agent_token}"}) as s:
        async with s.get(f"{base}/api/v1/observe/logs", params={"project": "alice/app", "trace_id": trace_id}) as r:
            assert r.status == 200, await r.text()
            items = (await r.json())["items"]
        assert len(items) == 3
        assert {i["project"] for i in items} == {"alice/app"}
        assert {i["session_id"] for i in items} == {session_id}
        async with s.get(f"{base}/api/v1/observe/traces/{trace_id}", params={"project": "alice/app"}) as r:
            assert r.status == 200
            assert len((await r.json())["spans"]) == 2
        # the project token cannot read platform-wide
        async with s.get(f"{base}/api/v1/observe/logs", params={"trace_id": trace_id}) as r:
            assert r.status in (200, 403)
            if r.status == 200:  # answered for its own project only
                assert {i["project"] for i in (await r.json())["items"]} <= {"alice/app"}
    # Corral's own request log went through the same pipeline, carrying the request's envelope
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {admin_token}"}) as s:
        for _ in range(50):
            async with s.get(f"{base}/api/v1/observe/logs", params={"service": "corral", "q": "/v1/logs"}) as r:
                own = (await r.json())["items"]
            if own:
                break
            await asyncio.sleep(0.2)
        assert own, "Corral's own access log did not reach its telemetry"
        assert own[0]["trace_id"] and own[0]["attributes"]["http_status"] == 200
    assert project_id.version in (4, 7)
