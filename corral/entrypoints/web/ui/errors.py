"""Errors on UI pages as pages: a sign-in redirect for an anonymous browser, a page saying what went wrong
(404, 403 with the permission needed, 409...) instead of problem+json. API clients (no text/html in Accept)
keep problem+json, so the API's contracts do not change for them."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from aiohttp import web

from corral.core.errors import CorralError, Unauthenticated
from corral.entrypoints.web.keys import PRINCIPAL, REQUEST_ID
from corral.entrypoints.web.problem import status_for
from corral.entrypoints.web.ui.render import html_response, render

__all__ = ["error_page", "is_ui_page", "ui_error_middleware"]

log = logging.getLogger("corral.ui")


def is_ui_page(request: web.Request) -> bool:
    return request.path.startswith("/ui/") and not request.path.startswith("/ui/static/")


def wants_html(request: web.Request) -> bool:
    return "text/html" in request.headers.get("Accept", "")


def error_page(request: web.Request, status: int, title: str, message: str, detail: Any = None) -> web.Response:
    principal = request.get(PRINCIPAL)
    body = render("error.html", title=title, status=status, message=message, detail=detail, me=principal,
                  unread=None, csrf="", crumbs=[], here=request.path, query="",
                  request_id=request.get(REQUEST_ID))
    return html_response(body, status=status)


@web.middleware
async def ui_error_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    if not is_ui_page(request) or not wants_html(request):
        return await handler(request)
    try:
        return await handler(request)
    except Unauthenticated as exc:
        if request.method == "GET" and request.get(PRINCIPAL) is None:
            target = request.path_qs
            raise web.HTTPSeeOther("/ui/?next=" + quote(target, safe="")) from exc
        return error_page(request, 401, "Sign in again", exc.message)
    except CorralError as exc:
        status = status_for(exc)
        if status >= 500:
            raise
        return error_page(request, status, exc.title, exc.message, getattr(exc, "detail", None))
    except web.HTTPException as exc:
        if exc.status == 404:
            return error_page(request, 404, "Page not found", f"There is no page at {request.path}.")
        if exc.status == 405:
            return error_page(request, 405, "Method not allowed", f"{request.method} is not used on this page.")
        raise
