"""Wiring of notifications: the outbox relay (shared by every outbox consumer), planner, dispatcher, inbox."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

from corral.adapters.notify_templates import JinjaRenderer
from corral.adapters.webhooks import AiohttpWebhookTransport
from corral.core.clock import Clock
from corral.core.errors import InvalidInput
from corral.core.notify.dispatcher import NotificationDispatcher
from corral.core.notify.planner import NotificationPlanner
from corral.core.notify.ports import EmailSender
from corral.core.notify.service import NotificationService
from corral.core.outbox.relay import OutboxRelay
from corral.core.uow import UnitOfWorkFactory

# ``platform`` below is corral.entrypoints.bootstrap.Platform, typed Any like every wiring's: bootstrap imports
# the wirings, so they do not import it back (no import cycle).
Platform = Any

__all__ = ["OUTBOX_CONSUMERS", "RELAY_IDLE_SECONDS", "wire_notifications"]

log = logging.getLogger("corral.notify")
RELAY_IDLE_SECONDS = 0.5
# container key of the list of outbox consumers: callables (uow, event) -> awaitable, see OutboxRelay
OUTBOX_CONSUMERS = "outbox_consumers"
DISPATCH_IDLE_SECONDS = 2.0


async def wire_notifications(platform: Platform) -> None:
    """Register the planner as an outbox consumer (starting the shared relay), the dispatcher and
    NotificationService; start the delivery loop."""
    settings = platform.settings
    uow_factory: UnitOfWorkFactory = platform.resolve(UnitOfWorkFactory)
    clock: Clock = platform.resolve(Clock)
    planner = NotificationPlanner(
        JinjaRenderer(), clock, base_url=settings.public_url(), rate_limit_per_hour=settings.notify_rate_limit_per_hour,
        platform_webhook_url=settings.notify_webhook_url,
    )
    relay = _shared_relay(platform, uow_factory)
    relay.consumers.append(planner.fan_out)
    email: EmailSender | None = None
    if settings.smtp_host:
        from corral.adapters.smtp import SmtpEmailSender

        email = SmtpEmailSender(
            host=settings.smtp_host, port=settings.smtp_port, sender=settings.smtp_from,
            security=settings.smtp_security, username=settings.smtp_username, password=settings.smtp_password,
            timeout=settings.smtp_timeout, verify_tls=settings.smtp_verify_tls,
        )
    # one transport and one setting for project and notification webhooks (never relaxed by the environment)
    transport = AiohttpWebhookTransport(allow_private=settings.webhook_allow_private_targets)
    if settings.notify_webhook_url:
        try:
            transport.check_target(settings.notify_webhook_url, field="notify_webhook_url")
        except InvalidInput as exc:
            log.warning("CORRAL_NOTIFY_WEBHOOK_URL will be refused at delivery: %s", exc.message)
    platform.closers.append(transport.aclose)
    dispatcher = NotificationDispatcher(
        uow_factory, email, transport, clock, webhook_secret=settings.notify_webhook_secret,
        max_attempts=settings.notify_max_attempts, base_delay=timedelta(seconds=30),
    )
    platform.register(NotificationPlanner, planner)
    platform.register(NotificationDispatcher, dispatcher)
    platform.register(NotificationService, NotificationService(
        uow_factory, clock, allow_private_webhooks=settings.webhook_allow_private_targets))

    async def notification_delivery() -> None:
        while True:
            if not await dispatcher.deliver_due():
                await asyncio.sleep(DISPATCH_IDLE_SECONDS)

    platform.background.append(notification_delivery)


def _shared_relay(platform: Platform, uow_factory: UnitOfWorkFactory) -> OutboxRelay:
    """The one outbox relay of the process (a second relay with other consumers would steal their events).

    Domains append their consumer to ``platform.resolve(OutboxRelay).consumers`` (the same list is also
    registered under ``OUTBOX_CONSUMERS``); whoever wires first creates it and runs its loop.
    """
    try:
        existing: OutboxRelay = platform.resolve(OutboxRelay)
        return existing
    except Exception:  # punq: no relay registered yet
        pass
    try:
        consumers = platform.resolve(OUTBOX_CONSUMERS)
        first = False
    except Exception:  # punq: nobody registered consumers yet
        consumers = []
        platform.register(OUTBOX_CONSUMERS, consumers)
        first = True
    relay = OutboxRelay(uow_factory, consumers)
    platform.register(OutboxRelay, relay)
    if first:

        async def outbox_relay() -> None:
            while True:
                if not await relay.run_once():
                    await asyncio.sleep(RELAY_IDLE_SECONDS)

        platform.background.append(outbox_relay)
    return relay
