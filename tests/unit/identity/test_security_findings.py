"""The black-box attack findings, each replayed against the real web stack over fakes (identity + projects +
notifications wired as the platform wires them): every test here failed before the fix."""

from __future__ import annotations

import aiohttp
import attrs
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from corral.core.identity.commands import Credentials, NewBinding, NewRole, NewToken, NewUser
from corral.core.identity.kit import IdentityServices
from corral.core.identity.service import SYSTEM
from corral.core.projects.commands import NewProject
from corral.core.projects.model import Actor
from corral.entrypoints.config import Settings
from corral.entrypoints.web.routes import ROUTE_TABLES
from corral.entrypoints.web.routing import RouteTable
from corral.fakes.uow import InMemoryUnitOfWorkFactory
from tests.unit.identity.webkit import projects_app

PW = "correct horse battery"

ws_routes = RouteTable(tag="test")


@ws_routes.get("/api/v1/_test/ws", summary="a WebSocket like the live tail", account=False)
async def _ws(request: web.Request) -> web.StreamResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    await ws.send_str("hello")
    await ws.close()
    return ws


@attrs.define
class World:
    client: TestClient
    ids: IdentityServices
    db: InMemoryUnitOfWorkFactory
    kit: object

    async def user(self, name: str, *roles: str, admin: bool = False, scopes: list[str] | None = None,
                   project: str | None = None) -> dict[str, str]:
        """Create ``name`` (holding ``roles`` globally) and a token of theirs; returns its bearer header."""
        await self.ids.users.create(SYSTEM, NewUser(name=name, email=f"{name}@example.com", password=PW, admin=admin))
        for role in roles:
            await self.ids.rbac.bind(SYSTEM, NewBinding(user=name, role=role))
        return await self.token(name, scopes=scopes, project=project)

    async def token(self, name: str, *, scopes: list[str] | None = None, project: str | None = None,
                    ) -> dict[str, str]:
        user = await self.ids.users.get(name)
        project_id = None
        if project is not None:
            owner, _, pname = project.partition("/")
            async with self.db() as uow:
                found = await uow.projects.get_by_slug(owner, pname)
            assert found is not None
            project_id = found.id
        held = await self.ids.authorizer.user_permissions(user.id, project_id)
        command = NewToken(name="t", scopes=scopes or sorted(held) or ["project:read"], user=name)
        issued = await self.ids.tokens.create(SYSTEM, command, project_id=project_id)
        return {"Authorization": f"Bearer {issued.secret}"}

    async def project(self, owner: str, name: str, visibility: str = "private") -> None:
        user = await self.ids.users.get(owner)
        await self.kit.projects.create(Actor(user.id, user.name), NewProject(name=name, visibility=visibility))


@pytest.fixture
async def world():
    app = await projects_app(Settings(profile="memory"), hooks=[ws_routes.mount])
    client = app.client
    yield World(client, app.ids, app.db, app.kit)
    await client.close()


async def _login(client: TestClient, name: str) -> dict[str, str]:
    resp = await client.post("/api/v1/auth/login", json={"name": name, "password": PW})
    assert resp.status == 200, await resp.text()
    return {"X-CSRF-Token": (await resp.json())["csrf_token"]}


