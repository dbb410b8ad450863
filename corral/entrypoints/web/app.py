"""The aiohttp application factory."""

from __future__ import annotations

import punq
from aiohttp import web

from corral.entrypoints.platform import resolve_optional
from corral.entrypoints.web.forwarded import TRUSTED_PROXIES, TrustedProxies
from corral.entrypoints.web.keys import PLATFORM, PROJECT_LOOKUP, ROUTE_SPECS, TRANSIENT_ERRORS, WEB_AUTH
from corral.entrypoints.web.middleware import context_middleware, error_middleware, security_middleware
from corral.entrypoints.web.response_check import RESPONSE_SCHEMAS, ResponseSchemas, response_check_middleware
from corral.entrypoints.web.routes import ROUTE_TABLES
from corral.entrypoints.web.security import DenyAllAuth, ProjectLookup, UuidProjectLookup, WebAuth
from corral.entrypoints.web.ui.errors import ui_error_middleware

__all__ = ["create_app", "web_auth_and_lookup"]

MAX_REQUEST_BYTES = 64 * 1024 * 1024  # streaming routes (git, LFS, OTLP) enforce their own limits


def create_app(platform: object) -> web.Application:
    """Build the web application over a started platform (see corral.entrypoints.bootstrap)."""
    settings = getattr(platform, "settings", None)
    check = bool(getattr(settings, "validate_responses", False))
    # ui_error_middleware: a UI page's errors as pages for a browser (inside the security checks' callers,
    # so it sees their refusals); everything else, and API clients, keep problem+json
    middlewares = [context_middleware, error_middleware, *([response_check_middleware] if check else []),
                   ui_error_middleware, security_middleware]
    app = web.Application(
        middlewares=middlewares,
        client_max_size=MAX_REQUEST_BYTES,
        handler_args={"max_field_size": 16 * 1024},
    )
    app[PLATFORM] = platform
    app[TRANSIENT_ERRORS] = tuple(getattr(platform, "transient_errors", ()))
    app[WEB_AUTH], app[PROJECT_LOOKUP] = web_auth_and_lookup(getattr(platform, "container", None))
    if check:
        app[RESPONSE_SCHEMAS] = ResponseSchemas()
    app[TRUSTED_PROXIES] = TrustedProxies.parse(getattr(settings, "trusted_proxies", ""))
    for table in ROUTE_TABLES:
        table.mount(app)
    app[ROUTE_SPECS] = [spec for table in ROUTE_TABLES for spec in table.specs]
    for hook in getattr(platform, "app_hooks", []):
        hook(app)
    return app


def web_auth_and_lookup(container: punq.Container | None) -> tuple[WebAuth, ProjectLookup]:
    """The WebAuth and ProjectLookup the platform registered; without one, deny everything and look projects up
    by id only (a platform without the identity or projects domain)."""
    auth: WebAuth | None = resolve_optional(container, WebAuth) if container is not None else None
    lookup: ProjectLookup | None = resolve_optional(container, ProjectLookup) if container is not None else None
    return auth or DenyAllAuth(), lookup or UuidProjectLookup()
