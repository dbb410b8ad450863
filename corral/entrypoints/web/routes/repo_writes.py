"""Writing a repository over the API like Gitea's: the contents API (read, create, update, delete files; several
files in one commit), branches and tags, and archives of a ref. Every write is recorded like a push
(corral.core.projects.repo_writes)."""

from __future__ import annotations

import base64
import binascii
from typing import Any

import attrs
from aiohttp import web

from corral.core.errors import InvalidInput, NotFound
from corral.core.projects.archives import ArchiveService
from corral.core.projects.commands import (
    CommitIdentity,
    FileDeletion,
    FilesChange,
    FileUpload,
    NewBranch,
    NewTag,
)
from corral.core.projects.model import Project
from corral.core.projects.payloads import commit_json
from corral.core.projects.repo_writes import FileEdit, RepoWriter
from corral.entrypoints.web.jsonio import json_response
from corral.entrypoints.web.operation import body_of, params_of, query_param
from corral.entrypoints.web.project_access import actor_of, can, kit, project_of
from corral.entrypoints.web.routing import RouteTable
from corral.entrypoints.web.schemas.projects import (
    BranchOut,
    ContentOut,
    FilesWriteOut,
    FileWriteOut,
    TagOut,
)

__all__ = ["routes"]

routes = RouteTable(tag="repository")

BASE = "/api/v1/projects/{owner}/{name}"
_READ: dict[str, Any] = {"permission": "project:read", "project": "path", "anonymous": True}
_WRITE: dict[str, Any] = {"permission": "project:write", "project": "path"}
MAX_CONTENT_BYTES = 10 * 1024 * 1024  # a file's bytes answered in JSON (larger: content null, truncated true:
# read it from .../repo/raw/{ref}/{path})


@attrs.frozen
class ContentsQuery:
    """Which revision to read."""

    ref: str | None = query_param(doc="branch, tag or commit sha (default: the default branch)")


def _writer(request: web.Request) -> RepoWriter:
    k = kit(request)
    return RepoWriter(k.uow_factory, k.git, k.clock, k.users)


def _bytes(value: str | None, field: str) -> bytes:
    if value is None:
        raise InvalidInput(f"{field} is required (base64)", field=field)
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise InvalidInput(f"{field} must be base64", field=field) from None


def _author(author: CommitIdentity | None) -> tuple[str, str] | None:
    if author is None:
        return None
    for field, value in (("author.name", author.name), ("author.email", author.email)):
        if not value.strip() or len(value) > 255 or any(c in value for c in "<>\n\r\x00"):
            raise InvalidInput(f"{field} must be 1-255 characters without <, > or line breaks", field=field)
    return author.name.strip(), author.email.strip()


def _path(request: web.Request) -> str:
    path = request.match_info.get("path", "").strip("/")
    if not path:
        raise InvalidInput("path names no file", field="path")
    return path


async def _is_admin(request: web.Request, project: Project) -> bool:
    return await can(request, "project:admin", project)


# ---- contents ---------------------------------------------------------------------------------------------
@routes.get(f"{BASE}/contents", summary="The root directory's entries at a ref", operation_id="contents_root",
            **_READ, params=ContentsQuery, response=ContentOut)
@routes.get(f"{BASE}/contents/{{path:.+}}", summary="A file (content base64, blob sha) or a directory at a ref",
            **_READ, params=ContentsQuery, response=ContentOut,
            description="A file over 10 MiB answers content null and truncated true (read it from .../repo/raw).")
async def get_contents(request: web.Request) -> web.StreamResponse:
    q = params_of(request, ContentsQuery)
    project = await project_of(request)
    git = kit(request).git
    path = request.match_info.get("path", "").strip("/")
    rev = q.ref or project.default_branch
    sha = await git.resolve(project.repo_path, rev)
    if sha is None:
        raise NotFound(f"ref {rev!r} names no commit in {project.full_name}")
    name = path.rsplit("/", 1)[-1]
    if path:
        try:
            blob = await git.blob(project.repo_path, sha, path, limit=MAX_CONTENT_BYTES)
        except InvalidInput:
            blob = None  # a directory
        if blob is not None:
            return json_response({
                "type": "file", "name": name, "path": blob.path, "ref": sha, "sha": blob.sha, "size": blob.size,
                "encoding": None if blob.truncated else "base64",
                "content": None if blob.truncated else base64.b64encode(blob.data).decode(),
                "truncated": blob.truncated,
                "entries": None,
            })
    entries = await kit(request).browser.tree(project, sha, path)
    return json_response({
        "type": "dir", "name": name, "path": path, "ref": sha, "sha": None, "size": None, "encoding": None,
        "content": None, "truncated": False,
        "entries": [{"name": e.name, "path": e.path, "type": e.type, "mode": e.mode, "sha": e.sha, "size": e.size}
                    for e in entries],
    })


@routes.put(f"{BASE}/contents/{{path:.+}}",
            summary="Create (201) or replace (200, with the current sha) one file in one commit", **_WRITE,
            params=None, body=FileUpload, response=FileWriteOut,
            description="Recorded like a push: branch protection applies (403 with the pre-receive hook's words), "
                        "a push event and a repo.push audit row. A stale sha is a 409.")
async def put_contents(request: web.Request) -> web.StreamResponse:
    body = body_of(request, FileUpload)
    project = await project_of(request)
    path = _path(request)
    edit = FileEdit("upsert", path, _bytes(body.content, "content"), body.sha)
    done = await _writer(request).write_files(
        actor_of(request), project, [edit], branch=body.branch, new_branch=body.new_branch, message=body.message,
        author=_author(body.author), is_admin=await _is_admin(request, project))
    sha = done.files[0][1] or ""
    return json_response({"content": {"path": path, "sha": sha}, "commit": {"sha": done.commit}},
                         status=201 if done.created else 200)


