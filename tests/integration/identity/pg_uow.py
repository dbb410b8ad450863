"""A unit of work over one asyncpg connection holding just the identity stores (rolled back on exit)."""

from __future__ import annotations

import uuid
from types import TracebackType
from typing import Self

import asyncpg

from corral.adapters.postgres.identity import (
    PostgresDelegationStore,
    PostgresIdentitySettingsStore,
    PostgresLoginThrottleStore,
    PostgresRoleStore,
    PostgresSessionStore,
    PostgresTokenStore,
    PostgresTotpStore,
    PostgresUserStore,
)


class IdentityPgUow:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self.users = PostgresUserStore(conn)
        self.roles = PostgresRoleStore(conn)
        self.delegations = PostgresDelegationStore(conn)
        self.tokens = PostgresTokenStore(conn)
        self.sessions = PostgresSessionStore(conn)
        self.login_throttle = PostgresLoginThrottleStore(conn)
        self.totp = PostgresTotpStore(conn)
        self.identity_settings = PostgresIdentitySettingsStore(conn)

    async def __aenter__(self) -> Self:
        self._tx = self.conn.transaction()
        await self._tx.start()
        return self

    async def __aexit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        await self._tx.rollback()


async def insert_project(uow: IdentityPgUow, owner_id: uuid.UUID, index: int) -> uuid.UUID:
    project_id = uuid.uuid4()
    await uow.conn.execute("INSERT INTO projects (id, owner_id, name) VALUES ($1, $2, $3)", project_id, owner_id,
                           f"p{index}-{project_id.hex[:8]}")
    return project_id
