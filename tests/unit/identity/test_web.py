"""The identity REST API and the security of every route, over in-memory services."""

from __future__ import annotations

import base64
import logging
import re
import uuid

import pytest

from corral.core.identity.catalogue import SYSTEM_ROLES
from corral.core.identity.commands import NewToken
from corral.core.identity.service import SYSTEM
from corral.entrypoints.web.routing import spec_of
from tests.unit.identity.webkit import PW, identity_client, user_with_token

# The explicit allowlist of routes reachable without credentials. Adding one is a security decision.
# Listings open to anonymous callers that show only what anyone may read (public projects).
ANONYMOUS_LISTINGS = {("GET", "/api/v1/projects")}
PUBLIC = {
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/api/v1/version"),
    ("GET", "/api/v1/openapi.json"),
    ("GET", "/"),
    ("GET", "/ui/"),
    ("GET", "/ui/static/{file}"),
    # the UI's sign-in form posts here (no session yet; it refuses a cross-origin post: login CSRF)
    ("POST", "/ui/login"),
    ("POST", "/api/v1/auth/login"),
    # signed object links: the HMAC signature in the query is the credential (routes/objects.py)
    ("GET", "/api/v1/objects/{key}"),
    ("PUT", "/api/v1/objects/{key}"),
    # RFC 9728 protected-resource metadata: tells MCP clients where the bearer token goes (no data)
    ("GET", "/.well-known/oauth-protected-resource"),
    ("GET", "/.well-known/oauth-protected-resource/mcp"),
}
_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::[^}]*)?\}")


def _concrete(path: str) -> str:
    def fill(m: re.Match[str]) -> str:
        name = m.group(1)
        return str(uuid.uuid4()) if name == "id" else {"owner": "alice", "name": "app", "file": "x.js"}.get(
            name, "x")

    return _PARAM.sub(fill, path)


def _routes(client):
    out = []
    for route in client.app.router.routes():
        spec = spec_of(route.handler)
        if route.method == "HEAD":
            continue
        out.append((route.method, route.resource.canonical if route.resource else "", spec))
    return out


@pytest.fixture
async def web():
    client, ids, memory = await identity_client()
    yield client, ids, memory
    await client.close()


async def test_every_route_requires_authentication_unless_allowlisted(web):
    client, _ids, _memory = web
    routes = _routes(client)
    assert routes, "the router has routes"
    public = set()
    for method, path, spec in routes:
        assert spec is not None, f"{method} {path} has no security declaration"
        canonical = _PARAM.sub(lambda m: "{" + m.group(1) + "}", path)
        if spec.public:
            public.add((method, canonical))
            continue
        if (method, canonical) in ANONYMOUS_LISTINGS:
            assert spec.anonymous and spec.permission is None  # filters per item (tests/e2e/test_git_e2e.py)
            continue
        resp = await client.request(method, _concrete(path), json={})
        assert resp.status == 401, f"anonymous {method} {path} answered {resp.status}"
        assert resp.content_type == "application/problem+json"
        # a bad token is 401 too
        resp = await client.request(method, _concrete(path), json={},
                                    headers={"Authorization": "Bearer crl_" + "x" * 40})
        assert resp.status == 401, f"bad token {method} {path} answered {resp.status}"
    assert public == PUBLIC


async def test_a_viewer_gets_403_on_every_route_needing_more(web):
    client, ids, _memory = web
    token = await user_with_token(ids, "vic", "viewer")
    viewer = SYSTEM_ROLES["viewer"][1]
    checked = 0
    for method, path, spec in _routes(client):
        if spec.public or spec.permission is None or spec.permission in viewer:
            continue
        resp = await client.request(method, _concrete(path), json={},
                                    headers={"Authorization": f"Bearer {token}"})
        assert resp.status == 403, f"viewer {method} {path} answered {resp.status}"
        checked += 1
    assert checked >= 8


async def test_login_cookie_csrf_and_logout(web):
    client, ids, _memory = web
    await user_with_token(ids, "alice", "developer")
    resp = await client.post("/api/v1/auth/login", json={"name": "alice", "password": PW})
    assert resp.status == 200
    body = await resp.json()
    assert body["user"]["name"] == "alice"
    assert "password_hash" not in body["user"]
    csrf = body["csrf_token"]
    cookie = resp.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # plain HTTP here; behind TLS it is set
    me = await client.get("/api/v1/me")
    assert me.status == 200
    got = await me.json()
    assert got["name"] == "alice"
    assert "project:write" in got["permissions"]
    assert got["roles"] == [{"role": "developer", "project": None}]
    # a cookie-authenticated mutation without the CSRF header is refused
    resp = await client.post("/api/v1/tokens", json={"name": "t", "scopes": ["project:read"]})
    assert resp.status == 403
    resp = await client.post("/api/v1/tokens", json={"name": "t", "scopes": ["project:read"]},
                             headers={"X-CSRF-Token": "wrong"})
    assert resp.status == 403
    resp = await client.post("/api/v1/tokens", json={"name": "t", "scopes": ["project:read"]},
                             headers={"X-CSRF-Token": csrf})
    assert resp.status == 201
    sessions = await (await client.get("/api/v1/auth/sessions")).json()
    assert len(sessions["items"]) == 1
    assert sessions["items"][0]["current"] is True
    resp = await client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf})
    assert resp.status == 204
    assert (await client.get("/api/v1/me")).status == 401


async def test_bad_login_401_and_ban_429(web):
    client, ids, memory = web
    await user_with_token(ids, "alice", "viewer")
    for _ in range(ids.policy.max_failures_per_user):
        resp = await client.post("/api/v1/auth/login", json={"name": "alice", "password": "not it at all"})
        assert resp.status == 401
    resp = await client.post("/api/v1/auth/login", json={"name": "alice", "password": PW})
    assert resp.status == 429
    assert int(resp.headers["Retry-After"]) > 0
    assert any(e.action == "auth.ban" for e in memory.audit)


