"""`corral migrate` as an operator runs it, against a real PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from corral.adapters.postgres.migrator import load_migrations

pytestmark = pytest.mark.integration


def _corral(dsn: str, data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORRAL_")}
    env.update({"CORRAL_DATABASE_URL": dsn, "CORRAL_DATA_DIR": str(data_dir)})
    return subprocess.run(
        [sys.executable, "-c", "import sys; from corral.entrypoints.cli import main; sys.exit(main())", *args],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


async def test_migrate_applies_then_changes_nothing_then_refuses_an_edited_file(
    pg_dsn: str, tmp_path: Path
) -> None:
    first = _corral(pg_dsn, tmp_path, "migrate", "--json")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout) == {"applied": [m.name for m in load_migrations()]}

    second = _corral(pg_dsn, tmp_path, "migrate")
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == "database is up to date"

    status = _corral(pg_dsn, tmp_path, "migrate", "--status", "--json")
    assert status.returncode == 0, status.stderr
    assert {m["state"] for m in json.loads(status.stdout)["migrations"]} == {"applied"}

    conn = await asyncpg.connect(pg_dsn)
    try:
        await conn.execute("UPDATE schema_migrations SET checksum = 'x' WHERE name = '002_rbac.sql'")
    finally:
        await conn.close()
    edited = _corral(pg_dsn, tmp_path, "migrate")
    assert edited.returncode == 1
    assert "002_rbac.sql was changed after it was applied" in edited.stderr
    assert len(edited.stderr.strip().splitlines()) == 1  # one line, no traceback

    status = _corral(pg_dsn, tmp_path, "migrate", "--status")
    assert status.returncode == 1
    assert "changed  002_rbac.sql" in status.stdout
