"""Self-service password change: current password required, regulated like logins, other sessions end."""

from __future__ import annotations

import pytest

from corral.core.errors import InvalidInput, PermissionDenied, RateLimited, Unauthenticated
from corral.core.identity.commands import Credentials, NewBinding, NewToken, NewUser, PasswordChange
from tests.unit.identity.webkit import PW, identity_client, user_with_token

NEW = "a much better passphrase"


async def _session(ids, name="alice", password=PW, ip="10.0.0.1"):
    result = await ids.sessions.login(Credentials(name=name, password=password), ip=ip, user_agent="t")
    principal, _ = await ids.sessions.authenticate(result.cookie, ip_addr=ip)
    return result, principal


async def test_change_ends_every_other_session_keeps_tokens_and_audits(ids, system, memory):
    await ids.users.create(system, NewUser(name="alice", email="a@example.com", password=PW))
    await ids.rbac.bind(system, NewBinding(user="alice", role="viewer"))
    token = await ids.tokens.create(system, NewToken(name="t", scopes=["project:read"], user="alice"))
    here, principal = await _session(ids)
    elsewhere, _ = await _session(ids, ip="10.0.0.2")

    result = await ids.passwords.change_own(principal, PasswordChange(current_password=PW, new_password=NEW),
                                            user_agent="t")

    for old in (here.cookie, elsewhere.cookie):
        with pytest.raises(Unauthenticated):
            await ids.sessions.authenticate(old, ip_addr="10.0.0.1")
    fresh, _ = await ids.sessions.authenticate(result.cookie, ip_addr="10.0.0.1")
    assert fresh.user_id == principal.user_id
    assert [s.id for s in await ids.sessions.list_sessions(fresh)] == [result.session.id]
    assert (await ids.tokens.authenticate(token.secret)).name == "alice"  # tokens stay valid
    with pytest.raises(Unauthenticated):
        await ids.sessions.login(Credentials(name="alice", password=PW), ip="10.0.0.3", user_agent=None)
    await ids.sessions.login(Credentials(name="alice", password=NEW), ip="10.0.0.3", user_agent=None)
    entry = next(e for e in memory.audit if e.action == "user.password_change")
    assert entry.actor_id == principal.user_id
    assert entry.detail["sessions_ended"] == 2
    assert PW not in repr(memory.audit)
    assert NEW not in repr(memory.audit)


async def test_wrong_current_password_is_regulated_like_a_login(ids, system, memory):
    await ids.users.create(system, NewUser(name="alice", email="a@example.com", password=PW))
    _, principal = await _session(ids)
    for _ in range(ids.policy.max_failures_per_user):
        with pytest.raises(InvalidInput) as wrong:
            await ids.passwords.change_own(principal, PasswordChange(current_password="not my password",
                                                                     new_password=NEW), user_agent=None)
        assert wrong.value.field == "current_password"
    with pytest.raises(RateLimited):  # even with the right current password, while banned
        await ids.passwords.change_own(principal, PasswordChange(current_password=PW, new_password=NEW),
                                       user_agent=None)
    with pytest.raises(RateLimited):  # and the ban holds for logins too
        await ids.sessions.login(Credentials(name="alice", password=PW), ip="10.9.9.9", user_agent=None)
    actions = [e.action for e in memory.audit]
    assert actions.count("auth.password_change_failed") == ids.policy.max_failures_per_user
    assert "auth.ban" in actions
    assert "user.password_change" not in actions
    assert "not my password" not in repr(memory.audit)
    clock = ids.clock
    clock.advance(ids.policy.ban_time.total_seconds() + 1)
    await ids.sessions.login(Credentials(name="alice", password=PW), ip="10.9.9.9", user_agent=None)  # unchanged


async def test_policy_and_who_may_change(ids, system, memory):
    await ids.users.create(system, NewUser(name="alice", email="a@example.com", password=PW))
    await ids.rbac.bind(system, NewBinding(user="alice", role="viewer"))
    _, principal = await _session(ids)
    with pytest.raises(InvalidInput) as short:
        await ids.passwords.change_own(principal, PasswordChange(current_password=PW, new_password="short"),
                                       user_agent=None)
    assert short.value.field == "new_password"
    with pytest.raises(InvalidInput) as same:
        await ids.passwords.change_own(principal, PasswordChange(current_password=PW, new_password=PW), user_agent=None)
    assert same.value.field == "new_password"
    with pytest.raises(InvalidInput) as missing:
        await ids.passwords.change_own(principal, PasswordChange(current_password="", new_password=NEW),
                                       user_agent=None)
    assert missing.value.field == "current_password"
    issued = await ids.tokens.create(system, NewToken(name="t", scopes=["project:read"], user="alice"))
    with pytest.raises(PermissionDenied):
        await ids.passwords.change_own(await ids.tokens.authenticate(issued.secret),
                                       PasswordChange(current_password=PW, new_password=NEW), user_agent=None)
    assert not any(e.action.startswith("user.password") for e in memory.audit)
    await ids.sessions.login(Credentials(name="alice", password=PW), ip=None, user_agent=None)  # nothing changed


async def test_web_change_password_reissues_the_session():
    client, ids, _memory = await identity_client()
    try:
        await user_with_token(ids, "alice", "viewer")
        login = await (await client.post("/api/v1/auth/login", json={"name": "alice", "password": PW})).json()
        old_cookie = client.session.cookie_jar.filter_cookies(client.make_url("/"))["corral_session"].value
        body = {"current_password": PW, "new_password": NEW}
        assert (await client.post("/api/v1/me/password", json=body)).status == 403  # CSRF needed
        wrong = await client.post("/api/v1/me/password", json={**body, "current_password": "nope nope"},
                                  headers={"X-CSRF-Token": login["csrf_token"]})
        assert wrong.status == 400
        assert wrong.content_type == "application/problem+json"
        assert (await wrong.json())["field"] == "current_password"
        unknown = await client.post("/api/v1/me/password", json={**body, "password": "x"},
                                    headers={"X-CSRF-Token": login["csrf_token"]})
        assert unknown.status == 400
        resp = await client.post("/api/v1/me/password", json=body, headers={"X-CSRF-Token": login["csrf_token"]})
        assert resp.status == 200
        out = await resp.json()
        assert "HttpOnly" in resp.headers["Set-Cookie"]
        assert out["user"]["name"] == "alice" and out["csrf_token"] != login["csrf_token"]
        new_cookie = client.session.cookie_jar.filter_cookies(client.make_url("/"))["corral_session"].value
        assert new_cookie != old_cookie
        assert (await client.get("/api/v1/me")).status == 200
        # the new CSRF token works, the old one does not
        assert (await client.post("/api/v1/tokens", json={"name": "x", "scopes": ["project:read"]},
                                  headers={"X-CSRF-Token": login["csrf_token"]})).status == 403
        assert (await client.post("/api/v1/tokens", json={"name": "x", "scopes": ["project:read"]},
                                  headers={"X-CSRF-Token": out["csrf_token"]})).status == 201
        client.session.cookie_jar.clear()
        assert (await client.get("/api/v1/me", headers={"Cookie": f"corral_session={old_cookie}"})).status == 401
        assert (await client.get("/api/v1/me", headers={"Cookie": f"corral_session={new_cookie}"})).status == 200
        doc = await (await client.get("/api/v1/openapi.json")).json()
        op = doc["paths"]["/api/v1/me/password"]["post"]
        assert "requestBody" in op and "tokens stay valid" in op["description"].lower()
    finally:
        await client.close()
