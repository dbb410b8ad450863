"""Secrets API: write-only values. Nothing here ever renders a value, only names, versions and metadata."""

from __future__ import annotations

import uuid
from typing import Any

import attrs
from aiohttp import web

from corral.core.errors import InvalidInput
from corral.core.pagination import Page
from corral.core.secrets.commands import PutSecret, SecretVersions
from corral.core.secrets.model import SecretScope
from corral.core.secrets.service import SecretsService
from corral.entrypoints.web.jsonio import ExpectedValue, converter, json_response
from corral.entrypoints.web.keys import PLATFORM, project_id_of, require_principal
from corral.entrypoints.web.operation import body_of, params_of, query_param
from corral.entrypoints.web.routing import RouteTable
from corral.entrypoints.web.schemas.secrets import SecretOut, SecretWrittenOut, secret_out, written_out

__all__ = ["GLOBAL", "PROJECT", "DeleteSecretQuery", "routes"]

routes = RouteTable(tag="secrets")

PROJECT = "/api/v1/projects/{owner}/{name}/secrets"
GLOBAL = "/api/v1/secrets"


_SCOPES = {s.value: s for s in SecretScope}


def _scope(value: object, _t: type) -> SecretScope:
    # the message lists the scopes and never echoes what was sent (it may be a value pasted in the wrong field)
    if isinstance(value, str) and value in _SCOPES:
        return _SCOPES[value]
    raise ExpectedValue("expected one of " + ", ".join(repr(s) for s in _SCOPES))


converter.register_structure_hook(SecretScope, _scope)


def _service(request: web.Request) -> SecretsService:
    service: SecretsService = request.app[PLATFORM].resolve(SecretsService)
    return service


@attrs.frozen
class DeleteSecretQuery:
    """What a DELETE removes: some versions (soft), the current one (soft, the default), or everything."""

    versions: str | None = query_param(
        doc="comma-separated version numbers to soft-delete, like 1,2 (default: the current version)")
    purge: bool = query_param(default=False, doc="true: remove the secret and every version for good")

    def version_numbers(self) -> SecretVersions:
        """``versions`` as a command; a part that is not a number is a 400 naming ``versions``."""
        if self.versions is None:
            return SecretVersions()
        parts = [part.strip() for part in self.versions.split(",") if part.strip()]
        if not all(part.isascii() and part.isdigit() and len(part) <= 10 for part in parts):
            raise InvalidInput("versions must be comma-separated version numbers, like 1,2", field="versions")
        return SecretVersions(versions=[int(part) for part in parts])


def _secret(request: web.Request) -> str:
    return request.match_info["secret"]


async def _put(request: web.Request, project_id: uuid.UUID | None) -> web.StreamResponse:
    info, created = await _service(request).put(require_principal(request), project_id, _secret(request),
                                                body_of(request, PutSecret))
    return json_response(written_out(info), status=201 if created else 200)


async def _list(request: web.Request, project_id: uuid.UUID | None) -> web.StreamResponse:
    items = await _service(request).list_secrets(project_id)
    return json_response({"items": [secret_out(i) for i in items], "next_cursor": None})


async def _delete(request: web.Request, project_id: uuid.UUID | None) -> web.StreamResponse:
    service, actor, query = _service(request), require_principal(request), params_of(request, DeleteSecretQuery)
    if query.purge:
        if query.versions is not None:
            raise InvalidInput("purge removes every version: do not name versions with it", field="versions")
        await service.purge(actor, project_id, _secret(request))
    else:
        await service.delete(actor, project_id, _secret(request), query.version_numbers())
    return web.Response(status=204)


async def _versions_change(request: web.Request, project_id: uuid.UUID | None, verb: str) -> web.StreamResponse:
    """Undelete or destroy the versions named in the body, of a project's secret or (no project) a global one."""
    change = _service(request).undelete if verb == "undelete" else _service(request).destroy
    info = await change(require_principal(request), project_id, _secret(request), body_of(request, SecretVersions))
    return json_response(secret_out(info))


