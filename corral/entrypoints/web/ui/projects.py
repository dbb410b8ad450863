"""Project pages like Gitea's: home with the README, file browser at any ref, commits and a commit's diff,
branches and tags, issues and merge requests (with reviews and the merge button). Every page and form is a
RouteTable route with the same permission as the API operation it mirrors, and calls the same services."""

from __future__ import annotations

import typing
import uuid
from collections.abc import Iterable
from typing import Any, Literal

import attrs
from aiohttp import web

from corral.core.errors import Conflict, InvalidInput, NotFound
from corral.core.git.model import TreeEntry
from corral.core.pipelines.runs import Pipeline
from corral.core.pipelines.service import PipelineService
from corral.core.projects.commands import (
    IssueChanges,
    MergeOptions,
    MergeRequestChanges,
    MergeStrategyName,
    NewComment,
    NewIssue,
    NewMergeRequest,
    NewReview,
    VerdictName,
)
from corral.core.projects.merge_requests import approvals
from corral.core.projects.model import MergeRequest, MrStatus, Project
from corral.core.projects.ports import UserRef
from corral.entrypoints.web.keys import PLATFORM
from corral.entrypoints.web.operation import params_of, query_param
from corral.entrypoints.web.project_access import actor_of, can, kit, project_of
from corral.entrypoints.web.ui.pages import Crumb, form_data, page, redirect, url_path
from corral.entrypoints.web.ui.render import highlight, markdown, parse_patch
from corral.entrypoints.web.ui.table import form
from corral.entrypoints.web.ui.table import page as page_route

__all__ = ["project_crumbs", "project_page"]

P = "/ui/{owner}/{name}"
_READ: dict[str, Any] = {"permission": "project:read", "project": "path"}
_WRITE: dict[str, Any] = {"permission": "project:write", "project": "path"}
# the form's choices are the commands' own (one description): a strategy added there is offered here too
_VERDICTS: dict[str, VerdictName] = {v: v for v in typing.get_args(VerdictName)}
_STRATEGIES: dict[str, MergeStrategyName] = {v: v for v in typing.get_args(MergeStrategyName)}
_README = ("README.md", "readme.md", "Readme.md", "README.markdown", "README", "README.txt", "README.rst")


@attrs.frozen
class SrcParams:
    view: Literal["source", "rendered"] | None = query_param(doc="how to show a Markdown file")


@attrs.frozen
class CommitsParams:
    path: str | None = query_param(doc="only commits touching this path")
    cursor: str | None = query_param(doc="next page")


@attrs.frozen
class StatusParams:
    status: Literal["open", "closed", "merged", "all"] | None = query_param(doc="which ones")
    cursor: str | None = query_param(doc="next page")
    label: str | None = query_param(doc="only those carrying this label")
    assignee: str | None = query_param(doc="only those assigned to this user (name)")
    author: str | None = query_param(doc="only those opened by this user (name)")
    milestone: str | None = query_param(doc="only those of this milestone (id or title)")


@attrs.frozen
class DiffParams:
    view: Literal["unified", "split"] | None = query_param(doc="the diff view (remembered in a cookie)")


DIFF_COOKIE = "corral_diff_view"


def diff_view(request: web.Request) -> str:
    """The diff view asked for (?view=), else the one remembered in the cookie, else unified."""
    asked = request.query.get("view")
    if asked in ("unified", "split"):
        return asked
    return "split" if request.cookies.get(DIFF_COOKIE) == "split" else "unified"


def remember_view(request: web.Request, response: web.Response) -> web.Response:
    """Keep an explicitly chosen diff view for the next diff pages (a preference, not a credential)."""
    asked = request.query.get("view")
    if asked in ("unified", "split") and request.cookies.get(DIFF_COOKIE) != asked:
        response.set_cookie(DIFF_COOKIE, asked, path="/ui/", samesite="Lax", max_age=365 * 86400, httponly=True)
    return response


def _filters(q: StatusParams) -> dict[str, str | None]:
    return {"label": q.label or None, "assignee": q.assignee or None, "author": q.author or None,
            "milestone": q.milestone or None}


def project_crumbs(project: Project, *more: Crumb) -> list[Crumb]:
    return [Crumb(project.owner_name), Crumb(project.name, f"/ui/{project.full_name}"), *more]


