"""Issues, merge requests, their comments, reviews and merges."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any, Literal

import attrs
from aiohttp import web

from corral.core.errors import InvalidInput, NotFound
from corral.core.pagination import Page
from corral.core.pipelines.service import PipelineService
from corral.core.projects.commands import (
    IssueChanges,
    MergeOptions,
    MergeRequestChanges,
    NewComment,
    NewIssue,
    NewMergeRequest,
    NewMergeRequestComment,
    NewReview,
)
from corral.core.projects.model import Comment, Issue, MergeRequest, Milestone, MrStatus, Review
from corral.core.projects.payloads import (
    comment_json,
    commit_json,
    issue_json,
    mr_comment_json,
    mr_json,
    review_json,
)
from corral.core.projects.ports import UserRef
from corral.entrypoints.web.jsonio import json_response
from corral.entrypoints.web.keys import PLATFORM
from corral.entrypoints.web.operation import PageParams, body_of, params_of, path_number, query_param
from corral.entrypoints.web.project_access import PROJECT_PATH as BASE
from corral.entrypoints.web.project_access import PROJECT_READ as _READ
from corral.entrypoints.web.project_access import PROJECT_WRITE as _WRITE
from corral.entrypoints.web.project_access import actor_of, can, kit, project_of
from corral.entrypoints.web.routes.repo import comparison_json
from corral.entrypoints.web.routing import RouteTable
from corral.entrypoints.web.schemas.projects import (
    CommentOut,
    CommitOut,
    ComparisonOut,
    FileChangeOut,
    IssueOut,
    MergeRequestCommentOut,
    MergeRequestOut,
    ReviewOut,
)

__all__ = ["routes"]

routes = RouteTable(tag="issues")



@attrs.frozen
class IssueQuery(PageParams):
    """Filters of the issue list."""

    status: Literal["open", "closed", "all"] | None = query_param(doc="open, closed or all (default: all)")
    state: Literal["open", "closed", "all"] | None = query_param(doc="Gitea's spelling of status")
    label: str | None = query_param(doc="has this label")
    labels: str | None = query_param(doc="has every one of these labels (comma-separated names)")
    milestone: str | None = query_param(doc="in this milestone (id or title)")
    assignee: str | None = query_param(doc="assigned to this user (name)")
    author: str | None = query_param(doc="opened by this user (name)")
    page: int | None = query_param(doc="page number from 1 (Gitea's paging, instead of cursor)", minimum=1,
                                   maximum=100_000)


@attrs.frozen
class MergeRequestQuery(PageParams):
    """Filters of the merge request list."""

    status: Literal["open", "merged", "closed", "all"] | None = query_param(
        doc="open, merged, closed or all (default: all)")
    state: Literal["open", "closed", "all"] | None = query_param(
        doc="Gitea's spelling: open, closed (merged or closed, as Gitea) or all")
    labels: str | None = query_param(doc="has every one of these labels (comma-separated names)")
    milestone: str | None = query_param(doc="in this milestone (id or title)")
    assignee: str | None = query_param(doc="one of its assignees (name)")
    author: str | None = query_param(doc="opened by this user (name)")
    page: int | None = query_param(doc="page number from 1 (Gitea's paging, instead of cursor)", minimum=1,
                                   maximum=100_000)


def _status(status: str | None, state: str | None) -> str | None:
    """``status=`` or Gitea's ``state=`` (both given: they must agree)."""
    if status is not None and state is not None and status != state:
        raise InvalidInput("status and state disagree; give one", field="state")
    return status if status is not None else state


async def _milestones(request: web.Request, ids: Iterable[uuid.UUID | None]) -> dict[uuid.UUID, Milestone]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    found = await kit(request).labels.milestones(await project_of(request))
    return {m.id: m for m, _ in found if m.id in wanted}


async def _users(request: web.Request, ids: Iterable[uuid.UUID | None]) -> dict[uuid.UUID, UserRef]:
    return await kit(request).users.by_ids({i for i in ids if i is not None})


