"""Code pages like Gitea's beside the file browser: tags (with archives) and branch/tag forms, comparing two refs,
a file's raw bytes, the project's docs/ rendered, and releases. The same services and permissions as the API
routes they mirror (corral.entrypoints.web.routes.repo, repo_writes, releases)."""

from __future__ import annotations

import posixpath
import uuid
from typing import Any

import attrs
from aiohttp import web

from corral.core.errors import InvalidInput, NotFound
from corral.core.git.model import TreeEntry
from corral.core.projects.commands import NewRelease, ReleaseChanges
from corral.core.projects.model import Project, Release
from corral.core.projects.releases import ReleaseService
from corral.core.projects.repo_writes import RepoWriter
from corral.entrypoints.web.operation import params_of, query_param
from corral.entrypoints.web.project_access import actor_of, can, kit, project_of
from corral.entrypoints.web.routes.repo import raw_file
from corral.entrypoints.web.ui.pages import Crumb, form_data, redirect, url_path
from corral.entrypoints.web.ui.projects import DiffParams, diff_view, project_crumbs, project_page, remember_view
from corral.entrypoints.web.ui.render import markdown, parse_patch
from corral.entrypoints.web.ui.table import PAGE, form, routes
from corral.entrypoints.web.ui.table import page as page_route

__all__: list[str] = []

P = "/ui/{owner}/{name}"
_READ: dict[str, Any] = {"permission": "project:read", "project": "path"}
_WRITE: dict[str, Any] = {"permission": "project:write", "project": "path"}
_INDEX = ("index.md", "README.md", "readme.md")


def _writer(request: web.Request) -> RepoWriter:
    k = kit(request)
    return RepoWriter(k.uow_factory, k.git, k.clock, k.users)


def _field(data: Any, name: str) -> str:
    value = (data.get(name) or "").strip()
    if not value:
        raise InvalidInput(f"{name} is required", field=name)
    return str(value)


# ---- tags, branch and tag forms ------------------------------------------------------------------------------
@page_route(f"{P}/tags", summary="Tags with their commits and archives", **_READ)
async def tags(request: web.Request) -> web.StreamResponse:
    project = await project_of(request)
    k = kit(request)
    found = (await k.browser.tags(project, limit=200)).items
    releases = {r.tag: r for r in await _releases(request).releases(project, drafts=await _drafts(request, project))}
    return await project_page(request, "tags.html", title="Tags", tab="branches",
                              crumbs=project_crumbs(project, Crumb("Tags")), tags=found, releases=releases,
                              api=f"/api/v1/projects/{project.full_name}")


@form(f"{P}/branches", summary="Create a branch", **_WRITE)
async def create_branch(request: web.Request) -> web.StreamResponse:
    project = await project_of(request)
    data = await form_data(request)
    await _writer(request).create_ref(actor_of(request), project, "branch", _field(data, "name"),
                                      data.get("from") or None, is_admin=await can(request, "project:admin", project))
    return redirect(f"/ui/{project.full_name}/branches")


@form(f"{P}/branches/delete", summary="Delete a branch", **_WRITE)
async def delete_branch(request: web.Request) -> web.StreamResponse:
    project = await project_of(request)
    data = await form_data(request)
    await _writer(request).delete_ref(actor_of(request), project, "branch", _field(data, "name"),
                                      is_admin=await can(request, "project:admin", project))
    return redirect(f"/ui/{project.full_name}/branches")


@form(f"{P}/tags", summary="Create a tag", **_WRITE)
async def create_tag(request: web.Request) -> web.StreamResponse:
    project = await project_of(request)
    data = await form_data(request)
    await _writer(request).create_ref(actor_of(request), project, "tag", _field(data, "name"),
                                      data.get("target") or None, is_admin=await can(request, "project:admin", project))
    return redirect(f"/ui/{project.full_name}/tags")


@form(f"{P}/tags/delete", summary="Delete a tag", **_WRITE)
async def delete_tag(request: web.Request) -> web.StreamResponse:
    project = await project_of(request)
    data = await form_data(request)
    await _writer(request).delete_ref(actor_of(request), project, "tag", _field(data, "name"),
                                      is_admin=await can(request, "project:admin", project))
    return redirect(f"/ui/{project.full_name}/tags")


# ---- compare ------------------------------------------------------------------------------------------------
@attrs.frozen
class PickParams:
    base: str | None = query_param(doc="the branch, tag or commit to compare against")
    head: str | None = query_param(doc="the branch, tag or commit compared")


