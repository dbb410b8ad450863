from __future__ import annotations

from datetime import timedelta

import pytest

from corral.core.errors import Conflict, InvalidInput, PermissionDenied, RateLimited, Unauthenticated
from corral.core.identity import totp
from corral.core.identity.catalogue import PERMISSIONS
from corral.core.identity.commands import (
    Credentials,
    NewBinding,
    NewDelegation,
    NewToken,
    NewUser,
    RolePermissions,
    TotpCode,
    UserChanges,
)
from corral.core.identity.credentials import digest
from corral.core.identity.model import AuthMethod
from corral.core.ids import uuid7

PW = "correct horse battery"


async def make(ids, system, name, *roles, agent=False):
    user = await ids.users.create(system, NewUser(name=name, email=f"{name}@example.com",
                                                  password=None if agent else PW, agent=agent))
    for role in roles:
        await ids.rbac.bind(system, NewBinding(user=name, role=role))
    return user


async def token_for(ids, system, name, scopes, project_id=None):
    issued = await ids.tokens.create(system, NewToken(name="t", scopes=scopes, user=name), project_id=project_id)
    return await ids.tokens.authenticate(issued.secret)


async def test_token_never_exceeds_its_user(ids, system):
    await make(ids, system, "dev", "developer")
    p = await token_for(ids, system, "dev", ["project:read", "project:write"])
    assert await ids.authorizer.permissions(p, None) == {"project:read", "project:write"}
    with pytest.raises(PermissionDenied):
        await ids.tokens.create(system, NewToken(name="t", scopes=["admin:users"], user="dev"))
    # the user loses a permission: the token loses it too, at once
    roles = {r.name: r for r in await ids.rbac.list_roles()}
    await ids.rbac.set_role_permissions(system, "developer", RolePermissions(permissions=["project:read"]))
    assert await ids.authorizer.permissions(p, None) == {"project:read"}
    assert roles["developer"].permissions >= {"project:write"}
    with pytest.raises(PermissionDenied):
        await ids.authorizer.authorize(p, "project:write", None)


async def test_token_cannot_mint_a_broader_token(ids, system):
    await make(ids, system, "dev", "developer")
    p = await token_for(ids, system, "dev", ["project:read"])
    with pytest.raises(PermissionDenied):
        await ids.tokens.create(p, NewToken(name="x", scopes=["project:write"]))


async def test_project_token_holds_nothing_elsewhere(ids, system):
    await make(ids, system, "dev", "developer")
    proj = uuid7()
    p = await token_for(ids, system, "dev", ["project:read"], project_id=proj)
    assert await ids.authorizer.permissions(p, proj) == {"project:read"}
    assert await ids.authorizer.permissions(p, uuid7()) == frozenset()
    assert await ids.authorizer.permissions(p, None) == frozenset()


async def test_revoked_token_is_refused_on_the_next_request(ids, system):
    await make(ids, system, "dev", "developer")
    issued = await ids.tokens.create(system, NewToken(name="t", scopes=["project:read"], user="dev"))
    p = await ids.tokens.authenticate(issued.secret)
    await ids.tokens.revoke(system, p.token_id)
    with pytest.raises(Unauthenticated):
        await ids.tokens.authenticate(issued.secret)


async def test_token_stored_as_sha256_with_prefix(ids, system, memory):
    await make(ids, system, "dev", "developer")
    issued = await ids.tokens.create(system, NewToken(name="t", scopes=["project:read"], user="dev"))
    assert issued.secret.startswith("crl_")
    stored = memory.data.tokens[issued.token.id]
    assert stored.token_hash == digest(issued.secret)
    assert issued.secret not in repr(stored)
    assert issued.secret not in repr(memory.audit)


async def test_last_used_is_batched(ids, system, memory, clock):
    await make(ids, system, "dev", "developer")
    issued = await ids.tokens.create(system, NewToken(name="t", scopes=["project:read"], user="dev"))
    for _ in range(5):
        await ids.tokens.authenticate(issued.secret)
    assert memory.data.tokens[issued.token.id].last_used_at is None  # nothing written per request
    assert await ids.usage.flush(memory) == 1
    assert memory.data.tokens[issued.token.id].last_used_at == clock.now()


