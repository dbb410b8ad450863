"""Property-based contract of permission resolution over any implementation of the identity stores.

Fixture the subclass provides: ``identity_uow_factory`` — a callable returning a fresh unit of work (the
identity stores, empty of users/roles, catalogue not yet loaded); every example runs in one unit of work
that is rolled back at the end. Override ``make_project`` when projects must exist as rows.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corral.core.identity.catalogue import ADMIN_ROLE, PERMISSIONS
from corral.core.identity.model import Binding, Delegation, Role, User
from corral.core.identity.resolver import Resolver
from corral.core.ids import uuid7

__all__ = ["ResolverContract", "reference_effective"]

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
PERMS = ["project:read", "project:write", "deploy:promote"]
ALL = frozenset(PERMISSIONS)


@attrs.frozen
class World:
    """A random RBAC state, by indices: users 0..n-1, projects 0..m-1 (None = global)."""

    active: tuple[bool, ...]
    roles: tuple[frozenset[str], ...]  # role i's permissions; role 0 is named admin when admin_role
    admin_role: bool
    bindings: tuple[tuple[int, int, int | None], ...]  # (user, role, project)
    delegations: tuple[tuple[int, int, str, int | None, int | None, bool], ...]  # (from, to, perm, project,
    # expiry offset in hours (None: never; negative: expired), revoked)


N_USERS, N_PROJECTS = 4, 2


def worlds() -> st.SearchStrategy[World]:
    user = st.integers(0, N_USERS - 1)
    project = st.one_of(st.none(), st.integers(0, N_PROJECTS - 1))
    return st.builds(
        World,
        active=st.tuples(*[st.booleans() for _ in range(N_USERS)]).map(lambda t: (True, *t[1:]))
        | st.just((True,) * N_USERS),
        roles=st.lists(st.frozensets(st.sampled_from(PERMS)), min_size=1, max_size=3).map(tuple),
        admin_role=st.booleans(),
        bindings=st.lists(st.tuples(user, st.integers(0, 2), project), max_size=5, unique_by=lambda b: b).map(tuple),
        delegations=st.lists(
            st.tuples(
                user,
                user,
                st.sampled_from(PERMS),
                project,
                st.one_of(st.none(), st.integers(-3, 3).filter(lambda h: h != 0)),
                st.booleans(),
            ),
            max_size=8,
            unique_by=lambda d: (d[0], d[1], d[2], d[3]),
        ).map(lambda ds: tuple(d for d in ds if d[0] != d[1])),
    )


def reference_effective(w: World, user: int, scope: int | None) -> frozenset[str]:
    """The least fixpoint, computed naively: what holds(u, p, S) must mean."""
    scopes: list[int | None] = [None, *range(N_PROJECTS)]

    def role_perms(r: int) -> frozenset[str]:
        if r >= len(w.roles):
            return frozenset()
        return ALL | w.roles[r] if (r == 0 and w.admin_role) else w.roles[r]

    held: set[tuple[int, str, int | None]] = set()
    for u, r, p in w.bindings:
        if r < len(w.roles) and w.active[u]:
            for s in scopes:
                if p is None or p == s:
                    held |= {(u, perm, s) for perm in role_perms(r)}
    changed = True
    while changed:
        changed = False
        for frm, to, perm, p, exp, revoked in w.delegations:
            if revoked or (exp is not None and exp < 0):
                continue
            if (frm, perm, p) not in held:
                continue
            for s in scopes:
                if (p is None or p == s) and (to, perm, s) not in held:
                    held.add((to, perm, s))
                    changed = True
    return frozenset(perm for u, perm, s in held if u == user and s == scope)


class ResolverContract:
    """effective() and explain() agree with the reference model on random worlds."""

    async def make_project(self, uow: Any, owner_id: uuid.UUID, index: int) -> uuid.UUID:
        return uuid7()

    async def _build(self, uow: Any, w: World) -> tuple[list[uuid.UUID], list[uuid.UUID]]:
        await uow.roles.ensure_permissions(PERMISSIONS)
        users = []
        for i in range(N_USERS):
            user = User(
                id=uuid7(),
                name=f"u{i}-{uuid7().hex[:8]}",
                email=f"u{i}-{uuid7().hex}@x",
                password_hash="!",
                created_at=NOW,
                updated_at=NOW,
                is_active=w.active[i],
            )
            await uow.users.add(user)
            users.append(user.id)
        projects = [await self.make_project(uow, users[0], i) for i in range(N_PROJECTS)]
        role_ids = []
        for i, perms in enumerate(w.roles):
            name = ADMIN_ROLE if (i == 0 and w.admin_role) else f"r{i}-{uuid7().hex[:8]}"
            existing = await uow.roles.get_by_name(name)
            if existing is not None:  # the admin role may be bootstrapped already
                await uow.roles.set_permissions(existing.id, perms)
                role_ids.append((existing.id, name))
                continue
            role = Role(id=uuid7(), name=name, permissions=perms, created_at=NOW)
            await uow.roles.add(role)
            role_ids.append((role.id, name))
        for u, r, p in w.bindings:
            if r < len(role_ids):
                await uow.roles.add_binding(
                    Binding(
                        id=uuid7(),
                        user_id=users[u],
                        role_id=role_ids[r][0],
                        role_name=role_ids[r][1],
                        created_at=NOW,
                        project_id=None if p is None else projects[p],
                    )
                )
        for frm, to, perm, p, exp, revoked in w.delegations:
            await uow.delegations.add(
                Delegation(
                    id=uuid7(),
                    delegator_id=users[frm],
                    delegate_id=users[to],
                    permission=perm,
                    created_at=NOW - timedelta(days=1),
                    project_id=None if p is None else projects[p],
                    expires_at=None if exp is None else NOW + timedelta(hours=exp),
                    revoked_at=NOW - timedelta(minutes=1) if revoked else None,
                )
            )
        return users, projects

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(w=worlds())
    async def test_resolver_matches_reference_model(self, identity_uow_factory: Any, w: World) -> None:
        async with identity_uow_factory() as uow:
            users, projects = await self._build(uow, w)
            resolver = Resolver(uow.roles, uow.delegations, NOW)
            for i, uid in enumerate(users):
                for s in [None, *range(N_PROJECTS)]:
                    pid = None if s is None else projects[s]
                    want = reference_effective(w, i, s)
                    got = (await resolver.effective(uid, pid)).permissions
                    assert got == want, (i, s, got, want)
                    for perm in PERMS:
                        explained = await Resolver(uow.roles, uow.delegations, NOW).explain(uid, perm, pid)
                        assert explained.allowed == (perm in want), (i, s, perm)
                        assert explained.because
                        if explained.allowed:
                            assert explained.because[-1].kind == "role"