async def _issue_out(request: web.Request, issues: list[Issue]) -> list[dict[str, Any]]:
    users = await _users(request, [x for i in issues for x in (i.author_id, i.assignee_id)])
    milestones = await _milestones(request, [i.milestone_id for i in issues])
    return [issue_json(i, users, milestones) for i in issues]


async def _mr_out(request: web.Request, mrs: list[MergeRequest], *, mergeability: bool = False,
                  ) -> list[dict[str, Any]]:
    """Merge requests as answered; ``mergeable`` and ``conflicting_paths`` are computed for one merge request
    (GET), listings answer null and []."""
    users = await _users(request, [x for m in mrs for x in (m.author_id, m.merged_by, *m.assignee_ids,
                                                            *m.reviewer_ids)])
    milestones = await _milestones(request, [m.milestone_id for m in mrs])
    out = []
    for m in mrs:
        mergeable, paths = (await kit(request).merge_requests.mergeability(await project_of(request), m)
                            if mergeability else (None, []))
        out.append({**mr_json(m, users, milestones), "mergeable": mergeable, "conflicting_paths": paths,
                    "pipeline_status": await _pipeline_status(request, m) if mergeability else None})
    return out


async def _pipeline_status(request: web.Request, mr: MergeRequest) -> str | None:
    """The combined pipeline status of the source branch's head (None without pipelines or that branch)."""
    pipelines: PipelineService | None = request.app[PLATFORM].resolve_optional(PipelineService)
    if pipelines is None:
        return None
    try:
        _, runs = await pipelines.commit_status(await project_of(request), f"refs/heads/{mr.source_branch}")
    except NotFound:
        return None
    return runs[0][0].status.value if runs else "none"


async def _comments_out(request: web.Request, comments: list[Comment]) -> list[dict[str, Any]]:
    users = await _users(request, [c.author_id for c in comments])
    return [comment_json(c, users) for c in comments]


async def _mr_comments_out(request: web.Request, comments: list[Comment], outdated: set[uuid.UUID],
                           ) -> list[dict[str, Any]]:
    users = await _users(request, [c.author_id for c in comments])
    return [mr_comment_json(c, users, outdated=c.id in outdated) for c in comments]


async def _reviews_out(request: web.Request, reviews: list[Review]) -> list[dict[str, Any]]:
    users = await _users(request, [r.reviewer_id for r in reviews])
    return [review_json(r, users) for r in reviews]


# ---- issues -----------------------------------------------------------------------------------------------
@routes.post(f"{BASE}/issues", summary="Open an issue", **_WRITE, params=None, body=NewIssue, response=IssueOut,
             status=201)
async def create_issue(request: web.Request) -> web.StreamResponse:
    issue = await kit(request).issues.create(actor_of(request), await project_of(request), body_of(request, NewIssue))
    return json_response((await _issue_out(request, [issue]))[0], status=201)


@routes.get(f"{BASE}/issues", summary="Issues, newest first", **_READ, params=IssueQuery, response=Page[IssueOut])
async def list_issues(request: web.Request) -> web.StreamResponse:
    q = params_of(request, IssueQuery)
    page = await kit(request).issues.list(await project_of(request), status=_status(q.status, q.state), label=q.label,
                                          assignee=q.assignee, limit=q.limit, cursor=q.cursor, labels=q.labels,
                                          milestone=q.milestone, page=q.page, author=q.author)
    return json_response({"items": await _issue_out(request, page.items), "next_cursor": page.next_cursor})


@routes.get(f"{BASE}/issues/{{number}}", summary="One issue", **_READ, params=None, response=IssueOut)
async def get_issue(request: web.Request) -> web.StreamResponse:
    issue = await kit(request).issues.get(await project_of(request), path_number(request))
    return json_response((await _issue_out(request, [issue]))[0])


@routes.patch(f"{BASE}/issues/{{number}}", summary="Edit an issue; status open/closed reopens or closes it",
              **_WRITE, params=None, body=IssueChanges, response=IssueOut)
async def update_issue(request: web.Request) -> web.StreamResponse:
    issue = await kit(request).issues.update(actor_of(request), await project_of(request), path_number(request),
                                             body_of(request, IssueChanges))
    return json_response((await _issue_out(request, [issue]))[0])


