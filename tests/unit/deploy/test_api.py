"""The deployer's REST API through the app (responses checked against the OpenAPI document)."""

from __future__ import annotations

import attrs
import pytest
from aiohttp.test_utils import TestClient, TestServer

from corral.core.errors import NotFound
from corral.entrypoints.config import Settings
from corral.entrypoints.web.app import create_app
from corral.entrypoints.web.routes.deploy import DeployKit
from corral.entrypoints.web.security import ProjectLookup, WebAuth
from tests.unit.deploy.world import make_world
from tests.unit.webstub import HeaderAuth, StubPlatform


@attrs.define
class Lookup:
    ids: dict

    async def project_id(self, owner, name):
        if (owner, name) in self.ids:
            return self.ids[(owner, name)]
        raise NotFound(f"project {owner}/{name} not found")

    async def project_ref(self, ref):
        return self.ids[tuple(ref.split("/"))]


OPS = {"X-User": "ann", "X-Perms": "deploy:read,deploy:promote,admin:settings"}
BOB = {"X-User": "bob", "X-Perms": "deploy:read,deploy:promote"}
VIEWER = {"X-User": "vic", "X-Perms": "deploy:read"}
URL = "/api/v1/projects/acme/web/deployments"
BODY = {"ops_repo": "ops", "app_path": "apps/web", "image_ref": "registry.example/web:1", "values_override": {},
        "namespace": "web", "prune": False, "self_heal": True, "auto_rollback": False}


@pytest.fixture
async def api():
    w = await make_world()
    platform = StubPlatform(settings=Settings(profile="memory", validate_responses=True))
    platform.container.register(DeployKit, instance=DeployKit(w.uow, w.service, w.reconciler))
    platform.container.register(WebAuth, instance=HeaderAuth())
    platform.container.register(ProjectLookup, instance=Lookup({("acme", "web"): w.project.id}))
    client = TestClient(TestServer(create_app(platform)))
    await client.start_server()
    yield client, w
    await client.close()


async def test_desired_state_status_history_rollback(api) -> None:
    client, w = api
    resp = await client.put(f"{URL}/staging", json=BODY, headers=OPS)
    assert resp.status == 201, await resp.text()
    body = await resp.json()
    assert {k: body[k] for k in ("environment", "image_ref", "desired_revision", "sync", "health", "status",
                                 "cluster", "last_error")} == {
        "environment": "staging", "image_ref": "registry.example/web:1", "desired_revision": 1,
        "sync": "OutOfSync", "health": "Unknown", "status": "pending", "cluster": "fake", "last_error": None}
    resp = await client.put(f"{URL}/staging", json={**BODY, "image_ref": "registry.example/web:2"}, headers=OPS)
    assert resp.status == 200 and (await resp.json())["desired_revision"] == 2
    await w.reconciler.run_once()
    w.clock.advance(31)
    await w.reconciler.run_once()
    resp = await client.get(f"{URL}/staging", headers=VIEWER)
    got = await resp.json()
    assert got["status"] == "healthy" and got["sync"] == "Synced" and got["health"] == "Healthy"
    history = await (await client.get(f"{URL}/staging/history", headers=VIEWER)).json()
    assert [(h["image_ref"], h["result"], h["by"]) for h in history] == [
        ("registry.example/web:2", "healthy", "ann"), ("registry.example/web:1", "superseded", "ann")]
    resp = await client.post(f"{URL}/staging/rollback", json={"to": history[1]["id"]}, headers=OPS)
    assert resp.status == 200 and (await resp.json())["image_ref"] == "registry.example/web:1"
    listing = await (await client.get(URL, headers=VIEWER)).json()
    assert [d["environment"] for d in listing] == ["staging"]
    render = await (await client.get(f"{URL}/staging/render", headers=VIEWER)).json()
    assert {o["ref"]: o["change"] for o in render["objects"]} == {
        "Service web/web": "unchanged", "Deployment web/web": "update"}


async def test_permissions_and_validation(api) -> None:
    client, _ = api
    assert (await client.put(f"{URL}/staging", json=BODY, headers=VIEWER)).status == 403
    resp = await client.put(f"{URL}/staging", json={**BODY, "image_ref": "bad ref"}, headers=OPS)
    assert resp.status == 400 and "image_ref" in await resp.text()
    resp = await client.put(f"{URL}/staging", json={**BODY, "surprise": 1}, headers=OPS)
    assert resp.status == 400
    resp = await client.put(f"{URL}/staging", json={**BODY, "ops_repo": "nope"}, headers=OPS)
    assert resp.status == 400 and "ops_repo" in await resp.text()
    assert (await client.get(f"{URL}/qa", headers=VIEWER)).status == 404


async def test_promotion_to_a_protected_environment_needs_someone_else(api) -> None:
    client, w = api
    await client.put(f"{URL}/staging", json=BODY, headers=OPS)
    resp = await client.post(f"{URL}/production/promote", json={"from": "staging"}, headers=OPS)
    promotion = await resp.json()
    assert resp.status == 200 and promotion["status"] == "pending_approval"
    assert (await client.get(f"{URL}/production", headers=VIEWER)).status == 404
    approve = f"/api/v1/projects/acme/web/promotions/{promotion['id']}/approve"
    assert (await client.post(approve, headers=OPS)).status == 403  # not your own
    resp = await client.post(approve, headers=BOB)
    assert resp.status == 200 and (await resp.json())["approved_by"] == "bob"
    prod = await (await client.get(f"{URL}/production", headers=VIEWER)).json()
    assert prod["image_ref"] == "registry.example/web:1"
    # an unprotected environment takes it at once
    resp = await client.post(f"{URL}/preview/promote", json={"from": "staging"}, headers=OPS)
    assert (await resp.json())["status"] == "applied"
    assert (await client.post(f"{URL}/preview/promote", json={"frm": "x"}, headers=OPS)).status == 400
    audit = [e.action for e in w.uow.db.audit.entries.values()]
    assert audit.count("deploy.promote") == 2 and "deploy.promote_request" in audit


async def test_ops_repos(api) -> None:
    client, _ = api
    resp = await client.post("/api/v1/ops-repos", json={"name": "outside", "project": None,
                                                        "url": "https://git.example.com/ops.git", "branch": "main",
                                                        "path": "deploy"}, headers=OPS)
    assert resp.status == 201, await resp.text()
    assert (await resp.json())["url"] == "https://git.example.com/ops.git"
    assert (await client.post("/api/v1/ops-repos", json={"name": "x", "url": "http://a@b/c"}, headers=OPS)).status \
        == 400
    assert (await client.post("/api/v1/ops-repos", json={"name": "y", "project": "acme/ops"}, headers=BOB)).status \
        == 403
    repos = await (await client.get("/api/v1/ops-repos", headers=VIEWER)).json()
    assert [(r["name"], r["project"]) for r in repos] == [("ops", "acme/ops"), ("outside", None)]