_WRITE: dict[str, Any] = {"permission": "secret:write", "params": None}
_PROJECT_READ: dict[str, Any] = {"permission": "secret:read", "project": "path", "params": None}
_PROJECT_WRITE: dict[str, Any] = {**_WRITE, "project": "path"}
_PUT_DOC = "201 when created, 200 when a new version was written. The value is never returned."
_VERSIONS_DOC = "An empty body (or no versions) means the current version."


# --- project secrets --------------------------------------------------------------------------------------

@routes.put(PROJECT + "/{secret}", summary="Create or update a project secret (value is write-only)",
            **_PROJECT_WRITE, body=PutSecret, response=SecretWrittenOut, status=201, description=_PUT_DOC)
async def put_project_secret(request: web.Request) -> web.StreamResponse:
    return await _put(request, project_id_of(request))


@routes.get(PROJECT, summary="List a project's secrets: names, versions, metadata (never values)",
            **_PROJECT_READ, response=Page[SecretOut])
async def list_project_secrets(request: web.Request) -> web.StreamResponse:
    return await _list(request, project_id_of(request))


@routes.get(PROJECT + "/{secret}", summary="One project secret's metadata and versions (never the value)",
            **_PROJECT_READ, response=SecretOut)
async def get_project_secret(request: web.Request) -> web.StreamResponse:
    return json_response(secret_out(await _service(request).describe(project_id_of(request), _secret(request))))


@routes.delete(PROJECT + "/{secret}", summary="Soft-delete versions of a project secret, or purge it",
               permission="secret:write", project="path", params=DeleteSecretQuery, status=204)
async def delete_project_secret(request: web.Request) -> web.StreamResponse:
    return await _delete(request, project_id_of(request))


@routes.post(PROJECT + "/{secret}/undelete", summary="Restore soft-deleted versions of a project secret",
             **_PROJECT_WRITE, body=SecretVersions, response=SecretOut, description=_VERSIONS_DOC)
async def undelete_project_secret(request: web.Request) -> web.StreamResponse:
    return await _versions_change(request, project_id_of(request), "undelete")


@routes.post(PROJECT + "/{secret}/destroy", summary="Destroy versions of a project secret for good",
             **_PROJECT_WRITE, body=SecretVersions, response=SecretOut, description=_VERSIONS_DOC)
async def destroy_project_secret(request: web.Request) -> web.StreamResponse:
    return await _versions_change(request, project_id_of(request), "destroy")


# --- global secrets (administrators: secret:write granted globally) --------------------------------------

@routes.put(GLOBAL + "/{secret}", summary="Create or update a global secret (value is write-only)",
            **_WRITE, body=PutSecret, response=SecretWrittenOut, status=201, description=_PUT_DOC)
async def put_global_secret(request: web.Request) -> web.StreamResponse:
    return await _put(request, None)


@routes.get(GLOBAL, summary="List global secrets: names, versions, metadata (never values)",
            **_WRITE, response=Page[SecretOut])
async def list_global_secrets(request: web.Request) -> web.StreamResponse:
    return await _list(request, None)


@routes.get(GLOBAL + "/{secret}", summary="One global secret's metadata and versions (never the value)",
            **_WRITE, response=SecretOut)
async def get_global_secret(request: web.Request) -> web.StreamResponse:
    return json_response(secret_out(await _service(request).describe(None, _secret(request))))


@routes.delete(GLOBAL + "/{secret}", summary="Soft-delete versions of a global secret, or purge it",
               permission="secret:write", params=DeleteSecretQuery, status=204)
async def delete_global_secret(request: web.Request) -> web.StreamResponse:
    return await _delete(request, None)


@routes.post(GLOBAL + "/{secret}/undelete", summary="Restore soft-deleted versions of a global secret",
             **_WRITE, body=SecretVersions, response=SecretOut, description=_VERSIONS_DOC)
async def undelete_global_secret(request: web.Request) -> web.StreamResponse:
    return await _versions_change(request, None, "undelete")


@routes.post(GLOBAL + "/{secret}/destroy", summary="Destroy versions of a global secret for good",
             **_WRITE, body=SecretVersions, response=SecretOut, description=_VERSIONS_DOC)
async def destroy_global_secret(request: web.Request) -> web.StreamResponse:
    return await _versions_change(request, None, "destroy")