@routes.post(f"{BASE}/issues/{{number}}/close", summary="Close an issue", **_WRITE, params=None, response=IssueOut)
async def close_issue(request: web.Request) -> web.StreamResponse:
    issue = await kit(request).issues.update(actor_of(request), await project_of(request), path_number(request),
                                             IssueChanges(status="closed"))
    return json_response((await _issue_out(request, [issue]))[0])


@routes.post(f"{BASE}/issues/{{number}}/reopen", summary="Reopen an issue", **_WRITE, params=None,
             response=IssueOut)
async def reopen_issue(request: web.Request) -> web.StreamResponse:
    issue = await kit(request).issues.update(actor_of(request), await project_of(request), path_number(request),
                                             IssueChanges(status="open"))
    return json_response((await _issue_out(request, [issue]))[0])


@routes.get(f"{BASE}/issues/{{number}}/comments", summary="Comments of an issue, oldest first", **_READ,
            params=PageParams, response=Page[CommentOut])
async def list_issue_comments(request: web.Request) -> web.StreamResponse:
    q = params_of(request, PageParams)
    page = await kit(request).issues.comments(await project_of(request), path_number(request), limit=q.limit,
                                              cursor=q.cursor)
    return json_response({"items": await _comments_out(request, page.items), "next_cursor": page.next_cursor})


@routes.post(f"{BASE}/issues/{{number}}/comments", summary="Comment on an issue", **_WRITE, params=None,
             body=NewComment, response=CommentOut, status=201)
async def comment_issue(request: web.Request) -> web.StreamResponse:
    comment = await kit(request).issues.comment(actor_of(request), await project_of(request), path_number(request),
                                                body_of(request, NewComment))
    return json_response((await _comments_out(request, [comment]))[0], status=201)


# ---- merge requests ---------------------------------------------------------------------------------------
@routes.post(f"{BASE}/merge-requests", summary="Open a merge request from a branch", **_WRITE, params=None,
             body=NewMergeRequest, response=MergeRequestOut, status=201)
async def create_mr(request: web.Request) -> web.StreamResponse:
    mr = await kit(request).merge_requests.create(actor_of(request), await project_of(request),
                                                  body_of(request, NewMergeRequest))
    return json_response((await _mr_out(request, [mr]))[0], status=201)


@routes.get(f"{BASE}/merge-requests", summary="Merge requests, newest first", **_READ, params=MergeRequestQuery,
            response=Page[MergeRequestOut])
async def list_mrs(request: web.Request) -> web.StreamResponse:
    q = params_of(request, MergeRequestQuery)
    status = _status(q.status, q.state)
    if q.state == "closed" and q.status is None:
        status = None  # filtered below
    page = await kit(request).merge_requests.list(await project_of(request), status=status, limit=q.limit,
                                                  cursor=q.cursor, labels=q.labels, milestone=q.milestone,
                                                  assignee=q.assignee, page=q.page, author=q.author)
    if q.state == "closed" and q.status is None:  # Gitea's closed pull requests include the merged ones
        items = [m for m in page.items if m.status is not MrStatus.OPEN]
        page = Page(items, page.next_cursor)
    return json_response({"items": await _mr_out(request, page.items), "next_cursor": page.next_cursor})


@routes.get(f"{BASE}/merge-requests/{{number}}",
            summary="One merge request, with mergeable and conflicting_paths (the repository is not touched)",
            **_READ, params=None,
            response=MergeRequestOut)
async def get_mr(request: web.Request) -> web.StreamResponse:
    mr = await kit(request).merge_requests.get(await project_of(request), path_number(request))
    return json_response((await _mr_out(request, [mr], mergeability=True))[0])


@routes.patch(f"{BASE}/merge-requests/{{number}}", summary="Edit, close (status closed) or reopen a merge request",
              **_WRITE, params=None, body=MergeRequestChanges, response=MergeRequestOut)
async def update_mr(request: web.Request) -> web.StreamResponse:
    mr = await kit(request).merge_requests.update(actor_of(request), await project_of(request), path_number(request),
                                                  body_of(request, MergeRequestChanges))
    return json_response((await _mr_out(request, [mr]))[0])


