from __future__ import annotations

import io

from corral.entrypoints.commands.admin import read_password
from corral.entrypoints.config import Settings
from corral.entrypoints.identity_wiring import policy_from
from tests.unit.identity.webkit import PW, identity_client, user_with_token


async def test_cookie_is_secure_when_the_public_url_is_https():
    client, ids, _ = await identity_client(settings=Settings(profile="memory", base_url="https://corral.example"))
    try:
        await user_with_token(ids, "alice", "viewer")
        resp = await client.post("/api/v1/auth/login", json={"name": "alice", "password": PW})
        assert resp.status == 200
        assert "Secure" in resp.headers["Set-Cookie"]
    finally:
        await client.close()


async def test_explaining_someone_else_needs_admin_users(web):
    client, ids, _ = web
    viewer = {"Authorization": f"Bearer {await user_with_token(ids, 'vic', 'viewer')}"}
    await user_with_token(ids, "dev", "developer")
    own = await client.get("/api/v1/permissions/explain?permission=project:read", headers=viewer)
    assert own.status == 200
    assert (await own.json())["allowed"] is True
    other = await client.get("/api/v1/permissions/explain?user=dev&permission=project:read", headers=viewer)
    assert other.status == 403


async def test_unknown_body_field_is_named(web):
    client, ids, _ = web
    token = await user_with_token(ids, "dev", "developer")
    resp = await client.post("/api/v1/tokens", json={"name": "t", "scopes": ["project:read"], "colour": "red"},
                             headers={"Authorization": f"Bearer {token}"})
    assert resp.status == 400
    assert "colour" in (await resp.json())["detail"]


async def test_sessions_list_and_revoke_own(web):
    client, ids, _ = web
    await user_with_token(ids, "alice", "viewer")
    first = await (await client.post("/api/v1/auth/login", json={"name": "alice", "password": PW})).json()
    sessions = (await (await client.get("/api/v1/auth/sessions")).json())["items"]
    csrf = {"X-CSRF-Token": first["csrf_token"]}
    assert (await client.delete(f"/api/v1/auth/sessions/{sessions[0]['id']}", headers=csrf)).status == 204
    assert (await client.get("/api/v1/me")).status == 401


def test_password_from_stdin():
    stream = io.StringIO("s3cret password\n")
    assert read_password(stream) == "s3cret password"


def test_policy_from_settings():
    policy = policy_from(Settings(session_idle_seconds=60, login_max_failures_per_user=3,
                                  require_totp_for_admins=True))
    assert policy.session_idle.total_seconds() == 60
    assert policy.max_failures_per_user == 3
    assert policy.require_totp_for_admins is True


async def test_admin_setting_requires_totp_for_admins(web):
    from corral.core.identity import totp

    client, ids, _ = web
    root = {"Authorization": f"Bearer {await user_with_token(ids, 'root', admin=True)}"}
    assert (await (await client.get("/api/v1/settings/identity", headers=root)).json())[
        "require_totp_for_admins"] is False
    resp = await client.put("/api/v1/settings/identity", headers=root, json={"require_totp_for_admins": True})
    assert resp.status == 200
    login = await (await client.post("/api/v1/auth/login", json={"name": "root", "password": PW})).json()
    csrf = {"X-CSRF-Token": login["csrf_token"]}
    me = await (await client.get("/api/v1/me")).json()
    assert me["totp_enrolment_required"] is True
    assert (await client.get("/api/v1/users")).status == 403  # only enrolment until TOTP is on
    secret = (await (await client.post("/api/v1/auth/totp", headers=csrf)).json())["secret"]
    code = totp.code_at(secret, ids.clock.now().timestamp())
    resp = await client.post("/api/v1/auth/totp/confirm", headers=csrf, json={"code": code})
    assert resp.status == 200
    assert len((await resp.json())["recovery_codes"]) == 10
    assert (await client.get("/api/v1/users")).status == 200
    resp = await client.put("/api/v1/settings/identity", headers=root, json={"require_totp": True})
    assert resp.status == 400
