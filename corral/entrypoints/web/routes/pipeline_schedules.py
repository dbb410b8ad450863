"""Pipeline schedules: cron pipelines per project (create, list, delete)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from corral.core.pipelines.runs import Schedule
from corral.core.pipelines.schedules import NewSchedule, ScheduleService
from corral.entrypoints.web.jsonio import json_response
from corral.entrypoints.web.keys import PLATFORM
from corral.entrypoints.web.operation import body_of
from corral.entrypoints.web.project_access import actor_of, project_of
from corral.entrypoints.web.routing import RouteTable
from corral.entrypoints.web.schemas.pipelines import ScheduleList, ScheduleOut

__all__ = ["routes"]

routes = RouteTable(tag="pipelines")

BASE = "/api/v1/projects/{owner}/{name}/pipeline-schedules"
_READ: dict[str, Any] = {"permission": "pipeline:read", "project": "path", "anonymous": True}
_RUN: dict[str, Any] = {"permission": "pipeline:run", "project": "path"}


def _service(request: web.Request) -> ScheduleService:
    found: ScheduleService = request.app[PLATFORM].resolve(ScheduleService)
    return found


def _json(s: Schedule) -> dict[str, Any]:
    return {"name": s.name, "cron": s.cron, "branch": s.branch, "variables": dict(s.variables),
            "next_run_at": s.next_run_at.isoformat(), "last_run_at": s.last_run_at.isoformat() if s.last_run_at
            else None, "created_by": s.created_by_name or None, "created_at": s.created_at.isoformat()}


@routes.post(BASE, summary="Add a cron schedule of the project's pipelines", **_RUN, params=None, body=NewSchedule,
             response=ScheduleOut, status=201,
             description="At every due time (UTC) a pipeline of `branch` runs with event `cron`, as the user who "
                         "made the schedule, with `CI_PIPELINE_CRON` set to the schedule's name (`when: cron:` "
                         "filters match it). Missed due times (server down) run once. 409 for a second schedule "
                         "of the same name.")
async def create_schedule(request: web.Request) -> web.StreamResponse:
    body = body_of(request, NewSchedule)
    schedule = await _service(request).create(actor_of(request), await project_of(request), body)
    return json_response(_json(schedule), status=201)


@routes.get(BASE, summary="The cron schedules of the project's pipelines", **_READ, params=None,
            response=ScheduleList)
async def list_schedules(request: web.Request) -> web.StreamResponse:
    found = await _service(request).list(await project_of(request))
    return json_response({"items": [_json(s) for s in found]})


@routes.delete(f"{BASE}/{{schedule}}", summary="Remove a cron schedule", **_RUN, params=None, status=204)
async def delete_schedule(request: web.Request) -> web.StreamResponse:
    await _service(request).delete(actor_of(request), await project_of(request), request.match_info["schedule"])
    return web.Response(status=204)
