"""The dashboard's summaries: running pipelines, active agent sessions, deployment health per environment,
firing alerts. Each is
None when that part of Corral is not wired in this process (the template then says so), and only shows
what the caller may read."""

from __future__ import annotations

import logging
from typing import Any

import attrs
from aiohttp import web

from corral.core.errors import CorralError
from corral.core.pipelines.runs import Status
from corral.core.projects.model import Project
from corral.entrypoints.web.keys import PLATFORM
from corral.entrypoints.web.project_access import can
from corral.entrypoints.web.ui.pages import holds

__all__ = ["active_agent_sessions", "alerts", "deployments", "running_pipelines"]

log = logging.getLogger("corral.ui")
_ACTIVE = {Status.RUNNING, Status.PENDING, Status.BLOCKED}


@attrs.frozen
class Row:
    project: str
    href: str
    number: int = 0
    status: str = ""
    ref: str = ""
    environment: str = ""
    health: str = ""
    sync: str = ""
    name: str = ""
    detail: str = ""


async def running_pipelines(request: web.Request, projects: list[Project]) -> list[Row] | None:
    from corral.core.pipelines.service import PipelineService

    service = request.app[PLATFORM].resolve_optional(PipelineService)
    if service is None:
        return None
    out: list[Row] = []
    for project in projects:
        if not await can(request, "pipeline:read", project):
            continue
        try:
            recent = (await service.recent(project, limit=10, cursor=None)).items
        except CorralError:
            log.warning("pipelines of %s are unavailable", project.full_name, exc_info=True)
            continue
        out += [Row(project.full_name, f"/ui/{project.full_name}/pipelines/{p.number}", p.number, p.status.value,
                    p.branch or p.ref) for p in recent if p.status in _ACTIVE]
    return out[:20]


async def active_agent_sessions(request: web.Request, projects: list[Project]) -> list[Row] | None:
    """Pending and running agent sessions of the projects the caller may read (the same AgentService as the API)."""
    from corral.core.agents.service import AgentService

    service = request.app[PLATFORM].resolve_optional(AgentService)
    if service is None:
        return None
    out: list[Row] = []
    for project in projects:
        try:
            recent = (await service.recent(project, limit=20, cursor=None)).items
        except CorralError:
            log.warning("agent sessions of %s are unavailable", project.full_name, exc_info=True)
            continue
        out += [Row(project.full_name, f"/ui/agent-sessions/{s.id}", status=s.status.value, ref=s.branch,
                    name=str(s.id)[:8], detail=s.prompt[:80]) for s in recent if not s.status.finished]
    return out[:20]


async def deployments(request: web.Request, projects: list[Project]) -> list[Row] | None:
    from corral.core.deploy.service import ProjectInfo
    from corral.entrypoints.web.routes.deploy import DeployKit

    kit = request.app[PLATFORM].resolve_optional(DeployKit)
    if kit is None:
        return None
    out: list[Row] = []
    for project in projects:
        if not await can(request, "deploy:read", project):
            continue
        for d in await kit.service.list(ProjectInfo(project.id, project.full_name)):
            out.append(Row(project.full_name, f"/ui/{project.full_name}/deployments/{d.environment}",
                           environment=d.environment, health=d.health.lower(), sync=d.sync.value))
    return out[:30]


async def alerts(request: web.Request) -> list[Row] | None:
    from corral.entrypoints.observe_runtime import ObserveRuntime

    rt: Any = request.app[PLATFORM].resolve_optional(ObserveRuntime)
    if rt is None:
        return None
    if not await holds(request, "observe:read"):
        return []  # platform-wide alerts need the platform-wide permission
    events = await rt.alert_store.list_events(None, "firing", 20)
    out = []
    for e in events:
        project = await rt.directory.path_of(e.project_id) if e.project_id else None
        out.append(Row(project or "", f"/ui/observe/logs?project={project}" if project else "/ui/observe/logs",
                       name=e.message or "alert", detail=project or ""))
    return out
