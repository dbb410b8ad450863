"""Projects API: create/list/get/update/delete, branch protections and webhooks (with their delivery log)."""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web

from corral.core.errors import InvalidInput
from corral.core.pagination import Page
from corral.core.projects.commands import (
    BranchProtectionChanges,
    NewBranchProtection,
    NewProject,
    NewWebhook,
    ProjectChanges,
    WebhookChanges,
)
from corral.core.projects.model import BranchProtection, Project
from corral.core.projects.payloads import delivery_json, project_json, webhook_json
from corral.entrypoints.web.jsonio import json_response, page_response
from corral.entrypoints.web.operation import PageParams, body_of, params_of
from corral.entrypoints.web.project_access import PROJECT_PATH as BASE
from corral.entrypoints.web.project_access import actor_of, can, kit, project_of
from corral.entrypoints.web.routing import RouteTable
from corral.entrypoints.web.schemas.projects import (
    BranchProtectionOut,
    DeliveryDetailOut,
    DeliveryOut,
    ProjectOut,
    WebhookOut,
)

__all__ = ["remove_project", "routes"]

routes = RouteTable(tag="projects")



def _render(request: web.Request, project: Project) -> dict[str, Any]:
    return project_json(project, kit(request).base_url)


def _uuid(value: str, field: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidInput(f"{field} must be a UUID", field=field) from None


@routes.post("/api/v1/projects", summary="Create a project (owned by the caller) with an empty repository",
             permission="project:create", params=None, body=NewProject, response=ProjectOut, status=201)
async def create_project(request: web.Request) -> web.StreamResponse:
    project = await kit(request).projects.create(actor_of(request), body_of(request, NewProject))
    return json_response(_render(request, project), status=201)


@routes.get("/api/v1/projects", summary="Projects the caller may read (public ones for anonymous callers)",
            anonymous=True, account=False, params=PageParams, response=Page[ProjectOut])
async def list_projects(request: web.Request) -> web.StreamResponse:
    async def readable(project: Project) -> bool:
        return await can(request, "project:read", project)

    q = params_of(request, PageParams)
    page = await kit(request).projects.list(readable, limit=q.limit, cursor=q.cursor)
    return page_response(page, lambda p: _render(request, p))


@routes.get(BASE, summary="One project", permission="project:read", project="path", anonymous=True,
            params=None, response=ProjectOut)
async def get_project(request: web.Request) -> web.StreamResponse:
    return json_response(_render(request, await project_of(request)))


@routes.patch(BASE, summary="Change a project's name, description, visibility, default branch or archive it",
              permission="project:admin", project="path", params=None, body=ProjectChanges, response=ProjectOut)
async def update_project(request: web.Request) -> web.StreamResponse:
    project = await kit(request).projects.update(actor_of(request), await project_of(request),
                                                 body_of(request, ProjectChanges))
    return json_response(_render(request, project))


@routes.delete(BASE, summary="Delete a project, its repository and everything it stored (objects, workspaces)",
               permission="project:delete", project="path",
               params=None, status=204)
async def delete_project(request: web.Request) -> web.StreamResponse:
    await remove_project(request, await project_of(request))
    return web.Response(status=204)


async def remove_project(request: web.Request, project: Project) -> None:
    """Delete ``project`` (audited by the service; the API's DELETE and the UI's danger zone both come here).
    Its repository, objects and workspaces are purged by corral.core.projects.purge, retried until done."""
    await kit(request).projects.delete(actor_of(request), project)


# ---- branch protection ------------------------------------------------------------------------------------
async def _rules(request: web.Request, rules: list[BranchProtection]) -> list[dict[str, Any]]:
    names = await kit(request).users.by_ids({u for r in rules for u in r.push_allowlist})
    return [{"id": str(rule.id), "pattern": rule.pattern, "allow_force_push": rule.allow_force_push,
             "allow_deletion": rule.allow_deletion, "require_merge_request": rule.require_merge_request,
             "required_approvals": rule.required_approvals, "bypass_admins": rule.bypass_admins,
             "push_allowlist": [names[u].name for u in rule.push_allowlist if u in names],
             "required_checks": list(rule.required_checks),
             "created_at": rule.created_at.isoformat()} for rule in rules]


async def _rule(request: web.Request, rule: BranchProtection) -> dict[str, Any]:
    return (await _rules(request, [rule]))[0]


@routes.get(f"{BASE}/branch-protections", summary="Branch protection rules", permission="project:read",
            project="path", anonymous=True, params=None, response=Page[BranchProtectionOut])
async def list_protections(request: web.Request) -> web.StreamResponse:
    rules = await kit(request).protections.list(await project_of(request))
    return json_response({"items": await _rules(request, rules), "next_cursor": None})


@routes.post(f"{BASE}/branch-protections", summary="Protect branches matching a name or glob",
             permission="project:admin", project="path", params=None, body=NewBranchProtection,
             response=BranchProtectionOut, status=201)
async def create_protection(request: web.Request) -> web.StreamResponse:
    rule = await kit(request).protections.create(actor_of(request), await project_of(request),
                                                 body_of(request, NewBranchProtection))
    return json_response(await _rule(request, rule), status=201)


@routes.patch(f"{BASE}/branch-protections/{{rule_id}}", summary="Change a branch protection rule",
              permission="project:admin", project="path", params=None, body=BranchProtectionChanges,
              response=BranchProtectionOut)
async def update_protection(request: web.Request) -> web.StreamResponse:
    rule = await kit(request).protections.update(actor_of(request), await project_of(request),
                                                 _uuid(request.match_info["rule_id"], "rule_id"),
                                                 body_of(request, BranchProtectionChanges))
    return json_response(await _rule(request, rule))


@routes.delete(f"{BASE}/branch-protections/{{rule_id}}", summary="Remove a branch protection rule",
               permission="project:admin", project="path", params=None, status=204)
async def delete_protection(request: web.Request) -> web.StreamResponse:
    await kit(request).protections.delete(actor_of(request), await project_of(request),
                                          _uuid(request.match_info["rule_id"], "rule_id"))
    return web.Response(status=204)


# ---- webhooks ---------------------------------------------------------------------------------------------
@routes.get(f"{BASE}/webhooks", summary="Webhooks of the project", permission="project:admin", project="path",
            params=None, response=Page[WebhookOut])
async def list_webhooks(request: web.Request) -> web.StreamResponse:
    hooks = await kit(request).webhooks.list(await project_of(request))
    return json_response({"items": [webhook_json(h) for h in hooks], "next_cursor": None})


@routes.post(f"{BASE}/webhooks", summary="Add a webhook (events: push, issue, merge_request, review, pipeline, "
             "deployment)", permission="project:admin", project="path", params=None, body=NewWebhook,
             response=WebhookOut, status=201)
async def create_webhook(request: web.Request) -> web.StreamResponse:
    hook = await kit(request).webhooks.create(actor_of(request), await project_of(request),
                                              body_of(request, NewWebhook))
    return json_response(webhook_json(hook), status=201)


@routes.get(f"{BASE}/webhooks/{{hook_id}}", summary="One webhook", permission="project:admin", project="path",
            params=None, response=WebhookOut)
async def get_webhook(request: web.Request) -> web.StreamResponse:
    hook = await kit(request).webhooks.get(await project_of(request), _uuid(request.match_info["hook_id"], "hook_id"))
    return json_response(webhook_json(hook))


@routes.patch(f"{BASE}/webhooks/{{hook_id}}", summary="Change a webhook", permission="project:admin",
              project="path", params=None, body=WebhookChanges, response=WebhookOut)
async def update_webhook(request: web.Request) -> web.StreamResponse:
    hook = await kit(request).webhooks.update(actor_of(request), await project_of(request),
                                              _uuid(request.match_info["hook_id"], "hook_id"),
                                              body_of(request, WebhookChanges))
    return json_response(webhook_json(hook))


@routes.delete(f"{BASE}/webhooks/{{hook_id}}", summary="Remove a webhook", permission="project:admin",
               project="path", params=None, status=204)
async def delete_webhook(request: web.Request) -> web.StreamResponse:
    await kit(request).webhooks.delete(actor_of(request), await project_of(request),
                                       _uuid(request.match_info["hook_id"], "hook_id"))
    return web.Response(status=204)


@routes.get(f"{BASE}/webhooks/{{hook_id}}/deliveries", summary="The delivery log of a webhook, newest first",
            permission="project:admin", project="path", params=PageParams, response=Page[DeliveryDetailOut])
async def list_deliveries(request: web.Request) -> web.StreamResponse:
    q = params_of(request, PageParams)
    page = await kit(request).webhooks.deliveries(
        await project_of(request), _uuid(request.match_info["hook_id"], "hook_id"), limit=q.limit, cursor=q.cursor,
    )
    return page_response(page, lambda d: delivery_json(d, with_payload=True))


@routes.post(f"{BASE}/webhooks/{{hook_id}}/deliveries/{{delivery_id}}/redeliver",
             summary="Send a delivery's payload again", permission="project:admin", project="path", params=None,
             response=DeliveryOut, status=201)
async def redeliver(request: web.Request) -> web.StreamResponse:
    delivery = await kit(request).webhooks.redeliver(
        actor_of(request), await project_of(request), _uuid(request.match_info["hook_id"], "hook_id"),
        _uuid(request.match_info["delivery_id"], "delivery_id"),
    )
    return json_response(delivery_json(delivery), status=201)
