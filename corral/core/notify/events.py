"""Which outbox events notify, and the flat context the templates and the planner read.

Notification topics (``build_failed``, ``mr_created``, ...) are taken as they
are. The projects domain's webhook-shaped events are understood too:
``merge_request`` with action ``opened`` / ``merged`` / ``review_requested``.
Nested ``project`` / ``merge_request`` / ``sender`` objects are flattened into
``project`` (owner/name), ``title``, ``number``, ``ref``, ``actor_id`` and
``user_ids`` (the people concerned beyond the project roles).
"""

from __future__ import annotations

from typing import Any

from corral.core.notify.model import EventType
from corral.core.outbox import topics
from corral.core.outbox.model import OutboxEvent

__all__ = ["normalize"]

_MR_ACTIONS = {
    "opened": EventType.MR_CREATED,
    "merged": EventType.MR_MERGED,
    "review_requested": EventType.REVIEW_REQUESTED,
}


def _id_of(value: object) -> str | None:
    if isinstance(value, dict):
        got = value.get("id")
        return str(got) if got is not None else None
    return None


def normalize(event: OutboxEvent) -> tuple[EventType, dict[str, Any]] | None:
    """The notification type and context of ``event``, or None when it notifies nobody."""
    payload: dict[str, Any] = dict(event.payload)
    kind: EventType | None = None
    try:
        kind = EventType(event.topic)
    except ValueError:
        if event.topic == topics.MERGE_REQUEST:
            kind = _MR_ACTIONS.get(str(payload.get("action")))
    if kind is None:
        return None
    context = dict(payload)
    project = payload.get("project")
    if isinstance(project, dict):
        context["project"] = project.get("full_name") or project.get("name")
        context.setdefault("project_id", project.get("id"))
    mr = payload.get("merge_request")
    if isinstance(mr, dict):
        context.setdefault("title", mr.get("title"))
        context.setdefault("number", mr.get("number"))
        context.setdefault("ref", mr.get("target_branch"))
        context.setdefault("ref_id", mr.get("id"))
        named = list(context.get("user_ids") or [])
        author = _id_of(mr.get("author"))
        if author is not None:
            named.append(author)
        for reviewer in payload.get("reviewers") or []:
            rid = _id_of(reviewer) or (str(reviewer) if isinstance(reviewer, str) else None)
            if rid is not None:
                named.append(rid)
        context["user_ids"] = named
    actor = _id_of(payload.get("sender"))
    if actor is not None:
        context.setdefault("actor_id", actor)
    return kind, context
