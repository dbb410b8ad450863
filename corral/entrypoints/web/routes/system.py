"""Liveness, readiness, version and the OpenAPI document."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import attrs
from aiohttp import web

from corral import __version__
from corral.core.errors import CorralError
from corral.entrypoints.web.jsonio import json_response
from corral.entrypoints.web.keys import PLATFORM, ROUTE_SPECS, WEB_AUTH
from corral.entrypoints.web.openapi import build_openapi
from corral.entrypoints.web.routing import RouteTable

routes = RouteTable(tag="system")

log = logging.getLogger("corral.probes")

READY_TIMEOUT = 2.0
# who may read the addresses and driver messages of failing dependencies
DETAILS_PERMISSION = "admin:settings"

# JSON schemas rather than classes: ``detail`` is present only on a failure (the schema of the 200 answer)
_HEALTH = {"type": "object", "required": ["status"], "additionalProperties": False,
           "properties": {"status": {"enum": ["ok", "failing"]}, "detail": {"type": "string"}}}
_READY = {
    "type": "object", "required": ["status", "checks"], "additionalProperties": False,
    "properties": {
        "status": {"enum": ["ok", "unavailable"]},
        "checks": {"type": "object", "description": "per dependency: ok, unavailable, or (administrators) "
                                                    "failing: the reason", "additionalProperties": {"type": "string"}},
        "detail": {"type": "string", "description": "not ready: the failing dependencies (on a 503)"},
    },
}


@attrs.frozen
class VersionOut:
    """The running Corral's version."""

    version: str


@routes.get("/healthz", summary="Liveness: the process can make progress", public=True,
            description="503 (with the reason) only when an embedded PostgreSQL or Valkey died and could not be "
                        "started again within CORRAL_EMBEDDED_RESTART_GIVEUP_SECONDS: restart the process then. "
                        "A dependency that is merely unreachable is /readyz's business.",
            params=None, response=_HEALTH)
async def healthz(request: web.Request) -> web.StreamResponse:
    checks = getattr(request.app[PLATFORM], "liveness_checks", {})
    failures = [reason for check in checks.values() if (reason := check()) is not None]
    if failures:
        return json_response({"status": "failing", "detail": "; ".join(failures)}, status=503)
    return json_response({"status": "ok"})


async def _is_administrator(request: web.Request) -> bool:
    """True when the request carries credentials of someone holding DETAILS_PERMISSION (never raises)."""
    if "Authorization" not in request.headers and not request.cookies:
        return False
    auth = request.app.get(WEB_AUTH)
    if auth is None:
        return False
    with contextlib.suppress(CorralError, Exception):  # PostgreSQL may be the one that is down
        principal = await asyncio.wait_for(auth.authenticate(request), READY_TIMEOUT)
        if principal is None:
            return False
        await asyncio.wait_for(auth.authorize(request, principal, DETAILS_PERMISSION, None), READY_TIMEOUT)
        return True
    return False


@routes.get("/readyz", summary="Readiness: PostgreSQL, Valkey and the object store answer", public=True,
            description="503 names every dependency that does not answer (postgresql, valkey, object_store). "
                        "Why it fails (addresses, driver messages) is shown only to administrators.",
            params=None, response=_READY)
async def readyz(request: web.Request) -> web.StreamResponse:
    checks = request.app[PLATFORM].health_checks

    async def run(name: str) -> tuple[str, str | None]:
        try:
            await asyncio.wait_for(checks[name](), READY_TIMEOUT)
        except TimeoutError:
            return name, f"no answer within {READY_TIMEOUT:g} s"
        except Exception as exc:  # any failure means not ready; report it by name
            return name, str(exc) or type(exc).__name__
        return name, None

    results = await asyncio.gather(*(run(n) for n in checks))
    failing = {name: error for name, error in results if error is not None}
    details = bool(failing) and await _is_administrator(request)

    def state(error: str | None) -> str:
        if error is None:
            return "ok"
        return f"failing: {error}" if details else "unavailable"

    body = {
        "status": "ok" if not failing else "unavailable",
        "checks": {name: state(error) for name, error in results},
    }
    if failing:
        body["detail"] = "not ready: " + ", ".join(sorted(failing))
    return json_response(body, status=200 if not failing else 503,
                         headers={"Retry-After": "1"} if failing else None)


@routes.get("/api/v1/version", summary="Corral's version", public=True, params=None, response=VersionOut)
async def version(_request: web.Request) -> web.StreamResponse:
    return json_response(VersionOut(version=__version__))


@routes.get("/api/v1/openapi.json", summary="This OpenAPI 3.1 document", public=True, params=None,
            response={"type": "object", "description": "an OpenAPI 3.1 document"})
async def openapi(request: web.Request) -> web.StreamResponse:
    settings = request.app[PLATFORM].settings
    return json_response(build_openapi(request.app[ROUTE_SPECS], server_url=settings.public_url()))
