"""The route registry: every HTTP route declares its security and documentation next to its handler.

Each route module owns one ``RouteTable``; the app factory mounts the tables
listed in ``corral.entrypoints.web.routes.ROUTE_TABLES``. The security
middleware reads the declaration of the matched route, so a route without
one is refused (default deny), and the OpenAPI document is generated from
the same declarations, so a route cannot be served without being documented.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import attrs
from aiohttp import web

__all__ = ["UNDECLARED", "Handler", "ProjectFrom", "RouteSpec", "RouteTable", "spec_of"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ProjectFrom = Literal["path", "query", None]
_ATTR = "__corral_route__"


class _Undeclared:
    """The ``params`` of a route not yet described by a class: its query string is not validated."""

    def __repr__(self) -> str:
        return "UNDECLARED"


UNDECLARED: Any = _Undeclared()


@attrs.frozen
class RouteSpec:
    """What a route is, who may call it, and how it is documented."""

    method: str
    path: str
    handler: Handler
    summary: str
    tags: tuple[str, ...] = ()
    public: bool = False  # reachable without credentials (short explicit allowlist)
    permission: str | None = None  # "resource:action" checked through the RBAC resolver
    project: ProjectFrom = None  # where the project scope comes from: {owner}/{name} path or ?project=
    anonymous: bool = False  # credentials optional: the authorizer decides (e.g. public projects)
    # WWW-Authenticate value sent with 401 (git clients need "Basic"), or a function of the request making it
    challenge: str | Callable[[web.Request], str] | None = None
    # A route without a project scope and without a declared permission must say what it touches:
    # True: the caller's account (tokens, sessions, preferences, ...): refused to project-restricted tokens
    # (corral.core.identity.access.require_account_access); False: nothing account-wide, the handler scopes
    # what it does (e.g. per the resource's own project). Routes with a permission and no project are checked
    # globally, which a project-restricted token never holds.
    account: bool | None = None
    body: type | None = None  # attrs class of the JSON body: parsed before the handler, see operation.body_of
    params: Any = UNDECLARED  # attrs class of the query (None: takes no query parameters), see operation.params_of
    request_body: Any = None  # JSON schema dict of a body the handler reads itself (non-JSON or legacy)
    request_content_types: tuple[str, ...] = ("application/json",)  # of request_body, as documented
    response: Any = None  # attrs class (or list[...] / Page[...] of one), JSON schema dict, or None
    status: int = 200
    query: tuple[tuple[str, str, str], ...] = ()  # legacy (name, json type, description) of UNDECLARED params
    description: str = ""
    include_in_schema: bool = True
    operation_id: str = ""
    content_type: str = "application/json"  # of the success response (e.g. text/plain, application/octet-stream)
    response_content_types: tuple[str, ...] = ()  # further types of the same success response (git: one per service)

    @property
    def typed(self) -> bool:
        """Whether the query (and body, when there is one) are described by classes."""
        return self.params is not UNDECLARED


@attrs.define
class RouteTable:
    """The routes of one module; decorate handlers with ``table.get(...)``, ``table.post(...)``, ..."""

    tag: str
    specs: list[RouteSpec] = attrs.field(factory=list)

    def route(self, method: str, path: str, *, summary: str, **options: Any) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            tags = options.pop("tags", (self.tag,))
            op_id = options.pop("operation_id", "") or handler.__name__
            spec = RouteSpec(
                method=method.upper(), path=path, handler=handler, summary=summary, tags=tuple(tags),
                operation_id=op_id, **options,
            )
            if not spec.public and spec.project is None and spec.permission is None and spec.account is None:
                raise ValueError(
                    f"{method} {path}: a route without a project or a permission must declare account=True "
                    "(account-level: refused to project-restricted tokens) or account=False (the handler scopes it)"
                )
            if spec.project == "path" and not ("{owner}" in path and "{name" in path):
                raise ValueError(f"{path}: project='path' needs {{owner}} and {{name}} in the path")
            setattr(handler, _ATTR, spec)
            self.specs.append(spec)
            return handler

        return register

    def get(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("POST", path, **kw)

    def put(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("PUT", path, **kw)

    def patch(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("PATCH", path, **kw)

    def delete(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("DELETE", path, **kw)

    def mount(self, app: web.Application) -> None:
        """Add every route of this table to ``app``'s router."""
        for spec in self.specs:
            app.router.add_route(spec.method, spec.path, spec.handler, name=None)


def spec_of(handler: object) -> RouteSpec | None:
    """The declaration attached to a handler, or None for a route added outside a RouteTable."""
    return getattr(handler, _ATTR, None)


_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::[^}]*)?\}")


def openapi_path(path: str) -> tuple[str, list[str]]:
    """aiohttp path → OpenAPI path template and its parameter names ('{path:.*}' → '{path}')."""
    names = _PARAM.findall(path)
    return _PARAM.sub(lambda m: "{" + m.group(1) + "}", path), names
