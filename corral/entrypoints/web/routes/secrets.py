"""Secrets API: write-only values. Nothing here ever renders a value, only names, versions and metadata."""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web

from corral.core.errors import InvalidInput, Unauthenticated
from corral.core.secrets.service import SecretInfo, SecretsService
from corral.entrypoints.web.jsonio import json_response, read_json
from corral.entrypoints.web.keys import PLATFORM, principal_of, project_id_of
from corral.entrypoints.web.routing import RouteTable

routes = RouteTable(tag="secrets")

PROJECT = "/api/v1/projects/{owner}/{name}/secrets"
GLOBAL = "/api/v1/secrets"

_VERSION = {
    "type": "object",
    "properties": {
        "version": {"type": "integer"}, "created_at": {"type": "string", "format": "date-time"},
        "deleted_at": {"type": ["string", "null"], "format": "date-time"}, "destroyed": {"type": "boolean"},
    },
}
_INFO = {
    "type": "object",
    "properties": {
        "name": {"type": "string"}, "version": {"type": "integer"},
        "scope": {"enum": ["pipeline", "agent", "deploy", "all"]},
        "created_at": {"type": "string", "format": "date-time"},
        "updated_at": {"type": "string", "format": "date-time"},
        "versions": {"type": "array", "items": _VERSION},
    },
}
_PUT_BODY = {
    "type": "object",
    "required": ["value"],
    "properties": {
        "value": {"type": "string", "writeOnly": True, "description": "the secret value; never returned"},
        "scope": {"enum": ["pipeline", "agent", "deploy", "all"], "default": "pipeline"},
        "cas": {"type": ["integer", "null"], "description": "check-and-set: 0 creates only, N needs version N"},
    },
    "additionalProperties": False,
}
_PUT_RESPONSE = {
    "type": "object",
    "properties": {
        "name": {"type": "string"}, "version": {"type": "integer"},
        "scope": {"enum": ["pipeline", "agent", "deploy", "all"]},
        "created_at": {"type": "string", "format": "date-time"},
    },
}
_VERSIONS_BODY = {
    "type": "object",
    "properties": {"versions": {"type": "array", "items": {"type": "integer"}}},
    "additionalProperties": False,
}
_LIST = {"type": "object", "properties": {"items": {"type": "array", "items": _INFO}, "next_cursor": {"type": "null"}}}


def _service(request: web.Request) -> SecretsService:
    service: SecretsService = request.app[PLATFORM].resolve(SecretsService)
    return service


def _actor(request: web.Request) -> Any:
    principal = principal_of(request)
    if principal is None:  # routes here are never anonymous; the middleware has already refused
        raise Unauthenticated("authentication required")
    return principal


def _render(info: SecretInfo) -> dict[str, Any]:
    return {
        "name": info.name, "version": info.version, "scope": info.scope.value,
        "created_at": info.created_at, "updated_at": info.updated_at,
        "versions": [
            {"version": v.version, "created_at": v.created_at, "deleted_at": v.deleted_at, "destroyed": v.destroyed}
            for v in info.versions
        ],
    }


async def _put(request: web.Request, project_id: uuid.UUID | None) -> web.StreamResponse:
    body = await read_json(request)
    unknown = sorted(set(body) - {"value", "scope", "cas"})
    if unknown:
        raise InvalidInput(f"unknown field(s): {', '.join(unknown)}", field=unknown[0])
    if "value" not in body:
        raise InvalidInput("value is required", field="value")
    info, created = await _service(request).put(
        _actor(request), project_id, request.match_info["secret"], body["value"],
        body.get("scope", "pipeline"), body.get("cas"),
    )
    current = next((v for v in info.versions if v.version == info.version), None)
    return json_response(
        {
            "name": info.name, "version": info.version, "scope": info.scope.value,
            "created_at": current.created_at if current else info.updated_at,
        },
        status=201 if created else 200,
    )


def _versions_query(request: web.Request) -> list[int] | None:
    raw = request.query.get("versions")
    if raw is None:
        return None
    try:
        return [int(part) for part in raw.split(",") if part.strip()]
    except ValueError:
        raise InvalidInput("versions must be comma-separated version numbers, like 1,2", field="versions") from None


async def _versions_body(request: web.Request) -> list[int] | None:
    if not (await request.read()).strip():
        return None
    body = await read_json(request)
    unknown = sorted(set(body) - {"versions"})
    if unknown:
        raise InvalidInput(f"unknown field(s): {', '.join(unknown)}", field=unknown[0])
    versions = body.get("versions")
    if versions is not None and not isinstance(versions, list):
        raise InvalidInput("versions must be a list of version numbers", field="versions")
    return versions


