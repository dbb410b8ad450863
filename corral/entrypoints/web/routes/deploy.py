"""The deployer's API: ops repositories, desired state per environment, history, rollback, promotion."""

from __future__ import annotations

import uuid
from typing import Any

import attrs
from aiohttp import web

from corral.core.deploy.commands import DesiredState, NewOpsRepo, RollbackRequest
from corral.core.deploy.model import Deployment, HistoryEntry, OpsRepo, Promotion
from corral.core.deploy.reconciler import Reconciler
from corral.core.deploy.service import Actor, DeployService, ProjectInfo
from corral.core.errors import InvalidInput, NotFound, Unauthenticated
from corral.core.uow import UnitOfWorkFactory
from corral.entrypoints.web.jsonio import json_response, read_json
from corral.entrypoints.web.keys import PLATFORM, principal_of, project_id_of
from corral.entrypoints.web.operation import body_of
from corral.entrypoints.web.routing import RouteTable
from corral.entrypoints.web.schemas.deploy import DeploymentOut, HistoryOut, OpsRepoOut, PromotionOut, RenderOut

__all__ = ["DeployKit", "routes"]

routes = RouteTable(tag="deploy")

BASE = "/api/v1/projects/{owner}/{name}/deployments"
ENV = BASE + "/{environment}"
_READ: dict[str, Any] = {"permission": "deploy:read", "project": "path"}
_WRITE: dict[str, Any] = {"permission": "deploy:promote", "project": "path"}


@attrs.define
class DeployKit:
    """What the deploy routes use (registered by the deploy wiring)."""

    uow_factory: UnitOfWorkFactory
    service: DeployService
    reconciler: Reconciler | None = None


def _kit(request: web.Request) -> DeployKit:
    found: DeployKit = request.app[PLATFORM].resolve(DeployKit)
    return found


def _actor(request: web.Request) -> Actor:
    principal = principal_of(request)
    if principal is None:
        raise Unauthenticated("authentication required")
    return Actor(principal.user_id, principal.name)


async def _project(request: web.Request) -> ProjectInfo:
    project_id = project_id_of(request)
    if project_id is None:
        raise NotFound("project not found")
    async with _kit(request).uow_factory() as uow:
        project = await uow.projects.get(project_id)
    if project is None:
        raise NotFound("project not found")
    return ProjectInfo(project.id, project.full_name)


async def _repo_json(request: web.Request, repos: list[OpsRepo]) -> list[dict[str, Any]]:
    names: dict[uuid.UUID, str] = {}
    async with _kit(request).uow_factory() as uow:
        for pid in {r.project_id for r in repos if r.project_id is not None}:
            project = await uow.projects.get(pid)
            if project is not None:
                names[pid] = project.full_name
    return [{"id": r.id, "name": r.name, "project": names.get(r.project_id) if r.project_id else None, "url": r.url,
             "branch": r.branch, "path": r.path, "credential_secret": r.credential_secret,
             "created_at": r.created_at} for r in repos]


async def _deployment_json(request: web.Request, items: list[Deployment]) -> list[dict[str, Any]]:
    repos = await _kit(request).service.ops_repo_names({d.ops_repo_id for d in items})
    return [{"id": d.id, "environment": d.environment, "image_ref": d.image_ref,
             "desired_revision": d.desired_revision, "sync": d.sync.value, "health": d.health,
             "status": d.status.value, "cluster": d.cluster, "last_error": d.last_error,
             "ops_repo": repos.get(d.ops_repo_id), "app_path": d.app_path, "namespace": d.namespace,
             "values_override": d.values_override, "prune": d.prune, "self_heal": d.self_heal,
             "auto_rollback": d.auto_rollback, "applied_revision": d.applied_revision,
             "applied_commit": d.applied_commit, "next_attempt_at": d.next_attempt_at,
             "updated_by": d.updated_by_name, "updated_at": d.updated_at} for d in items]


def _history_json(e: HistoryEntry) -> dict[str, Any]:
    return {"id": e.id, "revision": e.revision, "image_ref": e.image_ref, "values_override": e.values_override,
            "by": e.by_name, "at": e.at, "result": e.result.value, "reason": e.reason}


def _promotion_json(p: Promotion) -> dict[str, Any]:
    return {"id": p.id, "from_environment": p.from_environment, "to_environment": p.to_environment,
            "image_ref": p.image_ref, "status": p.status.value, "requested_by": p.requested_by_name,
            "requested_at": p.requested_at, "approved_by": p.approved_by_name, "decided_at": p.decided_at}


def _wake(request: web.Request) -> None:
    reconciler = _kit(request).reconciler
    if reconciler is not None:
        reconciler.wake()


# ---- ops repositories -----------------------------------------------------------------------------------
@routes.post("/api/v1/ops-repos", summary="Register an ops repository (a Corral project or an outside git URL)",
             permission="admin:settings", params=None, body=NewOpsRepo, response=OpsRepoOut, status=201)
async def create_ops_repo(request: web.Request) -> web.StreamResponse:
    repo = await _kit(request).service.register_ops_repo(_actor(request), body_of(request, NewOpsRepo))
    return json_response((await _repo_json(request, [repo]))[0], status=201)