@routes.delete(f"{BASE}/contents/{{path:.+}}", summary="Delete one file in one commit (sha: its current blob)",
               **_WRITE, params=None, body=FileDeletion, response=FileWriteOut)
async def delete_contents(request: web.Request) -> web.StreamResponse:
    body = body_of(request, FileDeletion)
    project = await project_of(request)
    edit = FileEdit("delete", _path(request), None, body.sha)
    done = await _writer(request).write_files(
        actor_of(request), project, [edit], branch=body.branch, new_branch=body.new_branch, message=body.message,
        author=_author(body.author), is_admin=await _is_admin(request, project))
    return json_response({"content": None, "commit": {"sha": done.commit}})


@routes.post(f"{BASE}/contents", summary="Create, update and delete several files in one commit", **_WRITE,
             params=None, body=FilesChange, response=FilesWriteOut, status=201)
async def change_files(request: web.Request) -> web.StreamResponse:
    body = body_of(request, FilesChange)
    project = await project_of(request)
    edits = []
    for i, op in enumerate(body.files):
        content = None if op.operation == "delete" else _bytes(op.content, f"files[{i}].content")
        edits.append(FileEdit(op.operation, op.path, content, op.sha))
    done = await _writer(request).write_files(
        actor_of(request), project, edits, branch=body.branch, new_branch=body.new_branch, message=body.message,
        author=_author(body.author), is_admin=await _is_admin(request, project))
    return json_response({"files": [{"path": p, "sha": s} for p, s in done.files], "commit": {"sha": done.commit}},
                         status=201)


# ---- branches and tags ------------------------------------------------------------------------------------
async def _commit_of(request: web.Request, project: Project, sha: str) -> dict[str, Any]:
    found = await kit(request).git.log(project.repo_path, sha, limit=1)
    return commit_json(found[0])


@routes.post(f"{BASE}/repo/branches", summary="Create a branch from a branch, tag or commit", **_WRITE,
             params=None, body=NewBranch, response=BranchOut, status=201)
async def create_branch(request: web.Request) -> web.StreamResponse:
    body = body_of(request, NewBranch)
    project = await project_of(request)
    sha = await _writer(request).create_ref(actor_of(request), project, "branch", body.name, body.from_,
                                            is_admin=await _is_admin(request, project))
    return json_response({"name": body.name, "commit": await _commit_of(request, project, sha)}, status=201)


@routes.delete(f"{BASE}/repo/branches/{{branch:.+}}",
               summary="Delete a branch (refused for the default branch and protected branches)", **_WRITE,
               params=None, response=None, status=204)
async def delete_branch(request: web.Request) -> web.StreamResponse:
    project = await project_of(request)
    await _writer(request).delete_ref(actor_of(request), project, "branch", request.match_info["branch"],
                                      is_admin=await _is_admin(request, project))
    return web.Response(status=204)


@routes.post(f"{BASE}/repo/tags", summary="Create a lightweight tag at a branch, tag or commit", **_WRITE,
             params=None, body=NewTag, response=TagOut, status=201)
async def create_tag(request: web.Request) -> web.StreamResponse:
    body = body_of(request, NewTag)
    project = await project_of(request)
    sha = await _writer(request).create_ref(actor_of(request), project, "tag", body.name, body.target,
                                            is_admin=await _is_admin(request, project))
    return json_response({"name": body.name, "sha": sha, "message": None,
                          "commit": await _commit_of(request, project, sha)}, status=201)


@routes.delete(f"{BASE}/repo/tags/{{tag:.+}}", summary="Delete a tag", **_WRITE, params=None, response=None,
               status=204)
async def delete_tag(request: web.Request) -> web.StreamResponse:
    project = await project_of(request)
    await _writer(request).delete_ref(actor_of(request), project, "tag", request.match_info["tag"],
                                      is_admin=await _is_admin(request, project))
    return web.Response(status=204)


# ---- archives ---------------------------------------------------------------------------------------------
async def _archive(request: web.Request, fmt: str) -> web.StreamResponse:
    k = kit(request)
    project = await project_of(request)
    service = ArchiveService(k.git, k.objects)
    archive = await service.prepare(project, request.match_info["ref"], fmt)
    response = web.StreamResponse(headers={
        "Content-Type": archive.content_type, "Content-Length": str(archive.size),
        "Content-Disposition": f'attachment; filename="{archive.filename}"',
        "X-Corral-Archive-Cache": "hit" if archive.cached else "miss",
    })
    await response.prepare(request)
    async for chunk in service.chunks(archive):
        await response.write(chunk)
    await response.write_eof()
    return response


_BINARY = {"type": "string", "format": "binary"}


@routes.get(f"{BASE}/archive/{{ref:.+}}.tar.gz", summary="A tar.gz of a ref, files under {name}-{ref}/", **_READ,
            params=None, response=_BINARY, content_type="application/gzip",
            description="Kept in the object store by tree id: a second request is served from there.")
async def archive_tgz(request: web.Request) -> web.StreamResponse:
    return await _archive(request, "tar.gz")


@routes.get(f"{BASE}/archive/{{ref:.+}}.zip", summary="A zip of a ref, files under {name}-{ref}/", **_READ,
            params=None, response=_BINARY, content_type="application/zip",
            description="Kept in the object store by tree id: a second request is served from there.")
async def archive_zip(request: web.Request) -> web.StreamResponse:
    return await _archive(request, "zip")
