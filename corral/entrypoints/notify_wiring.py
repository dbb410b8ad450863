"""Wiring of notifications: the planner (an outbox consumer), the dispatcher and its loop, the inbox service."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from corral.adapters.notify_templates import JinjaRenderer
from corral.adapters.webhooks import AiohttpWebhookTransport
from corral.core.errors import InvalidInput
from corral.core.notify.dispatcher import NotificationDispatcher
from corral.core.notify.planner import NotificationPlanner
from corral.core.notify.ports import EmailSender
from corral.core.notify.service import NotificationService
from corral.entrypoints.outages import LoopErrors
from corral.entrypoints.platform import Platform

__all__ = ["wire_notify"]

log = logging.getLogger("corral.notify")
DISPATCH_IDLE_SECONDS = 2.0


async def wire_notify(platform: Platform) -> None:
    """Register the planner as a consumer of the platform's outbox relay, the dispatcher and
    NotificationService; start the delivery loop."""
    settings = platform.settings
    uow_factory, clock = platform.uow_factory, platform.clock
    planner = NotificationPlanner(
        JinjaRenderer(), clock, base_url=settings.public_url(), rate_limit_per_hour=settings.notify_rate_limit_per_hour,
        platform_webhook_url=settings.notify_webhook_url,
    )
    platform.relay.consumers.append(planner.fan_out)
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

    errors = LoopErrors("notification delivery")

    async def notification_delivery() -> None:
        while True:
            try:
                busy = await dispatcher.deliver_due()
            except Exception as exc:
                await asyncio.sleep(errors.failed(exc))
                continue
            errors.succeeded()
            if not busy:
                await asyncio.sleep(DISPATCH_IDLE_SECONDS)

    platform.background.append(notification_delivery)
