"""In-memory fakes of the notification ports, plus a recording mail sender and a plain renderer."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import attrs

from corral.core.errors import Unavailable
from corral.core.notify.model import (
    Channel,
    EventType,
    Notification,
    NotificationStatus,
    Preferences,
    Recipient,
    RenderedMessage,
)
from corral.core.pagination import Page, decode_cursor, encode_cursor

__all__ = [
    "InMemoryNotificationStore",
    "InMemoryPreferenceStore",
    "InMemoryRecipientDirectory",
    "NotifyTables",
    "PlainRenderer",
    "RecordingEmailSender",
]


@attrs.define
class NotifyTables:
    """State shared by the in-memory stores of one fake database."""

    notifications: dict[uuid.UUID, Notification] = attrs.field(factory=dict)
    preferences: dict[uuid.UUID, Preferences] = attrs.field(factory=dict)
    users: dict[uuid.UUID, Recipient] = attrs.field(factory=dict)
    # (project_id, role) -> user ids; role "owner" for the project's owner
    members: dict[tuple[uuid.UUID, str], set[uuid.UUID]] = attrs.field(factory=dict)
    locked: set[uuid.UUID] = attrs.field(factory=set)  # claimed by an open unit of work

    def snapshot(self) -> Any:
        return copy.copy(self.notifications), copy.copy(self.preferences)

    def restore(self, snap: Any) -> None:
        self.notifications, self.preferences = snap


@attrs.define
class InMemoryNotificationStore:
    tables: NotifyTables = attrs.field(factory=NotifyTables)
    claimed: set[uuid.UUID] = attrs.field(factory=set)

    async def add(self, notification: Notification) -> bool:
        n = notification
        if n.dedupe_key is not None and any(
            o.user_id == n.user_id and o.channel == n.channel and o.dedupe_key == n.dedupe_key
            for o in self.tables.notifications.values()
        ):
            return False
        self.tables.notifications[n.id] = n
        return True

    async def get(self, notification_id: uuid.UUID) -> Notification | None:
        return self.tables.notifications.get(notification_id)

    async def update(self, notification: Notification) -> None:
        if notification.id in self.tables.notifications:
            self.tables.notifications[notification.id] = notification

    async def list_for_user(
        self,
        user_id: uuid.UUID,
        *,
        channel: Channel | None,
        status: NotificationStatus | None,
        limit: int,
        cursor: str | None,
    ) -> Page[Notification]:
        after = decode_cursor(cursor)
        items = sorted(
            (
                n for n in self.tables.notifications.values()
                if n.user_id == user_id and (channel is None or n.channel is channel)
                and (status is None or n.status is status)
            ),
            key=lambda n: n.id, reverse=True,
        )
        if after is not None:
            items = [n for n in items if str(n.id) < str(after.get("id"))]
        page = items[:limit]
        more = len(items) > limit
        return Page(page, encode_cursor({"id": str(page[-1].id)}) if more else None)

    async def unread_count(self, user_id: uuid.UUID) -> int:
        return sum(
            1 for n in self.tables.notifications.values()
            if n.user_id == user_id and n.channel is Channel.IN_APP and n.status is NotificationStatus.SENT
        )

    async def count_since(self, user_id: uuid.UUID, channel: Channel, since: datetime) -> int:
        return sum(
            1 for n in self.tables.notifications.values()
            if n.user_id == user_id and n.channel is channel and n.created_at >= since
            and not (n.status is NotificationStatus.FAILED and n.attempts == 0)
        )

    async def claim_due(self, now: datetime, limit: int) -> list[Notification]:
        due = sorted(
            (
                n for n in self.tables.notifications.values()
                if n.status is NotificationStatus.PENDING and n.next_attempt_at is not None
                and n.next_attempt_at <= now and n.id not in self.tables.locked
            ),
            key=lambda n: n.id,
        )[:limit]
        for n in due:
            self.tables.locked.add(n.id)
            self.claimed.add(n.id)
        return due

    def release(self) -> None:
        """Called by the fake unit of work when it ends: the claimed rows are unlocked."""
        self.tables.locked -= self.claimed
        self.claimed.clear()


@attrs.define
class InMemoryPreferenceStore:
    tables: NotifyTables = attrs.field(factory=NotifyTables)

    async def get(self, user_id: uuid.UUID) -> Preferences | None:
        return self.tables.preferences.get(user_id)

    async def put(self, preferences: Preferences) -> None:
        self.tables.preferences[preferences.user_id] = preferences

    async def get_many(self, user_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Preferences]:
        return {u: self.tables.preferences[u] for u in user_ids if u in self.tables.preferences}


@attrs.define
class InMemoryRecipientDirectory:
    tables: NotifyTables = attrs.field(factory=NotifyTables)

    def add_user(self, recipient: Recipient) -> None:
        self.tables.users[recipient.user_id] = recipient

    def add_member(self, project_id: uuid.UUID, role: str, user_id: uuid.UUID) -> None:
        self.tables.members.setdefault((project_id, role), set()).add(user_id)

    async def project_recipients(self, project_id: uuid.UUID, roles: frozenset[str]) -> list[Recipient]:
        ids = {u for role in roles for u in self.tables.members.get((project_id, role), set())}
        return [self.tables.users[u] for u in sorted(ids) if u in self.tables.users]

    async def users(self, user_ids: Iterable[uuid.UUID]) -> list[Recipient]:
        return [self.tables.users[u] for u in user_ids if u in self.tables.users]


@attrs.define
class PlainRenderer:
    """Renders ``"<event>: <title>"`` with the payload as text; enough for tests that do not look at wording."""

    def render(self, event: EventType, context: dict[str, Any]) -> RenderedMessage:
        title = str(context.get("title", ""))
        return RenderedMessage(f"{event.value}: {title}", f"{event.value}\n{title}", f"<p>{event.value}</p>")


@attrs.define
class RecordingEmailSender:
    """Records every mail; raises Unavailable for addresses in ``failing``."""

    sent: list[tuple[str, RenderedMessage, dict[str, str]]] = attrs.field(factory=list)
    failing: set[str] = attrs.field(factory=set)

    async def send(self, to: str, message: RenderedMessage, *, headers: dict[str, str] | None = None) -> None:
        if to in self.failing:
            raise Unavailable(f"relay refused {to}")
        self.sent.append((to, message, dict(headers or {})))
