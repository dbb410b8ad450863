"""TOTP secrets at rest: sealed with the platform's secrets envelope, bound to their user.

The sealing, the master-key rotation and the one-time sealing of plain text are
``corral.core.secrets.row_seal``'s; this module names the TOTP rows.
"""

from __future__ import annotations

import logging
import uuid
from typing import ClassVar

import attrs

from corral.core.clock import Clock
from corral.core.identity.model import SealedSecret, TotpEnrolment
from corral.core.secrets.row_seal import RowKeyRewrap, RowSealer, SealedRowStore
from corral.core.uow import UnitOfWork, UnitOfWorkFactory

__all__ = ["TotpKeyRewrap", "TotpSealer", "seal_plaintext_totp"]


@attrs.frozen
class TotpSealer(RowSealer):
    """Seals and opens TOTP secrets (base32); re-wraps their data keys under the current master key."""

    purpose: ClassVar[bytes] = b"corral-totp/v1"
    what: ClassVar[str] = "TOTP secret of user"


@attrs.frozen
class TotpKeyRewrap(RowKeyRewrap[TotpEnrolment]):
    """The TOTP part of a master-key rotation (``corral secrets rotate-master-key``)."""

    resource: ClassVar[str] = "user"
    action: ClassVar[str] = "totp.encrypt"
    plural: ClassVar[str] = "TOTP secrets"
    log: ClassVar[logging.Logger] = logging.getLogger("corral.identity")

    name: str = "totp"

    def rows(self, uow: UnitOfWork) -> SealedRowStore[TotpEnrolment]:
        return uow.totp

    def sealed(self, row: TotpEnrolment) -> tuple[uuid.UUID, SealedSecret]:
        return row.user_id, row.secret

    async def save(self, uow: UnitOfWork, row: TotpEnrolment, secret: SealedSecret) -> None:
        await uow.totp.put(attrs.evolve(row, secret=secret))


async def seal_plaintext_totp(uow_factory: UnitOfWorkFactory, sealer: TotpSealer, clock: Clock,
                              batch: int = 100) -> int:
    """Encrypt TOTP secrets stored in plain text by an older Corral (see ``RowKeyRewrap.seal_plaintext``)."""
    return await TotpKeyRewrap(sealer).seal_plaintext(uow_factory, clock, batch)
