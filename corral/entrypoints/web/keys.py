"""Typed keys for what the web application holds."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from corral.core.errors import Unauthenticated
from corral.entrypoints.web.security import ProjectLookup, WebAuth

__all__ = [
    "AGENT_SESSION_OF",
    "AUTH_CHALLENGE",
    "DISPATCHED_PRINCIPAL",
    "PLATFORM",
    "PRINCIPAL",
    "PROJECT_ID",
    "PROJECT_LOOKUP",
    "REQUEST_ID",
    "ROUTE_SPECS",
    "TRACE",
    "TRANSIENT_ERRORS",
    "WEB_AUTH",
    "principal_of",
    "project_id_of",
    "require_principal",
]

PLATFORM: web.AppKey[Any] = web.AppKey("corral_platform")
WEB_AUTH: web.AppKey[WebAuth] = web.AppKey("corral_web_auth")
PROJECT_LOOKUP: web.AppKey[ProjectLookup] = web.AppKey("corral_project_lookup")
# driver exceptions meaning "a dependency is unreachable": answered 503 + Retry-After (the platform lists them)
TRANSIENT_ERRORS: web.AppKey[tuple[type[BaseException], ...]] = web.AppKey("corral_transient_errors")
# the agent session an agent user acts for (async: user id -> session id or None); set by the agents wiring
AGENT_SESSION_OF: web.AppKey[Any] = web.AppKey("corral_agent_session_of")
ROUTE_SPECS: web.AppKey[list[Any]] = web.AppKey("corral_route_specs")  # every mounted route's declaration

# --- per-request values set by the middlewares ------------------------------------------------------------
REQUEST_ID: web.RequestKey[str] = web.RequestKey("corral_request_id", str)
TRACE: web.RequestKey[tuple[str, str]] = web.RequestKey("corral_trace", tuple)  # (trace_id, span_id)
PRINCIPAL: web.RequestKey[Any] = web.RequestKey("corral_principal", object)
PROJECT_ID: web.RequestKey[Any] = web.RequestKey("corral_project_id", object)
# the route's WWW-Authenticate challenge: its text, or a function of the request called only when a 401 is sent
AUTH_CHALLENGE: web.RequestKey[str | Callable[[web.Request], str]] = web.RequestKey("corral_auth_challenge")
# the principal an in-process dispatch (an MCP tool call) already authenticated on the outer request: the security
# middleware uses it instead of authenticating the same credentials again. Only code in this process can put a
# value under a RequestKey (a request from the network starts with an empty state), so it cannot be forged.
DISPATCHED_PRINCIPAL: web.RequestKey[Any] = web.RequestKey("corral_dispatched_principal", object)


def principal_of(request: web.Request) -> Any | None:
    """The authenticated principal of the request (None for public/anonymous routes)."""
    return request.get(PRINCIPAL)


def require_principal(request: web.Request) -> Any:
    """The authenticated principal of a route that is never anonymous (the middleware has already refused)."""
    principal = request.get(PRINCIPAL)
    if principal is None:
        raise Unauthenticated("authentication required")
    return principal


def project_id_of(request: web.Request) -> Any | None:
    """The project id the route's scope resolved to (None for global routes)."""
    return request.get(PROJECT_ID)