async def project_page(request: web.Request, template: str, *, title: str, tab: str, crumbs: list[Crumb],
                       status: int = 200, **context: Any) -> web.Response:
    project = await project_of(request)
    return await page(request, template, title=f"{title} · {project.full_name}", crumbs=crumbs, status=status,
                      project=project, tab=tab, can_write=await can(request, "project:write", project),
                      can_admin=await can(request, "project:admin", project), **context)


def _number(request: web.Request) -> int:
    raw = request.match_info["number"]
    if not raw.isdigit() or len(raw) > 10 or not 1 <= int(raw) <= 2**31 - 1:
        raise NotFound(f"there is no number {raw}")
    return int(raw)


async def _users(request: web.Request, ids: Iterable[uuid.UUID | None]) -> dict[uuid.UUID, UserRef]:
    return await kit(request).users.by_ids({i for i in ids if i is not None})


async def _choices(request: web.Request, project: Project) -> dict[str, Any]:
    """The project's labels and milestones (the filters' and the edit forms' choices)."""
    k = kit(request)
    return {"labels": await k.labels.labels(project),
            "milestones": [m for m, _counts in await k.labels.milestones(project, "all")]}


# ---- home, files, commits -----------------------------------------------------------------------------------
@page_route(P, summary="Project home: the files of the default branch and its README", **_READ)
async def home(request: web.Request) -> web.StreamResponse:
    project = await project_of(request)
    k = kit(request)
    ref = project.default_branch
    entries: list[TreeEntry] = []
    readme = None
    readme_plain = None
    latest = (await k.browser.commits(project, None, limit=1)).items
    empty = not latest
    if not empty:
        entries = await k.browser.tree(project, ref, "")
    for candidate in _README:
        found = next((e for e in entries if e.name == candidate and e.type == "blob"), None)
        if found is not None:
            text = (await k.browser.blob(project, ref, found.path)).data.decode("utf-8", errors="replace")
            if candidate.lower().endswith((".md", ".markdown")):
                readme = markdown(text)
            else:
                readme_plain = text
            break
    clone_url = f"{k.base_url.rstrip('/')}/{project.full_name}.git"
    return await project_page(request, "project_home.html", title="Code", tab="code",
                              crumbs=project_crumbs(project), ref=ref, entries=_sorted(entries), readme=readme,
                              readme_plain=readme_plain, empty=empty, latest=latest[0] if latest else None,
                              clone_url=clone_url, tree_path="")


def _sorted(entries: list[TreeEntry]) -> list[TreeEntry]:
    return sorted(entries, key=lambda e: (e.type != "tree", e.name.lower()))


def _path_crumbs(project: Project, ref: str, path: str) -> list[Crumb]:
    out = project_crumbs(project, Crumb(ref, f"/ui/{project.full_name}/src/{url_path(ref)}"))
    parts = [p for p in path.split("/") if p]
    for i, part in enumerate(parts):
        href = f"/ui/{project.full_name}/src/{url_path(ref)}/{url_path('/'.join(parts[: i + 1]))}"
        out.append(Crumb(part, href if i < len(parts) - 1 else None))
    return out


@page_route(f"{P}/src/{{ref}}", summary="The root folder at a ref", operation_id="ui_src_root", **_READ,
            params=SrcParams)
