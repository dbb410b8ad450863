"""Several replicas starting together on a fresh database: every one starts, one admin, one set of roles."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from corral.entrypoints.bootstrap import Platform, start_platform
from corral.entrypoints.config import Settings

pytestmark = pytest.mark.integration


async def test_replicas_starting_together_bootstrap_once(pg_dsn, valkey_url, tmp_path):
    settings = Settings(database_url=pg_dsn, valkey_url=valkey_url, data_dir=tmp_path, log_level="error",
                        bootstrap_admin_name="root", bootstrap_admin_password="first admin password",
                        bootstrap_admin_email="root@example.com")
    started = await asyncio.gather(*(start_platform(settings) for _ in range(3)), return_exceptions=True)
    try:
        assert [s for s in started if isinstance(s, BaseException)] == []
    finally:
        for platform in started:
            if isinstance(platform, Platform):
                await platform.aclose()
    conn = await asyncpg.connect(pg_dsn)
    try:
        assert await conn.fetchval("SELECT count(*) FROM users") == 1
        assert await conn.fetchval("SELECT count(*) FROM roles WHERE is_system") == 5
        assert await conn.fetchval("SELECT count(*) FROM audit_log WHERE action = 'user.create'") == 1
    finally:
        await conn.close()
