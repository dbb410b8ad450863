"""Repository browser API: branches, tags, trees, blobs, raw files, commits, comparisons and docs/*.md."""

from __future__ import annotations

import base64
import mimetypes
from typing import Any
from urllib.parse import quote

import attrs
from aiohttp import web

from corral.core.errors import InvalidInput
from corral.core.git.model import Blob, Comparison, FileChange, TreeEntry
from corral.core.pagination import Page
from corral.core.projects.model import Project
from corral.core.projects.payloads import commit_json
from corral.entrypoints.web.jsonio import json_response, page_response
from corral.entrypoints.web.operation import PageParams, params_of, query_param
from corral.entrypoints.web.project_access import PROJECT_PATH as BASE
from corral.entrypoints.web.project_access import PROJECT_READ as _READ
from corral.entrypoints.web.project_access import kit, project_of
from corral.entrypoints.web.routing import RouteTable
from corral.entrypoints.web.schemas.projects import (
    BlobOut,
    BranchOut,
    CommitDetailOut,
    CommitOut,
    CompareOut,
    DocOut,
    TagOut,
    TreeOut,
)

__all__ = ["comparison_json", "raw_file", "raw_headers", "routes"]

routes = RouteTable(tag="repository")



@attrs.frozen
class CommitLogQuery(PageParams):
    """Which commits the log shows."""

    ref: str | None = query_param(doc="branch, tag or sha (default: the default branch)")
    path: str | None = query_param(doc="only commits touching this path")


def _entry(e: TreeEntry) -> dict[str, Any]:
    return {"name": e.name, "path": e.path, "type": e.type, "mode": e.mode, "sha": e.sha, "size": e.size}


def _file(f: FileChange) -> dict[str, Any]:
    return {"path": f.path, "old_path": f.old_path, "status": f.status, "additions": f.additions,
            "deletions": f.deletions}


def comparison_json(c: Comparison) -> dict[str, Any]:
    return {
        "base": c.base, "head": c.head, "merge_base": c.merge_base,
        "commits": [commit_json(x) for x in c.commits], "files": [_file(f) for f in c.files],
        "patch": c.patch, "patch_truncated": c.patch_truncated,
    }


def _blob(b: Blob) -> dict[str, Any]:
    try:
        content, encoding = b.data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        content, encoding = base64.b64encode(b.data).decode(), "base64"
    return {"path": b.path, "sha": b.sha, "size": b.size, "encoding": encoding, "content": content,
            "truncated": b.truncated}


async def _ref_path(request: web.Request) -> tuple[str, str]:
    """The ref and path of ``{ref}/{path}``; a ref may itself contain '/' (``feature/x``)."""
    ref, path = request.match_info["ref"], request.match_info.get("path", "")
    if not path.strip("/"):
        return ref, ""
    return await kit(request).browser.split_ref(await project_of(request), f"{ref}/{path}")


@routes.get(f"{BASE}/repo/branches", summary="Branches in name order, each with its head commit", **_READ,
            params=PageParams, response=Page[BranchOut])
async def branches(request: web.Request) -> web.StreamResponse:
    q = params_of(request, PageParams)
    page = await kit(request).browser.branches(await project_of(request), limit=q.limit, cursor=q.cursor)
    return page_response(page, lambda b: {"name": b.name, "commit": commit_json(b.commit)})


@routes.get(f"{BASE}/repo/tags", summary="Tags in name order, peeled to their commits", **_READ,
            params=PageParams, response=Page[TagOut])
async def tags(request: web.Request) -> web.StreamResponse:
    q = params_of(request, PageParams)
    page = await kit(request).browser.tags(await project_of(request), limit=q.limit, cursor=q.cursor)
    return page_response(page, lambda t: {"name": t.name, "sha": t.target, "message": t.message,
                                          "commit": commit_json(t.commit) if t.commit else None})


@routes.get(f"{BASE}/repo/tree/{{ref}}", summary="The root directory at a ref", operation_id="tree_root", **_READ,
            params=None, response=TreeOut)
@routes.get(f"{BASE}/repo/tree/{{ref}}/{{path:.*}}", summary="A directory at a ref", **_READ, params=None,
            response=TreeOut)
async def tree(request: web.Request) -> web.StreamResponse:
    ref, path = await _ref_path(request)
    entries = await kit(request).browser.tree(await project_of(request), ref, path)
    return json_response({"ref": ref, "path": path.strip("/"), "items": [_entry(e) for e in entries]})


@routes.get(f"{BASE}/repo/blob/{{ref}}/{{path:.*}}", summary="A file at a ref as JSON (utf-8 or base64)", **_READ,
            params=None, response=BlobOut)