@routes.get("/api/v1/ops-repos", summary="Ops repositories, by name", permission="deploy:read", params=None,
            response=list[OpsRepoOut])
async def list_ops_repos(request: web.Request) -> web.StreamResponse:
    return json_response(await _repo_json(request, await _kit(request).service.list_ops_repos()))


# ---- deployments ----------------------------------------------------------------------------------------
@routes.get(BASE, summary="The project's deployments, by environment", **_READ, params=None,
            response=list[DeploymentOut])
async def list_deployments(request: web.Request) -> web.StreamResponse:
    items = await _kit(request).service.list(await _project(request))
    return json_response(await _deployment_json(request, items))


@routes.get(ENV, summary="One environment: desired state, sync, health, revision, last error", **_READ,
            params=None, response=DeploymentOut)
async def get_deployment(request: web.Request) -> web.StreamResponse:
    d = await _kit(request).service.get(await _project(request), request.match_info["environment"])
    return json_response((await _deployment_json(request, [d]))[0])


@routes.put(ENV, summary="Write the desired state of an environment (201 when new)", **_WRITE, params=None,
            body=DesiredState, response=DeploymentOut, status=200,
            description="Audited and kept in the history; the reconciler applies it.")
async def put_deployment(request: web.Request) -> web.StreamResponse:
    d, created = await _kit(request).service.set_desired(_actor(request), await _project(request),
                                                         request.match_info["environment"],
                                                         body_of(request, DesiredState))
    _wake(request)
    return json_response((await _deployment_json(request, [d]))[0], status=201 if created else 200)


@routes.get(ENV + "/history", summary="The environment's desired states, newest first", **_READ, params=None,
            response=list[HistoryOut])
async def deployment_history(request: web.Request) -> web.StreamResponse:
    entries = await _kit(request).service.history(await _project(request), request.match_info["environment"])
    return json_response([_history_json(e) for e in entries])


@routes.post(ENV + "/rollback", summary="Roll back to a history entry (default: the previous healthy one)",
             **_WRITE, params=None, body=RollbackRequest, response=DeploymentOut)
async def rollback_deployment(request: web.Request) -> web.StreamResponse:
    d = await _kit(request).service.rollback(_actor(request), await _project(request),
                                             request.match_info["environment"], body_of(request, RollbackRequest).to)
    _wake(request)
    return json_response((await _deployment_json(request, [d]))[0])


_PROMOTE_BODY = {"type": "object", "required": ["from"], "additionalProperties": False,
                 "properties": {"from": {"type": "string", "description": "the environment whose image is copied"}}}


@routes.post(ENV + "/promote", summary="Copy another environment's image reference here", **_WRITE, params=None,
             request_body=_PROMOTE_BODY, response=PromotionOut,
             description="On a protected environment the promotion waits for an approval from someone else "
                         "(POST .../promotions/{id}/approve).")
async def promote_deployment(request: web.Request) -> web.StreamResponse:
    data = await read_json(request)
    unknown = sorted(set(data) - {"from"})
    if unknown:
        raise InvalidInput(f"unknown field {unknown[0]!r}", field=unknown[0])
    source = data.get("from")
    if not isinstance(source, str):
        raise InvalidInput("from must name an environment", field="from")
    promotion = await _kit(request).service.promote(_actor(request), await _project(request),
                                                    request.match_info["environment"], source)
    _wake(request)
    return json_response(_promotion_json(promotion))


@routes.get(BASE[: -len("/deployments")] + "/promotions", summary="The project's promotions, newest first",
            **_READ, params=None, response=list[PromotionOut])
async def list_promotions(request: web.Request) -> web.StreamResponse:
    items = await _kit(request).service.promotions(await _project(request))
    return json_response([_promotion_json(p) for p in items])


@routes.post(BASE[: -len("/deployments")] + "/promotions/{promotion_id}/approve",
             summary="Approve a promotion to a protected environment (not your own)", **_WRITE, params=None,
             response=PromotionOut)
async def approve_promotion(request: web.Request) -> web.StreamResponse:
    try:
        promotion_id = uuid.UUID(request.match_info["promotion_id"])
    except ValueError:
        raise NotFound("promotion not found") from None
    promotion = await _kit(request).service.approve(_actor(request), await _project(request), promotion_id)
    _wake(request)
    return json_response(_promotion_json(promotion))


@routes.get(ENV + "/render", summary="What the environment renders to and what applying it would change",
            **_READ, params=None, response=RenderOut)
async def render_deployment(request: web.Request) -> web.StreamResponse:
    kit = _kit(request)
    if kit.reconciler is None:
        raise NotFound("the deployer is not running in this process")
    project = await _project(request)
    d = await kit.service.get(project, request.match_info["environment"])
    rendering, changes = await kit.reconciler.preview(d, project)
    from corral.core.deploy.render import ref_of

    return json_response({"environment": d.environment, "commit": rendering.commit,
                          "cluster": kit.reconciler.cluster_name,
                          "objects": [{"ref": str(ref_of(o)) if "metadata" in o else
                                       f"{o.get('kind')} {o.get('namespace') or ''}/{o.get('name')}".replace(" /", " "),
                                       "object": o, "change": c} for o, c in changes]})
