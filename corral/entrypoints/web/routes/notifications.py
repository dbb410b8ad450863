"""Notifications API: the caller's in-app inbox, unread count, mark read, and preferences."""

from __future__ import annotations

import uuid
from typing import Any, Literal

import attrs
from aiohttp import web

from corral.core.errors import InvalidInput
from corral.core.notify.commands import PreferencesUpdate
from corral.core.notify.model import Notification, Preferences
from corral.core.notify.service import NotificationService
from corral.core.pagination import Page
from corral.entrypoints.web.jsonio import json_response
from corral.entrypoints.web.keys import PLATFORM, require_principal
from corral.entrypoints.web.operation import PageParams, body_of, params_of, query_param
from corral.entrypoints.web.routing import RouteTable
from corral.entrypoints.web.schemas.notify import NotificationOut, PreferencesOut, UnreadCountOut

routes = RouteTable(tag="notifications")


@attrs.frozen
class NotificationQuery(PageParams):
    """Filters of the caller's notifications."""

    status: Literal["unread", "read", "pending", "sent", "failed"] | None = query_param(
        doc="unread, read, pending, sent or failed (the delivery statuses span every channel)")
    channel: Literal["in_app", "email", "webhook"] | None = query_param(doc="in_app (default), email or webhook")


def _service(request: web.Request) -> NotificationService:
    service: NotificationService = request.app[PLATFORM].resolve(NotificationService)
    return service


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
            params=NotificationQuery, response=Page[NotificationOut])
async def list_notifications(request: web.Request) -> web.StreamResponse:
    q = params_of(request, NotificationQuery)
    page = await _service(request).list(require_principal(request), status=q.status, channel=q.channel, limit=q.limit,
                                        cursor=q.cursor)
    return json_response({"items": [_render(n) for n in page.items], "next_cursor": page.next_cursor})


@routes.get("/api/v1/notifications/unread-count", summary="How many in-app notifications the caller has not read",
            account=True, params=None, response=UnreadCountOut)
async def unread_count(request: web.Request) -> web.StreamResponse:
    return json_response({"count": await _service(request).unread_count(require_principal(request))})


@routes.post("/api/v1/notifications/{id}/read", summary="Mark one of the caller's in-app notifications read",
             account=True, params=None, response=NotificationOut)
async def mark_read(request: web.Request) -> web.StreamResponse:
    try:
        notification_id = uuid.UUID(request.match_info["id"])
    except ValueError:
        raise InvalidInput("id must be a notification id (a UUID)", field="id") from None
    return json_response(_render(await _service(request).mark_read(require_principal(request), notification_id)))


@routes.get("/api/v1/notification-preferences", summary="The caller's notification preferences", account=True,
            params=None, response=PreferencesOut)
async def get_preferences(request: web.Request) -> web.StreamResponse:
    return json_response(_render_prefs(await _service(request).preferences(require_principal(request))))


@routes.put("/api/v1/notification-preferences", summary="Replace the caller's notification preferences",
            account=True, params=None, body=PreferencesUpdate, response=PreferencesOut)
async def put_preferences(request: web.Request) -> web.StreamResponse:
    prefs = await _service(request).set_preferences(require_principal(request), body_of(request, PreferencesUpdate))
    return json_response(_render_prefs(prefs))