async def _delete(request: web.Request, project_id: uuid.UUID | None) -> web.StreamResponse:
    service, name, actor = _service(request), request.match_info["secret"], _actor(request)
    purge = request.query.get("purge", "false").lower()
    if purge not in {"true", "false"}:
        raise InvalidInput("purge must be true or false", field="purge")
    if purge == "true":
        await service.purge(actor, project_id, name)
    else:
        await service.delete(actor, project_id, name, _versions_query(request))
    return web.Response(status=204)


_QUERY_DELETE = (
    ("versions", "string", "comma-separated versions to soft-delete (default: the current one)"),
    ("purge", "boolean", "true: remove the secret and every version for good"),
)


# --- project secrets --------------------------------------------------------------------------------------

@routes.put(PROJECT + "/{secret}", summary="Create or update a project secret (value is write-only)",
            permission="secret:write", project="path", request_body=_PUT_BODY, response=_PUT_RESPONSE, status=201,
            description="201 when created, 200 when a new version was written. The value is never returned.")
async def put_project_secret(request: web.Request) -> web.StreamResponse:
    return await _put(request, project_id_of(request))


@routes.get(PROJECT, summary="List a project's secrets: names, versions, metadata (never values)",
            permission="secret:read", project="path", response=_LIST)
async def list_project_secrets(request: web.Request) -> web.StreamResponse:
    items = await _service(request).list_secrets(project_id_of(request))
    return json_response({"items": [_render(i) for i in items], "next_cursor": None})


@routes.get(PROJECT + "/{secret}", summary="One project secret's metadata and versions (never the value)",
            permission="secret:read", project="path", response=_INFO)
async def get_project_secret(request: web.Request) -> web.StreamResponse:
    info = await _service(request).describe(project_id_of(request), request.match_info["secret"])
    return json_response(_render(info))


@routes.delete(PROJECT + "/{secret}", summary="Soft-delete versions of a project secret, or purge it",
               permission="secret:write", project="path", status=204, query=_QUERY_DELETE)
async def delete_project_secret(request: web.Request) -> web.StreamResponse:
    return await _delete(request, project_id_of(request))


@routes.post(PROJECT + "/{secret}/undelete", summary="Restore soft-deleted versions of a project secret",
             permission="secret:write", project="path", request_body=_VERSIONS_BODY, response=_INFO)
async def undelete_project_secret(request: web.Request) -> web.StreamResponse:
    return await _versions_change(request, project_id_of(request), "undelete")


@routes.post(PROJECT + "/{secret}/destroy", summary="Destroy versions of a project secret for good",
             permission="secret:write", project="path", request_body=_VERSIONS_BODY, response=_INFO)
async def destroy_project_secret(request: web.Request) -> web.StreamResponse:
    return await _versions_change(request, project_id_of(request), "destroy")


async def _versions_change(request: web.Request, project_id: uuid.UUID | None, verb: str) -> web.StreamResponse:
    """Undelete or destroy the versions named in the body, of a project's secret or (no project) a global one."""
    change = _service(request).undelete if verb == "undelete" else _service(request).destroy
    info = await change(_actor(request), project_id, request.match_info["secret"], await _versions_body(request))
    return json_response(_render(info))


# --- global secrets (administrators: secret:write granted globally) --------------------------------------

@routes.put(GLOBAL + "/{secret}", summary="Create or update a global secret (value is write-only)",
            permission="secret:write", request_body=_PUT_BODY, response=_PUT_RESPONSE, status=201)
async def put_global_secret(request: web.Request) -> web.StreamResponse:
    return await _put(request, None)


@routes.get(GLOBAL, summary="List global secrets: names, versions, metadata (never values)",
            permission="secret:write", response=_LIST)
async def list_global_secrets(request: web.Request) -> web.StreamResponse:
    items = await _service(request).list_secrets(None)
    return json_response({"items": [_render(i) for i in items], "next_cursor": None})


@routes.get(GLOBAL + "/{secret}", summary="One global secret's metadata and versions (never the value)",
            permission="secret:write", response=_INFO)
async def get_global_secret(request: web.Request) -> web.StreamResponse:
    return json_response(_render(await _service(request).describe(None, request.match_info["secret"])))


@routes.delete(GLOBAL + "/{secret}", summary="Soft-delete versions of a global secret, or purge it",
               permission="secret:write", status=204, query=_QUERY_DELETE)
async def delete_global_secret(request: web.Request) -> web.StreamResponse:
    return await _delete(request, None)


@routes.post(GLOBAL + "/{secret}/undelete", summary="Restore soft-deleted versions of a global secret",
             permission="secret:write", request_body=_VERSIONS_BODY, response=_INFO)
async def undelete_global_secret(request: web.Request) -> web.StreamResponse:
    return await _versions_change(request, None, "undelete")


@routes.post(GLOBAL + "/{secret}/destroy", summary="Destroy versions of a global secret for good",
             permission="secret:write", request_body=_VERSIONS_BODY, response=_INFO)
async def destroy_global_secret(request: web.Request) -> web.StreamResponse:
    return await _versions_change(request, None, "destroy")