@page_route(f"{P}/src/{{ref}}/{{path:.*}}", summary="A file or folder at a ref", **_READ, params=SrcParams)
async def src(request: web.Request) -> web.StreamResponse:
    project = await project_of(request)
    k = kit(request)
    ref, path = request.match_info["ref"], request.match_info.get("path", "").strip("/")
    if path:
        ref, path = await k.browser.split_ref(project, f"{ref}/{path}")
    crumbs = _path_crumbs(project, ref, path)
    if not path:
        entries = await k.browser.tree(project, ref, "")
        return await project_page(request, "tree.html", title=f"{ref}", tab="code", crumbs=crumbs, ref=ref,
                                  tree_path="", entries=_sorted(entries))
    parent, _, leaf = path.rpartition("/")
    siblings = await k.browser.tree(project, ref, parent)
    entry = next((e for e in siblings if e.name == leaf), None)
    if entry is None:
        raise NotFound(f"{path} does not exist at {ref}")
    if entry.type == "tree":
        entries = await k.browser.tree(project, ref, path)
        return await project_page(request, "tree.html", title=f"{path} at {ref}", tab="code", crumbs=crumbs,
                                  ref=ref, tree_path=path, entries=_sorted(entries))
    blob = await k.browser.blob(project, ref, path)
    view = params_of(request, SrcParams).view
    try:
        text: str | None = blob.data.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    rendered = None
    code = None
    if text is not None:
        if path.lower().endswith((".md", ".markdown")) and view != "source":
            rendered = markdown(text)
        else:
            code = highlight(text, leaf)
    raw = f"/ui/{project.full_name}/raw/{url_path(ref)}/{url_path(path)}"
    return await project_page(request, "blob.html", title=f"{path} at {ref}", tab="code", crumbs=crumbs, ref=ref,
                              path=path, blob=blob, code=code, rendered=rendered, binary=text is None,
                              raw_url=raw, lines=(text or "").count("\n") + (1 if text else 0),
                              markdown_file=path.lower().endswith((".md", ".markdown")))


@page_route(f"{P}/commits/{{ref:.+}}", summary="The commit log of a ref (or of a path at that ref)", **_READ,
            params=CommitsParams)
async def commits(request: web.Request) -> web.StreamResponse:
    project = await project_of(request)
    q = params_of(request, CommitsParams)
    ref = request.match_info["ref"]
    found = await kit(request).browser.commits(project, ref, path=q.path, limit=50, cursor=q.cursor)
    title = f"History of {q.path}" if q.path else f"Commits on {ref}"
    return await project_page(request, "commits.html", title=title, tab="commits",
                              crumbs=project_crumbs(project, Crumb(f"Commits ({ref})")), ref=ref, path=q.path,
                              commits=found.items, next_cursor=found.next_cursor, heading=title)


@page_route(f"{P}/commit/{{sha}}", summary="One commit with its diff", **_READ, params=DiffParams)
async def commit(request: web.Request) -> web.StreamResponse:
    project = await project_of(request)
    one, change = await kit(request).browser.commit(project, request.match_info["sha"])
    response = await project_page(request, "commit.html", title=one.message.split("\n", 1)[0], tab="commits",
                              crumbs=project_crumbs(project, Crumb("Commits", f"/ui/{project.full_name}/commits/"
                                                                   f"{url_path(project.default_branch)}"),
                                                    Crumb(one.sha[:10])),
                              commit=one, files=change.files, diff_files=parse_patch(change.patch),
                              truncated=change.patch_truncated, view=diff_view(request))
    return remember_view(request, response)


@page_route(f"{P}/branches", summary="Branches and tags", **_READ)
async def branches(request: web.Request) -> web.StreamResponse:
    project = await project_of(request)
    k = kit(request)
    found = (await k.browser.branches(project, limit=200)).items
    tags = (await k.browser.tags(project, limit=200)).items
    return await project_page(request, "branches.html", title="Branches", tab="branches",
                              crumbs=project_crumbs(project, Crumb("Branches and tags")), branches=found, tags=tags)


# ---- issues -------------------------------------------------------------------------------------------------
@page_route(f"{P}/issues", summary="Issues of a project", **_READ, params=StatusParams)
async def issues(request: web.Request) -> web.StreamResponse:
    project = await project_of(request)
    q = params_of(request, StatusParams)
    status = q.status or "open"
    if status == "merged":
        raise InvalidInput("status must be open, closed or all", field="status")
    k = kit(request)
    found = await k.issues.list(project, status=None if status == "all" else status, limit=50, cursor=q.cursor,
                                labels=q.label or None, assignee=q.assignee or None, author=q.author or None,
                                milestone=q.milestone or None)
    users = await _users(request, [i.author_id for i in found.items])
    return await project_page(request, "issues.html", title="Issues", tab="issues",
                              crumbs=project_crumbs(project, Crumb("Issues")), issues=found.items, users=users,
                              state=status, next_cursor=found.next_cursor, filters=_filters(q),
                              **await _choices(request, project))


@page_route(f"{P}/issues/new", summary="The form to open an issue", **_WRITE)
async def new_issue(request: web.Request) -> web.StreamResponse:
    project = await project_of(request)
    return await project_page(request, "issue_new.html", title="New issue", tab="issues",
                              crumbs=project_crumbs(project, Crumb("Issues", f"/ui/{project.full_name}/issues"),
                                                    Crumb("New")))


