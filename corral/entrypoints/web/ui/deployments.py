"""Deployment pages like Argo CD's: a project's environments with sync and health, one environment with the
objects it renders to and what applying each would change, its history, rollback and promote forms (shown
disabled, with the permission they need, to whoever lacks it). The same DeployService as the deploy API."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import yaml
from aiohttp import web

from corral.core.deploy.render import ref_of
from corral.core.deploy.service import Actor, ProjectInfo
from corral.core.errors import CorralError, InvalidInput
from corral.entrypoints.web.keys import PLATFORM, require_principal
from corral.entrypoints.web.project_access import can, project_of
from corral.entrypoints.web.routes.deploy import DeployKit
from corral.entrypoints.web.ui.pages import Crumb, form_data, redirect
from corral.entrypoints.web.ui.projects import project_crumbs, project_page
from corral.entrypoints.web.ui.table import form
from corral.entrypoints.web.ui.table import page as page_route

__all__ = ["environments"]

log = logging.getLogger("corral.ui")
P = "/ui/{owner}/{name}/deployments"
_READ: dict[str, Any] = {"permission": "deploy:read", "project": "path"}
_WRITE: dict[str, Any] = {"permission": "deploy:promote", "project": "path"}


def _kit(request: web.Request) -> DeployKit:
    found: DeployKit = request.app[PLATFORM].resolve(DeployKit)
    return found


async def _info(request: web.Request) -> ProjectInfo:
    project = await project_of(request)
    return ProjectInfo(project.id, project.full_name)


def _actor(request: web.Request) -> Actor:
    principal = require_principal(request)
    return Actor(principal.user_id, principal.name)


async def environments(request: web.Request, info: ProjectInfo) -> list[Any]:
    return await _kit(request).service.list(info)


@page_route(P, summary="The project's environments with sync and health", **_READ)
async def deployments(request: web.Request) -> web.StreamResponse:
    project = await project_of(request)
    items = await environments(request, await _info(request))
    return await project_page(request, "deployments.html", title="Deployments", tab="deployments",
                              crumbs=project_crumbs(project, Crumb("Deployments")), items=items)


@page_route(f"{P}/{{environment}}", summary="One environment: objects, rendered diff, history, rollback, promote",
            **_READ)
async def deployment(request: web.Request) -> web.StreamResponse:
    project = await project_of(request)
    info = await _info(request)
    kit = _kit(request)
    env = request.match_info["environment"]
    d = await kit.service.get(info, env)
    history = await kit.service.history(info, env)
    others = [x.environment for x in await kit.service.list(info) if x.environment != env]
    objects: list[dict[str, Any]] = []
    render_error = None
    commit = None
    if kit.reconciler is None:
        render_error = "The deployer is not running in this process: nothing to render."
    else:
        try:
            rendering, changes = await kit.reconciler.preview(d, info)
            commit = rendering.commit
            for obj, change in changes:
                ref = str(ref_of(obj)) if "metadata" in obj else f"{obj.get('kind')} {obj.get('name')}"
                objects.append({"ref": ref, "change": change,
                                "yaml": yaml.safe_dump(obj, sort_keys=False, default_flow_style=False)})
        except CorralError as exc:
            render_error = exc.message
    inventory = {str(r) for r in d.inventory}
    return await project_page(
        request, "deployment.html", title=f"Deployment {env}", tab="deployments",
        crumbs=project_crumbs(project, Crumb("Deployments", f"/ui/{project.full_name}/deployments"), Crumb(env)),
        d=d, history=history, objects=objects, render_error=render_error, commit=commit, inventory=inventory,
        others=others, cluster=kit.reconciler.cluster_name if kit.reconciler else None,
        can_promote=await can(request, "deploy:promote", project))


@form(f"{P}/{{environment}}/rollback", summary="Roll an environment back to a history entry", **_WRITE)
async def rollback(request: web.Request) -> web.StreamResponse:
    project = await project_of(request)
    data = await form_data(request)
    raw = data.get("to") or None
    to: uuid.UUID | None = None
    if raw is not None:
        try:
            to = uuid.UUID(raw)
        except ValueError:
            raise InvalidInput("to must be a history entry", field="to") from None
    env = request.match_info["environment"]
    await _kit(request).service.rollback(_actor(request), await _info(request), env, to)
    _wake(request)
    return redirect(f"/ui/{project.full_name}/deployments/{env}")


@form(f"{P}/{{environment}}/promote", summary="Copy another environment's image here", **_WRITE)
async def promote(request: web.Request) -> web.StreamResponse:
    project = await project_of(request)
    data = await form_data(request)
    env = request.match_info["environment"]
    await _kit(request).service.promote(_actor(request), await _info(request), env, data.get("from", ""))
    _wake(request)
    return redirect(f"/ui/{project.full_name}/deployments/{env}")


def _wake(request: web.Request) -> None:
    reconciler = _kit(request).reconciler
    if reconciler is not None:
        reconciler.wake()
