"""Webhooks: configuration, fan-out of outbox events into deliveries, signed delivery with retries."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import uuid
from datetime import timedelta
from typing import Any

import attrs

from corral.core.clock import Clock
from corral.core.commands import sent_fields
from corral.core.errors import CorralError, InvalidInput, NotFound, Unavailable
from corral.core.git.ports import GitRepositories
from corral.core.git.service import push_history
from corral.core.identity.model import SealedSecret
from corral.core.ids import uuid7
from corral.core.outbox.model import OutboxEvent
from corral.core.pagination import Page, clamp_limit, decode_cursor, encode_cursor
from corral.core.projects.commands import NewWebhook, WebhookChanges
from corral.core.projects.model import (
    UNSEALED_SECRET,
    WEBHOOK_EVENTS,
    Actor,
    DeliveryStatus,
    Project,
    Webhook,
    WebhookDelivery,
    event_for_topic,
)
from corral.core.projects.ports import WebhookTransport
from corral.core.projects.service import audit
from corral.core.projects.webhook_seal import WebhookSecretSealer
from corral.core.uow import UnitOfWork, UnitOfWorkFactory

__all__ = ["WebhookService", "delivery_headers", "sign"]

# Event names receivers written for GitHub / Gitea expect.
_GITHUB_EVENT = {
    "push": "push", "issue": "issues", "merge_request": "pull_request", "review": "pull_request_review",
    "pipeline": "workflow_run", "deployment": "deployment",
    "release": "release",
}
_EXCERPT = 1000


log = logging.getLogger("corral.webhooks")


def sign(secret: str, body: bytes) -> str:
    """Hex HMAC-SHA256 of the raw body (X-Gitea-Signature; X-Hub-Signature-256 adds 'sha256=')."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def delivery_headers(event: str, delivery_id: uuid.UUID, body: bytes, secret: str | None) -> dict[str, str]:
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Corral-Hookshot/1",
        "X-Corral-Event": event,
        "X-Corral-Delivery": str(delivery_id),
        "X-Gitea-Event": _GITHUB_EVENT.get(event, event),
        "X-Gitea-Delivery": str(delivery_id),
        "X-GitHub-Event": _GITHUB_EVENT.get(event, event),
        "X-GitHub-Delivery": str(delivery_id),
    }
    if secret:
        digest = sign(secret, body)
        headers["X-Corral-Signature"] = f"sha256={digest}"
        headers["X-Gitea-Signature"] = digest
        headers["X-Hub-Signature-256"] = f"sha256={digest}"
    return headers


def _events(value: list[str]) -> tuple[str, ...]:
    if not value:
        raise InvalidInput(f"events must be a non-empty list of: {', '.join(WEBHOOK_EVENTS)}", field="events")
    unknown = sorted(set(value) - set(WEBHOOK_EVENTS))
    if unknown:
        raise InvalidInput(f"unknown event(s) {', '.join(unknown)}; known: {', '.join(WEBHOOK_EVENTS)}",
                           field="events")
    return tuple(dict.fromkeys(value))


