"""In-memory fakes of the notification ports, plus a recording mail sender and a plain renderer."""

from __future__ import annotations

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
from corral.core.pagination import Page, cursor_str, decode_cursor, encode_cursor
from corral.fakes.identity import InMemoryIdentityData
from corral.fakes.outbox import RowLocks

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
    # (project_id, role) -> user ids; role "owner" for the project's owner (no projects fake in the UoW)
    members: dict[tuple[uuid.UUID, str], frozenset[uuid.UUID]] = attrs.field(factory=dict)


@attrs.define
class InMemoryNotificationStore:
    """NotificationStore over NotifyTables; ``claim_due`` locks rows in ``locks`` for ``owner`` (SKIP LOCKED)."""

    tables: NotifyTables = attrs.field(factory=NotifyTables)
    locks: RowLocks = attrs.field(factory=RowLocks)
    owner: object = attrs.field(factory=object)

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
        after = cursor_str(decode_cursor(cursor), "id")
        items = sorted(
            (
                n for n in self.tables.notifications.values()
                if n.user_id == user_id and (channel is None or n.channel is channel)
                and (status is None or n.status is status)
            ),
            key=lambda n: n.id, reverse=True,
        )
        if after is not None:
            items = [n for n in items if str(n.id) < after]
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
                and n.next_attempt_at <= now and self.locks.held.get(n.id, self.owner) is self.owner
            ),
            key=lambda n: (n.next_attempt_at, n.id),
        )[:limit]
        for n in due:
            self.locks.held[n.id] = self.owner
        return due

    async def purge_old(self, *, in_app_before: datetime, delivery_before: datetime, limit: int) -> int:
        finished = (NotificationStatus.SENT, NotificationStatus.FAILED)
        old = sorted(
            (
                n for n in self.tables.notifications.values()
                if self.locks.held.get(n.id, self.owner) is self.owner
                and (n.created_at < in_app_before if n.channel is Channel.IN_APP
                     else n.status in finished and n.created_at < delivery_before)
            ),
            key=lambda n: (n.created_at, n.id),
        )[:limit]
        for n in old:
            del self.tables.notifications[n.id]
        return len(old)


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
    """Recipients from the identity fake (active users, project role bindings) plus ``tables`` extras."""

    tables: NotifyTables = attrs.field(factory=NotifyTables)
    identity: InMemoryIdentityData | None = None

    def add_user(self, recipient: Recipient) -> None:
        self.tables.users[recipient.user_id] = recipient

    def add_member(self, project_id: uuid.UUID, role: str, user_id: uuid.UUID) -> None:
        key = (project_id, role)
        self.tables.members[key] = self.tables.members.get(key, frozenset()) | {user_id}

    def _everyone(self) -> dict[uuid.UUID, Recipient]:
        people = dict(self.tables.users)
        if self.identity is not None:
            for u in self.identity.users.values():
                if u.is_active:
                    people[u.id] = Recipient(u.id, u.name, u.email)
        return people

    async def project_recipients(self, project_id: uuid.UUID, roles: frozenset[str]) -> list[Recipient]:
        ids = {u for role in roles for u in self.tables.members.get((project_id, role), frozenset())}
        if self.identity is not None:
            ids |= {b.user_id for b in self.identity.bindings.values()
                    if b.project_id == project_id and b.role_name in roles}
        people = self._everyone()
        return [people[u] for u in sorted(ids) if u in people]

    async def users(self, user_ids: Iterable[uuid.UUID]) -> list[Recipient]:
        people = self._everyone()
        return [people[u] for u in sorted(set(user_ids)) if u in people]


@attrs.define
class PlainRenderer:
    """Renders ``"<event>: <title>"`` with the payload as text; enough for tests that do not look at wording."""

    def render(self, event: EventType, context: dict[str, Any]) -> RenderedMessage:
        title = str(context.get("title", ""))
        return RenderedMessage(f"{event.value}: {title}", f"{event.value}\n{title}", f"<p>{event.value}</p>")


@attrs.define
class RecordingEmailSender:
    """Records every mail; raises Unavailable for addresses in ``failing``, or for every address while
    ``unavailable`` is set (a relay that cannot be reached)."""

    sent: list[tuple[str, RenderedMessage, dict[str, str]]] = attrs.field(factory=list)
    failing: set[str] = attrs.field(factory=set)
    unavailable: bool = False

    async def send(self, to: str, message: RenderedMessage, *, headers: dict[str, str] | None = None) -> None:
        if self.unavailable:
            raise Unavailable("SMTP relay cannot be reached")
        if to in self.failing:
            raise Unavailable(f"relay refused {to}")
        self.sent.append((to, message, dict(headers or {})))
