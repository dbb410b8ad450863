"""Wires the identity domain: services, the WebAuth hook, system roles, the first admin, background loops."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from corral.core.identity.access import Authorizer
from corral.core.identity.bootstrap import ensure_first_admin, ensure_system_roles
from corral.core.identity.kit import IdentityServices
from corral.core.identity.sessions import AuthPolicy
from corral.core.identity.totp_seal import TotpKeyRewrap, TotpSealer, seal_plaintext_totp
from corral.entrypoints.config import Settings
from corral.entrypoints.outages import LoopErrors
from corral.entrypoints.platform import Platform
from corral.entrypoints.web.identity_auth import IdentityWebAuth, install
from corral.entrypoints.web.security import WebAuth

__all__ = ["USAGE_FLUSH_SECONDS", "policy_from", "wire_identity"]

log = logging.getLogger("corral.identity")
USAGE_FLUSH_SECONDS = 10.0
PURGE_EVERY = 30  # flushes between purges of expired sessions and old login failures (~5 minutes)


def policy_from(settings: Settings) -> AuthPolicy:
    return AuthPolicy(
        session_idle=timedelta(seconds=settings.session_idle_seconds),
        session_max=timedelta(seconds=settings.session_max_seconds),
        max_failures_per_user=settings.login_max_failures_per_user,
        max_failures_per_ip=settings.login_max_failures_per_ip,
        find_time=timedelta(seconds=settings.login_find_time_seconds),
        ban_time=timedelta(seconds=settings.login_ban_seconds),
        require_totp_for_admins=settings.require_totp_for_admins,
        totp_daily_failures=settings.totp_max_failures_per_day,
    )


async def wire_identity(platform: Platform) -> None:
    """Register IdentityServices, its authorizer (``platform.authorizer``, which other domains authorize through)
    and the WebAuth, bootstrap roles (and the admin), start the usage flusher."""
    from corral.adapters.argon2_hasher import Argon2PasswordHasher
    from corral.adapters.crypto import AesGcmCipher

    settings = platform.settings
    clock, uow_factory = platform.clock, platform.uow_factory
    hasher = Argon2PasswordHasher(threads=settings.worker_threads)
    sealer = TotpSealer(AesGcmCipher(), platform.key_ring)  # TOTP secrets at rest: the secrets envelope
    platform.key_rewraps.append(TotpKeyRewrap(sealer))  # covered by `corral secrets rotate-master-key`
    ids = IdentityServices(uow_factory, platform.authz_cache, hasher, clock, policy=policy_from(settings),
                           totp_sealer=sealer)
    ids.authorizer.cache_ttl = timedelta(seconds=settings.authz_cache_ttl_seconds)
    platform.register(IdentityServices, ids)
    platform.authorizer = ids.authorizer
    platform.register(Authorizer, ids.authorizer)
    platform.register(WebAuth, IdentityWebAuth(ids, settings.base_url))
    platform.app_hooks.append(install(ids))
    created = await ensure_system_roles(uow_factory, clock)
    if created:
        log.info("created system roles", extra={"roles": created})
    try:  # rows written in plain text before migration 022
        sealed = await seal_plaintext_totp(uow_factory, sealer, clock)
    except Exception as exc:  # e.g. `corral migrate` starting on a schema without 022 yet: the next start does it
        log.warning("could not encrypt TOTP secrets stored in plain text (they stay unusable until then): %s",
                    type(exc).__name__)
    else:
        if sealed:
            log.warning("encrypted TOTP secrets that were stored in plain text", extra={"count": sealed})
    admin = await ensure_first_admin(ids.users, name=settings.bootstrap_admin_name,
                                     password=settings.bootstrap_admin_password,
                                     email=settings.bootstrap_admin_email)
    if admin is not None:
        log.info("created the first admin from CORRAL_BOOTSTRAP_ADMIN_*", extra={"user": admin.name})

    errors = LoopErrors("credential usage flush")

    async def flush_usage() -> None:
        rounds = 0
        while True:
            await asyncio.sleep(USAGE_FLUSH_SECONDS)
            try:
                await ids.usage.flush(uow_factory)
                rounds += 1
                if rounds % PURGE_EVERY == 0:  # any replica may do it: deletes are idempotent
                    await ids.sessions.purge()
            except Exception as exc:
                await asyncio.sleep(errors.failed(exc))
                continue
            errors.succeeded()

    async def final_flush() -> None:
        try:
            await ids.usage.flush(uow_factory)
        finally:
            hasher.close()

    platform.background.append(flush_usage)
    platform.closers.append(final_flush)