def _labels(value: str) -> list[str]:
    return [x.strip() for x in value.split(",") if x.strip()]


@form(f"{P}/issues", summary="Open an issue", **_WRITE)
async def create_issue(request: web.Request) -> web.StreamResponse:
    project = await project_of(request)
    data = await form_data(request)
    issue = await kit(request).issues.create(actor_of(request), project, NewIssue(
        title=data.get("title", ""), body=data.get("body") or None, labels=_labels(data.get("labels", "")),
        assignee=data.get("assignee") or None))
    return redirect(f"/ui/{project.full_name}/issues/{issue.number}")


@page_route(f"{P}/issues/{{number}}", summary="One issue with its comments", **_READ)
async def issue(request: web.Request) -> web.StreamResponse:
    project = await project_of(request)
    k = kit(request)
    one = await k.issues.get(project, _number(request))
    comments = (await k.issues.comments(project, one.number, limit=200)).items
    users = await _users(request, [one.author_id, one.assignee_id, *(c.author_id for c in comments)])
    choices = await _choices(request, project)
    return await project_page(request, "issue.html", title=f"#{one.number} {one.title}", tab="issues",
                              crumbs=project_crumbs(project, Crumb("Issues", f"/ui/{project.full_name}/issues"),
                                                    Crumb(f"#{one.number}")),
                              issue=one, comments=comments, users=users,
                              milestone=next((m for m in choices["milestones"] if m.id == one.milestone_id), None),
                              **choices)


def _text(data: Any, field: str) -> str:
    value = data.get(field)
    if value is None:
        raise InvalidInput(f"{field} is required", field=field)
    return str(value)


def _chosen_labels(data: Any) -> list[str]:
    return [v for v in data.getall("label", []) if v]


@form(f"{P}/issues/{{number}}/edit", summary="Change an issue's title and description", **_WRITE)
async def edit_issue(request: web.Request) -> web.StreamResponse:
    project = await project_of(request)
    data = await form_data(request)
    number = _number(request)
    await kit(request).issues.update(actor_of(request), project, number, IssueChanges(
        title=_text(data, "title"), body=data.get("body") or None))
    return redirect(f"/ui/{project.full_name}/issues/{number}")


@form(f"{P}/issues/{{number}}/meta", summary="Set an issue's labels, assignee and milestone", **_WRITE)
async def issue_meta(request: web.Request) -> web.StreamResponse:
    project = await project_of(request)
    data = await form_data(request)
    number = _number(request)
    await kit(request).issues.update(actor_of(request), project, number, IssueChanges(
        labels=_chosen_labels(data), assignee=(data.get("assignee") or "").strip() or None,
        milestone=data.get("milestone") or None))
    return redirect(f"/ui/{project.full_name}/issues/{number}")


@form(f"{P}/issues/{{number}}/comments", summary="Comment on an issue", **_WRITE)
async def comment_issue(request: web.Request) -> web.StreamResponse:
    project = await project_of(request)
    data = await form_data(request)
    number = _number(request)
    await kit(request).issues.comment(actor_of(request), project, number, NewComment(body=data.get("body", "")))
    return redirect(f"/ui/{project.full_name}/issues/{number}#comments")


def _open_or_closed(value: str | None) -> Literal["open", "closed"]:
    """The status field of the close/reopen forms of issues and merge requests."""
    if value == "open":
        return "open"
    if value == "closed":
        return "closed"
    raise InvalidInput("status must be open or closed", field="status")


@form(f"{P}/issues/{{number}}/status", summary="Close or reopen an issue", **_WRITE)
async def issue_status(request: web.Request) -> web.StreamResponse:
    project = await project_of(request)
    data = await form_data(request)
    status = _open_or_closed(data.get("status"))
    number = _number(request)
    await kit(request).issues.update(actor_of(request), project, number, IssueChanges(status=status))
    return redirect(f"/ui/{project.full_name}/issues/{number}")


