"""The web UI for humans: server-rendered pages (corral.entrypoints.web.ui) and their static assets.

Every page is declared in the UI's RouteTable with the permission of the API operation it mirrors; the last
route is the catch-all that answers an unknown /ui/ page with a 404 page."""

from __future__ import annotations

from importlib import resources

from aiohttp import web

from corral.core.errors import NotFound
from corral.entrypoints.web.ui import (  # noqa: F401 (their pages register on the table)
    account,
    admin,
    agents,
    deployments,
    observe,
    ops,
    pipelines,
    projects,
    repo_pages,
    settings,
    shell,
    status,
)
from corral.entrypoints.web.ui.errors import error_page
from corral.entrypoints.web.ui.render import SECURITY_HEADERS
from corral.entrypoints.web.ui.table import PAGE, page, routes

__all__ = ["routes"]

_STATIC = resources.files("corral.entrypoints.web") / "static"
_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml", ".png": "image/png"}


@routes.get("/", summary="Redirect to the UI", public=True, include_in_schema=False, params=None, status=302)
async def root(_request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/ui/")


@routes.get("/ui/static/{file:[A-Za-z0-9_.-]+}", summary="UI assets (JavaScript, CSS, SVG)", public=True,
            include_in_schema=False, params=None, response=PAGE, content_type="*/*")
async def static(request: web.Request) -> web.StreamResponse:
    name = request.match_info["file"]
    path = _STATIC / name
    suffix = "." + name.rsplit(".", 1)[-1] if "." in name else ""
    if suffix not in _TYPES or not path.is_file():
        raise NotFound(f"no UI asset {name}")
    headers = dict(SECURITY_HEADERS)
    headers["Cache-Control"] = "no-cache"
    return web.Response(body=path.read_bytes(), content_type=_TYPES[suffix], headers=headers)


# registered last: aiohttp tries a prefix's routes in registration order, so this only catches what no page took
@page("/ui/{tail:.*}", summary="An unknown UI page: a 404 page", account=False)
async def not_found(request: web.Request) -> web.StreamResponse:
    return error_page(request, 404, "Page not found", f"There is no page at {request.path}.")