async def blob(request: web.Request) -> web.StreamResponse:
    ref, path = await _ref_path(request)
    return json_response(_blob(await kit(request).browser.blob(await project_of(request), ref, path)))


@routes.get(f"{BASE}/repo/raw/{{ref}}/{{path:.*}}", summary="A file's raw bytes at a ref (streamed)", **_READ,
            params=None, response={"type": "string", "format": "binary"}, content_type="application/octet-stream",
            description="Text files are served as text/plain, other files by their type; never as active content.")
async def raw(request: web.Request) -> web.StreamResponse:
    ref, path = await _ref_path(request)
    return await raw_file(request, await project_of(request), ref, path)


_PLAIN = ("application/javascript", "application/json", "application/xml", "application/xhtml+xml",
          "image/svg+xml", "application/x-sh")
_INLINE_IMAGES = ("image/png", "image/jpeg", "image/gif", "image/webp", "image/avif", "image/bmp")


def raw_headers(path: str) -> dict[str, str]:
    """How a repository file is served from our origin: text (HTML, SVG and scripts too) as text/plain, raster
    images inline by their type, everything else as a download; never as active content (nosniff, a sandbox)."""
    kind = mimetypes.guess_type(path)[0] or "application/octet-stream"
    name = quote(path.rsplit("/", 1)[-1], safe="")
    if kind.startswith("text/") or kind in _PLAIN:
        kind, disposition = "text/plain; charset=utf-8", "inline"
    elif kind in _INLINE_IMAGES:
        disposition = "inline"
    else:
        disposition = "attachment"
    return {"Content-Type": kind, "Content-Disposition": f"{disposition}; filename*=UTF-8''{name}",
            "X-Content-Type-Options": "nosniff", "Content-Security-Policy": "default-src 'none'; sandbox",
            "Cache-Control": "no-store"}


async def raw_file(request: web.Request, project: Project, ref: str, path: str) -> web.StreamResponse:
    """The bytes of ``path`` at ``ref``, streamed with :func:`raw_headers`."""
    chunks = kit(request).git.blob_stream(project.repo_path, ref, path.strip("/"))
    try:
        first = await chunks.__anext__()  # NotFound surfaces before the response starts
    except StopAsyncIteration:
        first = b""
    response = web.StreamResponse(headers=raw_headers(path))
    await response.prepare(request)
    await response.write(first)
    async for chunk in chunks:
        await response.write(chunk)
    await response.write_eof()
    return response


@routes.get(f"{BASE}/repo/commits", summary="Commit log of a ref (default branch), newest first", **_READ,
            params=CommitLogQuery, response=Page[CommitOut])
async def commits(request: web.Request) -> web.StreamResponse:
    q = params_of(request, CommitLogQuery)
    page = await kit(request).browser.commits(await project_of(request), q.ref, path=q.path, limit=q.limit,
                                              cursor=q.cursor)
    return page_response(page, commit_json)


@routes.get(f"{BASE}/repo/commits/{{sha}}", summary="One commit with its diff against its first parent", **_READ,
            params=None, response=CommitDetailOut)
async def commit(request: web.Request) -> web.StreamResponse:
    one, change = await kit(request).browser.commit(await project_of(request), request.match_info["sha"])
    return json_response({**commit_json(one), "files": [_file(f) for f in change.files], "patch": change.patch,
                          "patch_truncated": change.patch_truncated})


@routes.get(f"{BASE}/repo/compare/{{spec:.+}}", summary="Compare two refs: base...head (with ahead_by/behind_by)",
            **_READ, params=None, response=CompareOut)
async def compare(request: web.Request) -> web.StreamResponse:
    spec = request.match_info["spec"]
    base, sep, head = spec.partition("...")
    if not sep or not base or not head:
        raise InvalidInput("compare takes base...head (three dots)", field="spec")
    project = await project_of(request)
    comparison = await kit(request).browser.compare(project, base, head)
    ahead, behind = await kit(request).git.ahead_behind(project.repo_path, comparison.base, comparison.head)
    return json_response({**comparison_json(comparison), "ahead_by": ahead, "behind_by": behind})


@routes.get(f"{BASE}/docs", summary="Markdown documents under docs/ of the default branch", **_READ,
            params=None, response=Page[DocOut])
async def docs(request: web.Request) -> web.StreamResponse:
    entries = await kit(request).browser.docs(await project_of(request))
    return json_response({"items": [{"path": e.path.removeprefix("docs/"), "size": e.size} for e in entries],
                          "next_cursor": None})


@routes.get(f"{BASE}/docs/{{path:.*}}", summary="One document under docs/ of the default branch", **_READ,
            params=None, response=BlobOut)
async def doc(request: web.Request) -> web.StreamResponse:
    return json_response(_blob(await kit(request).browser.doc(await project_of(request),
                                                              request.match_info["path"])))
