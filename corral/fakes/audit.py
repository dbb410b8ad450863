"""InMemoryAuditLog: the audit log of one in-memory unit of work."""

from __future__ import annotations

import ipaddress
import json
import uuid
from typing import Any

import attrs

from corral.core.audit.context import tag_entry
from corral.core.audit.model import (
    AuditEntry,
    AuditQuery,
    audit_cursor,
    check_audit_query,
    decode_audit_cursor,
)
from corral.core.errors import Conflict, InvalidInput
from corral.core.pagination import Page

__all__ = ["AuditTable", "InMemoryAuditLog"]


@attrs.define
class AuditTable:
    """The rows the in-memory audit log reads and writes (part of the fake database)."""

    entries: dict[uuid.UUID, AuditEntry] = attrs.field(factory=dict)


def _stored(entry: AuditEntry) -> AuditEntry:
    if entry.ip_addr is not None:
        try:
            ipaddress.ip_interface(entry.ip_addr)
        except ValueError as exc:
            raise InvalidInput("ip_addr must be an IPv4 or IPv6 address", field="ip_addr") from exc
    # what a JSONB round trip gives back: UUIDs, datetimes, ... as strings
    detail: dict[str, Any] = json.loads(json.dumps(entry.detail, default=str))
    return attrs.evolve(entry, detail=detail)


@attrs.define
class InMemoryAuditLog:
    """AuditLog over an AuditTable; the table's ``entries`` record what was audited."""

    table: AuditTable = attrs.field(factory=AuditTable)

    async def record(self, entry: AuditEntry) -> None:
        if entry.id in self.table.entries:
            raise Conflict("audit entry already exists")
        self.table.entries[entry.id] = _stored(tag_entry(entry))

    async def query(self, query: AuditQuery) -> Page[AuditEntry]:
        limit = check_audit_query(query)
        after = decode_audit_cursor(query.cursor)
        rows = [
            e
            for e in self.table.entries.values()
            if (query.actor is None or e.actor_name == query.actor)
            and (query.action is None or e.action == query.action)
            and (query.resource is None or e.resource == query.resource)
            and (query.project_id is None or e.project_id == query.project_id)
            and (query.since is None or e.created_at >= query.since)
            and (query.until is None or e.created_at < query.until)
            and (after is None or (e.created_at, e.id) < after)
        ]
        rows.sort(key=lambda e: (e.created_at, e.id), reverse=True)
        page = rows[:limit]
        return Page(page, audit_cursor(page[-1]) if len(rows) > limit else None)

    @property
    def entries(self) -> list[AuditEntry]:
        """Every entry this log can see, oldest first (for assertions in tests)."""
        return sorted(self.table.entries.values(), key=lambda e: (e.created_at, e.id))
