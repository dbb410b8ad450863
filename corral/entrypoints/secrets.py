"""Wiring of the secrets domain: master key ring, envelope, services, the start-up key check."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from corral.adapters.crypto import AesGcmCipher
from corral.core.clock import Clock
from corral.core.errors import PermissionDenied
from corral.core.secrets.envelope import Envelope
from corral.core.secrets.model import SecretUndecryptable
from corral.core.secrets.reader import SecretReader
from corral.core.secrets.rotation import MasterKeyRotation, check_master_key
from corral.core.secrets.service import SecretsService
from corral.core.uow import UnitOfWorkFactory
from corral.entrypoints.masterkey import key_rewraps, key_ring

# ``platform`` below is corral.entrypoints.bootstrap.Platform, typed Any like every wiring's: bootstrap imports
# the wirings, so they do not import it back (no import cycle).
Platform = Any

__all__ = ["wire_secrets"]

log = logging.getLogger("corral.secrets")


class _ContainerAuthorizer:
    """Looks the identity domain's RBAC authorizer up at call time; fails closed when none is wired."""

    def __init__(self, platform: Platform) -> None:
        self._platform = platform

    async def authorize(self, principal: Any, permission: str, project_id: uuid.UUID | None) -> None:
        try:
            authorizer = self._platform.resolve("authorizer")  # registered by the identity wiring
        except Exception:  # punq raises its own MissingDependencyError
            raise PermissionDenied(f"{permission} cannot be checked: no authorizer is configured") from None
        await authorizer.authorize(principal, permission, project_id)


async def wire_secrets(platform: Platform) -> None:
    """Register Envelope, SecretsService, SecretReader and MasterKeyRotation; verify the master key."""
    settings = platform.settings
    keys = key_ring(platform)  # shared with the identity domain (TOTP secrets)
    envelope = Envelope(AesGcmCipher(), keys)
    others = key_rewraps(platform)
    uow_factory: UnitOfWorkFactory = platform.resolve(UnitOfWorkFactory)
    clock: Clock = platform.resolve(Clock)
    platform.register(Envelope, envelope)
    platform.register(
        SecretsService, SecretsService(uow_factory, envelope, clock, max_versions=settings.secrets_max_versions)
    )
    platform.register(SecretReader, SecretReader(uow_factory, envelope, _ContainerAuthorizer(platform), clock))
    platform.register(MasterKeyRotation, MasterKeyRotation(uow_factory, envelope, clock, others=others))
    try:
        counts = await check_master_key(uow_factory, envelope, others=others)
    except SecretUndecryptable as exc:
        if settings.environment == "production":
            raise
        log.error("%s; secrets written under another key cannot be read", exc.message)
        return
    except Exception as exc:  # e.g. `corral migrate` on a fresh database: the tables do not exist yet
        log.warning("could not check the master key against stored secrets: %s", exc)
        return
    stale = {k: n for k, n in counts.items() if k != keys.current_key_id}
    if stale:
        log.warning(
            "data keys are still wrapped under previous master keys: run `corral secrets rotate-master-key`",
            extra={"remaining": stale},
        )
