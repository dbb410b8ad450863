"""What every page shares: the signed-in user, the unread count, the CSRF token for forms, breadcrumbs."""

from __future__ import annotations

import logging
import uuid
from typing import Any
from urllib.parse import quote

import attrs
from aiohttp import web
from multidict import MultiDict, MultiDictProxy

from corral.core.errors import CorralError, PermissionDenied, Unauthenticated
from corral.entrypoints.web.identity_auth import CSRF_COOKIE
from corral.entrypoints.web.keys import PLATFORM, PRINCIPAL, WEB_AUTH, principal_of
from corral.entrypoints.web.ui.render import html_response, render

__all__ = ["Crumb", "form_data", "holds", "page", "redirect", "url_path"]

log = logging.getLogger("corral.ui")


@attrs.frozen
class Crumb:
    label: str
    href: str | None = None


def url_path(value: str) -> str:
    """A path segment (or several, '/' kept) quoted for a link."""
    return quote(value, safe="/")


async def unread_count(request: web.Request, principal: Any) -> int | None:
    if principal is None:
        return None
    from corral.core.notify.service import NotificationService

    service = request.app[PLATFORM].resolve_optional(NotificationService)
    if service is None:
        return None
    try:
        count: int = await service.unread_count(principal)
    except CorralError:
        log.warning("the unread count is unavailable", exc_info=True)
        return None
    return count


# the Admin section's first page each permission opens
_ADMIN_PAGES = (("admin:users", "/ui/admin/users"), ("admin:roles", "/ui/admin/roles"),
                ("admin:settings", "/ui/admin/system"))


async def page(request: web.Request, template: str, *, title: str, crumbs: list[Crumb] | None = None,
               status: int = 200, principal: Any = None, **context: Any) -> web.Response:
    """Render ``template`` inside the base layout."""
    me = principal if principal is not None else principal_of(request)
    nav_admin: str | None = None
    nav_audit = False
    if me is not None:  # the header links only to what the caller may open (the pages check again)
        nav_audit = await holds(request, "admin:audit")
        for permission, href in _ADMIN_PAGES:
            if await holds(request, permission):
                nav_admin = href
                break
    body = render(
        template, title=title, crumbs=crumbs or [], me=me, unread=await unread_count(request, me),
        nav_admin=nav_admin, nav_audit=nav_audit,
        csrf=request.cookies.get(CSRF_COOKIE, ""), here=request.path, query=request.query.get("q", ""),
        **context,
    )
    return html_response(body, status=status)


def redirect(location: str) -> web.Response:
    """After a successful form post: see the result (303 so a reload does not post again)."""
    return web.Response(status=303, headers={"Location": location, "Cache-Control": "no-store"})


async def form_data(request: web.Request) -> MultiDictProxy[str]:
    """The posted form's text fields (files are not used by the UI)."""
    data = await request.post()
    return MultiDictProxy(MultiDict((k, v) for k, v in data.items() if isinstance(v, str)))


async def holds(request: web.Request, permission: str, project_id: uuid.UUID | None = None) -> bool:
    """Whether the caller holds ``permission`` (globally, or in ``project_id``): no exception."""
    try:
        await request.app[WEB_AUTH].authorize(request, request.get(PRINCIPAL), permission, project_id)
    except (PermissionDenied, Unauthenticated, CorralError):
        return False
    return True
