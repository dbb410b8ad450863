"""Notifications, channels, statuses, preferences and the routing of events to project roles."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import attrs

from corral.core.errors import InvalidInput
from corral.core.outbox import topics

__all__ = [
    "DEFAULT_CHANNELS",
    "EVENT_ROLES",
    "Channel",
    "EventType",
    "Notification",
    "NotificationStatus",
    "Preferences",
    "Recipient",
    "RenderedMessage",
]


class EventType(enum.StrEnum):
    """Outbox topics that notify people."""

    BUILD_FAILED = topics.BUILD_FAILED
    MR_CREATED = topics.MR_CREATED
    MR_MERGED = topics.MR_MERGED
    REVIEW_REQUESTED = topics.REVIEW_REQUESTED
    AGENT_COMPLETED = topics.AGENT_COMPLETED
    DEPLOY_STATUS = topics.DEPLOY_STATUS
    ALERT_FIRING = topics.ALERT_FIRING
    ALERT_RESOLVED = topics.ALERT_RESOLVED


class Channel(enum.StrEnum):
    IN_APP = "in_app"
    EMAIL = "email"
    WEBHOOK = "webhook"


class NotificationStatus(enum.StrEnum):
    """in_app: sent (unread) → read. email/webhook: pending → sent | failed."""

    PENDING = "pending"
    SENT = "sent"
    READ = "read"
    FAILED = "failed"


# Project roles notified by default for each event ("owner" is the project's owner). Users named in the
# event payload ("user_ids": authors, reviewers, whoever launched the agent) are always notified too.
EVENT_ROLES: dict[EventType, frozenset[str]] = {
    EventType.BUILD_FAILED: frozenset({"owner", "developer"}),
    EventType.MR_CREATED: frozenset({"owner", "developer"}),
    EventType.MR_MERGED: frozenset({"owner"}),
    EventType.REVIEW_REQUESTED: frozenset(),
    EventType.AGENT_COMPLETED: frozenset(),
    EventType.DEPLOY_STATUS: frozenset({"owner", "ops"}),
    EventType.ALERT_FIRING: frozenset({"owner", "ops"}),
    EventType.ALERT_RESOLVED: frozenset({"owner", "ops"}),
}

# Without a preference for an event, a user gets it in the app and by email.
DEFAULT_CHANNELS: frozenset[Channel] = frozenset({Channel.IN_APP, Channel.EMAIL})


@attrs.frozen
class Recipient:
    """A user who may be notified, with where to reach them."""

    user_id: uuid.UUID
    name: str
    email: str | None = None


@attrs.frozen
class Preferences:
    """A user's channels per event type (missing: DEFAULT_CHANNELS) and their own webhook URL."""

    user_id: uuid.UUID
    events: dict[EventType, frozenset[Channel]] = attrs.field(factory=dict)
    webhook_url: str | None = None
    updated_at: datetime | None = None

    def channels_for(self, event: EventType) -> frozenset[Channel]:
        return self.events.get(event, DEFAULT_CHANNELS)

    @classmethod
    def of(cls, user_id: uuid.UUID, events: Mapping[EventType, Iterable[Channel]],
           webhook_url: str | None) -> Preferences:
        """Preferences from the channels chosen per event type (values checked: an unknown event type or
        channel, or a webhook URL that is not http(s), is an InvalidInput naming the field)."""
        chosen: dict[EventType, frozenset[Channel]] = {}
        for key, value in events.items():
            try:
                event = EventType(key)
            except ValueError:
                known = ", ".join(e.value for e in EventType)
                raise InvalidInput(f"unknown event type {key!r}; known: {known}", field=f"events.{key}") from None
            try:
                chosen[event] = frozenset(Channel(c) for c in value)
            except ValueError:
                known = ", ".join(c.value for c in Channel)
                raise InvalidInput(f"events.{key}: channels are {known}", field=f"events.{key}") from None
        if webhook_url is not None and not webhook_url.startswith(("http://", "https://")):
            raise InvalidInput("webhook_url must be an http(s) URL or null", field="webhook_url")
        return cls(user_id=user_id, events=chosen, webhook_url=webhook_url or None)


@attrs.frozen
class RenderedMessage:
    """A notification rendered for people: subject, plain text and HTML."""

    subject: str
    text: str
    html: str


@attrs.frozen
class Notification:
    """One notification of one user on one channel."""

    id: uuid.UUID
    user_id: uuid.UUID
    type: EventType
    channel: Channel
    status: NotificationStatus
    subject: str
    body: str
    created_at: datetime
    html: str | None = None
    project_id: uuid.UUID | None = None
    ref_type: str | None = None
    ref_id: uuid.UUID | None = None
    target: str | None = None  # email address or webhook URL, fixed when planned
    dedupe_key: str | None = None
    event_id: uuid.UUID | None = None
    payload: dict[str, Any] = attrs.field(factory=dict)
    attempts: int = 0
    next_attempt_at: datetime | None = None
    last_error: str | None = None
    sent_at: datetime | None = None
    read_at: datetime | None = None