async def test_expired_token_refused(ids, system, clock):
    await make(ids, system, "dev", "developer")
    issued = await ids.tokens.create(system, NewToken(name="t", scopes=["project:read"],
                                                      expires_at=clock.now() + timedelta(hours=1), user="dev"))
    await ids.tokens.authenticate(issued.secret)
    clock.advance(3601)
    with pytest.raises(Unauthenticated):
        await ids.tokens.authenticate(issued.secret)


async def test_delegation_lifecycle(ids, system, clock):
    ops = await make(ids, system, "ops1", "ops")
    agent = await make(ids, system, "bot", agent=True)
    ops_p = await token_for(ids, system, "ops1", ["deploy:promote", "observe:read"])
    proj = uuid7()
    # nobody delegates beyond what they hold
    with pytest.raises(PermissionDenied):
        await ids.rbac.delegate(
            ops_p, NewDelegation(delegate="bot", permissions=["project:write"], reason="x"), project_id=proj
        )
    ds = await ids.rbac.delegate(
        ops_p,
        NewDelegation(
            delegate="bot",
            permissions=["deploy:promote"],
            expires_at=clock.now() + timedelta(hours=1),
            reason="monitoring shift",
        ),
        project_id=proj,
    )
    assert await ids.authorizer.user_permissions(agent.id, proj) == {"deploy:promote"}
    assert await ids.authorizer.user_permissions(agent.id, uuid7()) == frozenset()
    explained = await ids.rbac.explain("bot", "deploy:promote", proj)
    assert explained.allowed
    assert [g.kind for g in explained.because] == ["delegation", "role"]
    # expired: grants nothing
    clock.advance(3601)
    assert await ids.authorizer.user_permissions(agent.id, proj) == frozenset()
    # a fresh one, then the delegator loses the permission: grants nothing
    await ids.rbac.delegate(ops_p, NewDelegation(delegate="bot", permissions=["observe:read"]))
    assert await ids.authorizer.user_permissions(agent.id, proj) == {"observe:read"}
    binding = (await ids.rbac.bindings_of(ops.id))[0]
    await ids.rbac.unbind(system, binding.id)
    assert await ids.authorizer.user_permissions(agent.id, proj) == frozenset()
    assert not (await ids.rbac.explain("bot", "observe:read", None)).allowed
    # revoked: grants nothing
    await ids.rbac.bind(system, NewBinding(user="ops1", role="ops"))
    assert await ids.authorizer.user_permissions(agent.id, None) == {"observe:read"}
    mine = await ids.rbac.list_delegations(ops_p, everyone=False, limit=None, cursor=None)
    live = next(d for d in mine.items if d.permission == "observe:read")
    await ids.rbac.revoke_delegation(ops_p, live.id)
    assert await ids.authorizer.user_permissions(agent.id, None) == frozenset()
    assert ds


async def test_admin_holds_everything(ids, system):
    root = await ids.users.create(system, NewUser(name="root", email="r@x.io", password=PW, admin=True))
    assert await ids.authorizer.user_permissions(root.id, uuid7()) == frozenset(PERMISSIONS)


async def test_login_logout_and_csrf(ids, system, memory):
    await make(ids, system, "alice", "viewer")
    result = await ids.sessions.login(Credentials(name="alice", password=PW), ip="10.0.0.1", user_agent="t")
    p, csrf_digest = await ids.sessions.authenticate(result.cookie, ip_addr="10.0.0.1")
    assert p.method is AuthMethod.SESSION
    assert p.name == "alice"
    from corral.core.identity.service import check_csrf

    assert check_csrf(csrf_digest, result.csrf_token)
    assert not check_csrf(csrf_digest, "nope")
    assert not check_csrf(csrf_digest, None)
    await ids.sessions.logout(p)
    with pytest.raises(Unauthenticated):
        await ids.sessions.authenticate(result.cookie, ip_addr="10.0.0.1")
    actions = [e.action for e in memory.audit]
    assert "auth.login" in actions
    assert "auth.logout" in actions
    assert PW not in repr(memory.audit)
    assert result.cookie not in repr(memory.audit)


