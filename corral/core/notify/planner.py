"""The outbox consumer: an event becomes one notification per recipient and chosen channel."""

from __future__ import annotations

import uuid
from datetime import timedelta

import attrs

from corral.core.clock import Clock
from corral.core.ids import uuid7
from corral.core.notify.events import normalize
from corral.core.notify.model import (
    EVENT_ROLES,
    Channel,
    EventType,
    Notification,
    NotificationStatus,
    Preferences,
    Recipient,
)
from corral.core.notify.ports import MessageRenderer
from corral.core.outbox.model import OutboxEvent
from corral.core.uow import UnitOfWork

__all__ = ["NotificationPlanner"]

_REF_TYPES = {
    EventType.BUILD_FAILED: "pipeline", EventType.MR_CREATED: "mr", EventType.MR_MERGED: "mr",
    EventType.REVIEW_REQUESTED: "mr", EventType.AGENT_COMPLETED: "session", EventType.DEPLOY_STATUS: "deploy",
    EventType.ALERT_FIRING: "alert", EventType.ALERT_RESOLVED: "alert",
}


def _uuid(value: object) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value is not None else None
    except ValueError:
        return None


def _uuids(value: object) -> list[uuid.UUID]:
    if not isinstance(value, list | tuple):
        return []
    return [u for u in (_uuid(v) for v in value) if u is not None]


def _channels(value: object) -> frozenset[Channel] | None:
    """``payload["channels"]`` (e.g. an alert rule's notify_channels): the external channels the producer wants."""
    if not isinstance(value, list) or not value:
        return None
    return frozenset(Channel(v) for v in value if v in {c.value for c in Channel})


@attrs.define
class NotificationPlanner:
    """Turns outbox events into pending notifications (in_app rows are delivered by being written).

    Recipients: users holding the event's project roles (EVENT_ROLES) plus the
    users named in ``payload["user_ids"]``, minus ``payload["actor_id"]`` (nobody
    is told about their own action unless ``payload["notify_actor"]``). A
    producer may narrow the external channels with ``payload["channels"]``
    (the in-app inbox always gets it). See
    ``corral.core.notify.events`` for the events understood. Each recipient's preferences choose the
    channels. Dedupe: ``payload["dedupe_key"]`` or the event id, per user and
    channel, so a redelivered event notifies nobody twice. Email and webhook
    beyond ``rate_limit_per_hour`` per user and channel are recorded as failed
    ("rate limited") instead of being sent; the in-app inbox always gets it.
    """

    renderer: MessageRenderer
    clock: Clock
    base_url: str = ""
    rate_limit_per_hour: int = 60
    platform_webhook_url: str | None = None

    async def fan_out(self, uow: UnitOfWork, event: OutboxEvent) -> int:
        normalized = normalize(event)
        if normalized is None:
            return 0  # not a notifying event (push, issue, ...)
        kind, payload = normalized
        project_id = event.project_id or _uuid(payload.get("project_id"))
        recipients: dict[uuid.UUID, Recipient] = {}
        roles = EVENT_ROLES[kind]
        if project_id is not None and roles:
            for r in await uow.notification_recipients.project_recipients(project_id, roles):
                recipients[r.user_id] = r
        named = _uuids(payload.get("user_ids"))
        if named:
            for r in await uow.notification_recipients.users(named):
                recipients[r.user_id] = r
        actor = _uuid(payload.get("actor_id"))
        if actor is not None and not payload.get("notify_actor"):
            recipients.pop(actor, None)
        if not recipients:
            return 0
        prefs = await uow.notification_preferences.get_many(recipients)
        context = {**payload, "event": kind.value, "project_id": str(project_id) if project_id else None,
                   "base_url": self.base_url}
        message = self.renderer.render(kind, context)
        now = self.clock.now()
        dedupe = str(payload.get("dedupe_key") or f"{kind.value}:{event.id}")
        allowed = _channels(payload.get("channels"))
        written = 0
        for user_id, recipient in sorted(recipients.items()):
            pref = prefs.get(user_id) or Preferences(user_id=user_id)
            chosen = pref.channels_for(kind)
            if allowed is not None:
                chosen = chosen & (allowed | {Channel.IN_APP})
            for channel in sorted(chosen):
                target = self._target(channel, recipient, pref)
                if channel is not Channel.IN_APP and target is None:
                    continue  # no address for this channel: nothing to send
                status, error = NotificationStatus.PENDING, None
                if channel is Channel.IN_APP:
                    status = NotificationStatus.SENT
                elif await uow.notifications.count_since(user_id, channel, now - timedelta(hours=1)) >= (
                    self.rate_limit_per_hour
                ):
                    status, error = NotificationStatus.FAILED, (
                        f"rate limited: more than {self.rate_limit_per_hour} {channel.value} notifications in an hour"
                    )
                added = await uow.notifications.add(
                    Notification(
                        id=uuid7(), user_id=user_id, type=kind, channel=channel, status=status,
                        subject=message.subject, body=message.text,
                        html=message.html if channel is Channel.EMAIL else None,
                        created_at=now, project_id=project_id, ref_type=_REF_TYPES[kind],
                        ref_id=_uuid(payload.get("ref_id")), target=target, dedupe_key=dedupe, event_id=event.id,
                        payload=payload, next_attempt_at=now if status is NotificationStatus.PENDING else None,
                        last_error=error, sent_at=now if channel is Channel.IN_APP else None,
                    )
                )
                written += int(added)
        return written

    def _target(self, channel: Channel, recipient: Recipient, pref: Preferences) -> str | None:
        if channel is Channel.EMAIL:
            return recipient.email
        if channel is Channel.WEBHOOK:
            return pref.webhook_url or self.platform_webhook_url
        return None
