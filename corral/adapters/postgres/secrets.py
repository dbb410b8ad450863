"""PostgreSQL SecretStore over the unit of work's asyncpg connection (tables secrets, secret_versions)."""

from __future__ import annotations

import uuid

import asyncpg

from corral.core.errors import Conflict
from corral.core.secrets.model import Secret, SecretScope, SecretVersion, WrappedKey

__all__ = ["PostgresSecretStore"]

_SECRET_COLS = "id, project_id, name, scope, version, created_by, created_at, updated_at, max_versions"
_VERSION_COLS = (
    "secret_id, version, ciphertext, wrapped_key, key_id, created_by, created_at, deleted_at, destroyed_at"
)


def _secret(r: asyncpg.Record, prefix: str = "") -> Secret:
    return Secret(
        id=r[prefix + "id"], project_id=r[prefix + "project_id"], name=r[prefix + "name"],
        scope=SecretScope(r[prefix + "scope"]), current_version=r[prefix + "version"],
        created_at=r[prefix + "created_at"], updated_at=r[prefix + "updated_at"],
        created_by=r[prefix + "created_by"], max_versions=r[prefix + "max_versions"],
    )


def _version(r: asyncpg.Record) -> SecretVersion:
    wrapped = WrappedKey(r["key_id"], bytes(r["wrapped_key"])) if r["wrapped_key"] is not None else None
    return SecretVersion(
        secret_id=r["secret_id"], version=r["version"], created_at=r["created_at"],
        ciphertext=bytes(r["ciphertext"]) if r["ciphertext"] is not None else None, wrapped_key=wrapped,
        created_by=r["created_by"], deleted_at=r["deleted_at"], destroyed_at=r["destroyed_at"],
    )


class PostgresSecretStore:
    """SecretStore on PostgreSQL; see the port for behaviour."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def get(self, project_id: uuid.UUID | None, name: str, *, for_update: bool = False) -> Secret | None:
        lock = " FOR UPDATE" if for_update else ""
        row = await self.conn.fetchrow(
            f"SELECT {_SECRET_COLS} FROM secrets WHERE project_id IS NOT DISTINCT FROM $1 AND name = $2{lock}",
            project_id, name,
        )
        return _secret(row) if row else None

    async def in_scope(self, project_id: uuid.UUID | None) -> list[Secret]:
        rows = await self.conn.fetch(
            f"SELECT {_SECRET_COLS} FROM secrets WHERE project_id IS NOT DISTINCT FROM $1 ORDER BY name", project_id
        )
        return [_secret(r) for r in rows]

    async def add(self, secret: Secret) -> None:
        try:
            await self.conn.execute(
                f"INSERT INTO secrets ({_SECRET_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                secret.id, secret.project_id, secret.name, secret.scope.value, secret.current_version,
                secret.created_by, secret.created_at, secret.updated_at, secret.max_versions,
            )
        except asyncpg.UniqueViolationError as exc:
            where = "globally" if secret.project_id is None else "in this project"
            raise Conflict(f"secret {secret.name} already exists {where}") from exc

    async def update(self, secret: Secret) -> None:
        await self.conn.execute(
            "UPDATE secrets SET scope = $2, version = $3, max_versions = $4, updated_at = $5 WHERE id = $1",
            secret.id, secret.scope.value, secret.current_version, secret.max_versions, secret.updated_at,
        )

    async def delete(self, secret_id: uuid.UUID) -> None:
        await self.conn.execute("DELETE FROM secrets WHERE id = $1", secret_id)  # versions cascade

    async def add_version(self, version: SecretVersion) -> None:
        wrapped = version.wrapped_key
        try:
            await self.conn.execute(
                f"INSERT INTO secret_versions ({_VERSION_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                version.secret_id, version.version, version.ciphertext, wrapped.blob if wrapped else None,
                wrapped.key_id if wrapped else None, version.created_by, version.created_at,
                version.deleted_at, version.destroyed_at,
            )
        except asyncpg.UniqueViolationError as exc:
            raise Conflict(f"version {version.version} of this secret already exists") from exc

    async def get_version(self, secret_id: uuid.UUID, version: int) -> SecretVersion | None:
        row = await self.conn.fetchrow(
            f"SELECT {_VERSION_COLS} FROM secret_versions WHERE secret_id = $1 AND version = $2", secret_id, version
        )
        return _version(row) if row else None

    async def versions(self, secret_id: uuid.UUID) -> list[SecretVersion]:
        rows = await self.conn.fetch(
            f"SELECT {_VERSION_COLS} FROM secret_versions WHERE secret_id = $1 ORDER BY version", secret_id
        )
        return [_version(r) for r in rows]

    async def update_version(self, version: SecretVersion) -> None:
        wrapped = version.wrapped_key
        await self.conn.execute(
            "UPDATE secret_versions SET ciphertext = $3, wrapped_key = $4, key_id = $5, deleted_at = $6,"
            " destroyed_at = $7 WHERE secret_id = $1 AND version = $2",
            version.secret_id, version.version, version.ciphertext, wrapped.blob if wrapped else None,
            wrapped.key_id if wrapped else None, version.deleted_at, version.destroyed_at,
        )

    async def delete_versions(self, secret_id: uuid.UUID, versions: list[int]) -> None:
        await self.conn.execute(
            "DELETE FROM secret_versions WHERE secret_id = $1 AND version = ANY($2::int[])", secret_id, versions
        )

    async def claim_for_rewrap(self, current_key_id: str, limit: int) -> list[tuple[Secret, SecretVersion]]:
        rows = await self.conn.fetch(
            f"""
            SELECT {", ".join("v." + c for c in _VERSION_COLS.split(", "))},
                   {", ".join(f"s.{c} AS s_{c}" for c in _SECRET_COLS.split(", "))}
            FROM secret_versions v JOIN secrets s ON s.id = v.secret_id
            WHERE v.key_id IS NOT NULL AND v.key_id <> $1
            ORDER BY v.secret_id, v.version
            LIMIT $2
            FOR UPDATE OF v SKIP LOCKED
            """,
            current_key_id, limit,
        )
        return [(_secret(r, "s_"), _version(r)) for r in rows]

    async def count_by_key(self) -> dict[str, int]:
        rows = await self.conn.fetch(
            "SELECT key_id, count(*) AS n FROM secret_versions WHERE key_id IS NOT NULL GROUP BY key_id"
        )
        return {r["key_id"]: r["n"] for r in rows}

    async def sample_wrapped(self, limit: int) -> list[tuple[Secret, SecretVersion]]:
        rows = await self.conn.fetch(
            f"""
            SELECT {", ".join("v." + c for c in _VERSION_COLS.split(", "))},
                   {", ".join(f"s.{c} AS s_{c}" for c in _SECRET_COLS.split(", "))}
            FROM secret_versions v JOIN secrets s ON s.id = v.secret_id
            WHERE v.key_id IS NOT NULL
            ORDER BY v.created_at DESC
            LIMIT $1
            """,
            limit,
        )
        return [(_secret(r, "s_"), _version(r)) for r in rows]
