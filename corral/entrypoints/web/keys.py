"""Typed keys for what the web application holds."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from corral.entrypoints.web.security import ProjectLookup, WebAuth

__all__ = [
    "AGENT_SESSION_OF",
    "AUTH_CHALLENGE",
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
AUTH_CHALLENGE: web.RequestKey[str] = web.RequestKey("corral_auth_challenge", str)


def principal_of(request: web.Request) -> Any | None:
    """The authenticated principal of the request (None for public/anonymous routes)."""
    return request.get(PRINCIPAL)


def project_id_of(request: web.Request) -> Any | None:
    """The project id the route's scope resolved to (None for global routes)."""
    return request.get(PROJECT_ID)