async def test_session_idle_and_absolute_expiry(ids, system, clock):
    await make(ids, system, "alice", "viewer")
    r = await ids.sessions.login(Credentials(name="alice", password=PW), ip=None, user_agent=None)
    clock.advance(ids.policy.session_idle.total_seconds() - 60)
    await ids.sessions.authenticate(r.cookie, ip_addr=None)  # activity keeps it alive
    clock.advance(ids.policy.session_idle.total_seconds() + 1)
    with pytest.raises(Unauthenticated):
        await ids.sessions.authenticate(r.cookie, ip_addr=None)
    r2 = await ids.sessions.login(Credentials(name="alice", password=PW), ip=None, user_agent=None)
    step = ids.policy.session_idle.total_seconds() / 2
    t = 0.0
    while t <= ids.policy.session_max.total_seconds() + 2 * step:  # bounded: a session that never expires fails
        clock.advance(step)
        t += step
        try:
            await ids.sessions.authenticate(r2.cookie, ip_addr=None)
        except Unauthenticated:
            break
    else:
        pytest.fail("the session outlived its maximum age")
    assert t >= ids.policy.session_max.total_seconds()


async def test_brute_force_gets_banned_and_audited(ids, system, memory):
    await make(ids, system, "alice", "viewer")
    for _ in range(ids.policy.max_failures_per_user):
        with pytest.raises(Unauthenticated):
            await ids.sessions.login(Credentials(name="alice", password="wrong password"), ip="10.0.0.9",
                                     user_agent=None)
    with pytest.raises(RateLimited):  # even with the right password
        await ids.sessions.login(Credentials(name="alice", password=PW), ip="10.0.0.9", user_agent=None)
    actions = [e.action for e in memory.audit]
    assert actions.count("auth.login_failed") == ids.policy.max_failures_per_user
    assert "auth.ban" in actions
    assert "wrong password" not in repr(memory.audit)


async def test_unknown_user_login_is_401_and_audited(ids, memory):
    with pytest.raises(Unauthenticated):
        await ids.sessions.login(Credentials(name="ghost", password="whatever1"), ip="10.1.1.1", user_agent=None)
    assert memory.audit[-1].action == "auth.login_failed"


async def test_agents_cannot_log_in_with_a_password(ids, system):
    await make(ids, system, "bot", agent=True)
    with pytest.raises(Unauthenticated):
        await ids.sessions.login(Credentials(name="bot", password="!"), ip=None, user_agent=None)


async def test_totp_enrol_login_and_recovery(ids, system, clock):
    await make(ids, system, "alice", "viewer")
    r = await ids.sessions.login(Credentials(name="alice", password=PW), ip=None, user_agent=None)
    p, _ = await ids.sessions.authenticate(r.cookie, ip_addr=None)
    enrolment = await ids.totp.enrol(p)
    right = totp.code_at(enrolment.secret, clock.now().timestamp())
    with pytest.raises(InvalidInput):
        await ids.totp.confirm(p, TotpCode(code="000000" if right != "000000" else "111111"))
    codes = await ids.totp.confirm(p, TotpCode(code=totp.code_at(enrolment.secret, clock.now().timestamp())))
    assert len(codes) == 10
    with pytest.raises(Unauthenticated) as e:
        await ids.sessions.login(Credentials(name="alice", password=PW), ip=None, user_agent=None)
    assert e.value.detail == {"totp_required": True}
    clock.advance(30)
    code = totp.code_at(enrolment.secret, clock.now().timestamp())
    await ids.sessions.login(Credentials(name="alice", password=PW, totp_code=code), ip=None, user_agent=None)
    with pytest.raises(Unauthenticated):  # the same code is never accepted twice
        await ids.sessions.login(Credentials(name="alice", password=PW, totp_code=code), ip=None, user_agent=None)
    await ids.sessions.login(Credentials(name="alice", password=PW, totp_code=codes[0]), ip=None, user_agent=None)
    with pytest.raises(Unauthenticated):  # a recovery code is used up
        await ids.sessions.login(Credentials(name="alice", password=PW, totp_code=codes[0]), ip=None, user_agent=None)


async def test_rfc6238_vector():
    # RFC 6238 appendix B, SHA-1, T=59 -> 94287082 (8 digits); our 6-digit code is its last 6 digits
    import base64

    secret = base64.b32encode(b"12345678901234567890").decode()
    assert totp.code_at(secret, 59) == "287082"
    assert totp.code_at(secret, 1111111109) == "081804"


