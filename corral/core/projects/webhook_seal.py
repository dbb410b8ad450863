"""Project webhook secrets at rest: sealed with the platform's secrets envelope, bound to their webhook.

Delivery opens a secret to sign the payload; the API never returns it. The
sealing, the master-key rotation and the one-time sealing of plain text are
``corral.core.secrets.row_seal``'s; this module names the webhook rows.
"""

from __future__ import annotations

import logging
import uuid
from typing import ClassVar

import attrs

from corral.core.clock import Clock
from corral.core.identity.model import SealedSecret
from corral.core.projects.model import Webhook
from corral.core.secrets.row_seal import RowKeyRewrap, RowSealer, SealedRowStore
from corral.core.uow import UnitOfWork, UnitOfWorkFactory

__all__ = ["WebhookKeyRewrap", "WebhookSecretSealer", "seal_plaintext_webhook_secrets"]


@attrs.frozen
class WebhookSecretSealer(RowSealer):
    """Seals and opens webhook secrets; re-wraps their data keys under the current master key."""

    purpose: ClassVar[bytes] = b"corral-webhook-secret/v1"
    what: ClassVar[str] = "secret of webhook"


@attrs.frozen
class WebhookKeyRewrap(RowKeyRewrap[Webhook]):
    """The webhook part of a master-key rotation (``corral secrets rotate-master-key`` and ``status``)."""

    resource: ClassVar[str] = "webhook"
    action: ClassVar[str] = "webhook.encrypt"
    plural: ClassVar[str] = "webhook secrets"
    log: ClassVar[logging.Logger] = logging.getLogger("corral.webhooks")

    name: str = "webhook_secret"

    def rows(self, uow: UnitOfWork) -> SealedRowStore[Webhook]:
        return uow.webhooks

    def sealed(self, row: Webhook) -> tuple[uuid.UUID, SealedSecret]:
        assert row.secret is not None  # claim_for_rewrap returns sealed secrets only
        return row.id, row.secret

    async def save(self, uow: UnitOfWork, row: Webhook, secret: SealedSecret) -> None:
        await uow.webhooks.update(attrs.evolve(row, secret=secret))


async def seal_plaintext_webhook_secrets(uow_factory: UnitOfWorkFactory, sealer: WebhookSecretSealer, clock: Clock,
                                         batch: int = 100) -> int:
    """Encrypt webhook secrets stored in plain text by an older Corral (see ``RowKeyRewrap.seal_plaintext``)."""
    return await WebhookKeyRewrap(sealer).seal_plaintext(uow_factory, clock, batch)
