"""Delivering pending email and webhook notifications: one replica per notification, retries with backoff."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import timedelta

import attrs

from corral.core.clock import Clock
from corral.core.errors import CorralError
from corral.core.notify.model import Channel, Notification, NotificationStatus, RenderedMessage
from corral.core.notify.ports import EmailSender
from corral.core.projects.ports import WebhookTransport
from corral.core.projects.webhooks import delivery_headers
from corral.core.uow import UnitOfWorkFactory

__all__ = ["NotificationDispatcher", "webhook_body"]

log = logging.getLogger("corral.notify")
_MAX_ERROR = 500


def webhook_body(n: Notification) -> bytes:
    """The JSON a webhook receiver gets for a notification."""
    return json.dumps(
        {
            "id": str(n.id), "event": n.type.value, "user_id": str(n.user_id),
            "project_id": str(n.project_id) if n.project_id else None, "subject": n.subject, "body": n.body,
            "ref_type": n.ref_type, "ref_id": str(n.ref_id) if n.ref_id else None,
            "created_at": n.created_at.isoformat(), "payload": n.payload,
        },
        separators=(",", ":"), default=str,
    ).encode()


@attrs.define
class NotificationDispatcher:
    """Claims due notifications (locked: other replicas skip them), sends each, records the outcome.

    Each notification is attempted on its own: a failing channel or recipient
    never holds up another. A failed attempt is retried after
    ``base_delay * 2**(attempts-1)`` (capped at ``max_delay``) until
    ``max_attempts``, then the notification is failed.
    """

    uow_factory: UnitOfWorkFactory
    email: EmailSender | None
    webhooks: WebhookTransport
    clock: Clock
    webhook_secret: str | None = None
    max_attempts: int = 5
    base_delay: timedelta = timedelta(seconds=30)
    max_delay: timedelta = timedelta(hours=1)
    batch_size: int = 50

    async def deliver_due(self) -> int:
        """Attempt one batch of due notifications; return how many were attempted."""
        async with self.uow_factory() as uow:
            due = await uow.notifications.claim_due(self.clock.now(), self.batch_size)
            if not due:
                return 0
            outcomes = await asyncio.gather(*(self._attempt(n) for n in due))
            for n in outcomes:
                await uow.notifications.update(n)
            await uow.commit()
        return len(due)

    async def _attempt(self, n: Notification) -> Notification:
        attempts = n.attempts + 1
        try:
            await self._send(n)
        except Exception as exc:  # any failure of one delivery is recorded on it, never propagated
            if isinstance(exc, CorralError):
                reason = exc.message  # transports' messages name no address, port or driver detail
            else:  # what a driver raised stays in the log: users see no network details
                log.warning("notification %s (%s): delivery error", n.id, n.channel.value, exc_info=True)
                reason = "delivery failed"
            now = self.clock.now()
            if attempts >= self.max_attempts:
                log.warning("notification %s (%s) failed for good: %s", n.id, n.channel.value, reason)
                return attrs.evolve(n, attempts=attempts, status=NotificationStatus.FAILED, next_attempt_at=None,
                                    last_error=reason[:_MAX_ERROR])
            delay = min(self.base_delay * (2 ** (attempts - 1)), self.max_delay)
            return attrs.evolve(n, attempts=attempts, next_attempt_at=now + delay, last_error=reason[:_MAX_ERROR])
        return attrs.evolve(n, attempts=attempts, status=NotificationStatus.SENT, sent_at=self.clock.now(),
                            next_attempt_at=None, last_error=None)

    async def _send(self, n: Notification) -> None:
        if n.target is None:
            raise CorralError(f"no {n.channel.value} address for this recipient")
        if n.channel is Channel.EMAIL:
            if self.email is None:
                raise CorralError("email is not configured (set CORRAL_SMTP_HOST)")
            await self.email.send(
                n.target, RenderedMessage(n.subject, n.body, n.html or ""),
                headers={"X-Corral-Event": n.type.value, "X-Corral-Notification": str(n.id)},
            )
        elif n.channel is Channel.WEBHOOK:
            body = webhook_body(n)
            headers = delivery_headers("notification", n.id, body, self.webhook_secret)
            headers["X-Corral-Notification-Event"] = n.type.value
            answer = await self.webhooks.post(n.target, body, headers)
            if not 200 <= answer.status < 300:
                raise CorralError(f"webhook answered HTTP {answer.status}")
        else:
            raise CorralError(f"channel {n.channel.value} is not delivered by the dispatcher")