@page_route(f"{P}/compare", summary="Pick two refs to compare", **_READ, params=PickParams)
async def pick(request: web.Request) -> web.StreamResponse:
    project = await project_of(request)
    q = params_of(request, PickParams)
    if q.base and q.head:
        return redirect(f"/ui/{project.full_name}/compare/{url_path(q.base)}...{url_path(q.head)}")
    return await _compare_page(request, project, q.base or project.default_branch, q.head or "", None)


@page_route(f"{P}/compare/{{spec:.+}}", summary="Compare two refs: the commits and the diff of base...head",
            **_READ, params=DiffParams)
async def compare(request: web.Request) -> web.StreamResponse:
    project = await project_of(request)
    base, sep, head = request.match_info["spec"].partition("...")
    if not sep or not base or not head:
        raise InvalidInput("compare takes base...head (three dots)", field="spec")
    k = kit(request)
    comparison = await k.browser.compare(project, base, head)
    ahead, behind = await k.git.ahead_behind(project.repo_path, comparison.base, comparison.head)
    response = await _compare_page(request, project, base, head, comparison, ahead=ahead, behind=behind)
    return remember_view(request, response)


async def _compare_page(request: web.Request, project: Project, base: str, head: str, comparison: Any,
                        **more: Any) -> web.Response:
    k = kit(request)
    branch_names = [b.name for b in (await k.browser.branches(project, limit=200)).items]
    tag_names = [t.name for t in (await k.browser.tags(project, limit=200)).items]
    return await project_page(
        request, "compare.html", title=f"Compare {base}...{head}" if head else "Compare", tab="branches",
        crumbs=project_crumbs(project, Crumb("Compare")), base=base, head=head, comparison=comparison,
        diff_files=parse_patch(comparison.patch) if comparison is not None else [], view=diff_view(request),
        ref_names=[*branch_names, *tag_names], head_is_branch=head in branch_names,
        base_is_branch=base in branch_names, **more)


# ---- raw ----------------------------------------------------------------------------------------------------
@routes.get(f"{P}/raw/{{ref}}/{{path:.+}}", summary="A file's raw bytes at a ref (text as text/plain)", **_READ,
            include_in_schema=False, params=None, response=PAGE, content_type="*/*")
async def raw(request: web.Request) -> web.StreamResponse:
    project = await project_of(request)
    ref, path = await kit(request).browser.split_ref(project, f"{request.match_info['ref']}/"
                                                              f"{request.match_info['path']}")
    if not path.strip("/"):
        raise NotFound("raw serves files: name one after the ref")
    return await raw_file(request, project, ref, path)


# ---- docs/ --------------------------------------------------------------------------------------------------
@page_route(f"{P}/docs", summary="The project's documentation (docs/ of the default branch)", **_READ)
async def docs_root(request: web.Request) -> web.StreamResponse:
    project = await project_of(request)
    return redirect(f"/ui/{project.full_name}/docs/")


@page_route(f"{P}/docs/{{path:.*}}", summary="A page or folder of docs/, rendered", **_READ)
async def docs(request: web.Request) -> web.StreamResponse:
    project = await project_of(request)
    k = kit(request)
    path = request.match_info["path"]
    if ".." in path.split("/"):
        raise NotFound("there is no such page")
    pages = await k.browser.docs(project)
    rel = [e.path.removeprefix("docs/") for e in pages]
    base = f"/ui/{project.full_name}/docs/"
    folder = path if path == "" or path.endswith("/") else None
    if folder is None and not path.lower().endswith(".md"):
        if any(r.startswith(path + "/") for r in rel):
            return redirect(base + url_path(path) + "/")  # a folder: relative links resolve inside it
        return redirect(f"/ui/{project.full_name}/raw/{url_path(project.default_branch)}/docs/{url_path(path)}")
    current = next((folder + n for n in _INDEX if folder + n in rel), None) if folder is not None else path
    text = None
    if current is not None:
        blob = await k.browser.doc(project, current)
        text = blob.data.decode("utf-8", errors="replace")
    if not pages and current is None:
        return await project_page(request, "docs.html", title="Docs", tab="docs", status=404,
                                  crumbs=project_crumbs(project, Crumb("Docs")), pages=[], current=None,
                                  rendered=None, folder="", base=base)
    where = folder if folder is not None else posixpath.dirname(path)
    crumbs = project_crumbs(project, Crumb("Docs", base), *_doc_crumbs(base, where, current))
    return await project_page(request, "docs.html", title=f"Docs {current or folder}", tab="docs",
                              crumbs=crumbs, pages=_doc_rows(pages), current=current,
                              rendered=markdown(text) if text is not None else None, folder=folder, base=base,
                              source=f"/ui/{project.full_name}/src/{url_path(project.default_branch)}/docs/"
                                     f"{url_path(current)}" if current else None)


