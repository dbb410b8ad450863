"""Nobody exceeds what they hold: not by binding roles, editing roles, creating admins, taking over a more
powerful account, minting a token for someone else, or by skipping a required second factor."""

from __future__ import annotations

from corral.core.identity.commands import Credentials, IdentitySettingsChanges, NewBinding, NewRole, NewToken, NewUser
from corral.core.identity.service import SYSTEM
from tests.unit.identity.webkit import PROJECT, PW, bearer, user_with_token


async def _user_admin(ids, extra: list[str] | None = None) -> dict[str, str]:
    """A helpdesk user holding admin:users (and ``extra``) but not the whole admin role."""
    await ids.rbac.create_role(SYSTEM, NewRole(name="helpdesk", permissions=["admin:users", *(extra or [])]))
    return bearer(await user_with_token(ids, "help", "helpdesk"))


async def test_admin_users_alone_cannot_make_anyone_admin(web):
    client, ids, memory = web
    await user_with_token(ids, "root", admin=True)
    help_ = await _user_admin(ids)
    resp = await client.post("/api/v1/role-bindings", headers=help_, json={"user": "help", "role": "admin"})
    assert resp.status == 403
    assert "admin:roles" in (await resp.json())["detail"]
    resp = await client.post("/api/v1/users", headers=help_, json={
        "name": "evil", "email": "evil@example.com", "password": "a long password", "admin": True})
    assert resp.status == 403
    assert await ids.users.get("root")  # untouched
    assert not any(e.action in {"role_binding.create", "user.create"} and e.actor_name == "help"
                   for e in memory.audit)


async def test_a_delegated_admin_users_does_not_lead_to_the_admin_role(web):
    client, ids, _ = web
    root = bearer(await user_with_token(ids, "root", admin=True))
    await user_with_token(ids, "bob", "viewer")
    resp = await client.post("/api/v1/delegations", headers=root,
                             json={"delegate": "bob", "permissions": ["admin:users"], "reason": "on call"})
    assert resp.status == 201
    bob = bearer((await ids.tokens.create(SYSTEM, NewToken(name="b", scopes=["admin:users", "project:read"],
                                                           user="bob"))).secret)
    resp = await client.post("/api/v1/role-bindings", headers=bob, json={"user": "bob", "role": "admin"})
    assert resp.status == 403
    resp = await client.post("/api/v1/role-bindings", headers=bob, json={"user": "bob", "role": "ops"})
    assert resp.status == 403  # ops holds deploy:promote, which bob lacks
    resp = await client.post("/api/v1/tokens", headers=bob,
                             json={"name": "root's", "scopes": ["admin:settings"], "user": "root"})
    assert resp.status == 403  # a token for root, but beyond what bob holds


async def test_taking_over_a_more_powerful_account_is_refused(web):
    client, ids, _ = web
    await user_with_token(ids, "root", admin=True)
    await user_with_token(ids, "vic", "viewer")
    help_ = await _user_admin(ids, ["project:read", "observe:read", "deploy:read", "pipeline:read"])
    for method, body in (("PATCH", {"password": "taken over now"}), ("PATCH", {"email": "me@evil.io"}),
                         ("PATCH", {"is_active": False}), ("DELETE", None)):
        resp = await client.request(method, "/api/v1/users/root", headers=help_, json=body)
        assert resp.status == 403, (method, body)
    await ids.sessions.login(Credentials(name="root", password=PW), ip=None, user_agent=None)  # password unchanged
    # within their power: a viewer's account, a viewer binding, a plain user
    assert (await client.patch("/api/v1/users/vic", headers=help_, json={"display_name": "V"})).status == 200
    resp = await client.post("/api/v1/users", headers=help_, json={
        "name": "newbie", "email": "n@example.com", "password": "a long password"})
    assert resp.status == 201
    resp = await client.post("/api/v1/role-bindings", headers=help_, json={"user": "newbie", "role": "viewer"})
    assert resp.status == 201
    # a project role: needs those permissions in that project
    resp = await client.post("/api/v1/role-bindings", headers=help_,
                             json={"user": "newbie", "role": "developer", "project": "acme/app"})
    assert resp.status == 403
    await ids.rbac.bind(SYSTEM, NewBinding(user="help", role="developer"), project_id=PROJECT)
    # the old token's scopes stay as they were: help logs in (a session holds everything help holds)
    login = await client.post("/api/v1/auth/login", json={"name": "help", "password": PW})
    session = {"X-CSRF-Token": (await login.json())["csrf_token"]}
    resp = await client.post("/api/v1/role-bindings", headers=session,
                             json={"user": "newbie", "role": "developer", "project": "acme/app"})
    assert resp.status == 201
    # removing root's admin binding is as much beyond them as granting it
    root_binding = (await ids.rbac.bindings_of((await ids.users.get("root")).id))[0]
    assert (await client.delete(f"/api/v1/role-bindings/{root_binding.id}", headers=session)).status == 403


async def test_roles_only_carry_what_their_editor_holds(web):
    client, ids, _ = web
    await ids.rbac.create_role(SYSTEM, NewRole(name="rolesmith", permissions=["admin:roles", "project:read"]))
    smith = bearer(await user_with_token(ids, "smith", "rolesmith"))
    resp = await client.post("/api/v1/roles", headers=smith, json={"name": "mine", "permissions": ["project:read"]})
    assert resp.status == 201
    resp = await client.put("/api/v1/roles/rolesmith/permissions", headers=smith,
                            json={"permissions": ["admin:roles", "project:read", "admin:users"]})
    assert resp.status == 403
    resp = await client.post("/api/v1/roles", headers=smith, json={"name": "big", "permissions": ["secret:read"]})
    assert resp.status == 403
    assert (await client.delete("/api/v1/roles/mine", headers=smith)).status == 204
    await ids.rbac.create_role(SYSTEM, NewRole(name="deployers", permissions=["deploy:promote"]))
    assert (await client.delete("/api/v1/roles/deployers", headers=smith)).status == 403


async def test_an_admin_without_required_totp_cannot_mint_a_token_to_skip_it(web):
    client, ids, _ = web
    await ids.users.create(SYSTEM, NewUser(name="root", email="r@example.com", password=PW, admin=True))
    await ids.settings.update(SYSTEM, IdentitySettingsChanges(require_totp_for_admins=True))
    resp = await client.post("/api/v1/auth/login", json={"name": "root", "password": PW})
    csrf = {"X-CSRF-Token": (await resp.json())["csrf_token"]}
    resp = await client.post("/api/v1/tokens", headers=csrf, json={"name": "bypass", "scopes": ["admin:users"]})
    assert resp.status == 403
    me = await (await client.get("/api/v1/me")).json()
    assert me["permissions"] == [] and me["totp_enrolment_required"] is True
    assert (await client.post("/api/v1/auth/totp", headers=csrf)).status == 201  # enrolling still works
