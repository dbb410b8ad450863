"""Operations pages: the audit log (pipelines, deployments, logs and traces are not built yet)."""

from __future__ import annotations

from datetime import UTC, datetime

import attrs
from aiohttp import web

from corral.core.errors import InvalidInput
from corral.entrypoints.web.keys import PROJECT_LOOKUP
from corral.entrypoints.web.operation import params_of, query_param
from corral.entrypoints.web.ui.pages import Crumb
from corral.entrypoints.web.ui.pages import page as page_
from corral.entrypoints.web.ui.table import page

__all__ = ["audit"]


# ---- the audit log ------------------------------------------------------------------------------------------
@attrs.frozen
class AuditPageParams:
    actor: str | None = query_param(doc="actor name")
    action: str | None = query_param(doc="e.g. token.create")
    resource: str | None = query_param(doc="e.g. project")
    project: str | None = query_param(doc="owner/name")
    since: str | None = query_param(doc="ISO-8601 time or date")
    until: str | None = query_param(doc="ISO-8601 time or date")
    cursor: str | None = query_param(doc="next page")


def _time(value: str | None, field: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"{field} must be a date or time like 2026-01-31T12:00:00Z", field=field) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@page("/ui/admin/audit", summary="The audit log with filters, in words", permission="admin:audit",
      params=AuditPageParams)
async def audit(request: web.Request) -> web.StreamResponse:
    from corral.core.audit.model import AuditQuery
    from corral.entrypoints.web.ui.dashboard import activities

    q = params_of(request, AuditPageParams)
    project_id = await request.app[PROJECT_LOOKUP].project_ref(q.project) if q.project else None
    query = AuditQuery(actor=q.actor or None, action=q.action or None, resource=q.resource or None,
                       project_id=project_id, since=_time(q.since, "since"), until=_time(q.until, "until"),
                       limit=50, cursor=q.cursor)
    items, next_cursor = await activities(request, query)
    kept = {k: v for k, v in (("actor", q.actor), ("action", q.action), ("resource", q.resource),
                              ("project", q.project), ("since", q.since), ("until", q.until)) if v}
    return await page_(request, "audit.html", title="Audit log", crumbs=[Crumb("Administration"),
                                                                         Crumb("Audit log")],
                       items=items, filters=kept, next_cursor=next_cursor)
