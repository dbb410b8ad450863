"""Projects API: create/list/get/update/delete, branch protections and webhooks (with their delivery log)."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from aiohttp import web

from corral.core.errors import CorralError, InvalidInput
from corral.core.projects.model import BranchProtection, Project
from corral.core.projects.payloads import delivery_json, project_json, webhook_json
from corral.entrypoints.web.jsonio import json_response, page_response, read_json
from corral.entrypoints.web.project_access import actor_of, can, kit, project_of
from corral.entrypoints.web.routing import RouteTable

__all__ = ["routes"]

routes = RouteTable(tag="projects")
log = logging.getLogger("corral.projects")

BASE = "/api/v1/projects/{owner}/{name}"
_PROJECT = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "format": "uuid"}, "owner": {"type": "string"}, "name": {"type": "string"},
        "full_name": {"type": "string"}, "description": {"type": ["string", "null"]},
        "visibility": {"enum": ["private", "internal", "public"]}, "default_branch": {"type": "string"},
        "archived": {"type": "boolean"}, "clone_url": {"type": "string"},
    },
}
_CREATE = {
    "type": "object", "required": ["name"],
    "properties": {
        "name": {"type": "string"}, "visibility": {"enum": ["private", "internal", "public"], "default": "private"},
        "default_branch": {"type": "string", "default": "main"}, "description": {"type": ["string", "null"]},
        "display_name": {"type": ["string", "null"]},
    },
}
_PATCH = {
    "type": "object",
    "properties": {
        "name": {"type": "string"}, "visibility": {"enum": ["private", "internal", "public"]},
        "default_branch": {"type": "string"}, "description": {"type": ["string", "null"]},
        "display_name": {"type": ["string", "null"]}, "archived": {"type": "boolean"},
    },
}
_RULE = {
    "type": "object",
    "properties": {
        "id": {"type": "string"}, "pattern": {"type": "string"}, "allow_force_push": {"type": "boolean"},
        "allow_deletion": {"type": "boolean"}, "require_merge_request": {"type": "boolean"},
        "required_approvals": {"type": "integer"},
        "bypass_admins": {"type": "boolean", "description": "holders of project:admin may push directly to a "
                          "merge-request-only branch (audited as branch_protection.bypass)"},
        "push_allowlist": {"type": "array", "items": {"type": "string"},
                           "description": "user names who may push directly to a merge-request-only branch"},
    },
}
_HOOK_BODY = {
    "type": "object", "required": ["url"],
    "properties": {
        "url": {"type": "string"}, "events": {"type": "array", "items": {
            "enum": ["push", "issue", "merge_request", "review", "pipeline", "deployment"]}},
        "secret": {"type": ["string", "null"], "writeOnly": True}, "active": {"type": "boolean"},
    },
}


def _list_of(item: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": {"items": {"type": "array", "items": item},
                                             "next_cursor": {"type": ["string", "null"]}}}


def _render(request: web.Request, project: Project) -> dict[str, Any]:
    return project_json(project, kit(request).base_url)


def _limit(request: web.Request) -> int | None:
    raw = request.query.get("limit")
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        raise InvalidInput("limit must be an integer", field="limit") from None


def _uuid(value: str, field: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidInput(f"{field} must be a UUID", field=field) from None


@routes.post("/api/v1/projects", summary="Create a project (owned by the caller) with an empty repository",
             permission="project:create", request_body=_CREATE, response=_PROJECT, status=201)
async def create_project(request: web.Request) -> web.StreamResponse:
    body = await read_json(request)
    unknown = sorted(set(body) - {"name", "visibility", "default_branch", "description", "display_name"})
    if unknown:
        raise InvalidInput(f"unknown field {unknown[0]}", field=unknown[0])
    project = await kit(request).projects.create(
        actor_of(request), name=body.get("name"), visibility=body.get("visibility", "private"),
        default_branch=body.get("default_branch", "main"), description=body.get("description"),
        display_name=body.get("display_name"),
    )
    return json_response(_render(request, project), status=201)


@routes.get("/api/v1/projects", summary="Projects the caller may read (public ones for anonymous callers)",
            anonymous=True, response=_list_of(_PROJECT),
            query=(("limit", "integer", "page size (1-500)"), ("cursor", "string", "from next_cursor")))
async def list_projects(request: web.Request) -> web.StreamResponse:
    async def readable(project: Project) -> bool:
        return await can(request, "project:read", project)

    page = await kit(request).projects.list(readable, limit=_limit(request), cursor=request.query.get("cursor"))
    return page_response(page, lambda p: _render(request, p))


@routes.get(BASE, summary="One project", permission="project:read", project="path", anonymous=True,
            response=_PROJECT)
async def get_project(request: web.Request) -> web.StreamResponse:
    return json_response(_render(request, await project_of(request)))


@routes.patch(BASE, summary="Change a project's name, description, visibility, default branch or archive it",
              permission="project:admin", project="path", request_body=_PATCH, response=_PROJECT)
async def update_project(request: web.Request) -> web.StreamResponse:
    body = await read_json(request)
    project = await kit(request).projects.update(actor_of(request), await project_of(request), body)
    return json_response(_render(request, project))


@routes.delete(BASE, summary="Delete a project and its repository", permission="project:delete", project="path",
               status=204)
async def delete_project(request: web.Request) -> web.StreamResponse:
    project = await project_of(request)
    k = kit(request)
    await k.projects.delete(actor_of(request), project)
    try:  # the project's LFS objects (and uploads waiting for verify) go too (best effort: the project is gone)
        for prefix in (f"lfs/{project.id}/", f"lfs-staging/{project.id}/"):
            token: str | None = None
            while True:
                listing = await k.objects.list(prefix, token=token)
                for obj in listing.objects:
                    await k.objects.delete(obj.key)
                token = listing.next_token
                if not token:
                    break
    except CorralError:
        log.warning("could not remove the LFS objects of deleted project %s", project.id, exc_info=True)
    return web.Response(status=204)


# ---- branch protection ------------------------------------------------------------------------------------
async def _rules(request: web.Request, rules: list[BranchProtection]) -> list[dict[str, Any]]:
    names = await kit(request).users.by_ids({u for r in rules for u in r.push_allowlist})
    return [{"id": str(rule.id), "pattern": rule.pattern, "allow_force_push": rule.allow_force_push,
             "allow_deletion": rule.allow_deletion, "require_merge_request": rule.require_merge_request,
             "required_approvals": rule.required_approvals, "bypass_admins": rule.bypass_admins,
             "push_allowlist": [names[u].name for u in rule.push_allowlist if u in names],
             "created_at": rule.created_at.isoformat()} for rule in rules]


async def _rule(request: web.Request, rule: BranchProtection) -> dict[str, Any]:
    return (await _rules(request, [rule]))[0]


@routes.get(f"{BASE}/branch-protections", summary="Branch protection rules", permission="project:read",
            project="path", anonymous=True, response=_list_of(_RULE))
async def list_protections(request: web.Request) -> web.StreamResponse:
    rules = await kit(request).protections.list(await project_of(request))
    return json_response({"items": await _rules(request, rules), "next_cursor": None})


@routes.post(f"{BASE}/branch-protections", summary="Protect branches matching a name or glob",
             permission="project:admin", project="path", request_body=_RULE, response=_RULE, status=201)
async def create_protection(request: web.Request) -> web.StreamResponse:
    rule = await kit(request).protections.create(actor_of(request), await project_of(request),
                                                 await read_json(request))
    return json_response(await _rule(request, rule), status=201)


@routes.patch(f"{BASE}/branch-protections/{{rule_id}}", summary="Change a branch protection rule",
              permission="project:admin", project="path", request_body=_RULE, response=_RULE)
async def update_protection(request: web.Request) -> web.StreamResponse:
    rule = await kit(request).protections.update(actor_of(request), await project_of(request),
                                                 _uuid(request.match_info["rule_id"], "rule_id"),
                                                 await read_json(request))
    return json_response(await _rule(request, rule))


@routes.delete(f"{BASE}/branch-protections/{{rule_id}}", summary="Remove a branch protection rule",
               permission="project:admin", project="path", status=204)
async def delete_protection(request: web.Request) -> web.StreamResponse:
    await kit(request).protections.delete(actor_of(request), await project_of(request),
                                          _uuid(request.match_info["rule_id"], "rule_id"))
    return web.Response(status=204)


# ---- webhooks ---------------------------------------------------------------------------------------------
@routes.get(f"{BASE}/webhooks", summary="Webhooks of the project", permission="project:admin", project="path",
            response=_list_of(_HOOK_BODY))
async def list_webhooks(request: web.Request) -> web.StreamResponse:
    hooks = await kit(request).webhooks.list(await project_of(request))
    return json_response({"items": [webhook_json(h) for h in hooks], "next_cursor": None})


@routes.post(f"{BASE}/webhooks", summary="Add a webhook (events: push, issue, merge_request, review, pipeline, "
             "deployment)", permission="project:admin", project="path", request_body=_HOOK_BODY, status=201)
async def create_webhook(request: web.Request) -> web.StreamResponse:
    hook = await kit(request).webhooks.create(actor_of(request), await project_of(request), await read_json(request))
    return json_response(webhook_json(hook), status=201)


@routes.get(f"{BASE}/webhooks/{{hook_id}}", summary="One webhook", permission="project:admin", project="path")
async def get_webhook(request: web.Request) -> web.StreamResponse:
    hook = await kit(request).webhooks.get(await project_of(request), _uuid(request.match_info["hook_id"], "hook_id"))
    return json_response(webhook_json(hook))


@routes.patch(f"{BASE}/webhooks/{{hook_id}}", summary="Change a webhook", permission="project:admin",
              project="path", request_body=_HOOK_BODY)
async def update_webhook(request: web.Request) -> web.StreamResponse:
    hook = await kit(request).webhooks.update(actor_of(request), await project_of(request),
                                              _uuid(request.match_info["hook_id"], "hook_id"), await read_json(request))
    return json_response(webhook_json(hook))


@routes.delete(f"{BASE}/webhooks/{{hook_id}}", summary="Remove a webhook", permission="project:admin",
               project="path", status=204)
async def delete_webhook(request: web.Request) -> web.StreamResponse:
    await kit(request).webhooks.delete(actor_of(request), await project_of(request),
                                       _uuid(request.match_info["hook_id"], "hook_id"))
    return web.Response(status=204)


@routes.get(f"{BASE}/webhooks/{{hook_id}}/deliveries", summary="The delivery log of a webhook, newest first",
            permission="project:admin", project="path",
            query=(("limit", "integer", "page size"), ("cursor", "string", "from next_cursor")))
async def list_deliveries(request: web.Request) -> web.StreamResponse:
    page = await kit(request).webhooks.deliveries(
        await project_of(request), _uuid(request.match_info["hook_id"], "hook_id"), limit=_limit(request),
        cursor=request.query.get("cursor"),
    )
    return page_response(page, lambda d: delivery_json(d, with_payload=True))


@routes.post(f"{BASE}/webhooks/{{hook_id}}/deliveries/{{delivery_id}}/redeliver",
             summary="Send a delivery's payload again", permission="project:admin", project="path", status=201)
async def redeliver(request: web.Request) -> web.StreamResponse:
    delivery = await kit(request).webhooks.redeliver(
        actor_of(request), await project_of(request), _uuid(request.match_info["hook_id"], "hook_id"),
        _uuid(request.match_info["delivery_id"], "delivery_id"),
    )
    return json_response(delivery_json(delivery), status=201)
