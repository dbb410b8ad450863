"""Permission resolution and its explanation.

effective(user, P) = permissions of the user's role bindings that apply in P
(global ones, plus P's) ∪ the permission of every active delegation to the
user that applies in P and whose delegator *still* holds that permission in
the delegation's own scope. The delegator check recurses (delegations may be
chained); a chain never visits the same (user, scope) twice, so cycles that
are not grounded in a role grant nothing (the least fixpoint).
A binding to the ``admin`` role grants every permission of the catalogue.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import attrs

from corral.core.identity.catalogue import ADMIN_ROLE, PERMISSIONS
from corral.core.identity.model import Binding, Delegation, Grant
from corral.core.identity.ports import DelegationStore, ImplicitRights, RoleStore

__all__ = ["Explanation", "Resolution", "Resolver"]

_Node = tuple[uuid.UUID, uuid.UUID | None]


@attrs.frozen
class Resolution:
    """Effective permissions, and until when they hold at the latest (the earliest delegation expiry used)."""

    permissions: frozenset[str]
    valid_until: datetime | None = None


@attrs.frozen
class Explanation:
    """Why a permission is granted (one path) or denied (what was looked at)."""

    allowed: bool
    because: list[Grant]


def _scope(project_id: uuid.UUID | None) -> str:
    return "globally" if project_id is None else f"in project {project_id}"


class Resolver:
    """Resolves permissions against the stores of one unit of work, memoising within one call chain.

    Make a new Resolver per request or transaction: it caches what it read.
    """

    def __init__(
        self, roles: RoleStore, delegations: DelegationStore, now: datetime, implicit: ImplicitRights | None = None
    ) -> None:
        self._implicit = implicit  # rights without a binding (project ownership): ground a chain like a role
        self._roles = roles
        self._delegations = delegations
        self._now = now
        self._grants: dict[_Node, list[tuple[Binding, frozenset[str]]]] = {}
        self._incoming: dict[_Node, list[Delegation]] = {}

    async def _role_grants(self, node: _Node) -> list[tuple[Binding, frozenset[str]]]:
        if node not in self._grants:
            grants = await self._roles.role_grants(node[0], node[1])
            self._grants[node] = [
                (b, frozenset(PERMISSIONS) | perms if b.role_name == ADMIN_ROLE else perms)
                for b, perms in grants
            ]
        return self._grants[node]

    async def _active_to(self, node: _Node) -> list[Delegation]:
        if node not in self._incoming:
            found = await self._delegations.active_to(node[0], node[1], self._now)
            self._incoming[node] = [d for d in found if d.is_active(self._now) and d.applies_to(node[1])]
        return self._incoming[node]

    async def _chain(
        self, user_id: uuid.UUID, perm: str, project_id: uuid.UUID | None, path: frozenset[_Node]
    ) -> list[Grant] | None:
        node = (user_id, project_id)
        if node in path:
            return None
        for binding, perms in await self._role_grants(node):
            if perm in perms:
                where = "globally" if binding.project_id is None else f"in project {binding.project_id}"
                return [
                    Grant(
                        kind="role",
                        description=f"user {user_id} holds role {binding.role_name} {where}, granting {perm}",
                        role=binding.role_name,
                        project_id=binding.project_id,
                    )
                ]
        if self._implicit is not None and project_id is not None and perm in await self._implicit.rights(
            user_id, project_id
        ):
            return [
                Grant(
                    kind="owner",
                    description=f"user {user_id} owns project {project_id}, granting {perm}",
                    project_id=project_id,
                )
            ]
        for d in await self._active_to(node):
            if d.permission != perm:
                continue
            rest = await self._chain(d.delegator_id, perm, d.project_id, path | {node})
            if rest is not None:
                step = Grant(
                    kind="delegation",
                    description=(
                        f"delegation {d.id} from user {d.delegator_id} grants {perm} {_scope(d.project_id)}"
                        + (f" until {d.expires_at.isoformat()}" if d.expires_at else "")
                        + (f" (reason: {d.reason})" if d.reason else "")
                    ),
                    delegation_id=d.id,
                    delegator=d.delegator_id,
                    project_id=d.project_id,
                    expires_at=d.expires_at,
                )
                return [step, *rest]
        return None

    async def holds(self, user_id: uuid.UUID, perm: str, project_id: uuid.UUID | None) -> bool:
        """Whether the user holds ``perm`` in ``project_id`` (None: globally) right now."""
        return await self._chain(user_id, perm, project_id, frozenset()) is not None

    async def effective(self, user_id: uuid.UUID, project_id: uuid.UUID | None) -> Resolution:
        """Every permission the user holds in ``project_id`` and how long that answer stays right."""
        node = (user_id, project_id)
        from_roles: set[str] = set()
        for _binding, granted in await self._role_grants(node):
            from_roles |= granted
        perms = set(from_roles)
        valid_until: datetime | None = None  # conservative: the earliest expiry on any chain used
        for d in await self._active_to(node):
            if d.permission in from_roles:
                continue
            chain = await self._chain(d.delegator_id, d.permission, d.project_id, frozenset({node}))
            if chain is None:
                continue
            perms.add(d.permission)
            for exp in [d.expires_at, *(g.expires_at for g in chain)]:
                if exp is not None and (valid_until is None or exp < valid_until):
                    valid_until = exp
        return Resolution(frozenset(perms), valid_until)

    async def explain(self, user_id: uuid.UUID, perm: str, project_id: uuid.UUID | None) -> Explanation:
        """Allowed with the path (binding, or delegation chain ending in a binding), or denied with what was
        considered: the user's roles that apply and every delegation of that permission and why it fails."""
        chain = await self._chain(user_id, perm, project_id, frozenset())
        if chain is not None:
            return Explanation(True, chain)
        because: list[Grant] = []
        grants = await self._role_grants((user_id, project_id))
        roles = sorted({b.role_name for b, _ in grants})
        because.append(
            Grant(
                kind="role",
                description=(
                    f"no role of user {user_id} that applies {_scope(project_id)} grants {perm}"
                    + (f" (roles: {', '.join(roles)})" if roles else " (no roles)")
                ),
            )
        )
        found = await self._delegations.active_to(user_id, project_id, self._now)
        for d in found:
            if d.permission != perm:
                continue
            because.append(
                Grant(
                    kind="delegation",
                    description=(
                        f"delegation {d.id} from user {d.delegator_id} grants nothing: the delegator no "
                        "longer "
                        f"holds {perm} {_scope(d.project_id)}"
                    ),
                    delegation_id=d.id,
                    delegator=d.delegator_id,
                    project_id=d.project_id,
                )
            )
        return Explanation(False, because)
