"""Response shapes of notifications and notification preferences."""

from __future__ import annotations

import uuid
from datetime import datetime

import attrs

from corral.core.notify.model import Channel, EventType, NotificationStatus

__all__ = ["NotificationOut", "PreferencesOut", "UnreadCountOut"]


@attrs.frozen
class NotificationOut:
    """A notification of the caller on one channel."""

    id: uuid.UUID
    type: EventType
    channel: Channel
    status: NotificationStatus
    subject: str
    body: str
    project_id: uuid.UUID | None
    ref_type: str | None
    ref_id: uuid.UUID | None
    created_at: datetime
    read_at: datetime | None
    attempts: int
    last_error: str | None


@attrs.frozen
class UnreadCountOut:
    """How many in-app notifications the caller has not read."""

    count: int


@attrs.frozen
class PreferencesOut:
    """The caller's notification preferences."""

    events: dict[EventType, list[Channel]]
    webhook_url: str | None
