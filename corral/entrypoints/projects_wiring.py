"""Wires the projects/git domain: services kit, project lookup, project-aware WebAuth, webhook loops."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import timedelta
from typing import Any

import attrs

from corral.core.clock import Clock
from corral.core.git.recovery import recover_pushes
from corral.core.git.service import RepoBrowser
from corral.core.identity.kit import IdentityServices
from corral.core.projects.issues import IssueService
from corral.core.projects.labels import LabelService
from corral.core.projects.merge_requests import MergeRequestService
from corral.core.projects.ownership import ProjectOwnership
from corral.core.projects.ports import UserDirectory, UserRef
from corral.core.projects.protections import BranchProtectionService
from corral.core.projects.purge import ProjectPurger
from corral.core.projects.service import ProjectService
from corral.core.projects.webhook_seal import WebhookKeyRewrap, WebhookSecretSealer, seal_plaintext_webhook_secrets
from corral.core.projects.webhooks import WebhookService
from corral.core.storage.ports import ObjectStore
from corral.core.uow import UnitOfWorkFactory
from corral.entrypoints.config import Settings
from corral.entrypoints.outages import LoopErrors
from corral.entrypoints.platform import Platform, resolve_optional
from corral.entrypoints.web.project_access import ProjectAwareLookup, ProjectAwareWebAuth, ProjectsKit
from corral.entrypoints.web.project_redirects import install_project_redirects
from corral.entrypoints.web.routes.lfs import lfs_authenticate_header, lfs_purge_parts
from corral.entrypoints.web.security import DenyAllAuth, ProjectLookup, WebAuth

__all__ = ["UowUserDirectory", "build_kit", "wire_projects"]

log = logging.getLogger("corral.projects")


@attrs.define
class UowUserDirectory:
    """UserDirectory over the identity stores of a unit of work (one read per id)."""

    uow_factory: UnitOfWorkFactory

    async def by_name(self, name: str) -> UserRef | None:
        async with self.uow_factory() as uow:
            user = await uow.users.get_by_name(name)
        return UserRef(user.id, user.name, user.email) if user is not None and user.is_active else None

    async def by_ids(self, ids: set[uuid.UUID]) -> dict[uuid.UUID, UserRef]:
        out: dict[uuid.UUID, UserRef] = {}
        async with self.uow_factory() as uow:
            for user_id in ids:
                user = await uow.users.get(user_id)
                if user is not None:
                    out[user_id] = UserRef(user.id, user.name, user.email)
        return out


def build_kit(
    settings: Settings, uow_factory: UnitOfWorkFactory, clock: Clock, objects: ObjectStore, users: UserDirectory,
    transport: Any, git: Any, sealer: WebhookSecretSealer | None = None,
) -> ProjectsKit:
    """``sealer`` seals webhook secrets (default: under a throw-away master key, for tests and tools)."""
    from corral.adapters.git_maintenance import GitMaintenance

    if sealer is None:
        import secrets

        from corral.adapters.crypto import AesGcmCipher, AesGcmKeyWrapper

        sealer = WebhookSecretSealer(AesGcmCipher(), AesGcmKeyWrapper([secrets.token_bytes(32)]))

    # a deleted project's leftovers outside PostgreSQL; the pipelines and agents wirings add theirs
    purger = ProjectPurger(uow_factory, objects, git, clock, contributors=[lfs_purge_parts])
    return ProjectsKit(
        uow_factory=uow_factory,
        projects=ProjectService(uow_factory, git, clock, purger=purger),
        issues=IssueService(uow_factory, users, clock),
        merge_requests=MergeRequestService(uow_factory, git, users, clock),
        labels=LabelService(uow_factory, clock),
        protections=BranchProtectionService(uow_factory, clock, users),
        webhooks=WebhookService(uow_factory, transport, clock, retry_base_seconds=settings.webhook_retry_base_seconds,
                                max_attempts=settings.webhook_max_attempts, repos=git, sealer=sealer),
        browser=RepoBrowser(git),
        users=users,
        git=git,
        objects=objects,
        clock=clock,
        base_url=settings.public_url(),
        configured_base_url=settings.base_url,
        max_lfs_object_bytes=settings.lfs_max_object_bytes,
        lfs_direct_transfer=settings.lfs_direct_transfer,
        maintenance=GitMaintenance(git),
    )


def install_web(platform: Any, kit: ProjectsKit) -> None:
    """Register the kit, the project lookup and the project-aware WebAuth (around identity's, or around a deny-all
    one when no identity domain is wired)."""
    platform.register(ProjectsKit, kit)
    platform.register(ProjectLookup, ProjectAwareLookup(kit.uow_factory, kit.git_memo))
    inner: WebAuth = resolve_optional(platform.container, WebAuth) or DenyAllAuth()
    platform.register(WebAuth, ProjectAwareWebAuth(inner, kit.uow_factory))
    ids: IdentityServices | None = resolve_optional(platform.container, IdentityServices)
    if ids is not None:
        # ownership counts in every identity decision (tokens, delegations, "changing a user needs all they hold")
        ids.authorizer.implicit = ProjectOwnership(kit.uow_factory)
    platform.app_hooks.append(lambda app: app.on_response_prepare.append(lfs_authenticate_header))
    platform.app_hooks.append(install_project_redirects)
    # first of all: any request that is not git's makes its connection forget what git requests kept
    platform.app_hooks.append(lambda app: app.middlewares.insert(0, kit.git_memo.middleware()))


def start_webhook_loops(platform: Platform, kit: ProjectsKit, *, interval: float = 0.5) -> None:
    """Merge requests and webhooks join the platform's outbox relay as consumers; the delivery loop sends what
    is due."""
    relay = platform.relay
    relay.consumers.append(kit.merge_requests.on_push)  # a push that merged an open merge request marks it merged
    relay.consumers.append(kit.webhooks.fan_out)

    deliveries = LoopErrors("webhook deliveries")

    async def webhook_deliveries() -> None:
        while True:
            try:
                attempted = await kit.webhooks.deliver_due()
            except Exception as exc:
                await asyncio.sleep(deliveries.failed(exc))
                continue
            deliveries.succeeded()
            if not attempted:
                await asyncio.sleep(interval)

    platform.background.append(webhook_deliveries)


def start_push_recovery(
    platform: Platform, kit: ProjectsKit, *, interval: float = 60.0, grace: timedelta = timedelta(minutes=2),
    abandon_after: timedelta = timedelta(hours=24),
) -> None:
    """Every ``interval`` seconds, record the pushes a crash left unrecorded (corral.core.git.recovery); first
    remove the stale quarantines of pushes killed with their git (corral.adapters.git_maintenance)."""

    errors = LoopErrors("push recovery")

    async def push_recovery() -> None:
        await kit.maintenance.sweep_quarantines()
        while True:
            try:
                await recover_pushes(kit.uow_factory, kit.git, kit.clock, older_than=grace,
                                     abandon_after=abandon_after, in_flight=set(kit.pushes_in_flight))
            except Exception as exc:
                await asyncio.sleep(min(errors.failed(exc), interval))
                continue
            errors.succeeded()
            await asyncio.sleep(interval)

    platform.background.append(push_recovery)


def start_project_purge(platform: Any, kit: ProjectsKit, *, interval: float = 60.0) -> None:
    """Every ``interval`` seconds (at once while there is more), purge what deleted projects left outside
    PostgreSQL (corral.core.projects.purge); a purge that fails is retried later by the same loop."""
    purger = kit.projects.purger
    if purger is None:
        return
    errors = LoopErrors("project purge")

    async def project_purge() -> None:
        while True:
            try:
                done = await purger.run_once()
            except Exception as exc:
                await asyncio.sleep(min(errors.failed(exc), interval))
                continue
            errors.succeeded()
            if not done:
                await asyncio.sleep(interval)

    platform.background.append(project_purge)


def start_lfs_staging_sweep(platform: Any, kit: ProjectsKit, *, interval: float = 3600.0) -> None:
    """Every ``interval`` seconds, delete the staged LFS uploads never verified (routes.lfs.sweep_staging)."""
    from corral.entrypoints.web.routes.lfs import sweep_staging

    async def lfs_staging_sweep() -> None:
        while True:
            try:
                removed = await sweep_staging(kit.objects, kit.clock)
                if removed:
                    log.info("removed %d staged LFS upload(s) never verified", removed)
            except Exception:
                log.exception("LFS staging sweep failed; retrying")
            await asyncio.sleep(interval)

    platform.background.append(lfs_staging_sweep)


async def wire_projects(platform: Platform) -> None:
    """Build the projects kit; register it, the project lookup and the project-aware WebAuth; join the outbox
    relay (merge requests, webhooks); start the webhook delivery and push recovery loops."""
    from corral.adapters.crypto import AesGcmCipher
    from corral.adapters.git_cli import GitCli
    from corral.adapters.webhooks import AiohttpWebhookTransport

    settings = platform.settings
    uow_factory, clock, objects = platform.uow_factory, platform.clock, platform.objects
    git = GitCli(settings.git_repos_dir or settings.data_dir / "repos")
    users: UserDirectory
    if platform.pg_pool is not None:
        from corral.adapters.postgres.projects import PostgresUserDirectory

        users = PostgresUserDirectory(platform.pg_pool)
    else:  # memory profile: no pool
        users = UowUserDirectory(uow_factory)
    # the one transport of project and notification webhooks (corral.core.outbound's rules, address pinning)
    transport = AiohttpWebhookTransport(allow_private=settings.webhook_allow_private_targets)
    platform.closers.append(transport.aclose)
    sealer = WebhookSecretSealer(AesGcmCipher(), platform.key_ring)  # webhook secrets at rest: the envelope
    platform.key_rewraps.append(WebhookKeyRewrap(sealer))  # covered by `corral secrets rotate-master-key` / status
    try:  # secrets written in plain text before migration 053
        sealed = await seal_plaintext_webhook_secrets(uow_factory, sealer, clock)
    except Exception as exc:  # e.g. a schema without 053 yet: the next start does it (deliveries wait)
        log.warning("could not encrypt webhook secrets stored in plain text: %s", type(exc).__name__)
    else:
        if sealed:
            log.warning("encrypted webhook secrets that were stored in plain text", extra={"count": sealed})
    kit = build_kit(settings, uow_factory, clock, objects, users, transport, git, sealer)
    platform.closers.append(kit.maintenance.aclose)
    install_web(platform, kit)
    start_webhook_loops(platform, kit)
    start_push_recovery(platform, kit, interval=settings.git_push_recovery_seconds,
                        grace=timedelta(seconds=settings.git_push_recovery_grace_seconds))
    start_lfs_staging_sweep(platform, kit)
    start_project_purge(platform, kit)
