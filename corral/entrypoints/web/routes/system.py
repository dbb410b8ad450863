"""Liveness, readiness, version and the OpenAPI document."""

from __future__ import annotations

import asyncio

from aiohttp import web

from corral import __version__
from corral.entrypoints.web.jsonio import json_response
from corral.entrypoints.web.keys import PLATFORM, ROUTE_SPECS
from corral.entrypoints.web.openapi import build_openapi
from corral.entrypoints.web.routing import RouteTable

routes = RouteTable(tag="system")

READY_TIMEOUT = 2.0


@routes.get("/healthz", summary="Liveness: the process serves HTTP", public=True,
            response={"type": "object", "properties": {"status": {"const": "ok"}}})
async def healthz(_request: web.Request) -> web.StreamResponse:
    return json_response({"status": "ok"})


@routes.get("/readyz", summary="Readiness: PostgreSQL, Valkey and the object store answer", public=True,
            description="503 names every dependency that does not answer.")
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
    body = {
        "status": "ok" if not failing else "unavailable",
        "checks": {name: ("ok" if error is None else f"failing: {error}") for name, error in results},
    }
    if failing:
        body["detail"] = "not ready: " + ", ".join(sorted(failing))
    return json_response(body, status=200 if not failing else 503)


@routes.get("/api/v1/version", summary="Corral's version", public=True)
async def version(_request: web.Request) -> web.StreamResponse:
    return json_response({"version": __version__})


@routes.get("/api/v1/openapi.json", summary="This OpenAPI 3.1 document", public=True)
async def openapi(request: web.Request) -> web.StreamResponse:
    settings = request.app[PLATFORM].settings
    return json_response(build_openapi(request.app[ROUTE_SPECS], server_url=settings.public_url()))
