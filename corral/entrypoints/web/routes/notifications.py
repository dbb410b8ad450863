"""Notifications API: the caller's in-app inbox, unread count, mark read, and preferences."""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web

from corral.core.errors import InvalidInput, Unauthenticated
from corral.core.notify.model import EventType, Notification, Preferences
from corral.core.notify.service import NotificationService
from corral.entrypoints.web.jsonio import json_response, read_json
from corral.entrypoints.web.keys import PLATFORM, principal_of
from corral.entrypoints.web.routing import RouteTable

routes = RouteTable(tag="notifications")

_CHANNELS = ["in_app", "email", "webhook"]
_EVENTS = [e.value for e in EventType]
_NOTIFICATION = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "format": "uuid"}, "type": {"enum": _EVENTS}, "channel": {"enum": _CHANNELS},
        "status": {"enum": ["pending", "sent", "read", "failed"]}, "subject": {"type": "string"},
        "body": {"type": "string"}, "project_id": {"type": ["string", "null"]},
        "ref_type": {"type": ["string", "null"]}, "ref_id": {"type": ["string", "null"]},
        "created_at": {"type": "string", "format": "date-time"},
        "read_at": {"type": ["string", "null"], "format": "date-time"},
        "attempts": {"type": "integer"}, "last_error": {"type": ["string", "null"]},
    },
}
_PREFERENCES = {
    "type": "object",
    "properties": {
        "events": {
            "type": "object", "description": "event type -> channels (missing: in_app and email)",
            "additionalProperties": {"type": "array", "items": {"enum": _CHANNELS}},
        },
        "webhook_url": {"type": ["string", "null"], "description": "where webhook notifications are POSTed"},
    },
    "additionalProperties": False,
}


def _service(request: web.Request) -> NotificationService:
    service: NotificationService = request.app[PLATFORM].resolve(NotificationService)
    return service


def _actor(request: web.Request) -> Any:
    principal = principal_of(request)
    if principal is None:
        raise Unauthenticated("authentication required")
    return principal


def _render(n: Notification) -> dict[str, Any]:
    return {
        "id": n.id, "type": n.type.value, "channel": n.channel.value, "status": n.status.value,
        "subject": n.subject, "body": n.body, "project_id": n.project_id, "ref_type": n.ref_type,
        "ref_id": n.ref_id, "created_at": n.created_at, "read_at": n.read_at, "attempts": n.attempts,
        "last_error": n.last_error,
    }


def _render_prefs(p: Preferences) -> dict[str, Any]:
    return {
        "events": {k.value: sorted(c.value for c in v) for k, v in sorted(p.events.items())},
        "webhook_url": p.webhook_url,
    }


@routes.get("/api/v1/notifications", summary="The caller's notifications, newest first", account=True,
            query=(
                ("status", "string", "unread, read, pending, sent or failed"),
                ("channel", "string", "in_app (default), email or webhook"),
                ("limit", "integer", "page size, 1-500 (default 50)"),
                ("cursor", "string", "next_cursor of the previous page"),
            ),
            response={"type": "object", "properties": {"items": {"type": "array", "items": _NOTIFICATION},
                                                       "next_cursor": {"type": ["string", "null"]}}})
async def list_notifications(request: web.Request) -> web.StreamResponse:
    q = request.query
    limit = None
    if "limit" in q:
        try:
            limit = int(q["limit"])
        except ValueError:
            raise InvalidInput("limit must be an integer", field="limit") from None
    page = await _service(request).list(
        _actor(request), status=q.get("status") or None, channel=q.get("channel") or None, limit=limit,
        cursor=q.get("cursor") or None,
    )
    return json_response({"items": [_render(n) for n in page.items], "next_cursor": page.next_cursor})


@routes.get("/api/v1/notifications/unread-count", summary="How many in-app notifications the caller has not read",
            account=True,
            response={"type": "object", "properties": {"count": {"type": "integer"}}})
async def unread_count(request: web.Request) -> web.StreamResponse:
    return json_response({"count": await _service(request).unread_count(_actor(request))})


@routes.post("/api/v1/notifications/{id}/read", summary="Mark one of the caller's in-app notifications read",
             account=True,
             response=_NOTIFICATION)
async def mark_read(request: web.Request) -> web.StreamResponse:
    try:
        notification_id = uuid.UUID(request.match_info["id"])
    except ValueError:
        raise InvalidInput("id must be a notification id (a UUID)", field="id") from None
    return json_response(_render(await _service(request).mark_read(_actor(request), notification_id)))


@routes.get("/api/v1/notification-preferences", summary="The caller's notification preferences", account=True,
            response=_PREFERENCES)
async def get_preferences(request: web.Request) -> web.StreamResponse:
    return json_response(_render_prefs(await _service(request).preferences(_actor(request))))


@routes.put("/api/v1/notification-preferences", summary="Replace the caller's notification preferences",
            account=True,
            request_body=_PREFERENCES, response=_PREFERENCES)
async def put_preferences(request: web.Request) -> web.StreamResponse:
    prefs = await _service(request).set_preferences(_actor(request), await read_json(request))
    return json_response(_render_prefs(prefs))
