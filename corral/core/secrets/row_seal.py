"""A secret field of another domain's row, at rest: sealed with the platform's secrets envelope, bound to the row.

Each sealed value gets its own data key (AES-256-GCM in production through the
``Cipher`` port), wrapped by the master key ring (``KeyWrapper``). The
associated data names the kind of row (``purpose``) and the row id, so a sealed
value copied onto another row does not open. Master-key rotation re-wraps the
data keys (``RowKeyRewrap``); the ciphertexts never change. An older Corral that
stored such a field in plain text is sealed once at start (``RowKeyRewrap.seal_plaintext``).

Users: TOTP secrets (``corral.core.identity.totp_seal``), webhook secrets
(``corral.core.projects.webhook_seal``).
"""

from __future__ import annotations

import builtins
import logging
import uuid
from typing import ClassVar, Generic, Protocol, TypeVar

import attrs

from corral.core.audit.model import SYSTEM_ACTOR_ID, SYSTEM_ACTOR_NAME, AuditEntry
from corral.core.clock import Clock
from corral.core.identity.model import SealedSecret
from corral.core.ids import uuid7
from corral.core.secrets.model import SecretUndecryptable, WrappedKey
from corral.core.secrets.ports import Cipher, KeyWrapper
from corral.core.uow import UnitOfWork, UnitOfWorkFactory

__all__ = ["RowKeyRewrap", "RowSealer", "SealedRowStore"]

_DEK_SUFFIX = b"\x00data-key"
R = TypeVar("R")


@attrs.frozen
class RowSealer:
    """Seals and opens one kind of row's secret; re-wraps its data keys under the current master key.

    A subclass names the kind: ``purpose`` (the associated data prefix, e.g. ``b"corral-totp/v1"``) and
    ``what`` (how an error names a row: ``f"{what} {row_id}"``)."""

    purpose: ClassVar[bytes]
    what: ClassVar[str]

    cipher: Cipher
    keys: KeyWrapper

    def _aad(self, row_id: uuid.UUID) -> bytes:
        return self.purpose + b"\x00" + row_id.hex.encode()

    def seal(self, row_id: uuid.UUID, secret: str) -> SealedSecret:
        aad = self._aad(row_id)
        data_key = self.cipher.new_data_key()
        return SealedSecret(
            self.cipher.encrypt(data_key, secret.encode(), aad), self.keys.wrap(data_key, aad + _DEK_SUFFIX)
        )

    def open(self, row_id: uuid.UUID, sealed: SealedSecret) -> str:
        """The secret; SecretUndecryptable naming the row when anything does not authenticate."""
        aad = self._aad(row_id)
        try:
            data_key = self.keys.unwrap(sealed.wrapped_key, aad + _DEK_SUFFIX)
            return self.cipher.decrypt(data_key, sealed.ciphertext, aad).decode()
        except SecretUndecryptable as exc:
            raise SecretUndecryptable(f"{self.what} {row_id}: {exc.message}") from None

    def rewrap(self, row_id: uuid.UUID, wrapped: WrappedKey) -> WrappedKey:
        aad = self._aad(row_id) + _DEK_SUFFIX
        try:
            data_key = self.keys.unwrap(wrapped, aad)
        except SecretUndecryptable as exc:
            raise SecretUndecryptable(f"{self.what} {row_id}: {exc.message}") from None
        return self.keys.wrap(data_key, aad)


class SealedRowStore(Protocol[R]):
    """What a store of rows with a sealed field offers a rotation and the plain-text sealing step."""

    async def claim_for_rewrap(self, current_key_id: str, limit: int, /) -> builtins.list[R]: ...

    async def count_by_key(self) -> dict[str, int]: ...

    async def claim_plaintext(self, limit: int, /) -> builtins.list[tuple[uuid.UUID, str]]: ...

    async def seal_plaintext(self, row_id: uuid.UUID, sealed: SealedSecret, /) -> None: ...


@attrs.frozen
class RowKeyRewrap(Generic[R]):
    """One kind of sealed row's part of a master-key rotation (``corral secrets rotate-master-key`` and ``status``).

    A subclass says where the rows are (``rows``), which sealed secret a row holds (``sealed``), how an updated
    row is saved (``save``), and how the one-time plain-text sealing is audited and logged (``resource``,
    ``action``, ``plural``, ``log``)."""

    resource: ClassVar[str]
    action: ClassVar[str]
    plural: ClassVar[str]
    log: ClassVar[logging.Logger]

    sealer: RowSealer
    name: str

    def rows(self, uow: UnitOfWork) -> SealedRowStore[R]:
        raise NotImplementedError

    def sealed(self, row: R) -> tuple[uuid.UUID, SealedSecret]:
        raise NotImplementedError

    async def save(self, uow: UnitOfWork, row: R, secret: SealedSecret) -> None:
        raise NotImplementedError

    async def rewrap_batch(self, uow: UnitOfWork, limit: int) -> tuple[int, set[str]]:
        """Re-wrap up to ``limit`` data keys still under an old master key; (count, old key ids)."""
        claimed = await self.rows(uow).claim_for_rewrap(self.sealer.keys.current_key_id, limit)
        old: set[str] = set()
        for row in claimed:
            row_id, secret = self.sealed(row)
            old.add(secret.wrapped_key.key_id)
            wrapped = self.sealer.rewrap(row_id, secret.wrapped_key)
            await self.save(uow, row, attrs.evolve(secret, wrapped_key=wrapped))
        return len(claimed), old

    async def count_by_key(self, uow: UnitOfWork) -> dict[str, int]:
        return await self.rows(uow).count_by_key()

    async def seal_plaintext(self, uow_factory: UnitOfWorkFactory, clock: Clock, batch: int = 100) -> int:
        """Encrypt secrets stored in plain text by an older Corral (once; idempotent, safe on many replicas).

        Returns how many were sealed; each batch is one transaction with one audit row."""
        total = 0
        while True:
            async with uow_factory() as uow:
                rows = await self.rows(uow).claim_plaintext(batch)
                if not rows:
                    return total
                for row_id, plaintext in rows:
                    await self.rows(uow).seal_plaintext(row_id, self.sealer.seal(row_id, plaintext))
                await uow.audit.record(
                    AuditEntry(
                        id=uuid7(), actor_id=SYSTEM_ACTOR_ID, actor_name=SYSTEM_ACTOR_NAME, action=self.action,
                        resource=self.resource, created_at=clock.now(), detail={"count": len(rows)},
                    )
                )
                await uow.commit()
            total += len(rows)
            self.log.info("encrypted %s stored in plain text", self.plural, extra={"count": total})
