"""Checking every JSON response against the operation's documented schema (a development and test aid).

With ``CORRAL_VALIDATE_RESPONSES=true`` (the test suite's servers set it) each 2xx JSON answer of a route
that documents a response schema is validated against the OpenAPI document generated from the same route
declarations; a mismatch is logged and answered as a 500 naming the first difference, so the whole e2e suite
doubles as a test that the document tells the truth. Off by default: it costs a validation per response.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from aiohttp import web

from corral.entrypoints.web.openapi import schema_of
from corral.entrypoints.web.problem import problem_response
from corral.entrypoints.web.routing import RouteSpec, spec_of

__all__ = ["RESPONSE_SCHEMAS", "ResponseSchemas", "response_check_middleware"]

log = logging.getLogger("corral.http")


class ResponseSchemas:
    """A compiled validator per route declaration, made on first use."""

    def __init__(self) -> None:
        self._components: dict[str, Any] = {}
        self._validators: dict[int, Any] = {}

    def validator(self, spec: RouteSpec) -> Any:
        key = id(spec)
        if key not in self._validators:
            import jsonschema_rs  # a dev dependency: only imported when the check is on

            schema = schema_of(spec.response, self._components, output=True)
            root = {**schema, "components": {"schemas": self._components}}
            self._validators[key] = jsonschema_rs.Draft202012Validator(root)
        return self._validators[key]

    def problems(self, spec: RouteSpec, body: bytes) -> list[str]:
        validator = self.validator(spec)
        document = json.loads(body)
        return [f"{'/'.join(map(str, e.instance_path)) or '(root)'}: {e.message}"
                for e in validator.iter_errors(document)][:5]


RESPONSE_SCHEMAS: web.AppKey[ResponseSchemas] = web.AppKey("corral_response_schemas", ResponseSchemas)


@web.middleware
async def response_check_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """Validate 2xx JSON bodies of documented routes; answer 500 naming the mismatch."""
    response = await handler(request)
    spec = spec_of(request.match_info.handler)
    if (spec is None or spec.response is None or not 200 <= response.status < 300
            or not isinstance(response, web.Response) or response.content_type != "application/json"
            or response.body is None):
        return response
    schemas = request.app[RESPONSE_SCHEMAS]
    body = response.body if isinstance(response.body, bytes) else bytes(response.body)  # type: ignore[arg-type]
    problems = schemas.problems(spec, body)
    if not problems:
        return response
    log.error("response of %s %s does not match its schema: %s", spec.method, spec.path, "; ".join(problems))
    return problem_response(500, "Response does not match its schema",
                            f"{spec.method} {spec.path}: " + "; ".join(problems), instance=request.path)