@routes.get(f"{BASE}/merge-requests/{{number}}/diff", summary="What merging would change", **_READ, params=None,
            response=ComparisonOut)
async def mr_diff(request: web.Request) -> web.StreamResponse:
    diff = await kit(request).merge_requests.diff(await project_of(request), path_number(request))
    return json_response(comparison_json(diff))


@routes.get(f"{BASE}/merge-requests/{{number}}/commits", summary="The commits a merge request brings, oldest first",
            **_READ, params=None, response=Page[CommitOut])
async def mr_commits(request: web.Request) -> web.StreamResponse:
    found = await kit(request).merge_requests.commits(await project_of(request), path_number(request))
    return json_response({"items": [commit_json(c) for c in found], "next_cursor": None})


@routes.get(f"{BASE}/merge-requests/{{number}}/files",
            summary="The files a merge request changes, with additions and deletions per file", **_READ, params=None,
            response=Page[FileChangeOut])
async def mr_files(request: web.Request) -> web.StreamResponse:
    diff = await kit(request).merge_requests.diff(await project_of(request), path_number(request))
    return json_response({"items": comparison_json(diff)["files"], "next_cursor": None})


@routes.get(f"{BASE}/merge-requests/{{number}}/comments",
            summary="Comments of a merge request, oldest first; line comments say whether a later head changed their "
                    "line (outdated)", **_READ, params=PageParams, response=Page[MergeRequestCommentOut])
async def list_mr_comments(request: web.Request) -> web.StreamResponse:
    q = params_of(request, PageParams)
    project, number = await project_of(request), path_number(request)
    mrs = kit(request).merge_requests
    page = await mrs.comments(project, number, limit=q.limit, cursor=q.cursor)
    outdated = await mrs.outdated(project, number, page.items)
    return json_response({"items": await _mr_comments_out(request, page.items, outdated),
                          "next_cursor": page.next_cursor})


@routes.post(f"{BASE}/merge-requests/{{number}}/comments",
             summary="Comment on a merge request; path, line, side and commit_sha make it a line comment on the diff",
             **_WRITE, params=None, body=NewMergeRequestComment, response=MergeRequestCommentOut, status=201)
async def comment_mr(request: web.Request) -> web.StreamResponse:
    comment = await kit(request).merge_requests.comment(actor_of(request), await project_of(request),
                                                        path_number(request), body_of(request, NewMergeRequestComment))
    return json_response((await _mr_comments_out(request, [comment], set()))[0], status=201)


@routes.get(f"{BASE}/merge-requests/{{number}}/reviews", summary="Reviews of a merge request", **_READ,
            params=None, response=Page[ReviewOut])
async def list_reviews(request: web.Request) -> web.StreamResponse:
    reviews = await kit(request).merge_requests.reviews(await project_of(request), path_number(request))
    return json_response({"items": await _reviews_out(request, reviews), "next_cursor": None})


@routes.post(f"{BASE}/merge-requests/{{number}}/reviews", summary="Review: approve, request_changes or comment",
             **_WRITE, params=None, body=NewReview, response=ReviewOut, status=201)
async def review_mr(request: web.Request) -> web.StreamResponse:
    review = await kit(request).merge_requests.review(actor_of(request), await project_of(request),
                                                      path_number(request), body_of(request, NewReview))
    return json_response((await _reviews_out(request, [review]))[0], status=201)


@routes.post(f"{BASE}/merge-requests/{{number}}/merge",
             summary="Merge (strategy merge, squash, fast-forward or rebase); 409 names conflicting paths or a draft; "
                     "Closes/Fixes/Resolves #N close those issues", **_WRITE,
             params=None, body=MergeOptions, response=MergeRequestOut)
async def merge_mr(request: web.Request) -> web.StreamResponse:
    project = await project_of(request)
    options = body_of(request, MergeOptions)
    is_admin = options.delete_source_branch and await can(request, "project:admin", project)
    mr = await kit(request).merge_requests.merge(actor_of(request), project, path_number(request), options,
                                                 is_admin=is_admin)
    return json_response((await _mr_out(request, [mr]))[0])
