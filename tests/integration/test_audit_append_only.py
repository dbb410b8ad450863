"""The database refuses to rewrite the audit log."""

from __future__ import annotations

import asyncpg
import pytest

from corral.core.ids import uuid7


async def test_audit_rows_cannot_be_updated_deleted_or_truncated(db_dsn: str) -> None:
    conn = await asyncpg.connect(db_dsn)
    try:
        row_id = uuid7()
        await conn.execute(
            "INSERT INTO audit_log (id, actor_id, actor_name, action, resource) VALUES ($1, $2, 'ada', 'x.test', 'x')",
            row_id, uuid7(),
        )
        for sql in ("UPDATE audit_log SET action = 'forged' WHERE id = $1", "DELETE FROM audit_log WHERE id = $1"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
                await conn.execute(sql, row_id)
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await conn.execute("TRUNCATE audit_log")
        assert await conn.fetchval("SELECT action FROM audit_log WHERE id = $1", row_id) == "x.test"
    finally:
        await conn.close()
