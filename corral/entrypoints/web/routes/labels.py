"""Labels and milestones of a project (Gitea's shapes)."""

from __future__ import annotations

import uuid
from typing import Literal

import attrs
from aiohttp import web

from corral.core.errors import InvalidInput
from corral.core.pagination import Page
from corral.core.projects.commands import LabelChanges, MilestoneChanges, NewLabel, NewMilestone
from corral.core.projects.payloads import label_json, milestone_json
from corral.entrypoints.web.jsonio import json_response
from corral.entrypoints.web.operation import body_of, params_of, query_param
from corral.entrypoints.web.project_access import PROJECT_PATH as BASE
from corral.entrypoints.web.project_access import PROJECT_READ as _READ
from corral.entrypoints.web.project_access import PROJECT_WRITE as _WRITE
from corral.entrypoints.web.project_access import actor_of, kit, project_of
from corral.entrypoints.web.routing import RouteTable
from corral.entrypoints.web.schemas.projects import LabelOut, MilestoneOut

__all__ = ["routes"]

routes = RouteTable(tag="issues")


def _id(request: web.Request, field: str) -> uuid.UUID:
    try:
        return uuid.UUID(request.match_info[field])
    except ValueError:
        raise InvalidInput(f"{field} must be a UUID", field=field) from None


@attrs.frozen
class MilestoneQuery:
    """Filters of the milestone list."""

    state: Literal["open", "closed", "all"] | None = query_param(doc="open, closed or all (default: all)")


# ---- labels -----------------------------------------------------------------------------------------------
@routes.get(f"{BASE}/labels", summary="The project's labels, by name", **_READ, params=None, response=Page[LabelOut])
async def list_labels(request: web.Request) -> web.StreamResponse:
    labels = await kit(request).labels.labels(await project_of(request))
    return json_response({"items": [label_json(x) for x in labels], "next_cursor": None})


@routes.post(f"{BASE}/labels", summary="Add a label", **_WRITE, params=None, body=NewLabel, response=LabelOut,
             status=201)
async def create_label(request: web.Request) -> web.StreamResponse:
    label = await kit(request).labels.create_label(actor_of(request), await project_of(request),
                                                   body_of(request, NewLabel))
    return json_response(label_json(label), status=201)


@routes.get(f"{BASE}/labels/{{label_id}}", summary="One label", **_READ, params=None, response=LabelOut)
async def get_label(request: web.Request) -> web.StreamResponse:
    label = await kit(request).labels.label(await project_of(request), _id(request, "label_id"))
    return json_response(label_json(label))


@routes.patch(f"{BASE}/labels/{{label_id}}",
              summary="Change a label; a new name is carried over to its issues and merge requests", **_WRITE,
              params=None, body=LabelChanges, response=LabelOut)
async def update_label(request: web.Request) -> web.StreamResponse:
    label = await kit(request).labels.update_label(actor_of(request), await project_of(request),
                                                   _id(request, "label_id"), body_of(request, LabelChanges))
    return json_response(label_json(label))


@routes.delete(f"{BASE}/labels/{{label_id}}", summary="Remove a label (also from its issues and merge requests)",
               **_WRITE, params=None, status=204)
async def delete_label(request: web.Request) -> web.StreamResponse:
    await kit(request).labels.delete_label(actor_of(request), await project_of(request), _id(request, "label_id"))
    return web.Response(status=204)


# ---- milestones -------------------------------------------------------------------------------------------
@routes.get(f"{BASE}/milestones", summary="The project's milestones with open and closed issue counts, by due date",
            **_READ, params=MilestoneQuery, response=Page[MilestoneOut])
async def list_milestones(request: web.Request) -> web.StreamResponse:
    q = params_of(request, MilestoneQuery)
    found = await kit(request).labels.milestones(await project_of(request), q.state)
    return json_response({"items": [milestone_json(m, c) for m, c in found], "next_cursor": None})


@routes.post(f"{BASE}/milestones", summary="Add a milestone", **_WRITE, params=None, body=NewMilestone,
             response=MilestoneOut, status=201)
async def create_milestone(request: web.Request) -> web.StreamResponse:
    milestone = await kit(request).labels.create_milestone(actor_of(request), await project_of(request),
                                                           body_of(request, NewMilestone))
    return json_response(milestone_json(milestone), status=201)


@routes.get(f"{BASE}/milestones/{{milestone_id}}", summary="One milestone with its issue counts", **_READ,
            params=None, response=MilestoneOut)
async def get_milestone(request: web.Request) -> web.StreamResponse:
    milestone, counts = await kit(request).labels.milestone(await project_of(request), _id(request, "milestone_id"))
    return json_response(milestone_json(milestone, counts))


@routes.patch(f"{BASE}/milestones/{{milestone_id}}", summary="Change, close (state closed) or reopen a milestone",
              **_WRITE, params=None, body=MilestoneChanges, response=MilestoneOut)
async def update_milestone(request: web.Request) -> web.StreamResponse:
    project = await project_of(request)
    labels = kit(request).labels
    changed = await labels.update_milestone(actor_of(request), project, _id(request, "milestone_id"),
                                            body_of(request, MilestoneChanges))
    _, counts = await labels.milestone(project, changed.id)
    return json_response(milestone_json(changed, counts))


@routes.delete(f"{BASE}/milestones/{{milestone_id}}",
               summary="Remove a milestone (its issues and merge requests keep going without one)", **_WRITE,
               params=None, status=204)
async def delete_milestone(request: web.Request) -> web.StreamResponse:
    await kit(request).labels.delete_milestone(actor_of(request), await project_of(request),
                                               _id(request, "milestone_id"))
    return web.Response(status=204)