async def test_tokens_pinned_interface(web):
    client, ids, _memory = web
    token = await user_with_token(ids, "dev", "developer")
    auth = {"Authorization": f"Bearer {token}"}
    resp = await client.post("/api/v1/tokens", headers=auth, json={
        "name": "ci", "scopes": ["project:read"], "project": None, "expires_at": "2030-01-01T00:00:00Z"})
    assert resp.status == 201
    created = await resp.json()
    assert set(created) >= {"id", "token", "name", "scopes", "project", "expires_at"}
    assert created["token"].startswith("crl_")
    assert created["scopes"] == ["project:read"]
    listed = await (await client.get("/api/v1/tokens", headers=auth)).json()
    assert set(listed) == {"items", "next_cursor"}
    assert all("token" not in t for t in listed["items"])
    assert created["token"] not in str(listed)
    # the new token works (also as HTTP Basic password, for git), then is revoked
    basic = base64.b64encode(f"anything:{created['token']}".encode()).decode()
    me = await client.get("/api/v1/me", headers={"Authorization": f"Basic {basic}"})
    assert me.status == 200
    assert (await me.json())["permissions"] == ["project:read"]
    assert (await client.delete(f"/api/v1/tokens/{created['id']}", headers=auth)).status == 204
    me = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {created['token']}"})
    assert me.status == 401
    # a token never exceeds its user
    resp = await client.post("/api/v1/tokens", headers=auth, json={"name": "x", "scopes": ["admin:users"]})
    assert resp.status == 403
    resp = await client.post("/api/v1/tokens", headers=auth, json={"name": "x", "scopes": ["nope:nope"]})
    assert resp.status == 400
    assert "scopes" in (await resp.json())["detail"]


async def test_users_roles_bindings_delegations_explain_audit(web):
    client, ids, memory = web
    admin = {"Authorization": f"Bearer {await user_with_token(ids, 'root', admin=True)}"}
    resp = await client.post("/api/v1/users", headers=admin, json={
        "name": "olga", "email": "olga@example.com", "password": "another long password", "display_name": "O"})
    assert resp.status == 201
    assert "password" not in str(await resp.json())
    resp = await client.post("/api/v1/users", headers=admin, json={"name": "bot", "email": "bot@x.io",
                                                                   "agent": True})
    assert resp.status == 201
    assert (await client.get("/api/v1/users/olga", headers=admin)).status == 200
    users = await (await client.get("/api/v1/users?limit=2", headers=admin)).json()
    assert len(users["items"]) == 2
    assert users["next_cursor"]
    resp = await client.post("/api/v1/role-bindings", headers=admin, json={"user": "olga", "role": "ops",
                                                                           "project": None})
    assert resp.status == 201
    binding_id = (await resp.json())["id"]
    resp = await client.post("/api/v1/roles", headers=admin, json={"name": "auditor",
                                                                   "permissions": ["admin:audit"]})
    assert resp.status == 201
    resp = await client.put("/api/v1/roles/auditor/permissions", headers=admin,
                            json={"permissions": ["admin:audit", "project:read"]})
    assert resp.status == 200
    # olga (ops) delegates deploy:promote to the agent for a project
    olga_token = (await ids.tokens.create(SYSTEM, NewToken(name="t", scopes=["deploy:promote", "observe:read"],
                                                           user="olga"))).secret
    olga = {"Authorization": f"Bearer {olga_token}"}
    resp = await client.post("/api/v1/delegations", headers=olga, json={
        "delegate": "bot", "permissions": ["deploy:promote"], "project": "alice/app", "expires_at": None,
        "reason": "monitoring shift"})
    assert resp.status == 201
    delegation_id = (await resp.json())["id"]
    explained = await (await client.get(
        "/api/v1/permissions/explain?user=bot&permission=deploy:promote&project=alice/app",
        headers=admin)).json()
    assert explained["allowed"] is True
    assert len(explained["because"]) == 2
    assert "from user olga" in explained["because"][0]
    assert "user olga holds role ops globally" in explained["because"][1]
    # olga loses ops: the delegation stops granting
    assert (await client.delete(f"/api/v1/role-bindings/{binding_id}", headers=admin)).status == 204
    explained = await (await client.get(
        "/api/v1/permissions/explain?user=bot&permission=deploy:promote&project=alice/app",
        headers=admin)).json()
    assert explained["allowed"] is False
    assert (await client.delete(f"/api/v1/delegations/{delegation_id}", headers=admin)).status == 204
    audit = await (await client.get("/api/v1/audit?resource=delegation", headers=admin)).json()
    assert {e["action"] for e in audit["items"]} == {"delegation.create", "delegation.revoke"}
    resp = await client.patch("/api/v1/users/olga", headers=admin, json={"is_active": False})
    assert resp.status == 200
    assert (await client.get("/api/v1/me", headers=olga)).status == 401
    assert (await client.delete("/api/v1/users/olga", headers=admin)).status == 204
    assert (await client.get("/api/v1/users/olga", headers=admin)).status == 404
    everything = repr(memory.audit)
    assert "another long password" not in everything
    assert olga_token not in everything


async def test_no_secret_in_logs(web, caplog):
    client, ids, _memory = web
    caplog.set_level(logging.DEBUG)
    token = await user_with_token(ids, "dev", "developer")
    await client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    await client.post("/api/v1/auth/login", json={"name": "dev", "password": PW})
    await client.post("/api/v1/auth/login", json={"name": "dev", "password": "wrong-but-secret"})
    text = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert token not in text
    assert PW not in text
    assert "wrong-but-secret" not in text
