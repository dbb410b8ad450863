"""Issues, merge requests, their comments, reviews and merges."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from aiohttp import web

from corral.core.errors import InvalidInput
from corral.core.projects.model import Comment, Issue, MergeRequest, Review
from corral.core.projects.payloads import comment_json, issue_json, mr_json, review_json
from corral.core.projects.ports import UserRef
from corral.entrypoints.web.jsonio import json_response, read_json
from corral.entrypoints.web.project_access import actor_of, kit, project_of
from corral.entrypoints.web.routes.repo import comparison_json
from corral.entrypoints.web.routing import RouteTable

__all__ = ["routes"]

routes = RouteTable(tag="issues")

BASE = "/api/v1/projects/{owner}/{name}"
_READ: dict[str, Any] = {"permission": "project:read", "project": "path", "anonymous": True}
_WRITE: dict[str, Any] = {"permission": "project:write", "project": "path"}
_PAGE = (("limit", "integer", "page size"), ("cursor", "string", "from next_cursor"))
_ISSUE_BODY = {
    "type": "object", "required": ["title"],
    "properties": {"title": {"type": "string"}, "body": {"type": ["string", "null"]},
                   "labels": {"type": "array", "items": {"type": "string"}}, "assignee": {"type": ["string", "null"]},
                   "status": {"enum": ["open", "closed"]}},
}
_MR_BODY = {
    "type": "object", "required": ["source_branch", "title"],
    "properties": {"source_branch": {"type": "string"}, "target_branch": {"type": "string"},
                   "title": {"type": "string"}, "body": {"type": ["string", "null"]}},
}
_COMMENT_BODY = {"type": "object", "required": ["body"], "properties": {"body": {"type": "string"}}}
_REVIEW_BODY = {"type": "object", "required": ["verdict"],
                "properties": {"verdict": {"enum": ["approve", "request_changes", "comment"]},
                               "body": {"type": ["string", "null"]}}}
_MERGE_BODY = {"type": "object", "properties": {"strategy": {"enum": ["merge", "squash", "fast-forward"]}}}


def _number(request: web.Request) -> int:
    try:
        value = int(request.match_info["number"])
    except ValueError:
        raise InvalidInput("number must be an integer", field="number") from None
    if value < 1:
        raise InvalidInput("number must be positive", field="number")
    return value


def _limit(request: web.Request) -> int | None:
    raw = request.query.get("limit")
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        raise InvalidInput("limit must be an integer", field="limit") from None


def _fields(body: dict[str, Any], allowed: Iterable[str]) -> None:
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise InvalidInput(f"unknown field {unknown[0]}", field=unknown[0])


async def _users(request: web.Request, ids: Iterable[uuid.UUID | None]) -> dict[uuid.UUID, UserRef]:
    return await kit(request).users.by_ids({i for i in ids if i is not None})


async def _issue_out(request: web.Request, issues: list[Issue]) -> list[dict[str, Any]]:
    users = await _users(request, [x for i in issues for x in (i.author_id, i.assignee_id)])
    return [issue_json(i, users) for i in issues]


async def _mr_out(request: web.Request, mrs: list[MergeRequest]) -> list[dict[str, Any]]:
    users = await _users(request, [x for m in mrs for x in (m.author_id, m.merged_by)])
    return [mr_json(m, users) for m in mrs]


async def _comments_out(request: web.Request, comments: list[Comment]) -> list[dict[str, Any]]:
    users = await _users(request, [c.author_id for c in comments])
    return [comment_json(c, users) for c in comments]


async def _reviews_out(request: web.Request, reviews: list[Review]) -> list[dict[str, Any]]:
    users = await _users(request, [r.reviewer_id for r in reviews])
    return [review_json(r, users) for r in reviews]


# ---- issues -----------------------------------------------------------------------------------------------
@routes.post(f"{BASE}/issues", summary="Open an issue", **_WRITE, request_body=_ISSUE_BODY, status=201)
async def create_issue(request: web.Request) -> web.StreamResponse:
    body = await read_json(request)
    _fields(body, ("title", "body", "labels", "assignee"))
    issue = await kit(request).issues.create(actor_of(request), await project_of(request), title=body.get("title"),
                                             body=body.get("body"), labels=body.get("labels"),
                                             assignee=body.get("assignee"))
    return json_response((await _issue_out(request, [issue]))[0], status=201)


@routes.get(f"{BASE}/issues", summary="Issues, newest first", **_READ,
            query=(("status", "string", "open (default: all), closed or all"), ("label", "string", "has label"),
                   ("assignee", "string", "assigned to user"), *_PAGE))
async def list_issues(request: web.Request) -> web.StreamResponse:
    q = request.query
    page = await kit(request).issues.list(await project_of(request), status=q.get("status"), label=q.get("label"),
                                          assignee=q.get("assignee"), limit=_limit(request), cursor=q.get("cursor"))
    return json_response({"items": await _issue_out(request, page.items), "next_cursor": page.next_cursor})


@routes.get(f"{BASE}/issues/{{number}}", summary="One issue", **_READ)
async def get_issue(request: web.Request) -> web.StreamResponse:
    issue = await kit(request).issues.get(await project_of(request), _number(request))
    return json_response((await _issue_out(request, [issue]))[0])


@routes.patch(f"{BASE}/issues/{{number}}", summary="Edit an issue; status open/closed reopens or closes it",
              **_WRITE, request_body=_ISSUE_BODY)
async def update_issue(request: web.Request) -> web.StreamResponse:
    issue = await kit(request).issues.update(actor_of(request), await project_of(request), _number(request),
                                             await read_json(request))
    return json_response((await _issue_out(request, [issue]))[0])


@routes.post(f"{BASE}/issues/{{number}}/close", summary="Close an issue", **_WRITE)
async def close_issue(request: web.Request) -> web.StreamResponse:
    issue = await kit(request).issues.update(actor_of(request), await project_of(request), _number(request),
                                             {"status": "closed"})
    return json_response((await _issue_out(request, [issue]))[0])


@routes.post(f"{BASE}/issues/{{number}}/reopen", summary="Reopen an issue", **_WRITE)
async def reopen_issue(request: web.Request) -> web.StreamResponse:
    issue = await kit(request).issues.update(actor_of(request), await project_of(request), _number(request),
                                             {"status": "open"})
    return json_response((await _issue_out(request, [issue]))[0])


@routes.get(f"{BASE}/issues/{{number}}/comments", summary="Comments of an issue, oldest first", **_READ,
            query=_PAGE)
async def list_issue_comments(request: web.Request) -> web.StreamResponse:
    page = await kit(request).issues.comments(await project_of(request), _number(request), limit=_limit(request),
                                              cursor=request.query.get("cursor"))
    return json_response({"items": await _comments_out(request, page.items), "next_cursor": page.next_cursor})


@routes.post(f"{BASE}/issues/{{number}}/comments", summary="Comment on an issue", **_WRITE,
             request_body=_COMMENT_BODY, status=201)
async def comment_issue(request: web.Request) -> web.StreamResponse:
    body = await read_json(request)
    _fields(body, ("body",))
    comment = await kit(request).issues.comment(actor_of(request), await project_of(request), _number(request),
                                                body.get("body"))
    return json_response((await _comments_out(request, [comment]))[0], status=201)


# ---- merge requests ---------------------------------------------------------------------------------------
@routes.post(f"{BASE}/merge-requests", summary="Open a merge request from a branch", **_WRITE,
             request_body=_MR_BODY, status=201)
async def create_mr(request: web.Request) -> web.StreamResponse:
    body = await read_json(request)
    _fields(body, ("source_branch", "target_branch", "title", "body"))
    mr = await kit(request).merge_requests.create(
        actor_of(request), await project_of(request), source_branch=body.get("source_branch"),
        target_branch=body.get("target_branch"), title=body.get("title"), body=body.get("body"),
    )
    return json_response((await _mr_out(request, [mr]))[0], status=201)


@routes.get(f"{BASE}/merge-requests", summary="Merge requests, newest first", **_READ,
            query=(("status", "string", "open, merged, closed or all (default)"), *_PAGE))
async def list_mrs(request: web.Request) -> web.StreamResponse:
    page = await kit(request).merge_requests.list(await project_of(request), status=request.query.get("status"),
                                                  limit=_limit(request), cursor=request.query.get("cursor"))
    return json_response({"items": await _mr_out(request, page.items), "next_cursor": page.next_cursor})


@routes.get(f"{BASE}/merge-requests/{{number}}", summary="One merge request", **_READ)
async def get_mr(request: web.Request) -> web.StreamResponse:
    mr = await kit(request).merge_requests.get(await project_of(request), _number(request))
    return json_response((await _mr_out(request, [mr]))[0])


@routes.patch(f"{BASE}/merge-requests/{{number}}", summary="Edit, close (status closed) or reopen a merge request",
              **_WRITE)
async def update_mr(request: web.Request) -> web.StreamResponse:
    mr = await kit(request).merge_requests.update(actor_of(request), await project_of(request), _number(request),
                                                  await read_json(request))
    return json_response((await _mr_out(request, [mr]))[0])


@routes.get(f"{BASE}/merge-requests/{{number}}/diff", summary="What merging would change", **_READ)
async def mr_diff(request: web.Request) -> web.StreamResponse:
    diff = await kit(request).merge_requests.diff(await project_of(request), _number(request))
    return json_response(comparison_json(diff))


@routes.get(f"{BASE}/merge-requests/{{number}}/comments", summary="Comments of a merge request", **_READ,
            query=_PAGE)
async def list_mr_comments(request: web.Request) -> web.StreamResponse:
    page = await kit(request).merge_requests.comments(await project_of(request), _number(request),
                                                      limit=_limit(request), cursor=request.query.get("cursor"))
    return json_response({"items": await _comments_out(request, page.items), "next_cursor": page.next_cursor})


@routes.post(f"{BASE}/merge-requests/{{number}}/comments", summary="Comment on a merge request", **_WRITE,
             request_body=_COMMENT_BODY, status=201)
async def comment_mr(request: web.Request) -> web.StreamResponse:
    body = await read_json(request)
    _fields(body, ("body",))
    comment = await kit(request).merge_requests.comment(actor_of(request), await project_of(request),
                                                        _number(request), body.get("body"))
    return json_response((await _comments_out(request, [comment]))[0], status=201)


@routes.get(f"{BASE}/merge-requests/{{number}}/reviews", summary="Reviews of a merge request", **_READ)
async def list_reviews(request: web.Request) -> web.StreamResponse:
    reviews = await kit(request).merge_requests.reviews(await project_of(request), _number(request))
    return json_response({"items": await _reviews_out(request, reviews), "next_cursor": None})


@routes.post(f"{BASE}/merge-requests/{{number}}/reviews", summary="Review: approve, request_changes or comment",
             **_WRITE, request_body=_REVIEW_BODY, status=201)
async def review_mr(request: web.Request) -> web.StreamResponse:
    body = await read_json(request)
    _fields(body, ("verdict", "body"))
    review = await kit(request).merge_requests.review(actor_of(request), await project_of(request),
                                                      _number(request), verdict=body.get("verdict"),
                                                      body=body.get("body"))
    return json_response((await _reviews_out(request, [review]))[0], status=201)


@routes.post(f"{BASE}/merge-requests/{{number}}/merge",
             summary="Merge (strategy merge, squash or fast-forward); 409 names conflicting paths", **_WRITE,
             request_body=_MERGE_BODY)
async def merge_mr(request: web.Request) -> web.StreamResponse:
    body = await read_json(request) if request.can_read_body else {}
    _fields(body, ("strategy",))
    mr = await kit(request).merge_requests.merge(actor_of(request), await project_of(request), _number(request),
                                                 strategy=body.get("strategy", "merge"))
    return json_response((await _mr_out(request, [mr]))[0])