def _doc_crumbs(base: str, folder: str, current: str | None) -> list[Crumb]:
    parts = [p for p in folder.split("/") if p]
    out = [Crumb(p, base + url_path("/".join(parts[: i + 1])) + "/") for i, p in enumerate(parts)]
    if current is not None:
        out.append(Crumb(current.rsplit("/", 1)[-1]))
    return out


def _doc_rows(pages: list[TreeEntry]) -> list[tuple[str, str, int]]:
    """(relative path, title, depth) of each page, for the list beside the page."""
    rows = []
    for e in pages:
        rel = e.path.removeprefix("docs/")
        rows.append((rel, rel.removesuffix(".md"), rel.count("/")))
    return rows


# ---- releases -----------------------------------------------------------------------------------------------
def _releases(request: web.Request) -> ReleaseService:
    k = kit(request)
    return ReleaseService(k.uow_factory, RepoWriter(k.uow_factory, k.git, k.clock, k.users), k.objects, k.clock)


async def _drafts(request: web.Request, project: Project) -> bool:
    return await can(request, "project:write", project)


def _release_id(request: web.Request) -> uuid.UUID:
    try:
        return uuid.UUID(request.match_info["release_id"])
    except ValueError:
        raise NotFound("there is no such release") from None


def _flag(data: Any, name: str) -> bool:
    return data.get(name) in ("on", "true", "1")


@page_route(f"{P}/releases", summary="Releases, newest first (drafts for writers)", **_READ)
async def releases(request: web.Request) -> web.StreamResponse:
    project = await project_of(request)
    found = await _releases(request).releases(project, drafts=await _drafts(request, project))
    return await project_page(request, "releases.html", title="Releases", tab="releases",
                              crumbs=project_crumbs(project, Crumb("Releases")), releases=found,
                              api=f"/api/v1/projects/{project.full_name}")


@page_route(f"{P}/releases/new", summary="The form to publish a release", **_WRITE)
async def new_release(request: web.Request) -> web.StreamResponse:
    project = await project_of(request)
    k = kit(request)
    return await project_page(request, "release_new.html", title="New release", tab="releases",
                              crumbs=project_crumbs(project, Crumb("Releases", f"/ui/{project.full_name}/releases"),
                                                    Crumb("New")),
                              tag_names=[t.name for t in (await k.browser.tags(project, limit=200)).items],
                              branch_names=[b.name for b in (await k.browser.branches(project, limit=200)).items])


@form(f"{P}/releases", summary="Publish or draft a release", **_WRITE)
async def create_release(request: web.Request) -> web.StreamResponse:
    project = await project_of(request)
    data = await form_data(request)
    release = await _releases(request).create(actor_of(request), project, NewRelease(
        tag=_field(data, "tag"), target=data.get("target") or None, title=data.get("title") or None,
        notes=data.get("notes") or None, draft=_flag(data, "draft"), prerelease=_flag(data, "prerelease")),
        is_admin=await can(request, "project:admin", project))
    return redirect(f"/ui/{project.full_name}/releases/{release.id}")


@page_route(f"{P}/releases/{{release_id}}", summary="One release: notes, assets, tag", **_READ)
async def release(request: web.Request) -> web.StreamResponse:
    project = await project_of(request)
    one: Release = await _releases(request).release(project, _release_id(request),
                                                   drafts=await _drafts(request, project))
    author = await kit(request).users.by_ids({one.author_id} if one.author_id else set())
    return await project_page(request, "release.html", title=f"Release {one.title}", tab="releases",
                              crumbs=project_crumbs(project, Crumb("Releases", f"/ui/{project.full_name}/releases"),
                                                    Crumb(one.tag)),
                              release=one, author=author.get(one.author_id) if one.author_id else None,
                              api=f"/api/v1/projects/{project.full_name}")


@form(f"{P}/releases/{{release_id}}/edit", summary="Change a release (publishing a draft)", **_WRITE)
async def edit_release(request: web.Request) -> web.StreamResponse:
    project = await project_of(request)
    data = await form_data(request)
    release_id = _release_id(request)
    await _releases(request).update(actor_of(request), project, release_id, ReleaseChanges(
        title=_field(data, "title"), notes=data.get("notes") or None, draft=_flag(data, "draft"),
        prerelease=_flag(data, "prerelease")))
    return redirect(f"/ui/{project.full_name}/releases/{release_id}")


@form(f"{P}/releases/{{release_id}}/delete", summary="Remove a release and its assets (the tag stays)", **_WRITE)
async def delete_release(request: web.Request) -> web.StreamResponse:
    project = await project_of(request)
    await _releases(request).delete(actor_of(request), project, _release_id(request))
    return redirect(f"/ui/{project.full_name}/releases")


