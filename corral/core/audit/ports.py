"""The AuditLog port."""

from __future__ import annotations

from typing import Protocol

from corral.core.audit.model import AuditEntry, AuditQuery
from corral.core.pagination import Page

__all__ = ["AuditLog"]


class AuditLog(Protocol):
    """Append-only record of mutations, bound to the current unit of work.

    ``record`` writes in the caller's transaction: if the mutation rolls back,
    so does its audit row. Entries are never updated or deleted.
    """

    async def record(self, entry: AuditEntry) -> None:
        """Append one entry (visible to others once the unit of work commits)."""
        ...

    async def query(self, query: AuditQuery) -> Page[AuditEntry]:
        """Entries matching every given filter, newest first, cursor-paginated."""
        ...
