"""What the platform-level integration tests share: settings with a fresh master key and a first admin, and a
data-only pg_dump to prove no plaintext reached the database."""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
from pathlib import Path

from corral.entrypoints.config import Settings

PASSWORD = "correct horse battery staple 42"  # the bootstrap admin's (user "root")


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def platform_settings(db_dsn: str, valkey_url: str, data_dir: Path) -> Settings:
    """Settings on the test PostgreSQL and Valkey with a random master key and the admin root/PASSWORD."""
    return Settings(
        database_url=db_dsn, valkey_url=valkey_url, data_dir=data_dir, master_key=b64(os.urandom(32)),
        bootstrap_admin_name="root", bootstrap_admin_password=PASSWORD, bootstrap_admin_email="root@example.org",
        log_format="text",
    )


async def pg_dump_data(dsn: str) -> bytes:
    """``pg_dump --data-only`` of the database (PostgreSQL 15's client, as the test cluster)."""
    proc = await asyncio.create_subprocess_exec(
        "/usr/lib/postgresql/15/bin/pg_dump", "--data-only", dsn, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return out
