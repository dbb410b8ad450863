"""The user's side of notifications: the in-app inbox and their preferences."""

from __future__ import annotations

import uuid

import attrs

from corral.core.audit.model import AuditEntry
from corral.core.clock import Clock
from corral.core.errors import InvalidInput, NotFound
from corral.core.ids import uuid7
from corral.core.notify.commands import PreferencesUpdate
from corral.core.notify.model import Channel, Notification, NotificationStatus, Preferences
from corral.core.outbound import check_url
from corral.core.pagination import Page, clamp_limit
from corral.core.secrets.ports import Actor
from corral.core.uow import UnitOfWork, UnitOfWorkFactory

__all__ = ["NotificationService"]

_STATUS_FILTERS = {
    "unread": (Channel.IN_APP, NotificationStatus.SENT),
    "read": (Channel.IN_APP, NotificationStatus.READ),
    "pending": (None, NotificationStatus.PENDING),
    "sent": (None, NotificationStatus.SENT),
    "failed": (None, NotificationStatus.FAILED),
}


@attrs.define
class NotificationService:
    """List, count and mark the caller's notifications; read and replace their preferences."""

    uow_factory: UnitOfWorkFactory
    clock: Clock
    allow_private_webhooks: bool = False  # CORRAL_WEBHOOK_ALLOW_PRIVATE_TARGETS (see corral.core.outbound)

    async def list(
        self,
        actor: Actor,
        *,
        status: str | None = None,
        channel: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Page[Notification]:
        """The caller's notifications, newest first. ``status``: unread, read, pending, sent, failed.

        Without ``channel`` the in-app inbox is listed, except for the delivery
        statuses pending/sent/failed, which span every channel.
        """
        chosen_channel: Channel | None = Channel.IN_APP
        chosen_status: NotificationStatus | None = None
        if status is not None:
            if status not in _STATUS_FILTERS:
                raise InvalidInput(f"status must be one of {', '.join(_STATUS_FILTERS)}", field="status")
            chosen_channel, chosen_status = _STATUS_FILTERS[status]
        if channel is not None:
            try:
                chosen_channel = Channel(channel)
            except ValueError:
                raise InvalidInput(
                    f"channel must be one of {', '.join(c.value for c in Channel)}", field="channel"
                ) from None
        async with self.uow_factory() as uow:
            return await uow.notifications.list_for_user(
                actor.user_id, channel=chosen_channel, status=chosen_status, limit=clamp_limit(limit), cursor=cursor
            )

    async def unread_count(self, actor: Actor) -> int:
        """In-app notifications the caller has not read."""
        async with self.uow_factory() as uow:
            return await uow.notifications.unread_count(actor.user_id)

    async def mark_read(self, actor: Actor, notification_id: uuid.UUID) -> Notification:
        """Mark one of the caller's in-app notifications read (idempotent). NotFound for anyone else's."""
        async with self.uow_factory() as uow:
            n = await uow.notifications.get(notification_id)
            if n is None or n.user_id != actor.user_id:
                raise NotFound(f"notification {notification_id} not found")
            if n.channel is not Channel.IN_APP:
                raise InvalidInput("only in-app notifications can be marked read", field="id")
            if n.status is NotificationStatus.READ:
                return n
            n = attrs.evolve(n, status=NotificationStatus.READ, read_at=self.clock.now())
            await uow.notifications.update(n)
            await self._audit(uow, actor, "notification.read", n.id, {"type": n.type.value})
            await uow.commit()
        return n

    async def preferences(self, actor: Actor) -> Preferences:
        """The caller's preferences (defaults when never set)."""
        async with self.uow_factory() as uow:
            return await uow.notification_preferences.get(actor.user_id) or Preferences(user_id=actor.user_id)

    async def set_preferences(self, actor: Actor, command: PreferencesUpdate) -> Preferences:
        """Replace the caller's preferences."""
        prefs = attrs.evolve(Preferences.of(actor.user_id, command.events, command.webhook_url),
                             updated_at=self.clock.now())
        if prefs.webhook_url is not None:
            check_url(prefs.webhook_url, field="webhook_url", allow_private=self.allow_private_webhooks)
        async with self.uow_factory() as uow:
            await uow.notification_preferences.put(prefs)
            await self._audit(
                uow, actor, "notification.preferences", actor.user_id,
                {"events": {k.value: sorted(c.value for c in v) for k, v in prefs.events.items()},
                 "webhook": prefs.webhook_url is not None},
            )
            await uow.commit()
        return prefs

    async def _audit(
        self, uow: UnitOfWork, actor: Actor, action: str, resource_id: uuid.UUID, detail: dict[str, object]
    ) -> None:
        await uow.audit.record(
            AuditEntry(
                id=uuid7(), actor_id=actor.user_id, actor_name=actor.name, action=action, resource="notification",
                created_at=self.clock.now(), resource_id=resource_id, detail=detail,
            )
        )