# --- 1. a project-restricted token acts on the whole account ---------------------------------------------
async def test_a_project_restricted_token_cannot_touch_the_account(world):
    client = world.client
    full = await world.user("alice", "developer")
    await world.ids.users.create(SYSTEM, NewUser(name="bob", email="bob@example.com", password=PW))
    await world.project("alice", "one")
    await world.project("alice", "two")
    restricted = await world.token("alice", scopes=["project:read"], project="alice/one")
    other_token = (await (await client.get("/api/v1/tokens", headers=full)).json())["items"][0]["id"]
    csrf = await _login(client, "alice")
    session_id = (await (await client.get("/api/v1/auth/sessions", headers=csrf)).json())["items"][0]["id"]
    client.session.cookie_jar.clear()  # from here on the restricted token only

    # its own project: still fine
    assert (await client.get("/api/v1/projects/alice/one", headers=restricted)).status == 200
    attacks = [
        ("DELETE", f"/api/v1/tokens/{other_token}", None),
        ("GET", "/api/v1/tokens", None),
        ("POST", "/api/v1/tokens", {"name": "x", "scopes": ["project:read"], "project": "alice/one"}),
        ("DELETE", f"/api/v1/auth/sessions/{session_id}", None),
        ("GET", "/api/v1/auth/sessions", None),
        ("PUT", "/api/v1/notification-preferences", {"webhook_url": "https://evil.example/hook"}),
        ("GET", "/api/v1/notification-preferences", None),
        ("GET", "/api/v1/notifications", None),
        ("GET", "/api/v1/notifications/unread-count", None),
        ("POST", "/api/v1/delegations", {"delegate": "bob", "permissions": ["project:read"], "project": "alice/two"}),
        ("POST", "/api/v1/delegations", {"delegate": "bob", "permissions": ["project:read"], "project": "alice/one"}),
        ("GET", "/api/v1/delegations", None),
        ("GET", "/api/v1/me", None),
        ("POST", "/api/v1/me/password", {"current_password": PW, "new_password": "another long one"}),
        ("POST", "/api/v1/auth/totp", None),
        ("GET", "/api/v1/permissions/explain?permission=project:read&project=alice/two", None),
    ]
    for method, path, body in attacks:
        resp = await client.request(method, path, headers=restricted, json=body)
        assert resp.status == 403, (method, path, resp.status)
        assert "belongs to the account" in (await resp.json())["detail"]
    # nothing happened
    assert len((await (await client.get("/api/v1/tokens", headers=full)).json())["items"]) == 2
    assert (await (await client.get("/api/v1/notification-preferences", headers=full)).json())["webhook_url"] is None
    async with world.db() as uow:
        assert (await uow.sessions.get(__import__("uuid").UUID(session_id))) is not None
    async with world.db() as uow:
        two = await uow.projects.get_by_slug("alice", "two")
    bob = await world.ids.users.get("bob")
    assert "project:read" not in await world.ids.authorizer.user_permissions(bob.id, two.id)  # no delegation
    # the same calls with the unrestricted token (and the matching scope) still work
    assert (await client.get("/api/v1/tokens", headers=full)).status == 200
    assert (await client.get("/api/v1/me", headers=full)).status == 200
    assert (await client.get("/api/v1/notifications", headers=full)).status == 200


async def test_every_route_without_a_project_says_whether_it_is_account_level():
    undeclared = [
        f"{s.method} {s.path}" for t in ROUTE_TABLES for s in t.specs
        if not s.public and s.project is None and s.permission is None and s.account is None
    ]
    assert undeclared == []
    account = {f"{s.method} {s.path}" for t in ROUTE_TABLES for s in t.specs if s.account}
    assert {"DELETE /api/v1/tokens/{id}", "PUT /api/v1/notification-preferences", "GET /api/v1/notifications",
            "POST /api/v1/delegations", "DELETE /api/v1/auth/sessions/{id}", "GET /api/v1/me",
            "POST /api/v1/me/password", "DELETE /api/v1/auth/totp"} <= account
    table = RouteTable(tag="x")
    with pytest.raises(ValueError, match="account=True"):  # a new route cannot forget it

        @table.get("/api/v1/new-thing", summary="forgot")
        async def _forgot(request: web.Request) -> web.StreamResponse:
            raise AssertionError


# --- 2. account takeover by an admin:users holder through ownership ------------------------------------
async def test_admin_users_cannot_take_over_a_project_owner_without_bindings(world):
    client = world.client
    await world.ids.rbac.create_role(SYSTEM, NewRole(name="helpdesk", permissions=["admin:users", "project:read"]))
    helpdesk = await world.user("help", "helpdesk")
    root = await world.user("root", admin=True)
    await world.ids.users.create(SYSTEM, NewUser(name="olga", email="olga@example.com", password=PW))  # no bindings
    await world.project("olga", "vault")
    for method, body in (("PATCH", {"password": "taken over now"}), ("PATCH", {"email": "me@evil.io"}),
                         ("PATCH", {"is_active": False}), ("DELETE", None)):
        resp = await client.request(method, "/api/v1/users/olga", headers=helpdesk, json=body)
        assert resp.status == 403, (method, body, resp.status)
        assert "project:" in (await resp.json())["detail"]
    await world.ids.sessions.login(Credentials(name="olga", password=PW), ip=None,
                                   user_agent=None)  # password unchanged
    # a platform admin holds everything, ownership included
    assert (await client.patch("/api/v1/users/olga", headers=root, json={"display_name": "O"})).status == 200


