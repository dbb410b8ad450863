"""DELETE /api/v1/roles/{name}, GET /api/v1/role-bindings, and projects shown as owner/name in listings."""

from __future__ import annotations

import pytest

from corral.core.identity.commands import NewBinding, NewRole
from corral.core.identity.service import SYSTEM
from tests.unit.identity.webkit import PROJECT, user_with_token


async def _admin(ids) -> dict[str, str]:
    return {"Authorization": f"Bearer {await user_with_token(ids, 'root', admin=True)}"}


async def test_delete_custom_role_removes_bindings_audits_and_takes_effect_at_once(web):
    client, ids, memory = web
    admin = await _admin(ids)
    assert (await client.post("/api/v1/roles", headers=admin,
                              json={"name": "auditor", "permissions": ["admin:audit"]})).status == 201
    token = await user_with_token(ids, "ann", "auditor", scopes=["admin:audit"])
    ann = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/api/v1/audit", headers=ann)).status == 200  # cached as allowed
    resp = await client.delete("/api/v1/roles/auditor", headers=admin)
    assert resp.status == 204
    assert (await client.get("/api/v1/audit", headers=ann)).status == 403  # cache invalidated
    names = [r["name"] for r in (await (await client.get("/api/v1/roles", headers=admin)).json())["items"]]
    assert "auditor" not in names
    bindings = await (await client.get("/api/v1/role-bindings?user=ann", headers=admin)).json()
    assert bindings == {"items": [], "next_cursor": None}
    entry = next(e for e in memory.audit if e.action == "role.delete")
    assert entry.detail == {"name": "auditor", "permissions": ["admin:audit"], "bindings_removed": 1}
    assert entry.actor_name == "root"
    assert (await client.delete("/api/v1/roles/auditor", headers=admin)).status == 404


@pytest.mark.parametrize("role", ["admin", "developer", "viewer", "agent", "ops"])
async def test_system_roles_cannot_be_deleted(web, role):
    client, ids, memory = web
    admin = await _admin(ids)
    resp = await client.delete(f"/api/v1/roles/{role}", headers=admin)
    assert resp.status == 409
    assert role in (await resp.json())["detail"]
    assert not any(e.action == "role.delete" for e in memory.audit)


async def test_deleting_roles_needs_admin_roles(web):
    client, ids, _ = web
    dev = {"Authorization": f"Bearer {await user_with_token(ids, 'dev', 'developer')}"}
    await ids.rbac.create_role(SYSTEM, NewRole(name="temp", permissions=["project:read"]))
    assert (await client.delete("/api/v1/roles/temp", headers=dev)).status == 403
    assert (await client.delete("/api/v1/roles/temp")).status == 401


async def test_list_role_bindings_filters_and_pages(web):
    client, ids, _ = web
    admin = await _admin(ids)
    await user_with_token(ids, "ann", "viewer")
    await ids.rbac.bind(SYSTEM, NewBinding(user="ann", role="developer"), project_id=PROJECT)
    everything = await (await client.get("/api/v1/role-bindings?limit=2", headers=admin)).json()
    assert set(everything) == {"items", "next_cursor"}
    assert len(everything["items"]) == 2 and everything["next_cursor"]
    more = await (await client.get(f"/api/v1/role-bindings?limit=2&cursor={everything['next_cursor']}",
                                   headers=admin)).json()
    assert [b["role"] for b in everything["items"] + more["items"]] == ["admin", "viewer", "developer"]
    assert more["next_cursor"] is None
    anns = await (await client.get("/api/v1/role-bindings?user=ann", headers=admin)).json()
    assert [(b["user"], b["role"], b["project"]) for b in anns["items"]] == [
        ("ann", "viewer", None), ("ann", "developer", "acme/app")]
    scoped = await (await client.get("/api/v1/role-bindings?user=ann&project=acme/app", headers=admin)).json()
    assert [(b["role"], b["project"], b["project_id"]) for b in scoped["items"]] == [
        ("developer", "acme/app", str(PROJECT))]
    assert (await client.get("/api/v1/role-bindings?user=nobody", headers=admin)).status == 404
    viewer = {"Authorization": f"Bearer {await user_with_token(ids, 'vic', 'viewer')}"}
    assert (await client.get("/api/v1/role-bindings", headers=viewer)).status == 403


async def test_listings_show_projects_as_owner_name(web):
    client, ids, _ = web
    admin = await _admin(ids)
    resp = await client.post("/api/v1/tokens", headers=admin,
                             json={"name": "p", "scopes": ["project:read"], "project": str(PROJECT)})
    assert (await resp.json())["project"] == "acme/app"  # given by id, answered by name
    tokens = await (await client.get("/api/v1/tokens", headers=admin)).json()
    assert {t["project"] for t in tokens["items"]} == {None, "acme/app"}
    await user_with_token(ids, "bob", "viewer")
    resp = await client.post("/api/v1/delegations", headers=admin,
                             json={"delegate": "bob", "permissions": ["deploy:read"], "project": "acme/app"})
    assert resp.status == 201
    assert (await resp.json())["project"] == "acme/app"
    delegations = await (await client.get("/api/v1/delegations", headers=admin)).json()
    assert [d["project"] for d in delegations["items"]] == ["acme/app"]
    resp = await client.post("/api/v1/role-bindings", headers=admin,
                             json={"user": "bob", "role": "developer", "project": "acme/app"})
    created = await resp.json()
    assert (created["user"], created["project"], created["granted_by"]) == ("bob", "acme/app", "root")
    audit = await (await client.get("/api/v1/audit?project=acme/app", headers=admin)).json()
    assert audit["items"] and {e["project"] for e in audit["items"]} == {"acme/app"}
    user = await (await client.get("/api/v1/users/bob", headers=admin)).json()
    assert {r["project"] for r in user["roles"]} == {None, "acme/app"}


async def test_explain_names_the_project(web):
    client, ids, _ = web
    admin = await _admin(ids)
    await user_with_token(ids, "bob", "viewer")
    await ids.rbac.bind(SYSTEM, NewBinding(user="bob", role="developer"), project_id=PROJECT)
    body = await (await client.get("/api/v1/permissions/explain?user=bob&permission=project:write&project=acme/app",
                                   headers=admin)).json()
    assert body["allowed"] is True
    assert "in project acme/app" in body["because"][0] and str(PROJECT) not in body["because"][0]
    assert body["path"][0]["project"] == "acme/app"
