"""Project references by "owner/name" across the identity API, on the full platform (projects wired)."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient, TestServer

from corral.core.identity.commands import NewToken, NewUser
from corral.core.identity.kit import IdentityServices
from corral.core.identity.service import SYSTEM
from corral.entrypoints.bootstrap import start_platform
from corral.entrypoints.config import Settings
from corral.entrypoints.web.app import create_app

pytestmark = pytest.mark.integration


async def test_project_scoped_tokens_bindings_and_delegations(db_dsn, valkey_url, tmp_path):
    settings = Settings(database_url=db_dsn, valkey_url=valkey_url, data_dir=tmp_path, log_level="error")
    platform = await start_platform(settings)
    client = TestClient(TestServer(create_app(platform)))
    await client.start_server()
    try:
        ids: IdentityServices = platform.resolve(IdentityServices)
        await ids.users.create(SYSTEM, NewUser(name="root", email="root@example.com", password="root password",
                                               admin=True))
        held = await ids.authorizer.user_permissions((await ids.users.get("root")).id, None)
        issued = await ids.tokens.create(SYSTEM, NewToken(name="t", scopes=sorted(held), user="root"))
        root = {"Authorization": "Bearer " + issued.secret}
        resp = await client.post("/api/v1/projects", headers=root, json={"name": "app"})
        assert resp.status == 201, await resp.text()
        for name in ("dev", "bot"):
            resp = await client.post("/api/v1/users", headers=root, json={
                "name": name, "email": f"{name}@example.com", **({"agent": True} if name == "bot" else
                                                                 {"password": "dev password 1"})})
            assert resp.status == 201
        # a project-scoped binding by owner/name
        resp = await client.post("/api/v1/role-bindings", headers=root,
                                 json={"user": "dev", "role": "developer", "project": "root/app"})
        assert resp.status == 201, await resp.text()
        # dev's token restricted to that project; dev delegates to the agent there
        resp = await client.post("/api/v1/tokens", headers=root, json={
            "name": "dev", "scopes": ["project:read", "project:write"], "project": "root/app", "user": "dev"})
        assert resp.status == 201, await resp.text()
        created = await resp.json()
        assert created["project"] == "root/app"
        dev = {"Authorization": f"Bearer {created['token']}"}
        assert (await client.get("/api/v1/projects/root/app", headers=dev)).status == 200
        # account-level actions (here /me, delegating, listing tokens) need a login session or an unrestricted token
        assert (await client.get("/api/v1/me", headers=dev)).status == 403
        resp = await client.post("/api/v1/auth/login", json={"name": "dev", "password": "dev password 1"})
        assert resp.status == 200
        dev = {"X-CSRF-Token": (await resp.json())["csrf_token"]}  # the session cookie from here on
        resp = await client.post("/api/v1/delegations", headers=dev, json={
            "delegate": "bot", "permissions": ["project:write"], "project": "root/app", "reason": "fix CI"})
        assert resp.status == 201, await resp.text()
        explained = await (await client.get(
            "/api/v1/permissions/explain?user=bot&permission=project:write&project=root/app", headers=root)).json()
        assert explained["allowed"] is True
        assert "from user dev" in explained["because"][0]
        explained = await (await client.get(
            "/api/v1/permissions/explain?user=bot&permission=project:write", headers=root)).json()
        assert explained["allowed"] is False  # the delegation holds only in root/app
        resp = await client.post("/api/v1/tokens", headers=root, json={
            "name": "x", "scopes": ["project:read"], "project": "root/nope"})
        assert resp.status == 404
        # listings name the project owner/name (reverse lookup), not only its id
        tokens = await (await client.get("/api/v1/tokens", headers=dev)).json()
        assert [t["project"] for t in tokens["items"]] == ["root/app"]
        delegations = await (await client.get("/api/v1/delegations", headers=dev)).json()
        assert [d["project"] for d in delegations["items"]] == ["root/app"]
        bindings = await (await client.get("/api/v1/role-bindings?project=root/app", headers=root)).json()
        assert [(b["user"], b["role"], b["project"]) for b in bindings["items"]] == [("dev", "developer", "root/app")]
        audit = await (await client.get("/api/v1/audit?project=root/app&resource=role_binding", headers=root)).json()
        assert [e["project"] for e in audit["items"]] == ["root/app"]
        user = await (await client.get("/api/v1/users/dev", headers=root)).json()
        assert user["roles"][0]["project"] == "root/app"
    finally:
        await client.close()
        await platform.aclose()
