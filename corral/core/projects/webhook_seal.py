"""Project webhook secrets at rest: sealed with the platform's secrets envelope, bound to their webhook.

Each secret gets its own data key (AES-256-GCM in production through the
``Cipher`` port), wrapped by the master key ring (``KeyWrapper``). The
associated data names the webhook, so a sealed secret copied onto another
webhook's row does not open. Delivery opens it to sign the payload; the API
never returns it. Master-key rotation re-wraps the data keys
(``WebhookKeyRewrap``); the ciphertexts never change.
"""

from __future__ import annotations

import logging
import uuid

import attrs

from corral.core.audit.model import SYSTEM_ACTOR_ID, SYSTEM_ACTOR_NAME, AuditEntry
from corral.core.clock import Clock
from corral.core.identity.model import SealedSecret
from corral.core.ids import uuid7
from corral.core.secrets.model import SecretUndecryptable, WrappedKey
from corral.core.secrets.ports import Cipher, KeyWrapper
from corral.core.uow import UnitOfWork, UnitOfWorkFactory

__all__ = ["WebhookKeyRewrap", "WebhookSecretSealer", "seal_plaintext_webhook_secrets"]

log = logging.getLogger("corral.webhooks")
_DEK_SUFFIX = b"\x00data-key"


def _aad(hook_id: uuid.UUID) -> bytes:
    return b"corral-webhook-secret/v1\x00" + hook_id.hex.encode()


@attrs.frozen
class WebhookSecretSealer:
    """Seals and opens webhook secrets; re-wraps their data keys under the current master key."""

    cipher: Cipher
    keys: KeyWrapper

    def seal(self, hook_id: uuid.UUID, secret: str) -> SealedSecret:
        aad = _aad(hook_id)
        data_key = self.cipher.new_data_key()
        return SealedSecret(
            self.cipher.encrypt(data_key, secret.encode(), aad), self.keys.wrap(data_key, aad + _DEK_SUFFIX)
        )

    def open(self, hook_id: uuid.UUID, sealed: SealedSecret) -> str:
        """The secret; SecretUndecryptable naming the webhook when anything does not authenticate."""
        aad = _aad(hook_id)
        try:
            data_key = self.keys.unwrap(sealed.wrapped_key, aad + _DEK_SUFFIX)
            return self.cipher.decrypt(data_key, sealed.ciphertext, aad).decode()
        except SecretUndecryptable as exc:
            raise SecretUndecryptable(f"secret of webhook {hook_id}: {exc.message}") from None

    def rewrap(self, hook_id: uuid.UUID, wrapped: WrappedKey) -> WrappedKey:
        aad = _aad(hook_id) + _DEK_SUFFIX
        try:
            data_key = self.keys.unwrap(wrapped, aad)
        except SecretUndecryptable as exc:
            raise SecretUndecryptable(f"secret of webhook {hook_id}: {exc.message}") from None
        return self.keys.wrap(data_key, aad)


@attrs.frozen
class WebhookKeyRewrap:
    """The webhook part of a master-key rotation (``corral secrets rotate-master-key`` and ``status``)."""

    sealer: WebhookSecretSealer
    name: str = "webhook_secret"

    async def rewrap_batch(self, uow: UnitOfWork, limit: int) -> tuple[int, set[str]]:
        """Re-wrap up to ``limit`` data keys still under an old master key; (count, old key ids)."""
        claimed = await uow.webhooks.claim_for_rewrap(self.sealer.keys.current_key_id, limit)
        old: set[str] = set()
        for hook in claimed:
            assert hook.secret is not None  # claim_for_rewrap returns sealed secrets only
            old.add(hook.secret.wrapped_key.key_id)
            wrapped = self.sealer.rewrap(hook.id, hook.secret.wrapped_key)
            await uow.webhooks.update(attrs.evolve(hook, secret=attrs.evolve(hook.secret, wrapped_key=wrapped)))
        return len(claimed), old

    async def count_by_key(self, uow: UnitOfWork) -> dict[str, int]:
        return await uow.webhooks.count_by_key()


async def seal_plaintext_webhook_secrets(uow_factory: UnitOfWorkFactory, sealer: WebhookSecretSealer, clock: Clock,
                                         batch: int = 100) -> int:
    """Encrypt webhook secrets stored in plain text by an older Corral (once; idempotent, safe on many replicas).

    Returns how many were sealed; each batch is one transaction with one audit row."""
    total = 0
    while True:
        async with uow_factory() as uow:
            rows = await uow.webhooks.claim_plaintext(batch)
            if not rows:
                return total
            for hook_id, plaintext in rows:
                await uow.webhooks.seal_plaintext(hook_id, sealer.seal(hook_id, plaintext))
            await uow.audit.record(
                AuditEntry(
                    id=uuid7(), actor_id=SYSTEM_ACTOR_ID, actor_name=SYSTEM_ACTOR_NAME, action="webhook.encrypt",
                    resource="webhook", created_at=clock.now(), detail={"count": len(rows)},
                )
            )
            await uow.commit()
        total += len(rows)
        log.info("encrypted webhook secrets stored in plain text", extra={"count": total})