# --- 3. an owner without a binding mints a project:write token for their project --------------------------
async def test_owner_without_binding_can_mint_a_project_write_token_for_their_project(world):
    client = world.client
    await world.ids.users.create(SYSTEM, NewUser(name="olga", email="olga@example.com", password=PW))  # no bindings
    csrf = await _login(client, "olga")
    assert (await client.post("/api/v1/projects", headers=csrf, json={"name": "mine"})).status == 403
    await world.project("olga", "mine")
    await world.user("zed", "developer")
    await world.project("zed", "theirs")
    resp = await client.post("/api/v1/tokens", headers=csrf,
                             json={"name": "ci", "scopes": ["project:write"], "project": "olga/mine"})
    assert resp.status == 201, await resp.text()
    token = {"Authorization": f"Bearer {(await resp.json())['token']}"}
    client.session.cookie_jar.clear()
    resp = await client.post("/api/v1/projects/olga/mine/issues", headers=token, json={"title": "works"})
    assert resp.status == 201, await resp.text()
    csrf = await _login(client, "olga")
    resp = await client.post("/api/v1/tokens", headers=csrf,
                             json={"name": "ci", "scopes": ["project:write"], "project": "zed/theirs"})
    assert resp.status == 403  # not theirs
    assert "does not hold project:write" in (await resp.json())["detail"]
    # ownership grounds a delegation too: what olga lends in her project, the delegate holds
    await world.ids.users.create(SYSTEM, NewUser(name="dora", email="dora@example.com", password=PW))
    resp = await client.post("/api/v1/delegations", headers=csrf,
                             json={"delegate": "dora", "permissions": ["project:write"], "project": "olga/mine"})
    assert resp.status == 201, await resp.text()
    async with world.db() as uow:
        mine = await uow.projects.get_by_slug("olga", "mine")
    dora = await world.ids.users.get("dora")
    assert "project:write" in await world.ids.authorizer.user_permissions(dora.id, mine.id)
    explained = await world.ids.rbac.explain("olga", "project:admin", mine.id)
    assert explained.allowed and explained.because[0].kind == "owner"


# --- 4. 403 vs 404 lets a signed-in user enumerate private project names ----------------------------------
async def test_a_signed_in_user_gets_the_same_404_for_a_private_and_a_missing_project(world):
    client = world.client
    await world.user("alice", "developer")
    await world.ids.rbac.create_role(SYSTEM, NewRole(name="watcher",
                                                     permissions=["observe:read"]))  # no project permission
    await world.user("bob", "watcher")
    bob = await _login(client, "bob")  # a login session: every right bob has (internal projects: read)
    await world.project("alice", "secret")
    await world.project("alice", "shared", visibility="internal")
    for path in ("/api/v1/projects/alice/secret", "/api/v1/projects/alice/secret/issues",
                 "/api/v1/projects/alice/secret/webhooks"):
        hidden = await client.get(path, headers=bob)
        missing = await client.get(path.replace("secret", "nothing"), headers=bob)
        assert (hidden.status, missing.status) == (404, 404), path
        assert (await hidden.json())["detail"] == "project alice/secret not found"
    resp = await client.patch("/api/v1/projects/alice/secret", headers=bob, json={"description": "x"})
    assert resp.status == 404
    # bob may see the internal project but lacks project:admin there: 403
    assert (await client.get("/api/v1/projects/alice/shared", headers=bob)).status == 200
    assert (await client.get("/api/v1/projects/alice/shared/webhooks", headers=bob)).status == 403
    # git's smart HTTP keeps its 401 challenge for anonymous callers
    client.session.cookie_jar.clear()
    resp = await client.get("/alice/secret.git/info/refs?service=git-upload-pack")
    assert resp.status == 401
    assert resp.headers["WWW-Authenticate"].startswith("Basic")


# --- 5. names that differ only in case ---------------------------------------------------------------------
async def test_user_and_project_names_are_case_insensitive(world):
    client = world.client
    root = await world.user("root", admin=True)
    await world.ids.rbac.create_role(SYSTEM, NewRole(name="creator", permissions=["project:create", "project:read"]))
    alice = await world.user("alice", "creator")
    resp = await client.post("/api/v1/users", headers=root,
                             json={"name": "ALICE", "email": "other@example.com", "password": "a long password"})
    assert resp.status == 409
    await world.project("alice", "demo", visibility="public")
    resp = await client.post("/api/v1/projects", headers=alice, json={"name": "DEMO"})
    assert resp.status == 409
    resp = await client.get("/api/v1/projects/Alice/Demo", headers=alice)
    assert resp.status == 200
    assert (await resp.json())["name"] == "demo"
    resp = await client.get("/api/v1/users/Alice", headers=root)
    assert resp.status == 200 and (await resp.json())["name"] == "alice"


# --- 6. cross-site WebSocket hijacking with the session cookie -----------------------------------------
async def test_a_cookie_authenticated_websocket_needs_the_servers_own_origin(world):
    client = world.client
    token = await world.user("alice", "developer")
    await _login(client, "alice")
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect("/api/v1/_test/ws", headers={"Origin": "https://evil.example"})
    assert refused.value.status == 403
    own = f"http://{client.host}:{client.port}"
    for origin in (own, "https://corral.example"):  # the Host the request was made to, or CORRAL_BASE_URL
        ws = await client.ws_connect("/api/v1/_test/ws", headers={"Origin": origin})
        assert (await ws.receive_str()) == "hello"
        await ws.close()
    client.session.cookie_jar.clear()
    ws = await client.ws_connect("/api/v1/_test/ws", headers={"Origin": "https://evil.example", **token})
    assert (await ws.receive_str()) == "hello"  # a bearer token cannot be sent by another site: no check
    await ws.close()
