"""Deleting users on PostgreSQL: a user who granted role bindings can be deleted (the bindings stay); a user
whose work other rows reference gets a 409 that says what to do instead."""

from __future__ import annotations

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from corral.core.identity.commands import NewToken, NewUser
from corral.core.identity.kit import IdentityServices
from corral.core.identity.service import SYSTEM
from corral.entrypoints.bootstrap import start_platform
from corral.entrypoints.config import Settings
from corral.entrypoints.web.app import create_app
from corral.entrypoints.web.security import ProjectLookup

pytestmark = pytest.mark.integration


async def _admin_token(ids: IdentityServices, name: str) -> dict[str, str]:
    await ids.users.create(SYSTEM, NewUser(name=name, email=f"{name}@example.com", password="admin password",
                                           admin=True))
    held = await ids.authorizer.user_permissions((await ids.users.get(name)).id, None)
    token = await ids.tokens.create(SYSTEM, NewToken(name="t", scopes=sorted(held), user=name))
    return {"Authorization": f"Bearer {token.secret}"}


async def test_deleting_granters_and_referenced_users(db_dsn, valkey_url, tmp_path):
    settings = Settings(database_url=db_dsn, valkey_url=valkey_url, data_dir=tmp_path, log_level="error")
    platform = await start_platform(settings)
    client = TestClient(TestServer(create_app(platform)))
    await client.start_server()
    try:
        ids: IdentityServices = platform.resolve(IdentityServices)
        root, other = await _admin_token(ids, "root"), await _admin_token(ids, "other")
        resp = await client.post("/api/v1/users", headers=root, json={
            "name": "dev", "email": "dev@example.com", "password": "dev password 1"})
        assert resp.status == 201
        resp = await client.post("/api/v1/role-bindings", headers=root, json={"user": "dev", "role": "viewer"})
        assert resp.status == 201, await resp.text()
        binding = await resp.json()
        assert binding["granted_by"] == "root"
        assert (await client.delete("/api/v1/users/root", headers=other)).status == 204
        listed = await (await client.get("/api/v1/role-bindings?user=dev", headers=other)).json()
        assert [(b["id"], b["granted_by"]) for b in listed["items"]] == [(binding["id"], None)]

        resp = await client.post("/api/v1/projects", headers=other, json={"name": "app"})
        assert resp.status == 201, await resp.text()
        resp = await client.post("/api/v1/role-bindings", headers=other,
                                 json={"user": "dev", "role": "developer", "project": "other/app"})
        assert resp.status == 201
        app_id = await platform.resolve(ProjectLookup).project_id("other", "app")
        dev = await ids.tokens.create(SYSTEM, NewToken(name="d", scopes=["project:read", "project:write"], user="dev"),
                                      project_id=app_id)
        resp = await client.post("/api/v1/projects/other/app/issues", json={"title": "bug"},
                                 headers={"Authorization": f"Bearer {dev.secret}"})
        assert resp.status == 201, await resp.text()
        resp = await client.delete("/api/v1/users/dev", headers=other)
        assert resp.status == 409
        detail = (await resp.json())["detail"]
        assert "issues" in detail and "is_active" in detail
        assert (await client.patch("/api/v1/users/dev", headers=other, json={"is_active": False})).status == 200
    finally:
        await client.close()
        await platform.aclose()
    conn = await asyncpg.connect(db_dsn)
    try:
        assert await conn.fetchval("SELECT count(*) FROM users WHERE name = 'dev'") == 1
    finally:
        await conn.close()
