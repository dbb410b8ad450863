"""The shell of the UI: sign in (with the TOTP step), sign out, the dashboard at /ui/, search, the inbox."""

from __future__ import annotations

from typing import Any

import attrs
from aiohttp import web

from corral.core.errors import CorralError, PermissionDenied, RateLimited, Unauthenticated
from corral.core.identity.commands import Credentials
from corral.entrypoints.web.forwarded import client_ip
from corral.entrypoints.web.identity_auth import CSRF_COOKIE, SESSION_COOKIE, is_same_origin
from corral.entrypoints.web.keys import PLATFORM, PRINCIPAL, WEB_AUTH
from corral.entrypoints.web.operation import params_of, query_param
from corral.entrypoints.web.project_access import kit
from corral.entrypoints.web.routes.auth import _secure, _set_session_cookie
from corral.entrypoints.web.routes.identity import identity_of
from corral.entrypoints.web.ui.dashboard import dashboard, readable_projects
from corral.entrypoints.web.ui.pages import Crumb, form_data, page, redirect
from corral.entrypoints.web.ui.render import html_response, render
from corral.entrypoints.web.ui.table import form
from corral.entrypoints.web.ui.table import page as page_route

__all__ = ["safe_next"]


@attrs.frozen
class IndexParams:
    next: str | None = query_param(doc="where to go after signing in (a /ui/ path)")


@attrs.frozen
class SearchParams:
    q: str | None = query_param(doc="words to look for")


def safe_next(value: str | None) -> str:
    """Only a path of this UI: never another site (//evil, /\\evil, https://...)."""
    if value and value.startswith("/ui/") and "\\" not in value and not value.startswith("//"):
        return value
    return "/ui/"


def _login_page(request: web.Request, *, next_url: str, error: str | None = None, name: str = "",
                totp_step: bool = False, password: str = "", status: int = 200) -> web.Response:
    body = render("login.html", title="Sign in", crumbs=[], me=None, unread=None, csrf="", path=request.path,
                  query="", next_url=next_url, error=error, name=name, totp_step=totp_step, password=password)
    return html_response(body, status=status)


@page_route("/ui/", summary="Sign in, then the dashboard", public=True, params=IndexParams)
async def index(request: web.Request) -> web.StreamResponse:
    next_url = safe_next(params_of(request, IndexParams).next)
    try:
        principal = await request.app[WEB_AUTH].authenticate(request)
    except (Unauthenticated, PermissionDenied):
        principal = None
    if principal is None:
        response = _login_page(request, next_url=next_url)
        if request.cookies.get(SESSION_COOKIE):
            response.del_cookie(SESSION_COOKIE, path="/")
        return response
    if next_url != "/ui/":
        return redirect(next_url)
    request[PRINCIPAL] = principal
    return await dashboard(request)


@form("/ui/login", summary="Sign in from the form (name, password, then the TOTP code when enrolled)",
      public=True)
async def login(request: web.Request) -> web.StreamResponse:
    if not is_same_origin(request, request.app[PLATFORM].settings.public_url()):
        # login CSRF: another site must not sign a visitor in as someone else
        return _login_page(request, next_url="/ui/", error="Sign in from this site's own form.", status=403)
    data = await form_data(request)
    name, password = data.get("name", ""), data.get("password", "")
    totp = data.get("totp_code") or None
    next_url = safe_next(data.get("next"))
    try:
        result = await identity_of(request).sessions.login(
            Credentials(name=name, password=password, totp_code=totp), ip=client_ip(request),
            user_agent=request.headers.get("User-Agent"))
    except Unauthenticated as exc:
        if exc.detail.get("totp_required"):
            error = None if totp is None else exc.message
            return _login_page(request, next_url=next_url, name=name, password=password, totp_step=True,
                               error=error, status=200 if totp is None else 401)
        return _login_page(request, next_url=next_url, name=name, error=exc.message, status=401)
    except RateLimited as exc:
        return _login_page(request, next_url=next_url, name=name, error=exc.message, status=429)
    except CorralError as exc:
        return _login_page(request, next_url=next_url, name=name, error=exc.message, status=400)
    response = redirect(next_url)
    _set_session_cookie(request, response, result.cookie)
    response.set_cookie(CSRF_COOKIE, result.csrf_token, httponly=True, samesite="Strict", secure=_secure(request),
                        path="/", max_age=int(identity_of(request).policy.session_max.total_seconds()))
    return response


@form("/ui/logout", summary="Sign out (ends this session)", account=True)
async def logout(request: web.Request) -> web.StreamResponse:
    principal = request[PRINCIPAL]
    await identity_of(request).sessions.logout(principal)
    response = redirect("/ui/")
    response.del_cookie(SESSION_COOKIE, path="/")
    response.del_cookie(CSRF_COOKIE, path="/")
    return response


@page_route("/ui/projects", summary="Projects, with search", account=False, params=SearchParams)
async def projects(request: web.Request) -> web.StreamResponse:
    q = params_of(request, SearchParams).q or ""
    found = await readable_projects(request, words=q)
    return await page(request, "projects.html", title="Projects", crumbs=[Crumb("Projects")], projects=found,
                      q=q)


@page_route("/ui/search", summary="Search projects, issues, merge requests and users", account=False,
            params=SearchParams)
async def search(request: web.Request) -> web.StreamResponse:
    q = (params_of(request, SearchParams).q or "").strip()
    found: dict[str, list[Any]] = {"projects": [], "issues": [], "merge_requests": [], "users": []}
    if q:
        k = kit(request)
        found["projects"] = await readable_projects(request, words=q, limit=50)
        words = q.lower().split()
        for project in await readable_projects(request, limit=50):
            issues = await k.issues.list(project, limit=100)
            found["issues"] += [(project, i) for i in issues.items
                                if all(w in f"{i.title} #{i.number}".lower() for w in words)]
            mrs = await k.merge_requests.list(project, limit=100)
            found["merge_requests"] += [(project, m) for m in mrs.items
                                        if all(w in f"{m.title} !{m.number}".lower() for w in words)]
        user = await k.users.by_name(q)
        if user is not None:
            found["users"].append(user)
    return await page(request, "search.html", title=f"Search {q}" if q else "Search",
                      crumbs=[Crumb("Search")], q=q, found=found)


@page_route("/ui/notifications", summary="Your notification inbox", account=True)
async def notifications(request: web.Request) -> web.StreamResponse:
    from corral.core.notify.service import NotificationService

    service = request.app[PLATFORM].resolve_optional(NotificationService)
    items = (await service.list(request[PRINCIPAL], channel="in_app", limit=100)).items if service else []
    return await page(request, "notifications.html", title="Notifications", crumbs=[Crumb("Notifications")],
                      items=items)


@form("/ui/notifications/{id}/read", summary="Mark a notification read", account=True)
async def notification_read(request: web.Request) -> web.StreamResponse:
    import uuid

    from corral.core.errors import InvalidInput
    from corral.core.notify.service import NotificationService

    try:
        notification_id = uuid.UUID(request.match_info["id"])
    except ValueError:
        raise InvalidInput("id must be a notification id", field="id") from None
    await request.app[PLATFORM].resolve(NotificationService).mark_read(request[PRINCIPAL], notification_id)
    return redirect("/ui/notifications")
