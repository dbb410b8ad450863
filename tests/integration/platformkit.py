"""What the platform-level integration tests share: settings with a fresh master key and a first admin, and a
data-only pg_dump to prove no plaintext reached the database; and what the store contracts on PostgreSQL share
(``PostgresStoreFixtures``)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
import os
import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from corral.adapters.postgres.pool import create_pool
from corral.adapters.postgres.uow import PostgresUnitOfWorkFactory
from corral.core.ids import uuid7
from corral.core.projects.ports import UserRef
from corral.entrypoints.cli import main
from corral.entrypoints.config import Settings

PASSWORD = "correct horse battery staple 42"  # the bootstrap admin's (user "root")


async def add_user(pool: asyncpg.Pool, name: str) -> UserRef:
    """A user row (email NAME@example.com) for tests that need someone to own or author things."""
    uid = uuid7()
    await pool.execute(
        "INSERT INTO users (id, name, email, password_hash) VALUES ($1, $2, $3, 'x')", uid, name, f"{name}@example.com"
    )
    return UserRef(uid, name, f"{name}@example.com")


class PostgresStoreFixtures:
    """Mix into a store contract's test class: ``pool`` (every migration applied), ``uow_factory`` on it and
    ``make_user``; the class maps its contract's ``<domain>_uow_factory`` onto ``uow_factory``."""

    @pytest.fixture
    async def pool(self, db_dsn: str) -> AsyncIterator[asyncpg.Pool]:
        pool = await create_pool(db_dsn, min_size=1, max_size=20)
        yield pool
        await pool.close()

    @pytest.fixture
    def uow_factory(self, pool: asyncpg.Pool) -> PostgresUnitOfWorkFactory:
        return PostgresUnitOfWorkFactory(pool)

    @pytest.fixture
    def make_user(self, pool: asyncpg.Pool) -> Any:
        return lambda name: add_user(pool, name)


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def platform_settings(db_dsn: str, valkey_url: str, data_dir: Path) -> Settings:
    """Settings on the test PostgreSQL and Valkey with a random master key and the admin root/PASSWORD."""
    return Settings(
        database_url=db_dsn, valkey_url=valkey_url, data_dir=data_dir, master_key=b64(os.urandom(32)),
        bootstrap_admin_name="root", bootstrap_admin_password=PASSWORD, bootstrap_admin_email="root@example.org",
        log_format="text", validate_responses=True,
    )


async def pg_dump_data(dsn: str) -> bytes:
    """``pg_dump --data-only`` of the database (PostgreSQL 15's client, as the test cluster)."""
    proc = await asyncio.create_subprocess_exec(
        "/usr/lib/postgresql/15/bin/pg_dump", "--data-only", dsn, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return out


async def rotate_master_key(monkeypatch: Any, settings: Settings, new_key: str, *, batch_size: int) -> dict[str, Any]:
    """Run ``corral secrets rotate-master-key --json`` from ``settings.master_key`` to ``new_key`` (production
    environment, bootstrap-admin variables unset); returns its last JSON report after asserting exit code 0."""
    for key, value in {
        "CORRAL_DATABASE_URL": settings.database_url, "CORRAL_VALKEY_URL": settings.valkey_url,
        "CORRAL_DATA_DIR": str(settings.data_dir), "CORRAL_MASTER_KEY": new_key,
        "CORRAL_MASTER_KEY_PREVIOUS": settings.master_key, "CORRAL_ENVIRONMENT": "production",
    }.items():
        monkeypatch.setenv(key, value)
    for key in ("CORRAL_BOOTSTRAP_ADMIN_NAME", "CORRAL_BOOTSTRAP_ADMIN_PASSWORD"):
        monkeypatch.delenv(key, raising=False)
    out = io.StringIO()

    def run_cli() -> int:
        with contextlib.redirect_stdout(out):
            return main(["secrets", "rotate-master-key", "--batch-size", str(batch_size), "--json"])

    assert await asyncio.to_thread(run_cli) == 0
    report: dict[str, Any] = json.loads(out.getvalue().strip().splitlines()[-1])
    return report


async def add_project_of_root(db_dsn: str, name: str = "web") -> tuple[uuid.UUID, uuid.UUID]:
    """The bootstrap admin's id and a new project row it owns (no repository: enough for secrets and
    notifications)."""
    conn = await asyncpg.connect(db_dsn)
    try:
        admin_id = await conn.fetchval("SELECT id FROM users WHERE name = 'root'")
        project_id = uuid.uuid4()
        await conn.execute("INSERT INTO projects (id, owner_id, name) VALUES ($1, $2, $3)", project_id, admin_id, name)
    finally:
        await conn.close()
    return admin_id, project_id
