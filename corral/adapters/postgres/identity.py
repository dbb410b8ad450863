"""PostgreSQL identity stores over the unit of work's asyncpg connection."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg

from corral.adapters.postgres.identity_credentials import (
    PostgresIdentitySettingsStore,
    PostgresLoginThrottleStore,
    PostgresSessionStore,
    PostgresTokenStore,
    PostgresTotpStore,
)
from corral.adapters.postgres.identity_paging import cursor_uuid, cursor_value
from corral.core.errors import Conflict, NotFound
from corral.core.identity.model import Binding, Delegation, Role, User
from corral.core.pagination import Page, encode_cursor

__all__ = [
    "PostgresDelegationStore",
    "PostgresIdentitySettingsStore",
    "PostgresLoginThrottleStore",
    "PostgresRoleStore",
    "PostgresSessionStore",
    "PostgresTokenStore",
    "PostgresTotpStore",
    "PostgresUserStore",
]


def _user(r: asyncpg.Record) -> User:
    return User(
        id=r["id"],
        name=r["name"],
        email=r["email"],
        password_hash=r["password_hash"],
        created_at=r["created_at"],
        updated_at=r["updated_at"],
        display_name=r["display_name"],
        is_active=r["is_active"],
    )


class PostgresUserStore:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def add(self, user: User) -> None:
        try:
            async with self.conn.transaction():  # savepoint: a conflict leaves the unit of work usable
                await self.conn.execute(
                    "INSERT INTO users (id, name, display_name, email, password_hash, is_active, created_at,"
                    " updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    user.id,
                    user.name,
                    user.display_name,
                    user.email,
                    user.password_hash,
                    user.is_active,
                    user.created_at,
                    user.updated_at,
                )
        except asyncpg.UniqueViolationError as exc:
            field = "email" if "email" in (exc.constraint_name or "") else "name"
            value = user.email if field == "email" else user.name
            raise Conflict(f"the {field} {value!r} is taken", field=field) from exc

    async def get(self, user_id: uuid.UUID) -> User | None:
        r = await self.conn.fetchrow("SELECT * FROM users WHERE id = $1", user_id)
        return _user(r) if r else None

    async def get_by_name(self, name: str) -> User | None:
        r = await self.conn.fetchrow("SELECT * FROM users WHERE lower(name) = lower($1)", name)
        return _user(r) if r else None

    async def update(self, user: User) -> None:
        try:
            async with self.conn.transaction():
                status = await self.conn.execute(
                    "UPDATE users SET display_name = $2, email = $3, password_hash = $4, is_active = $5 WHERE id = $1",
                    user.id,
                    user.display_name,
                    user.email,
                    user.password_hash,
                    user.is_active,
                )
        except asyncpg.UniqueViolationError as exc:
            raise Conflict(f"the email {user.email!r} is taken", field="email") from exc
        if status.endswith(" 0"):
            raise NotFound(f"no user {user.id}")

    async def delete(self, user_id: uuid.UUID) -> None:
        try:
            async with self.conn.transaction():
                await self.conn.execute("DELETE FROM users WHERE id = $1", user_id)
        except asyncpg.ForeignKeyViolationError as exc:
            table = getattr(exc, "table_name", None) or "other records"
            if table == "projects":
                raise Conflict("the user still owns projects; transfer or delete them first") from exc
            raise Conflict(
                f"the user is still referenced by {table} (their work keeps its author); "
                "deactivate the user instead (PATCH with is_active false)"
            ) from exc

    async def list_users(self, *, limit: int, cursor: str | None, q: str | None = None) -> Page[User]:
        after = cursor_value(cursor, "name")
        prefix = None if not q else q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        rows = await self.conn.fetch(
            "SELECT * FROM users WHERE ($1::text IS NULL OR name > $1) AND ($3::text IS NULL"
            " OR lower(name) LIKE $3 OR lower(coalesce(display_name, '')) LIKE $3 OR lower(email) LIKE $3)"
            " ORDER BY name LIMIT $2",
            after,
            limit + 1,
            prefix,
        )
        users = [_user(r) for r in rows[:limit]]
        return Page(users, encode_cursor({"name": users[-1].name}) if len(rows) > limit else None)

    async def count(self) -> int:
        return int(await self.conn.fetchval("SELECT count(*) FROM users"))


class PostgresRoleStore:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def ensure_permissions(self, catalogue: dict[str, str]) -> None:
        rows = [(uuid.uuid4(), name, *name.split(":", 1), desc) for name, desc in catalogue.items()]
        await self.conn.executemany(
            "INSERT INTO permissions (id, name, resource, action, description) VALUES ($1, $2, $3, $4, $5)"
            " ON CONFLICT (name) DO NOTHING",
            rows,
        )

    async def _perms(self, role_ids: list[uuid.UUID]) -> dict[uuid.UUID, frozenset[str]]:
        rows = await self.conn.fetch(
            "SELECT rp.role_id, p.name FROM role_permissions rp JOIN permissions p ON p.id = rp.permission_id"
            " WHERE rp.role_id = ANY($1::uuid[])",
            role_ids,
        )
        out: dict[uuid.UUID, set[str]] = {rid: set() for rid in role_ids}
        for r in rows:
            out[r["role_id"]].add(r["name"])
        return {k: frozenset(v) for k, v in out.items()}

    def _role(self, r: asyncpg.Record, perms: frozenset[str]) -> Role:
        return Role(
            id=r["id"],
            name=r["name"],
            permissions=perms,
            created_at=r["created_at"],
            description=r["description"],
            is_system=r["is_system"],
        )

    async def add(self, role: Role) -> None:
        try:
            async with self.conn.transaction():
                await self.conn.execute(
                    "INSERT INTO roles (id, name, description, is_system, created_at) VALUES ($1, $2, $3, $4, $5)",
                    role.id,
                    role.name,
                    role.description,
                    role.is_system,
                    role.created_at,
                )
        except asyncpg.UniqueViolationError as exc:
            raise Conflict(f"a role named {role.name!r} exists", field="name") from exc
        await self.set_permissions(role.id, role.permissions)

    async def get_by_name(self, name: str) -> Role | None:
        r = await self.conn.fetchrow("SELECT * FROM roles WHERE name = $1", name)
        if r is None:
            return None
        return self._role(r, (await self._perms([r["id"]]))[r["id"]])

    async def list_roles(self) -> list[Role]:
        rows = await self.conn.fetch("SELECT * FROM roles ORDER BY name")
        perms = await self._perms([r["id"] for r in rows])
        return [self._role(r, perms[r["id"]]) for r in rows]

    async def set_permissions(self, role_id: uuid.UUID, permissions: frozenset[str]) -> None:
        await self.conn.execute("DELETE FROM role_permissions WHERE role_id = $1", role_id)
        await self.conn.execute(
            "INSERT INTO role_permissions (role_id, permission_id)"
            " SELECT $1, id FROM permissions WHERE name = ANY($2::text[])",
            role_id,
            sorted(permissions),
        )

    async def delete_role(self, role_id: uuid.UUID) -> int:
        removed = await self.conn.fetchval(
            "WITH b AS (DELETE FROM user_roles WHERE role_id = $1 RETURNING 1) SELECT count(*) FROM b", role_id
        )
        await self.conn.execute("DELETE FROM roles WHERE id = $1", role_id)
        return int(removed or 0)

    async def list_bindings(
        self, *, user_id: uuid.UUID | None, project_id: uuid.UUID | None, limit: int, cursor: str | None
    ) -> Page[Binding]:
        after = cursor_uuid(cursor)
        rows = await self.conn.fetch(
            self._BINDING + " WHERE ($1::uuid IS NULL OR ur.user_id = $1) AND ($2::uuid IS NULL OR ur.project_id = $2)"
            " AND ($3::uuid IS NULL OR ur.id > $3) ORDER BY ur.id LIMIT $4",
            user_id,
            project_id,
            after,
            limit + 1,
        )
        items = [self._binding(r) for r in rows[:limit]]
        return Page(items, encode_cursor({"id": str(items[-1].id)}) if len(rows) > limit else None)

    async def add_binding(self, binding: Binding) -> None:
        try:
            async with self.conn.transaction():
                await self.conn.execute(
                    "INSERT INTO user_roles (id, user_id, role_id, project_id, granted_by, created_at)"
                    " VALUES ($1, $2, $3, $4, $5, $6)",
                    binding.id,
                    binding.user_id,
                    binding.role_id,
                    binding.project_id,
                    binding.granted_by,
                    binding.created_at,
                )
        except asyncpg.UniqueViolationError as exc:
            raise Conflict("the user already holds that role in that scope") from exc
        except asyncpg.ForeignKeyViolationError as exc:
            raise NotFound("no such user, role or project") from exc

    _BINDING = (
        "SELECT ur.id, ur.user_id, ur.role_id, r.name AS role_name, ur.project_id, ur.granted_by,"
        " ur.created_at FROM user_roles ur JOIN roles r ON r.id = ur.role_id"
    )

    @staticmethod
    def _binding(r: asyncpg.Record) -> Binding:
        return Binding(
            id=r["id"],
            user_id=r["user_id"],
            role_id=r["role_id"],
            role_name=r["role_name"],
            created_at=r["created_at"],
            project_id=r["project_id"],
            granted_by=r["granted_by"],
        )

    async def get_binding(self, binding_id: uuid.UUID) -> Binding | None:
        r = await self.conn.fetchrow(self._BINDING + " WHERE ur.id = $1", binding_id)
        return self._binding(r) if r else None

    async def delete_binding(self, binding_id: uuid.UUID) -> None:
        await self.conn.execute("DELETE FROM user_roles WHERE id = $1", binding_id)

    async def bindings_of(self, user_id: uuid.UUID) -> list[Binding]:
        rows = await self.conn.fetch(
            self._BINDING + " WHERE ur.user_id = $1 ORDER BY ur.created_at, ur.id", user_id
        )
        return [self._binding(r) for r in rows]

    async def role_grants(
        self, user_id: uuid.UUID, project_id: uuid.UUID | None
    ) -> list[tuple[Binding, frozenset[str]]]:
        rows = await self.conn.fetch(
            "SELECT ur.id, ur.user_id, ur.role_id, r.name AS role_name, ur.project_id, ur.granted_by,"
            " ur.created_at, COALESCE(array_agg(p.name) FILTER (WHERE p.name IS NOT NULL), '{}') AS perms"
            " FROM user_roles ur JOIN users u ON u.id = ur.user_id AND u.is_active"
            " JOIN roles r ON r.id = ur.role_id"
            " LEFT JOIN role_permissions rp ON rp.role_id = r.id LEFT JOIN permissions p ON p.id = rp.permission_id"
            " WHERE ur.user_id = $1 AND (ur.project_id IS NULL OR ur.project_id = $2)"
            " GROUP BY ur.id, r.name ORDER BY ur.created_at, ur.id",
            user_id,
            project_id,
        )
        return [(self._binding(r), frozenset(r["perms"])) for r in rows]


_DELEGATION = (
    "SELECT d.id, d.delegator_id, d.delegate_id, p.name AS permission, d.project_id, d.expires_at,"
    " d.reason, d.created_at, d.revoked_at FROM delegations d JOIN permissions p"
    " ON p.id = d.permission_id"
)


def _delegation(r: asyncpg.Record) -> Delegation:
    return Delegation(
        id=r["id"],
        delegator_id=r["delegator_id"],
        delegate_id=r["delegate_id"],
        permission=r["permission"],
        created_at=r["created_at"],
        project_id=r["project_id"],
        expires_at=r["expires_at"],
        reason=r["reason"],
        revoked_at=r["revoked_at"],
    )


class PostgresDelegationStore:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def add(self, delegation: Delegation) -> None:
        d = delegation
        try:
            async with self.conn.transaction():
                status = await self.conn.execute(
                    "INSERT INTO delegations (id, delegator_id, delegate_id, permission_id, project_id, expires_at,"
                    " reason, created_at, revoked_at) SELECT $1, $2, $3, id, $5, $6, $7, $8, $9 FROM permissions"
                    " WHERE name = $4",
                    d.id,
                    d.delegator_id,
                    d.delegate_id,
                    d.permission,
                    d.project_id,
                    d.expires_at,
                    d.reason,
                    d.created_at,
                    d.revoked_at,
                )
        except asyncpg.UniqueViolationError as exc:
            raise Conflict(
                f"an unrevoked delegation of {d.permission} to that user in that scope exists;"
                " revoke it first"
            ) from exc
        except asyncpg.ForeignKeyViolationError as exc:
            raise NotFound("no such user or project") from exc
        if status.endswith(" 0"):
            raise NotFound(f"no permission {d.permission}")

    async def get(self, delegation_id: uuid.UUID) -> Delegation | None:
        r = await self.conn.fetchrow(_DELEGATION + " WHERE d.id = $1", delegation_id)
        return _delegation(r) if r else None

    async def revoke(self, delegation_id: uuid.UUID, at: datetime) -> None:
        await self.conn.execute(
            "UPDATE delegations SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL", delegation_id, at
        )

    async def active_to(
        self, delegate_id: uuid.UUID, project_id: uuid.UUID | None, now: datetime
    ) -> list[Delegation]:
        rows = await self.conn.fetch(
            _DELEGATION + " WHERE d.delegate_id = $1 AND d.revoked_at IS NULL"
            " AND (d.expires_at IS NULL OR d.expires_at > $3) AND (d.project_id IS NULL OR d.project_id = $2)"
            " ORDER BY d.id",
            delegate_id,
            project_id,
            now,
        )
        return [_delegation(r) for r in rows]

    async def delegates_in_project(self, project_id: uuid.UUID, now: datetime) -> list[uuid.UUID]:
        rows = await self.conn.fetch(
            "SELECT DISTINCT delegate_id FROM delegations WHERE project_id = $1 AND revoked_at IS NULL"
            " AND (expires_at IS NULL OR expires_at > $2)",
            project_id,
            now,
        )
        return sorted(r["delegate_id"] for r in rows)

    async def list_involving(
        self, user_id: uuid.UUID | None, *, limit: int, cursor: str | None
    ) -> Page[Delegation]:
        before = cursor_uuid(cursor)
        rows = await self.conn.fetch(
            _DELEGATION + " WHERE ($1::uuid IS NULL OR d.delegator_id = $1 OR d.delegate_id = $1)"
            " AND ($2::uuid IS NULL OR d.id < $2) ORDER BY d.id DESC LIMIT $3",
            user_id,
            before,
            limit + 1,
        )
        items = [_delegation(r) for r in rows[:limit]]
        return Page(items, encode_cursor({"id": str(items[-1].id)}) if len(rows) > limit else None)
