"""TOTP secrets at rest: sealed with the platform's secrets envelope, bound to their user.

Each enrolment gets its own data key (AES-256-GCM in production through the
``Cipher`` port), wrapped by the master key ring (``KeyWrapper``). The
associated data names the user, so a sealed secret copied onto another
user's row does not open. Master-key rotation re-wraps the data keys
(``TotpKeyRewrap``); the ciphertexts never change.
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

__all__ = ["TotpKeyRewrap", "TotpSealer", "seal_plaintext_totp"]

log = logging.getLogger("corral.identity")
_DEK_SUFFIX = b"\x00data-key"


def _aad(user_id: uuid.UUID) -> bytes:
    return b"corral-totp/v1\x00" + user_id.hex.encode()


@attrs.frozen
class TotpSealer:
    """Seals and opens TOTP secrets; re-wraps their data keys under the current master key."""

    cipher: Cipher
    keys: KeyWrapper

    def seal(self, user_id: uuid.UUID, secret: str) -> SealedSecret:
        aad = _aad(user_id)
        data_key = self.cipher.new_data_key()
        return SealedSecret(
            self.cipher.encrypt(data_key, secret.encode(), aad), self.keys.wrap(data_key, aad + _DEK_SUFFIX)
        )

    def open(self, user_id: uuid.UUID, sealed: SealedSecret) -> str:
        """The base32 secret; SecretUndecryptable naming the user id when anything does not authenticate."""
        aad = _aad(user_id)
        try:
            data_key = self.keys.unwrap(sealed.wrapped_key, aad + _DEK_SUFFIX)
            return self.cipher.decrypt(data_key, sealed.ciphertext, aad).decode()
        except SecretUndecryptable as exc:
            raise SecretUndecryptable(f"TOTP secret of user {user_id}: {exc.message}") from None

    def rewrap(self, user_id: uuid.UUID, wrapped: WrappedKey) -> WrappedKey:
        aad = _aad(user_id) + _DEK_SUFFIX
        try:
            data_key = self.keys.unwrap(wrapped, aad)
        except SecretUndecryptable as exc:
            raise SecretUndecryptable(f"TOTP secret of user {user_id}: {exc.message}") from None
        return self.keys.wrap(data_key, aad)


@attrs.frozen
class TotpKeyRewrap:
    """The TOTP part of a master-key rotation (``corral secrets rotate-master-key``)."""

    sealer: TotpSealer
    name: str = "totp"

    async def rewrap_batch(self, uow: UnitOfWork, limit: int) -> tuple[int, set[str]]:
        """Re-wrap up to ``limit`` data keys still under an old master key; (count, old key ids)."""
        claimed = await uow.totp.claim_for_rewrap(self.sealer.keys.current_key_id, limit)
        old: set[str] = set()
        for enrolment in claimed:
            old.add(enrolment.secret.wrapped_key.key_id)
            wrapped = self.sealer.rewrap(enrolment.user_id, enrolment.secret.wrapped_key)
            await uow.totp.put(attrs.evolve(enrolment, secret=attrs.evolve(enrolment.secret, wrapped_key=wrapped)))
        return len(claimed), old

    async def count_by_key(self, uow: UnitOfWork) -> dict[str, int]:
        return await uow.totp.count_by_key()


async def seal_plaintext_totp(uow_factory: UnitOfWorkFactory, sealer: TotpSealer, clock: Clock,
                              batch: int = 100) -> int:
    """Encrypt TOTP secrets stored in plain text by an older Corral (once; idempotent, safe on many replicas).

    Returns how many were sealed; each batch is one transaction with one audit row."""
    total = 0
    while True:
        async with uow_factory() as uow:
            rows = await uow.totp.claim_plaintext(batch)
            if not rows:
                return total
            for user_id, plaintext in rows:
                await uow.totp.seal_plaintext(user_id, sealer.seal(user_id, plaintext))
            await uow.audit.record(
                AuditEntry(
                    id=uuid7(), actor_id=SYSTEM_ACTOR_ID, actor_name=SYSTEM_ACTOR_NAME, action="totp.encrypt",
                    resource="user", created_at=clock.now(), detail={"count": len(rows)},
                )
            )
            await uow.commit()
        total += len(rows)
        log.info("encrypted TOTP secrets stored in plain text", extra={"count": total})
