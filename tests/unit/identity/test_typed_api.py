"""The identity API's typed operations: bodies and queries parsed by their classes, answers checked against
their response classes (``identity_client`` validates every JSON answer: an answer off its class is a 500)."""

from __future__ import annotations

import pytest

from corral.entrypoints.web.routes import auth as auth_routes
from corral.entrypoints.web.routes import identity as identity_routes
from corral.entrypoints.web.routing import UNDECLARED
from tests.unit.identity.webkit import PW, bearer, user_with_token


def test_every_identity_operation_is_typed() -> None:
    specs = identity_routes.routes.specs + auth_routes.routes.specs
    assert len(specs) == 35  # + /users/search and project members
    for spec in specs:
        where = f"{spec.method} {spec.path}"
        assert spec.params is not UNDECLARED, where
        assert not spec.query and spec.request_body is None, f"{where} keeps a legacy description"
        assert (spec.response is None) == (spec.status == 204), where


@pytest.mark.parametrize(("method", "path", "body", "field", "words"), [
    ("POST", "/api/v1/users", {"name": 1, "email": "a@example.com", "password": PW}, "name", "expected a string"),
    ("POST", "/api/v1/users", {"name": "ann", "email": "a@example.com", "password": PW, "agent": "yes"}, "agent",
     "true or false"),
    ("POST", "/api/v1/users", {"name": "ann", "email": "a@example.com", "password": PW, "colour": "red"}, "colour",
     "unknown field"),
    ("POST", "/api/v1/users", {"name": "ann", "password": PW}, "email", "required"),
    ("PATCH", "/api/v1/users/root", {"is_active": "no"}, "is_active", "true or false"),
    ("PATCH", "/api/v1/users/root", {"email": None}, "email", "expected a string"),
    ("PATCH", "/api/v1/users/root", {"name": "other"}, "name", "unknown field"),
    ("POST", "/api/v1/tokens", {"name": "t", "scopes": "project:read"}, "scopes", "expected a JSON array"),
    ("POST", "/api/v1/tokens", {"name": "t", "scopes": ["project:read"], "expires_at": "2099-01-01T00:00:00"},
     "expires_at", "timezone"),
    ("POST", "/api/v1/tokens", {"name": "t", "scopes": ["project:read"], "secret": "x"}, "secret", "unknown field"),
    ("POST", "/api/v1/roles", {"name": "r", "permissions": [1]}, "permissions", "expected a string"),
    ("PUT", "/api/v1/roles/developer/permissions", {}, "permissions", "required"),
    ("POST", "/api/v1/role-bindings", {"user": "root", "role": "viewer", "scope": "x"}, "scope", "unknown field"),
    ("POST", "/api/v1/delegations", {"delegate": "root", "permissions": ["project:read"], "reason": 5}, "reason",
     "expected a string"),
    ("PUT", "/api/v1/settings/identity", {"require_totp_for_admins": "true"}, "require_totp_for_admins",
     "true or false"),
])
async def test_bad_bodies_are_400s_naming_the_field(web, method, path, body, field, words) -> None:
    client, ids, _ = web
    root = bearer(await user_with_token(ids, "root", admin=True))
    resp = await client.request(method, path, json=body, headers=root)
    assert resp.status == 400, await resp.text()
    problem = await resp.json()
    assert problem["field"] == field
    assert words in problem["detail"]


async def test_login_body_is_typed(web) -> None:
    client, _, _ = web
    resp = await client.post("/api/v1/auth/login", json={"name": "root", "password": PW, "remember": True})
    assert resp.status == 400
    assert (await resp.json())["field"] == "remember"
    resp = await client.post("/api/v1/auth/login", json={"name": "root", "password": 12345678})
    assert resp.status == 400
    assert (await resp.json())["field"] == "password"


@pytest.mark.parametrize(("path", "field"), [
    ("/api/v1/users?state=x", "state"),
    ("/api/v1/users?limit=0", "limit"),
    ("/api/v1/tokens?owner=x", "owner"),
    ("/api/v1/roles?limit=5", "limit"),  # not paginated: takes no parameters
    ("/api/v1/audit?since=yesterday", "since"),
    ("/api/v1/audit?until=2026-01-01T00:00:00", "until"),
    ("/api/v1/delegations?all=maybe", "all"),
    ("/api/v1/role-bindings?role=admin", "role"),
    ("/api/v1/permissions/explain", "permission"),
    ("/api/v1/me?verbose=1", "verbose"),
])
async def test_bad_queries_are_400s_naming_the_parameter(web, path, field) -> None:
    client, ids, _ = web
    root = bearer(await user_with_token(ids, "root", admin=True))
    resp = await client.get(path, headers=root)
    assert resp.status == 400, await resp.text()
    assert (await resp.json())["field"] == field


async def test_answers_match_their_response_classes(web) -> None:
    """The operations the other identity tests do not reach, each answered within its documented shape."""
    client, ids, _ = web
    root = bearer(await user_with_token(ids, "root", admin=True))
    resp = await client.get("/api/v1/permissions", headers=root)
    assert resp.status == 200
    catalogue = await resp.json()
    assert {"name": "admin:audit", "description": "Read the audit log"} in catalogue["items"]
    resp = await client.post("/api/v1/users", headers=root,
                             json={"name": "ann", "email": "ann@example.com", "password": PW})
    assert resp.status == 201, await resp.text()
    resp = await client.post("/api/v1/role-bindings", headers=root,
                             json={"user": "ann", "role": "viewer", "project": "acme/app"})
    assert resp.status == 201, await resp.text()
    resp = await client.get("/api/v1/users/ann", headers=root)
    assert resp.status == 200, await resp.text()
    assert [(r["role"], r["project"]) for r in (await resp.json())["roles"]] == [("viewer", "acme/app")]
    resp = await client.patch("/api/v1/users/ann", headers=root, json={"display_name": None, "is_active": True})
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["display_name"] is None
    resp = await client.delete("/api/v1/users/ann/login-ban", headers=root)
    assert resp.status == 200, await resp.text()
    assert await resp.json() == {"user": "ann", "bans_removed": 0}
    resp = await client.get("/api/v1/settings/identity", headers=root)
    assert await resp.json() == {"require_totp_for_admins": False,
                                 "forced_by_configuration": {"require_totp_for_admins": False}}
    resp = await client.get("/api/v1/delegations?all=true", headers=root)
    assert resp.status == 200, await resp.text()
    resp = await client.get("/api/v1/audit?action=user.create&since=2000-01-01T00:00:00Z&limit=5", headers=root)
    assert resp.status == 200, await resp.text()
    assert [e["detail"]["name"] for e in (await resp.json())["items"]] == ["ann", "root"]
    resp = await client.get("/api/v1/me", headers=root)
    me = await resp.json()
    assert me["name"] == "root" and me["totp_enrolment_required"] is False
