"""People: user search (admin listing with q=, and /users/search for any signed-in user) and project members."""

from __future__ import annotations

import pytest

from corral.core.identity.commands import NewBinding, NewRole, NewUser
from corral.core.identity.service import SYSTEM
from corral.core.projects.commands import NewProject
from corral.core.projects.model import Actor
from tests.unit.identity.webkit import PW, bearer, projects_app, user_with_token


@pytest.fixture
async def app():
    found = await projects_app()
    yield found
    await found.client.close()


async def test_user_search(app):
    client, ids = app.client, app.ids
    admin = bearer(await user_with_token(ids, "root", admin=True))
    dev = bearer(await user_with_token(ids, "dev", "developer"))
    await ids.users.create(SYSTEM, NewUser(name="zoe", email="zoe@example.com", password=PW, display_name="Zoe Q"))
    await ids.users.create(SYSTEM, NewUser(name="quinn", email="q@example.com", password=PW))
    listed = await (await client.get("/api/v1/users?q=Q", headers=admin)).json()
    assert [u["name"] for u in listed["items"]] == ["quinn"] and "email" in listed["items"][0]  # not "Zoe Q"
    first = await (await client.get("/api/v1/users?q=r&limit=1", headers=admin)).json()  # root, and nobody else
    assert [u["name"] for u in first["items"]] == ["root"] and first["next_cursor"] is None
    everyone = await (await client.get("/api/v1/users", headers=admin)).json()
    assert [u["name"] for u in everyone["items"]] == ["dev", "quinn", "root", "zoe"]
    assert (await client.get("/api/v1/users?q=z", headers=dev)).status == 403  # the full listing is admin's
    found = await (await client.get("/api/v1/users/search?q=ZO", headers=dev)).json()
    assert found["items"] == [{"id": found["items"][0]["id"], "name": "zoe", "display_name": "Zoe Q"}]
    assert (await client.get("/api/v1/users/search?q=", headers=dev)).status == 400
    assert (await client.get("/api/v1/users/search?q=zo")).status == 401
    resp = await client.post("/api/v1/users", headers=admin, json={"name": "Search", "email": "s@example.com",
                                                                    "password": PW})
    assert resp.status == 400 and "reserved" in (await resp.json())["detail"]


async def test_project_members_come_from_the_authorizer(app):
    client, ids = app.client, app.ids
    owner = bearer(await user_with_token(ids, "olga", "developer"))
    olga = await ids.users.get("olga")
    project = await app.kit.projects.create(Actor(olga.id, "olga"), NewProject(name="app", visibility="private"))
    await ids.users.create(SYSTEM, NewUser(name="ann", email="ann@example.com", password=PW))
    await ids.rbac.bind(SYSTEM, NewBinding(user="ann", role="viewer"), project_id=project.id)
    await ids.users.create(SYSTEM, NewUser(name="out", email="out@example.com", password=PW))
    deleg = await client.post("/api/v1/delegations", headers=owner,
                              json={"delegate": "out", "permissions": ["project:write"], "project": "olga/app"})
    assert deleg.status == 201, await deleg.text()
    body = await (await client.get("/api/v1/projects/olga/app/members", headers=owner)).json()
    members = {m["user"]["name"]: m for m in body["items"]}
    assert list(members) == ["ann", "olga", "out"]
    assert members["olga"]["via"] == ["owner"] and "project:admin" in members["olga"]["permissions"]
    assert "developer" in members["olga"]["roles"]
    assert members["ann"]["via"] == ["binding"] and members["ann"]["roles"] == ["viewer"]
    assert "project:read" in members["ann"]["permissions"]
    assert members["out"]["via"] == ["delegation"] and "project:write" in members["out"]["permissions"]
    assert set(members["out"]["user"]) == {"id", "name", "display_name"}
    # a stranger to the private project gets the project's 404
    await ids.rbac.create_role(SYSTEM, NewRole(name="obs", permissions=["observe:read"]))
    stranger = bearer(await user_with_token(ids, "stranger", "obs"))
    assert (await client.get("/api/v1/projects/olga/app/members", headers=stranger)).status == 404
