"""PostgresAuditLog: audit_log rows written on the unit of work's connection."""

from __future__ import annotations

import ipaddress
import json
from typing import Any

import asyncpg

from corral.adapters.postgres.errors import translate_errors
from corral.core.audit.context import tag_entry
from corral.core.audit.model import (
    AuditEntry,
    AuditQuery,
    audit_cursor,
    check_audit_query,
    decode_audit_cursor,
)
from corral.core.errors import InvalidInput
from corral.core.pagination import Page

__all__ = ["PostgresAuditLog"]

_COLUMNS = "id, actor_id, actor_name, action, resource, resource_id, project_id, detail, ip_addr, created_at"


def _ip(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        ipaddress.ip_interface(value)
    except ValueError as exc:
        raise InvalidInput("ip_addr must be an IPv4 or IPv6 address", field="ip_addr") from exc
    return value


def _json_detail(detail: dict[str, Any]) -> dict[str, Any]:
    # UUIDs, datetimes, ... become strings, exactly as the in-memory log stores them
    loaded: dict[str, Any] = json.loads(json.dumps(detail, default=str))
    return loaded


def _entry(row: asyncpg.Record) -> AuditEntry:
    ip = row["ip_addr"]  # INET: an address, or an interface when a prefix was given
    return AuditEntry(
        id=row["id"],
        actor_id=row["actor_id"],
        actor_name=row["actor_name"],
        action=row["action"],
        resource=row["resource"],
        resource_id=row["resource_id"],
        project_id=row["project_id"],
        detail=row["detail"] or {},
        ip_addr=None if ip is None else str(ip),
        created_at=row["created_at"],
    )


class PostgresAuditLog:
    """AuditLog bound to one connection (the unit of work's transaction)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def record(self, entry: AuditEntry) -> None:
        entry = tag_entry(entry)
        ip = _ip(entry.ip_addr)
        with translate_errors("audit entry"):
            await self.conn.execute(
                f"INSERT INTO audit_log ({_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                entry.id,
                entry.actor_id,
                entry.actor_name,
                entry.action,
                entry.resource,
                entry.resource_id,
                entry.project_id,
                _json_detail(entry.detail),
                ip,
                entry.created_at,
            )

    async def query(self, query: AuditQuery) -> Page[AuditEntry]:
        limit = check_audit_query(query)
        after = decode_audit_cursor(query.cursor)
        where: list[str] = []
        args: list[Any] = []

        def arg(value: Any) -> str:
            args.append(value)
            return f"${len(args)}"

        if query.actor is not None:
            where.append(f"actor_name = {arg(query.actor)}")
        if query.action is not None:
            where.append(f"action = {arg(query.action)}")
        if query.resource is not None:
            where.append(f"resource = {arg(query.resource)}")
        if query.project_id is not None:
            where.append(f"project_id = {arg(query.project_id)}")
        if query.since is not None:
            where.append(f"created_at >= {arg(query.since)}")
        if query.until is not None:
            where.append(f"created_at < {arg(query.until)}")
        if after is not None:
            where.append(f"(created_at, id) < ({arg(after[0])}, {arg(after[1])})")
        sql = f"SELECT {_COLUMNS} FROM audit_log"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY created_at DESC, id DESC LIMIT {arg(limit + 1)}"
        with translate_errors("audit query"):
            rows = await self.conn.fetch(sql, *args)
        entries = [_entry(r) for r in rows[:limit]]
        next_cursor = audit_cursor(entries[-1]) if len(rows) > limit else None
        return Page(entries, next_cursor)