async def test_admin_must_enrol_totp_when_required(memory, clock):
    from corral.core.identity.kit import IdentityServices
    from corral.core.identity.service import SYSTEM, AuthPolicy, ensure_system_roles
    from corral.fakes.identity_services import InMemoryAuthzCache, InMemoryPasswordHasher, fake_totp_sealer

    ids = IdentityServices(
        memory,
        InMemoryAuthzCache(clock),
        InMemoryPasswordHasher(),
        clock,
        policy=AuthPolicy(require_totp_for_admins=True),
        totp_sealer=fake_totp_sealer(),
    )
    await ensure_system_roles(memory, clock)
    await ids.users.create(SYSTEM, NewUser(name="root", email="r@x.io", password=PW, admin=True))
    r = await ids.sessions.login(Credentials(name="root", password=PW), ip=None, user_agent=None)
    p, _ = await ids.sessions.authenticate(r.cookie, ip_addr=None)
    with pytest.raises(PermissionDenied):
        await ids.authorizer.authorize(p, "admin:users", None)
    enrolment = await ids.totp.enrol(p)
    await ids.totp.confirm(p, TotpCode(code=totp.code_at(enrolment.secret, clock.now().timestamp())))
    p, _ = await ids.sessions.authenticate(r.cookie, ip_addr=None)
    await ids.authorizer.authorize(p, "admin:users", None)


async def test_user_validation_and_conflicts(ids, system):
    with pytest.raises(InvalidInput) as e:
        await ids.users.create(system, NewUser(name="bad name", email="a@b.c", password=PW))
    assert e.value.field == "name"
    with pytest.raises(InvalidInput) as e:
        await ids.users.create(system, NewUser(name="ok", email="a@b.c", password="short"))
    assert e.value.field == "password"
    await ids.users.create(system, NewUser(name="ok", email="a@b.c", password=PW))
    with pytest.raises(Conflict):
        await ids.users.create(system, NewUser(name="ok", email="z@b.c", password=PW))


async def test_deactivated_user_loses_everything_at_once(ids, system):
    await make(ids, system, "dev", "developer")
    issued = await ids.tokens.create(system, NewToken(name="t", scopes=["project:read"], user="dev"))
    p = await ids.tokens.authenticate(issued.secret)
    await ids.authorizer.authorize(p, "project:read", None)
    await ids.users.update(system, "dev", UserChanges(is_active=False))
    with pytest.raises(Unauthenticated):
        await ids.tokens.authenticate(issued.secret)
    with pytest.raises(PermissionDenied):  # even a principal resolved before the change
        await ids.authorizer.authorize(p, "project:read", None)


async def test_two_replicas_share_invalidation(memory, clock):
    from corral.core.identity.kit import IdentityServices
    from corral.core.identity.service import SYSTEM, ensure_system_roles
    from corral.fakes.identity_services import InMemoryAuthzCache, InMemoryCacheBus, InMemoryPasswordHasher

    bus = InMemoryCacheBus()
    a = IdentityServices(memory, InMemoryAuthzCache(clock, bus), InMemoryPasswordHasher(), clock)
    b = IdentityServices(memory, InMemoryAuthzCache(clock, bus), InMemoryPasswordHasher(), clock)
    await ensure_system_roles(memory, clock)
    await make(a, SYSTEM, "dev", "developer")
    issued = await a.tokens.create(SYSTEM, NewToken(name="t", scopes=["project:read"], user="dev"))
    p = await b.tokens.authenticate(issued.secret)
    await b.authorizer.authorize(p, "project:read", None)
    await a.tokens.revoke(SYSTEM, p.token_id)
    with pytest.raises(Unauthenticated):
        await b.tokens.authenticate(issued.secret)


async def test_purge_removes_expired_sessions(ids, system, memory, clock):
    await make(ids, system, "alice", "viewer")
    await ids.sessions.login(Credentials(name="alice", password=PW), ip=None, user_agent=None)
    assert await ids.sessions.purge() == 0
    clock.advance(ids.policy.session_idle.total_seconds() + 1)
    assert await ids.sessions.purge() == 1
    assert memory.data.sessions == {}