def _secret(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    if len(value) > 256:
        raise InvalidInput("secret must be a string of at most 256 characters", field="secret")
    return value


@attrs.define
class WebhookService:
    """Webhook configuration and delivery. Callers have already checked project:admin for changes."""

    uow_factory: UnitOfWorkFactory
    transport: WebhookTransport
    clock: Clock
    retry_base_seconds: float = 10.0  # attempt n waits base * 2**(n-1)
    max_attempts: int = 6
    concurrency: int = 8
    lease_seconds: float = 120.0  # longer than a delivery can take (transport timeout)
    repos: GitRepositories | None = None  # for the commits of push payloads (None: pushes without commits)
    sealer: WebhookSecretSealer | None = None  # secrets at rest; None: webhooks cannot have a secret

    # ---- configuration ---------------------------------------------------------------------------------
    def _url(self, value: str) -> str:
        if len(value) > 2048:
            raise InvalidInput("url must be an http(s) URL", field="url")
        self.transport.check_target(value, "url")  # corral.core.outbound.check_url
        return value

    def _seal(self, hook_id: uuid.UUID, secret: str | None) -> SealedSecret | None:
        if secret is None:
            return None
        if self.sealer is None:
            raise Unavailable("webhook secrets cannot be stored: no master key is configured")
        return self.sealer.seal(hook_id, secret)

    def _open(self, hook: Webhook) -> str | None:
        if hook.secret is None:
            return None
        if hook.secret == UNSEALED_SECRET or self.sealer is None:
            raise Unavailable("the webhook secret is not encrypted yet; Corral seals it at its next start")
        return self.sealer.open(hook.id, hook.secret)

    async def create(self, actor: Actor, project: Project, command: NewWebhook) -> Webhook:
        hook_id = uuid7()
        hook = Webhook(id=hook_id, project_id=project.id, url=self._url(command.url),
                       events=_events(list(command.events)), created_at=self.clock.now(),
                       secret=self._seal(hook_id, _secret(command.secret)), active=bool(command.active))
        async with self.uow_factory() as uow:
            await uow.webhooks.add(hook)
            await audit(uow, self.clock, actor, "webhook.create", "webhook", resource_id=hook.id,
                        project_id=project.id, detail={"url": hook.url, "events": list(hook.events)})
            await uow.commit()
        return hook

    async def list(self, project: Project) -> list[Webhook]:
        async with self.uow_factory() as uow:
            return await uow.webhooks.list(project.id)

    async def get(self, project: Project, hook_id: uuid.UUID) -> Webhook:
        async with self.uow_factory() as uow:
            hook = await uow.webhooks.get(project.id, hook_id)
        if hook is None:
            raise NotFound("no such webhook in this project")
        return hook

    async def update(self, actor: Actor, project: Project, hook_id: uuid.UUID, command: WebhookChanges) -> Webhook:
        changes = sent_fields(command)
        values: dict[str, Any] = {}
        if "url" in changes:
            values["url"] = self._url(changes["url"])
        if "events" in changes:
            values["events"] = _events(changes["events"])
        if "secret" in changes:
            values["secret"] = self._seal(hook_id, _secret(changes["secret"]))
        if "active" in changes:
            values["active"] = bool(changes["active"])
        async with self.uow_factory() as uow:
            hook = await uow.webhooks.get(project.id, hook_id)
            if hook is None:
                raise NotFound("no such webhook in this project")
            updated = attrs.evolve(hook, **values)
            await uow.webhooks.update(updated)
            await audit(uow, self.clock, actor, "webhook.update", "webhook", resource_id=hook.id,
                        project_id=project.id, detail={"fields": sorted(changes)})
            await uow.commit()
        return updated

    async def delete(self, actor: Actor, project: Project, hook_id: uuid.UUID) -> None:
        async with self.uow_factory() as uow:
            if not await uow.webhooks.delete(project.id, hook_id):
                raise NotFound("no such webhook in this project")
            await audit(uow, self.clock, actor, "webhook.delete", "webhook", resource_id=hook_id,
                        project_id=project.id)
            await uow.commit()

    async def deliveries(self, project: Project, hook_id: uuid.UUID, *, limit: int | None = None,
                         cursor: str | None = None) -> Page[WebhookDelivery]:
        await self.get(project, hook_id)
        size = clamp_limit(limit)
        decoded = decode_cursor(cursor)
        before = None
        if decoded is not None:
            try:
                before = uuid.UUID(str(decoded.get("before")))
            except ValueError:
                raise InvalidInput("cursor is not a cursor returned by this API", field="cursor") from None
        async with self.uow_factory() as uow:
            items = await uow.webhook_deliveries.list(hook_id, before=before, limit=size + 1)
        more = len(items) > size
        items = items[:size]
        return Page(items, encode_cursor({"before": str(items[-1].id)}) if more else None)

    async def redeliver(self, actor: Actor, project: Project, hook_id: uuid.UUID,
                        delivery_id: uuid.UUID) -> WebhookDelivery:
        """Queue the same payload again as a new delivery (attempted at once)."""
        async with self.uow_factory() as uow:
            hook = await uow.webhooks.get(project.id, hook_id)
            old = await uow.webhook_deliveries.get(delivery_id)
            if hook is None or old is None or old.webhook_id != hook.id:
                raise NotFound("no such delivery of this webhook")
            now = self.clock.now()
            new = WebhookDelivery(id=uuid7(), webhook_id=hook.id, project_id=project.id, event=old.event,
                                  payload=old.payload, status=DeliveryStatus.PENDING, created_at=now,
                                  next_attempt_at=now, redelivery_of=old.id)
            await uow.webhook_deliveries.add(new)
            await audit(uow, self.clock, actor, "webhook.redeliver", "webhook", resource_id=hook.id,
                        project_id=project.id, detail={"delivery": str(old.id)})
            await uow.commit()
        return new

    # ---- fan-out and delivery --------------------------------------------------------------------------
    async def fan_out(self, uow: UnitOfWork, event: OutboxEvent) -> int:
        """Outbox consumer: one pending delivery per active webhook subscribed to the event's kind. A push's
        payload gets its ``commits`` and ``head_commit`` here, read once per event and only when a webhook
        listens (the push's own record runs no git)."""
        kind = event_for_topic(event.topic)
        if kind is None or event.project_id is None:
            return 0
        hooks = [h for h in await uow.webhooks.list(event.project_id) if h.active and kind in h.events]
        if not hooks:
            return 0
        payload = {"event": kind, **event.payload}
        if kind == "push" and "commits" not in payload:
            payload.update(await self._push_history(uow, event))
        now = self.clock.now()
        for hook in hooks:
            await uow.webhook_deliveries.add(
                WebhookDelivery(id=uuid7(), webhook_id=hook.id, project_id=event.project_id, event=kind,
                                payload=payload, status=DeliveryStatus.PENDING, created_at=now, next_attempt_at=now)
            )
        return len(hooks)

    async def _push_history(self, uow: UnitOfWork, event: OutboxEvent) -> dict[str, Any]:
        project = await uow.projects.get(event.project_id) if event.project_id is not None else None
        if project is None or self.repos is None:
            return {"commits": [], "head_commit": None}
        try:
            return await push_history(self.repos, project, event.payload)
        except Exception:  # a vanished repository or commit: deliver the push without its commits
            log.warning("could not read the commits of push event %s", event.id, exc_info=True)
            return {"commits": [], "head_commit": None}

    async def deliver_due(self, limit: int = 50) -> int:
        """Attempt every due delivery (up to ``limit``); returns how many were attempted.

        Due deliveries are leased first (their next attempt moved ``lease_seconds`` ahead, committed), then
        sent outside any transaction, then their outcome is written: no connection or row lock is held
        while receivers answer, and a replica that dies mid-delivery leaves them to be retried after the lease.
        """
        now = self.clock.now()
        async with self.uow_factory() as uow:
            due = await uow.webhook_deliveries.claim_due(now, limit)
            if not due:
                return 0
            hooks: dict[uuid.UUID, Webhook | None] = {}
            for d in due:
                if d.webhook_id not in hooks:
                    hooks[d.webhook_id] = await uow.webhooks.get(d.project_id, d.webhook_id)
                await uow.webhook_deliveries.update(
                    attrs.evolve(d, next_attempt_at=now + timedelta(seconds=self.lease_seconds))
                )
            await uow.commit()
        gate = asyncio.Semaphore(self.concurrency)

        async def attempt(d: WebhookDelivery) -> WebhookDelivery:
            async with gate:
                return await self._attempt(d, hooks[d.webhook_id])

        results = await asyncio.gather(*(attempt(d) for d in due))
        async with self.uow_factory() as uow:
            for result in results:
                await uow.webhook_deliveries.update(result)
            await uow.commit()
        return len(due)

    async def _attempt(self, d: WebhookDelivery, hook: Webhook | None) -> WebhookDelivery:
        attempts = d.attempts + 1
        if hook is None or not hook.active:
            return attrs.evolve(d, status=DeliveryStatus.FAILED, attempts=attempts, next_attempt_at=None,
                                error="the webhook was removed or deactivated")
        body = json.dumps(d.payload, separators=(",", ":"), default=str).encode()
        started = self.clock.monotonic()
        try:
            headers = delivery_headers(d.event, d.id, body, self._open(hook))
            answer = await self.transport.post(hook.url, body, headers)
        except CorralError as exc:
            return self._retry_or_fail(d, attempts, error=exc.message[:500],
                                       duration_ms=int((self.clock.monotonic() - started) * 1000))
        if 200 <= answer.status < 300:
            return attrs.evolve(d, status=DeliveryStatus.DELIVERED, attempts=attempts, next_attempt_at=None,
                                status_code=answer.status, duration_ms=answer.duration_ms,
                                response_excerpt=answer.body_excerpt[:_EXCERPT], error=None,
                                delivered_at=self.clock.now())
        return self._retry_or_fail(d, attempts, status_code=answer.status, duration_ms=answer.duration_ms,
                                   excerpt=answer.body_excerpt[:_EXCERPT], error=f"HTTP {answer.status}")

    def _retry_or_fail(self, d: WebhookDelivery, attempts: int, *, error: str, duration_ms: int,
                       status_code: int | None = None, excerpt: str | None = None) -> WebhookDelivery:
        if attempts >= self.max_attempts:
            return attrs.evolve(d, status=DeliveryStatus.FAILED, attempts=attempts, next_attempt_at=None,
                                status_code=status_code, duration_ms=duration_ms, response_excerpt=excerpt,
                                error=error)
        delay = self.retry_base_seconds * 2 ** (attempts - 1)
        return attrs.evolve(d, status=DeliveryStatus.PENDING, attempts=attempts,
                            next_attempt_at=self.clock.now() + timedelta(seconds=delay), status_code=status_code,
                            duration_ms=duration_ms, response_excerpt=excerpt, error=error)
