"""Ports of the notifications domain: stores (bound to the unit of work), the renderer and the mail sender.

Webhook notifications go through the projects domain's ``WebhookTransport``
and are signed like project webhooks.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Protocol

from corral.core.notify.model import (
    Channel,
    EventType,
    Notification,
    NotificationStatus,
    Preferences,
    Recipient,
    RenderedMessage,
)
from corral.core.pagination import Page

__all__ = ["EmailSender", "MessageRenderer", "NotificationStore", "PreferenceStore", "RecipientDirectory"]


class NotificationStore(Protocol):
    """Notifications of every channel, with their delivery state."""

    async def add(self, notification: Notification) -> bool:
        """Insert; False (and nothing written) when the user already has one with the same channel and dedupe key."""
        ...

    async def get(self, notification_id: uuid.UUID) -> Notification | None:
        """One notification, or None."""
        ...

    async def update(self, notification: Notification) -> None:
        """Replace status, attempts, next_attempt_at, last_error, sent_at, read_at."""
        ...

    async def list_for_user(
        self,
        user_id: uuid.UUID,
        *,
        channel: Channel | None,
        status: NotificationStatus | None,
        limit: int,
        cursor: str | None,
    ) -> Page[Notification]:
        """The user's notifications, newest first, cursor-paginated."""
        ...

    async def unread_count(self, user_id: uuid.UUID) -> int:
        """In-app notifications of the user not yet read."""
        ...

    async def count_since(self, user_id: uuid.UUID, channel: Channel, since: datetime) -> int:
        """Notifications of the user on ``channel`` created at or after ``since`` that were not refused."""
        ...

    async def claim_due(self, now: datetime, limit: int) -> list[Notification]:
        """Up to ``limit`` pending email/webhook notifications due at ``now``, oldest first.

        Rows stay locked until the unit of work ends; rows locked by another
        unit are skipped, so each notification is attempted by one replica at a time.
        """
        ...

    async def purge_old(self, *, in_app_before: datetime, delivery_before: datetime, limit: int) -> int:
        """Delete up to ``limit`` old notifications, oldest first, and return how many: in-app ones created
        before ``in_app_before`` (read or not) and email/webhook deliveries created before ``delivery_before``
        that are sent or failed (pending ones are kept). Rows another unit of work holds are skipped."""
        ...


class PreferenceStore(Protocol):
    """Per-user notification preferences."""

    async def get(self, user_id: uuid.UUID) -> Preferences | None:
        """The user's preferences, or None when never set (defaults apply)."""
        ...

    async def put(self, preferences: Preferences) -> None:
        """Create or replace the user's preferences."""
        ...

    async def get_many(self, user_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Preferences]:
        """Preferences of the users that have some."""
        ...


class RecipientDirectory(Protocol):
    """Who to notify: project members by role, and users by id (active users only)."""

    async def project_recipients(self, project_id: uuid.UUID, roles: frozenset[str]) -> list[Recipient]:
        """Active users holding one of ``roles`` in the project ("owner": the project's owner)."""
        ...

    async def users(self, user_ids: Iterable[uuid.UUID]) -> list[Recipient]:
        """The active users among ``user_ids``."""
        ...


class MessageRenderer(Protocol):
    """Turns an event into words (jinja2 templates in production)."""

    def render(self, event: EventType, context: dict[str, Any]) -> RenderedMessage:
        """Subject, text and HTML for ``event``; HTML is escaped, missing context keys render empty."""
        ...


class EmailSender(Protocol):
    """Sends mail through the configured SMTP relay."""

    async def send(self, to: str, message: RenderedMessage, *, headers: dict[str, str] | None = None) -> None:
        """Send a multipart/alternative mail (text and HTML). Unavailable with a short reason on any failure."""
        ...
