"""Wiring of the secrets domain: master key ring, envelope, services, the start-up key check."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from corral.adapters.crypto import AesGcmCipher
from corral.core.errors import PermissionDenied
from corral.core.secrets.envelope import Envelope
from corral.core.secrets.model import SecretUndecryptable
from corral.core.secrets.reader import SecretReader
from corral.core.secrets.rotation import MasterKeyRotation, check_master_key
from corral.core.secrets.service import SecretsService
from corral.entrypoints.platform import Platform

__all__ = ["wire_secrets"]

log = logging.getLogger("corral.secrets")


class _PlatformAuthorizer:
    """The identity domain's RBAC authorizer (``platform.authorizer``), looked up at call time; fails closed when
    no identity domain is wired."""

    def __init__(self, platform: Platform) -> None:
        self._platform = platform

    async def authorize(self, principal: Any, permission: str, project_id: uuid.UUID | None) -> None:
        authorizer = self._platform.authorizer
        if authorizer is None:
            raise PermissionDenied(f"{permission} cannot be checked: no authorizer is configured")
        await authorizer.authorize(principal, permission, project_id)


async def wire_secrets(platform: Platform) -> None:
    """Register Envelope, SecretsService, SecretReader and MasterKeyRotation; verify the master key."""
    settings = platform.settings
    keys = platform.key_ring  # shared with the identity and projects domains (TOTP and webhook secrets)
    envelope = Envelope(AesGcmCipher(), keys)
    others = platform.key_rewraps  # the list other domains append to (wired before or after this one)
    uow_factory, clock = platform.uow_factory, platform.clock
    platform.register(Envelope, envelope)
    platform.register(
        SecretsService, SecretsService(uow_factory, envelope, clock, max_versions=settings.secrets_max_versions)
    )
    platform.register(SecretReader, SecretReader(uow_factory, envelope, _PlatformAuthorizer(platform), clock))
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
