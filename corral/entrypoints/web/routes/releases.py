"""Releases of a project (Gitea's shapes): a tag with a title, markdown notes and assets in the object store."""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

import attrs
from aiohttp import web

from corral.core.errors import InvalidInput, PayloadTooLarge
from corral.core.pagination import Page
from corral.core.projects.commands import NewRelease, ReleaseChanges
from corral.core.projects.model import Project
from corral.core.projects.releases import ReleaseService, release_json
from corral.core.projects.repo_writes import RepoWriter
from corral.entrypoints.web.jsonio import json_response
from corral.entrypoints.web.operation import body_of, params_of, query_param
from corral.entrypoints.web.project_access import PROJECT_PATH as BASE
from corral.entrypoints.web.project_access import PROJECT_READ as _READ
from corral.entrypoints.web.project_access import PROJECT_WRITE as _WRITE
from corral.entrypoints.web.project_access import actor_of, can, kit, project_of
from corral.entrypoints.web.routing import RouteTable
from corral.entrypoints.web.schemas.projects import ReleaseAssetOut, ReleaseOut

__all__ = ["routes"]

routes = RouteTable(tag="releases")

ONE = f"{BASE}/releases/{{release_id}}"
_BINARY = {"type": "string", "format": "binary"}
_CHUNK = 256 * 1024


def _service(request: web.Request) -> ReleaseService:
    k = kit(request)
    return ReleaseService(k.uow_factory, RepoWriter(k.uow_factory, k.git, k.clock, k.users), k.objects, k.clock)


def _id(request: web.Request) -> uuid.UUID:
    try:
        return uuid.UUID(request.match_info["release_id"])
    except ValueError:
        raise InvalidInput("release_id must be a UUID", field="release_id") from None


async def _drafts(request: web.Request, project: Project) -> bool:
    """Whether the caller sees drafts (project:write)."""
    return await can(request, "project:write", project)


@attrs.frozen
class AssetQuery:
    """The uploaded asset's file name."""

    name: str | None = query_param(doc="file name: letters, digits and ._+- (required)")


@routes.get(f"{BASE}/releases", summary="The project's releases, newest first (drafts only for project writers)",
            **_READ, params=None, response=Page[ReleaseOut])
async def list_releases(request: web.Request) -> web.StreamResponse:
    project = await project_of(request)
    found = await _service(request).releases(project, drafts=await _drafts(request, project))
    return json_response({"items": [release_json(r) for r in found], "next_cursor": None})


@routes.post(f"{BASE}/releases", summary="Publish or draft a release; a missing tag is created at target like a push",
             **_WRITE, params=None, body=NewRelease, response=ReleaseOut, status=201,
             description="Publishing (draft false) sends the release webhook event.")
async def create_release(request: web.Request) -> web.StreamResponse:
    project = await project_of(request)
    release = await _service(request).create(actor_of(request), project, body_of(request, NewRelease),
                                             is_admin=await can(request, "project:admin", project))
    return json_response(release_json(release), status=201)


@routes.get(ONE, summary="One release with its assets", **_READ, params=None, response=ReleaseOut)
async def get_release(request: web.Request) -> web.StreamResponse:
    project = await project_of(request)
    release = await _service(request).release(project, _id(request), drafts=await _drafts(request, project))
    return json_response(release_json(release))


@routes.patch(ONE, summary="Change a release; draft false publishes a draft (release webhook event)", **_WRITE,
              params=None, body=ReleaseChanges, response=ReleaseOut)
async def update_release(request: web.Request) -> web.StreamResponse:
    release = await _service(request).update(actor_of(request), await project_of(request), _id(request),
                                             body_of(request, ReleaseChanges))
    return json_response(release_json(release))


@routes.delete(ONE, summary="Remove a release and its assets (the tag stays)", **_WRITE, params=None, status=204)
async def delete_release(request: web.Request) -> web.StreamResponse:
    await _service(request).delete(actor_of(request), await project_of(request), _id(request))
    return web.Response(status=204)


@routes.post(f"{ONE}/assets", summary="Upload an asset (the raw request body, bytes or text) under ?name=", **_WRITE,
             params=AssetQuery, request_body=_BINARY, request_content_types=("application/octet-stream", "text/plain"),
             response=ReleaseAssetOut, status=201)
async def upload_asset(request: web.Request) -> web.StreamResponse:
    project = await project_of(request)
    service = _service(request)
    name = params_of(request, AssetQuery).name
    if request.content_length is not None and request.content_length > service.max_asset_bytes:
        raise PayloadTooLarge(f"an asset may have at most {service.max_asset_bytes} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(_CHUNK):
        size += len(chunk)
        if size > service.max_asset_bytes:
            raise PayloadTooLarge(f"an asset may have at most {service.max_asset_bytes} bytes")
        chunks.append(chunk)
    content_type = request.headers.get("Content-Type") or None
    asset = await service.add_asset(actor_of(request), project, _id(request), name, b"".join(chunks), content_type)
    return json_response({"id": asset.id, "name": asset.name, "size": asset.size, "content_type": asset.content_type,
                          "created_at": asset.created_at}, status=201)


@routes.get(f"{ONE}/assets/{{asset_name}}", summary="Download an asset", **_READ, params=None, response=_BINARY,
            content_type="application/octet-stream")
async def download_asset(request: web.Request) -> web.StreamResponse:
    project = await project_of(request)
    asset = await _service(request).asset(project, _id(request), request.match_info["asset_name"],
                                          drafts=await _drafts(request, project))
    response = web.StreamResponse(headers={
        "Content-Type": asset.content_type, "Content-Length": str(asset.size),
        "Content-Disposition": f'attachment; filename="{asset.name}"'})
    await response.prepare(request)
    objects: Any = kit(request).objects
    async with contextlib.aclosing(objects.get(asset.object_key)) as chunks:
        async for chunk in chunks:
            await response.write(chunk)
    await response.write_eof()
    return response


@routes.delete(f"{ONE}/assets/{{asset_name}}", summary="Remove an asset", **_WRITE, params=None, status=204)
async def delete_asset(request: web.Request) -> web.StreamResponse:
    await _service(request).delete_asset(actor_of(request), await project_of(request), _id(request),
                                         request.match_info["asset_name"])
    return web.Response(status=204)