# ---- merge requests -----------------------------------------------------------------------------------------
@page_route(f"{P}/merge-requests", summary="Merge requests of a project", **_READ, params=StatusParams)
async def merge_requests(request: web.Request) -> web.StreamResponse:
    project = await project_of(request)
    q = params_of(request, StatusParams)
    status = q.status or "open"
    found = await kit(request).merge_requests.list(project, status=None if status == "all" else status, limit=50,
                                                   cursor=q.cursor, labels=q.label or None,
                                                   assignee=q.assignee or None, author=q.author or None,
                                                   milestone=q.milestone or None)
    users = await _users(request, [m.author_id for m in found.items])
    return await project_page(request, "mrs.html", title="Merge requests", tab="mrs",
                              crumbs=project_crumbs(project, Crumb("Merge requests")), mrs=found.items,
                              users=users, state=status, next_cursor=found.next_cursor, filters=_filters(q),
                              **await _choices(request, project))


@attrs.frozen
class NewMrParams:
    source: str | None = query_param(doc="the branch to merge (preselected)")
    target: str | None = query_param(doc="the branch to merge into (preselected)")


@page_route(f"{P}/merge-requests/new", summary="The form to open a merge request", **_WRITE, params=NewMrParams)
async def new_mr(request: web.Request) -> web.StreamResponse:
    project = await project_of(request)
    q = params_of(request, NewMrParams)
    names = [b.name for b in (await kit(request).browser.branches(project, limit=200)).items]
    return await project_page(request, "mr_new.html", title="New merge request", tab="mrs",
                              crumbs=project_crumbs(project, Crumb("Merge requests",
                                                                   f"/ui/{project.full_name}/merge-requests"),
                                                    Crumb("New")), branch_names=names,
                              source=q.source, target=q.target or project.default_branch)


@form(f"{P}/merge-requests", summary="Open a merge request", **_WRITE)
async def create_mr(request: web.Request) -> web.StreamResponse:
    project = await project_of(request)
    data = await form_data(request)
    mr = await kit(request).merge_requests.create(actor_of(request), project, NewMergeRequest(
        source_branch=data.get("source_branch", ""), target_branch=data.get("target_branch") or None,
        title=data.get("title", ""), body=data.get("body") or None))
    return redirect(f"/ui/{project.full_name}/merge-requests/{mr.number}")


async def _mr_page(request: web.Request, *, status: int = 200, merge_error: Conflict | None = None) -> web.Response:
    project = await project_of(request)
    k = kit(request)
    mr = await k.merge_requests.get(project, _number(request))
    comments = (await k.merge_requests.comments(project, mr.number, limit=200)).items
    reviews = await k.merge_requests.reviews(project, mr.number)
    try:
        diff = await k.merge_requests.diff(project, mr.number)
        diff_error = None
    except (NotFound, Conflict, InvalidInput) as exc:
        diff, diff_error = None, exc.message
    users = await _users(request, [mr.author_id, mr.merged_by, *(c.author_id for c in comments),
                                   *(r.reviewer_id for r in reviews)])
    conflict_paths = merge_error.detail.get("paths") if merge_error is not None else None
    choices = await _choices(request, project)
    people = await _users(request, [*mr.assignee_ids, *mr.reviewer_ids])
    users.update(people)
    return await project_page(
        request, "mr.html", title=f"!{mr.number} {mr.title}", tab="mrs", status=status,
        crumbs=project_crumbs(project, Crumb("Merge requests", f"/ui/{project.full_name}/merge-requests"),
                              Crumb(f"!{mr.number}")),
        mr=mr, comments=comments, reviews=reviews, users=users, approvals=approvals(reviews),
        diff=diff, diff_files=parse_patch(diff.patch) if diff else [], diff_error=diff_error,
        merge_error=merge_error.message if merge_error is not None else None,
        conflict_paths=conflict_paths if isinstance(conflict_paths, list) else None,
        view=diff_view(request), pipeline=await _pipeline_of(request, project, mr),
        milestone=next((m for m in choices["milestones"] if m.id == mr.milestone_id), None),
        assignee_names=", ".join(people[i].name for i in mr.assignee_ids if i in people),
        reviewer_names=", ".join(people[i].name for i in mr.reviewer_ids if i in people), **choices)


