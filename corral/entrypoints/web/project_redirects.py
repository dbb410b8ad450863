"""Old names of renamed projects redirect to the current name (REST API and git remotes), like Gitea.

A request whose ``{owner}/{name}`` names no project but an old name of one is answered with a redirect
to the same URL under the current name: 301 for GET/HEAD, 308 otherwise (the method and body are kept).
On the REST API only callers who may read the project learn its new name; others get the 404 of a
missing project. Git's smart HTTP paths redirect every caller (as Gitea does): git applies a redirect to
its remote's base URL only when it comes before the 401 that makes it send credentials, so an anonymous
first request must already be redirected; the new URL then answers 401 as usual.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from corral.core.errors import NotFound
from corral.entrypoints.web.keys import AUTH_CHALLENGE
from corral.entrypoints.web.middleware import security_middleware
from corral.entrypoints.web.project_access import can, kit
from corral.entrypoints.web.routing import spec_of

__all__ = ["install_project_redirects", "project_redirect_middleware"]


async def _location(request: web.Request) -> str | None:
    spec = spec_of(request.match_info.handler)
    if spec is None or spec.project != "path":
        return None
    owner, name = request.match_info.get("owner"), request.match_info.get("name")
    if not owner or not name:
        return None
    bare = name[:-4] if name.endswith(".git") else name
    k = kit(request)
    try:
        await k.projects.get(owner, bare)
        return None  # the project exists: the 404 is about something inside it
    except NotFound:
        pass
    project = await k.projects.redirect(owner, bare)
    if project is None:
        return None
    if not request.get(AUTH_CHALLENGE) and not await can(request, "project:read", project):
        return None
    old, new = f"/{owner}/{name}", f"/{project.full_name}{'.git' if name.endswith('.git') else ''}"
    path = request.rel_url.path
    at = path.find(old + "/") if (old + "/") in path else (len(path) - len(old) if path.endswith(old) else -1)
    if at < 0:
        return None
    url = request.rel_url.with_path(path[:at] + new + path[at + len(old):]).with_query(request.rel_url.query)
    return str(url)


@web.middleware
async def project_redirect_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """Turn a 404 for an old project name into a redirect to its current name."""
    try:
        return await handler(request)
    except NotFound:
        location = await _location(request)
        if location is None:
            raise
        status = 301 if request.method in ("GET", "HEAD") else 308
        return web.Response(status=status, headers={"Location": location},
                            text=f"moved to {location}\n")


def install_project_redirects(app: web.Application) -> None:
    """Run the redirect check just outside the security middleware (its project lookup raises the 404)."""
    middlewares: Any = app.middlewares
    middlewares.insert(list(middlewares).index(security_middleware), project_redirect_middleware)
