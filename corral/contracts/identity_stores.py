"""Behaviour every implementation of the identity stores must have.

Fixture the subclass provides: ``identity_uow_factory`` — a callable returning a fresh unit of work with the
identity stores (``users``, ``roles``, ``delegations``, ``tokens``, ``sessions``, ``login_throttle``, ``totp``);
each test runs inside one unit of work and never commits. Override ``make_project`` when projects are rows, and
``put_plaintext_totp`` (a TOTP row as an older Corral stored it, last_step 7).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest

from corral.core.errors import Conflict, Unavailable
from corral.core.identity.catalogue import PERMISSIONS
from corral.core.identity.model import (
    ApiToken,
    AuthSession,
    Binding,
    Delegation,
    Role,
    SealedSecret,
    TotpEnrolment,
    User,
)
from corral.core.ids import uuid7
from corral.core.secrets.model import WrappedKey

__all__ = ["IdentityStoresContract"]

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def _user(name: str, **kw: Any) -> User:
    return User(
        id=uuid7(), name=name, email=f"{name}@example.com", password_hash="h", created_at=T0, updated_at=T0, **kw
    )


class IdentityStoresContract:
    async def make_project(self, uow: Any, owner_id: uuid.UUID, index: int) -> uuid.UUID:
        return uuid7()

    async def test_users_unique_and_paginated(self, identity_uow_factory: Any) -> None:
        async with identity_uow_factory() as uow:
            for n in ["carol", "alice", "bob"]:
                await uow.users.add(_user(n))
            with pytest.raises(Conflict):
                await uow.users.add(_user("alice"))
            with pytest.raises(Conflict):
                await uow.users.add(attrs.evolve(_user("zed"), email="bob@example.com"))
            first = await uow.users.list_users(limit=2, cursor=None)
            assert [u.name for u in first.items] == ["alice", "bob"]
            second = await uow.users.list_users(limit=2, cursor=first.next_cursor)
            assert [u.name for u in second.items] == ["carol"]
            assert second.next_cursor is None
            assert await uow.users.count() == 3
            alice = await uow.users.get_by_name("alice")
            assert alice is not None
            await uow.users.update(attrs.evolve(alice, display_name="Alice", is_active=False))
            got = await uow.users.get(alice.id)
            assert got is not None
            assert (got.display_name, got.is_active) == ("Alice", False)
            assert await uow.users.get_by_name("nobody") is None

    async def test_users_searched_by_prefix(self, identity_uow_factory: Any) -> None:
        async with identity_uow_factory() as uow:
            await uow.users.add(_user("frank", display_name="Frank Zappa"))
            await uow.users.add(attrs.evolve(_user("gina", display_name="Zoe G"), email="Zap_mail@example.com"))
            await uow.users.add(_user("zapper"))
            await uow.users.add(_user("percent", display_name="50% off"))
            found = await uow.users.list_users(limit=10, cursor=None, q="ZAP")
            assert [u.name for u in found.items] == ["gina", "zapper"]  # email, name; not "Frank Zappa"'s 2nd word
            assert [u.name for u in (await uow.users.list_users(limit=10, cursor=None, q="frank z")).items] == [
                "frank"]
            first = await uow.users.list_users(limit=1, cursor=None, q="z")
            assert [u.name for u in first.items] == ["gina"]
            rest = await uow.users.list_users(limit=1, cursor=first.next_cursor, q="z")
            assert [u.name for u in rest.items] == ["zapper"]
            assert [u.name for u in (await uow.users.list_users(limit=10, cursor=None, q="zap_")).items] == ["gina"]
            assert (await uow.users.list_users(limit=10, cursor=None, q="%")).items == []
            assert [u.name for u in (await uow.users.list_users(limit=10, cursor=None, q="50%")).items] == [
                "percent"]

    async def test_user_names_ignore_case(self, identity_uow_factory: Any) -> None:
        async with identity_uow_factory() as uow:
            await uow.users.add(_user("erin"))
            with pytest.raises(Conflict):  # "ERIN" is erin (like Gitea)
                await uow.users.add(attrs.evolve(_user("ERIN"), email="other-erin@example.com"))
            found = await uow.users.get_by_name("Erin")
            assert found is not None and found.name == "erin"

    async def test_roles_bindings_and_grants(self, identity_uow_factory: Any) -> None:
        async with identity_uow_factory() as uow:
            await uow.roles.ensure_permissions(PERMISSIONS)
            u = _user("dana")
            await uow.users.add(u)
            project = await self.make_project(uow, u.id, 0)
            role = Role(id=uuid7(), name="deployer", permissions=frozenset({"deploy:read"}), created_at=T0)
            await uow.roles.add(role)
            with pytest.raises(Conflict):
                await uow.roles.add(attrs.evolve(role, id=uuid7()))
            await uow.roles.set_permissions(role.id, frozenset({"deploy:read", "deploy:promote"}))
            found = await uow.roles.get_by_name("deployer")
            assert found is not None
            assert found.permissions == {"deploy:read", "deploy:promote"}
            b = Binding(
                id=uuid7(), user_id=u.id, role_id=role.id, role_name="deployer", created_at=T0, project_id=project
            )
            await uow.roles.add_binding(b)
            with pytest.raises(Conflict):
                await uow.roles.add_binding(attrs.evolve(b, id=uuid7()))
            assert await uow.roles.role_grants(u.id, None) == []
            grants = await uow.roles.role_grants(u.id, project)
            assert [(g.id, p) for g, p in grants] == [(b.id, frozenset({"deploy:read", "deploy:promote"}))]
            assert [x.id for x in await uow.roles.bindings_of(u.id)] == [b.id]
            await uow.users.update(attrs.evolve(u, is_active=False))
            assert await uow.roles.role_grants(u.id, project) == []  # nothing for an inactive user
            await uow.roles.delete_binding(b.id)
            assert await uow.roles.get_binding(b.id) is None

    async def test_list_bindings_and_delete_role(self, identity_uow_factory: Any) -> None:
        async with identity_uow_factory() as uow:
            await uow.roles.ensure_permissions(PERMISSIONS)
            a, b = _user("abe"), _user("bea")
            await uow.users.add(a)
            await uow.users.add(b)
            project = await self.make_project(uow, a.id, 0)
            keep = Role(id=uuid7(), name="keeper", permissions=frozenset({"project:read"}), created_at=T0)
            gone = Role(id=uuid7(), name="goner", permissions=frozenset({"deploy:read"}), created_at=T0)
            await uow.roles.add(keep)
            await uow.roles.add(gone)
            made = []
            for user, role, proj in [(a, keep, None), (a, gone, project), (b, gone, None), (b, keep, project)]:
                binding = Binding(id=uuid7(), user_id=user.id, role_id=role.id, role_name=role.name,
                                  created_at=T0, project_id=proj)
                await uow.roles.add_binding(binding)
                made.append(binding)
            everyone = await uow.roles.list_bindings(user_id=None, project_id=None, limit=3, cursor=None)
            rest = await uow.roles.list_bindings(user_id=None, project_id=None, limit=3, cursor=everyone.next_cursor)
            assert [x.id for x in everyone.items + rest.items] == [m.id for m in made]
            assert rest.next_cursor is None
            mine = await uow.roles.list_bindings(user_id=a.id, project_id=None, limit=10, cursor=None)
            assert [x.id for x in mine.items] == [made[0].id, made[1].id]
            in_project = await uow.roles.list_bindings(user_id=None, project_id=project, limit=10, cursor=None)
            assert [x.id for x in in_project.items] == [made[1].id, made[3].id]
            both = await uow.roles.list_bindings(user_id=b.id, project_id=project, limit=10, cursor=None)
            assert [(x.id, x.role_name) for x in both.items] == [(made[3].id, "keeper")]
            assert await uow.roles.delete_role(gone.id) == 2
            assert await uow.roles.get_by_name("goner") is None
            left = await uow.roles.list_bindings(user_id=None, project_id=None, limit=10, cursor=None)
            assert [x.id for x in left.items] == [made[0].id, made[3].id]
            assert await uow.roles.delete_role(gone.id) == 0
            granter = _user("gus")
            await uow.users.add(granter)
            granted = attrs.evolve(made[0], id=uuid7(), user_id=b.id, granted_by=granter.id)
            await uow.roles.add_binding(granted)
            await uow.users.delete(granter.id)  # a granter can be deleted; what they granted stays
            kept = await uow.roles.get_binding(granted.id)
            assert kept is not None and kept.granted_by is None

    async def test_delegations(self, identity_uow_factory: Any) -> None:
        async with identity_uow_factory() as uow:
            await uow.roles.ensure_permissions(PERMISSIONS)
            a, b = _user("ann"), _user("ben")
            await uow.users.add(a)
            await uow.users.add(b)
            project = await self.make_project(uow, a.id, 0)
            d = Delegation(
                id=uuid7(),
                delegator_id=a.id,
                delegate_id=b.id,
                permission="observe:read",
                created_at=T0,
                project_id=project,
                expires_at=T0 + timedelta(hours=1),
                reason="shift",
            )
            await uow.delegations.add(d)
            with pytest.raises(Conflict):
                await uow.delegations.add(attrs.evolve(d, id=uuid7()))
            assert [x.id for x in await uow.delegations.active_to(b.id, project, T0)] == [d.id]
            assert await uow.delegations.active_to(b.id, None, T0) == []
            assert await uow.delegations.active_to(b.id, project, T0 + timedelta(hours=2)) == []
            assert await uow.delegations.delegates_in_project(project, T0) == [b.id]
            assert await uow.delegations.delegates_in_project(project, T0 + timedelta(hours=2)) == []
            await uow.delegations.revoke(d.id, T0)
            assert await uow.delegations.delegates_in_project(project, T0) == []
            assert await uow.delegations.active_to(b.id, project, T0) == []
            again = attrs.evolve(d, id=uuid7())
            await uow.delegations.add(again)  # a revoked delegation can be granted again
            page = await uow.delegations.list_involving(a.id, limit=1, cursor=None)
            assert [x.id for x in page.items] == [again.id]
            rest = await uow.delegations.list_involving(a.id, limit=5, cursor=page.next_cursor)
            assert [x.id for x in rest.items] == [d.id]
            got = await uow.delegations.get(d.id)
            assert got is not None
            assert got.revoked_at == T0
            assert got.reason == "shift"

    async def test_tokens_and_batched_last_used(self, identity_uow_factory: Any) -> None:
        async with identity_uow_factory() as uow:
            u = _user("tom")
            await uow.users.add(u)
            t = ApiToken(
                id=uuid7(),
                user_id=u.id,
                name="ci",
                token_hash="ab" * 32,
                prefix="crl_abcdef",
                scopes=frozenset({"project:read"}),
                created_at=T0,
            )
            await uow.tokens.add(t)
            assert await uow.tokens.get_by_hash("ab" * 32) == t
            await uow.tokens.touch_many({t.id: T0 + timedelta(minutes=5)})
            await uow.tokens.touch_many({t.id: T0 + timedelta(minutes=1)})  # never backwards
            got = await uow.tokens.get(t.id)
            assert got is not None
            assert got.last_used_at == T0 + timedelta(minutes=5)
            page = await uow.tokens.list_for_user(u.id, limit=10, cursor=None)
            assert [x.id for x in page.items] == [t.id]
            await uow.tokens.delete(t.id)
            assert await uow.tokens.get_by_hash("ab" * 32) is None

    async def test_sessions(self, identity_uow_factory: Any) -> None:
        async with identity_uow_factory() as uow:
            u = _user("sam")
            await uow.users.add(u)
            s = AuthSession(
                id=uuid7(),
                user_id=u.id,
                token_hash="cd" * 32,
                csrf_hash="ef" * 32,
                created_at=T0,
                last_seen_at=T0,
                expires_at=T0 + timedelta(days=1),
                ip_addr="10.0.0.7",
                user_agent="curl",
            )
            await uow.sessions.add(s)
            assert await uow.sessions.get_by_hash("cd" * 32) == s
            await uow.sessions.touch_many({s.id: T0 + timedelta(minutes=3)})
            got = await uow.sessions.get(s.id)
            assert got is not None
            assert got.last_seen_at == T0 + timedelta(minutes=3)
            assert [x.id for x in await uow.sessions.list_for_user(u.id)] == [s.id]
            assert await uow.sessions.delete_for_user(u.id) == 1
            assert await uow.sessions.get(s.id) is None
            fresh = attrs.evolve(s, id=uuid7(), token_hash="01" * 32, last_seen_at=T0 + timedelta(hours=1))
            idle = attrs.evolve(s, id=uuid7(), token_hash="02" * 32)
            old = attrs.evolve(s, id=uuid7(), token_hash="03" * 32, last_seen_at=T0 + timedelta(hours=1),
                               expires_at=T0 + timedelta(hours=1))
            for x in (fresh, idle, old):
                await uow.sessions.add(x)
            assert await uow.sessions.delete_expired(T0 + timedelta(hours=1), T0 + timedelta(minutes=30)) == 2
            assert [x.id for x in await uow.sessions.list_for_user(u.id)] == [fresh.id]

    async def test_login_throttle(self, identity_uow_factory: Any) -> None:
        async with identity_uow_factory() as uow:
            lt = uow.login_throttle
            await lt.record_failure(["user:x", "ip:1.2.3.4"], T0)
            await lt.record_failure(["user:x"], T0 + timedelta(seconds=30))
            assert await lt.failures_since("user:x", T0) == 2
            assert await lt.failures_since("user:x", T0 + timedelta(seconds=1)) == 1
            assert await lt.banned_until(["user:x"], T0) is None
            await lt.ban("user:x", T0 + timedelta(minutes=5))
            await lt.ban("user:x", T0 + timedelta(minutes=1))  # a longer ban is kept
            assert await lt.banned_until(["user:x", "ip:9.9.9.9"], T0) == T0 + timedelta(minutes=5)
            assert await lt.banned_until(["user:x"], T0 + timedelta(minutes=6)) is None
            await lt.record_failure(["ip:1.2.3.4"], T0 + timedelta(hours=1))
            await lt.prune(T0 + timedelta(minutes=10))
            assert await lt.failures_since("ip:1.2.3.4", T0) == 1
            assert await lt.banned_until(["user:x"], T0) is None
            await lt.clear("user:x")
            assert await lt.failures_since("user:x", T0) == 0
            await lt.record_failure(["user:y", "ip:5.6.7.8"], T0)
            await lt.ban("user:y", T0 + timedelta(minutes=5))
            await lt.ban("ip:5.6.7.8", T0 + timedelta(minutes=5))
            assert await lt.lift(["user:y", "user:nobody"]) == 1
            assert await lt.banned_until(["user:y"], T0) is None
            assert await lt.failures_since("user:y", T0) == 0
            assert await lt.banned_until(["ip:5.6.7.8"], T0) == T0 + timedelta(minutes=5)  # other keys kept
            assert await lt.failures_since("ip:5.6.7.8", T0) == 1

    async def test_identity_settings(self, identity_uow_factory: Any) -> None:
        async with identity_uow_factory() as uow:
            u = _user("ivy")
            await uow.users.add(u)
            assert await uow.identity_settings.get("require_totp_for_admins") is None
            await uow.identity_settings.put("require_totp_for_admins", True, by=u.id, at=T0)
            assert await uow.identity_settings.get("require_totp_for_admins") is True
            await uow.identity_settings.put("require_totp_for_admins", False, by=None, at=T0)
            assert await uow.identity_settings.get("require_totp_for_admins") is False

    async def put_plaintext_totp(self, uow: Any, user_id: uuid.UUID, secret: str) -> None:
        """Store a TOTP row as an older Corral did (plaintext secret); subclasses write it their way."""
        raise NotImplementedError

    async def test_totp(self, identity_uow_factory: Any) -> None:
        async with identity_uow_factory() as uow:
            u = _user("tia")
            await uow.users.add(u)
            e = TotpEnrolment(user_id=u.id, secret=_sealed("k1"), created_at=T0)
            await uow.totp.put(e)
            confirmed = attrs.evolve(e, confirmed_at=T0, recovery_hashes=frozenset({"a", "b"}), last_step=42)
            await uow.totp.put(confirmed)
            assert await uow.totp.get(u.id) == confirmed
            await uow.totp.delete(u.id)
            assert await uow.totp.get(u.id) is None

    async def test_totp_rewrap_claims_and_counts(self, identity_uow_factory: Any) -> None:
        async with identity_uow_factory() as uow:
            users = [_user(f"t{i}") for i in range(3)]
            for i, u in enumerate(users):
                await uow.users.add(u)
                await uow.totp.put(TotpEnrolment(user_id=u.id, secret=_sealed("old" if i < 2 else "new"),
                                                 created_at=T0))
            assert await uow.totp.count_by_key() == {"old": 2, "new": 1}
            first = await uow.totp.claim_for_rewrap("new", 1)
            assert len(first) == 1 and first[0].secret.wrapped_key.key_id == "old"
            claimed = await uow.totp.claim_for_rewrap("new", 10)
            assert {c.user_id for c in claimed} == {users[0].id, users[1].id}
            for c in claimed:
                await uow.totp.put(attrs.evolve(c, secret=_sealed("new")))
            assert await uow.totp.claim_for_rewrap("new", 10) == []
            assert await uow.totp.count_by_key() == {"new": 3}

    async def test_totp_plaintext_rows_are_never_read_as_not_enrolled(self, identity_uow_factory: Any) -> None:
        async with identity_uow_factory() as uow:
            u, v = _user("old"), _user("new")
            await uow.users.add(u)
            await uow.users.add(v)
            await self.put_plaintext_totp(uow, u.id, "JBSWY3DPEHPK3PXP")
            await uow.totp.put(TotpEnrolment(user_id=v.id, secret=_sealed("k"), created_at=T0))
            with pytest.raises(Unavailable):
                await uow.totp.get(u.id)
            assert await uow.totp.count_by_key() == {"k": 1}
            assert await uow.totp.claim_plaintext(10) == [(u.id, "JBSWY3DPEHPK3PXP")]
            await uow.totp.seal_plaintext(u.id, _sealed("k"))
            assert await uow.totp.claim_plaintext(10) == []
            got = await uow.totp.get(u.id)
            assert got is not None
            assert got.secret == _sealed("k")
            assert got.last_step == 7  # the other fields are kept


def _sealed(key_id: str) -> SealedSecret:
    return SealedSecret(b"\x01sealed-" + key_id.encode(), WrappedKey(key_id, b"wrapped-" + key_id.encode()))