async def _pipeline_of(request: web.Request, project: Project, mr: MergeRequest) -> Pipeline | None:
    """The newest pipeline of the source branch's head (of the merge commit once merged), if pipelines run here."""
    service = request.app[PLATFORM].resolve_optional(PipelineService)
    if service is None:
        return None
    rev = mr.merge_commit_sha if mr.status is MrStatus.MERGED and mr.merge_commit_sha else mr.source_branch
    try:
        _sha, found = await service.commit_status(project, rev)
    except NotFound:
        return None
    return found[0][0] if found else None


@page_route(f"{P}/merge-requests/{{number}}", summary="One merge request: commits, files, reviews",
            **_READ, params=DiffParams)
async def merge_request(request: web.Request) -> web.StreamResponse:
    return remember_view(request, await _mr_page(request))


def _names(value: str) -> list[str]:
    return [x.strip() for x in value.replace(" ", ",").split(",") if x.strip()]


@form(f"{P}/merge-requests/{{number}}/edit", summary="Change a merge request's title and description", **_WRITE)
async def edit_mr(request: web.Request) -> web.StreamResponse:
    project = await project_of(request)
    data = await form_data(request)
    number = _number(request)
    await kit(request).merge_requests.update(actor_of(request), project, number, MergeRequestChanges(
        title=_text(data, "title"), body=data.get("body") or None))
    return redirect(f"/ui/{project.full_name}/merge-requests/{number}")


@form(f"{P}/merge-requests/{{number}}/meta",
      summary="Set a merge request's labels, assignees, reviewers and milestone", **_WRITE)
async def mr_meta(request: web.Request) -> web.StreamResponse:
    project = await project_of(request)
    data = await form_data(request)
    number = _number(request)
    await kit(request).merge_requests.update(actor_of(request), project, number, MergeRequestChanges(
        labels=_chosen_labels(data), assignees=_names(data.get("assignees", "")),
        reviewers=_names(data.get("reviewers", "")), milestone=data.get("milestone") or None))
    return redirect(f"/ui/{project.full_name}/merge-requests/{number}")


@form(f"{P}/merge-requests/{{number}}/status", summary="Close or reopen a merge request", **_WRITE)
async def mr_status(request: web.Request) -> web.StreamResponse:
    project = await project_of(request)
    data = await form_data(request)
    status = _open_or_closed(data.get("status"))
    number = _number(request)
    await kit(request).merge_requests.update(actor_of(request), project, number, MergeRequestChanges(status=status))
    return redirect(f"/ui/{project.full_name}/merge-requests/{number}")


@form(f"{P}/merge-requests/{{number}}/comments", summary="Comment on a merge request", **_WRITE)
async def comment_mr(request: web.Request) -> web.StreamResponse:
    project = await project_of(request)
    data = await form_data(request)
    number = _number(request)
    await kit(request).merge_requests.comment(actor_of(request), project, number,
                                              NewComment(body=data.get("body", "")))
    return redirect(f"/ui/{project.full_name}/merge-requests/{number}#comments")


@form(f"{P}/merge-requests/{{number}}/reviews", summary="Review a merge request", **_WRITE)
async def review_mr(request: web.Request) -> web.StreamResponse:
    project = await project_of(request)
    data = await form_data(request)
    verdict = _VERDICTS.get(data.get("verdict", ""))
    if verdict is None:
        raise InvalidInput(f"verdict must be one of {', '.join(_VERDICTS)}", field="verdict")
    number = _number(request)
    await kit(request).merge_requests.review(actor_of(request), project, number,
                                             NewReview(verdict=verdict, body=data.get("body") or None))
    return redirect(f"/ui/{project.full_name}/merge-requests/{number}#reviews")


@form(f"{P}/merge-requests/{{number}}/merge", summary="Merge a merge request", **_WRITE)
async def merge_mr(request: web.Request) -> web.StreamResponse:
    project = await project_of(request)
    data = await form_data(request)
    strategy = _STRATEGIES.get(data.get("strategy", "merge"))
    if strategy is None:
        raise InvalidInput(f"strategy must be one of {', '.join(_STRATEGIES)}", field="strategy")
    number = _number(request)
    try:
        await kit(request).merge_requests.merge(actor_of(request), project, number, MergeOptions(strategy=strategy))
    except Conflict as exc:
        return await _mr_page(request, status=409, merge_error=exc)
    return redirect(f"/ui/{project.full_name}/merge-requests/{number}")
