"""The web UI for humans: one static page and its assets; every datum comes from the authenticated API."""

from __future__ import annotations

from importlib import resources

from aiohttp import web

from corral.core.errors import NotFound
from corral.entrypoints.web.routing import RouteTable

routes = RouteTable(tag="ui")

_STATIC = resources.files("corral.entrypoints.web") / "static"
_TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html", ".svg": "image/svg+xml"}
_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


_PAGE = {"type": "string"}  # a text (HTML, CSS, JavaScript, SVG) answer rather than a JSON one


@routes.get("/", summary="Redirect to the UI", public=True, include_in_schema=False, params=None, status=302)
async def root(_request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/ui/")


@routes.get("/ui/", summary="The web UI (a static page; data comes from the API)", public=True,
            include_in_schema=False, params=None, response=_PAGE, content_type="text/html")
async def index(_request: web.Request) -> web.StreamResponse:
    return _asset("index.html")


@routes.get("/ui/static/{file:[A-Za-z0-9_.-]+}", summary="UI assets (JavaScript, CSS, SVG)", public=True,
            include_in_schema=False, params=None, response=_PAGE, content_type="*/*")
async def static(request: web.Request) -> web.StreamResponse:
    return _asset(request.match_info["file"])


def _asset(name: str) -> web.Response:
    path = _STATIC / name
    suffix = "." + name.rsplit(".", 1)[-1] if "." in name else ""
    if suffix not in _TYPES or not path.is_file():
        raise NotFound(f"no UI asset {name}")
    headers = dict(_SECURITY_HEADERS)
    headers["Cache-Control"] = "no-cache"
    return web.Response(body=path.read_bytes(), content_type=_TYPES[suffix], headers=headers)
