"""Wires the deployer: its service and routes' kit, the cluster chosen by CORRAL_DEPLOY_CLUSTER, the ops
repositories' source, the audited secret reader, and the leader-elected reconciler loop."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import attrs

from corral.core.clock import Clock
from corral.core.deploy.model import NOT_CONFIGURED, Deployment, OpsRepo
from corral.core.deploy.reconciler import Reconciler
from corral.core.deploy.service import DeployService
from corral.core.errors import PermissionDenied
from corral.core.outbox import topics
from corral.core.outbox.model import OutboxEvent
from corral.core.uow import UnitOfWork, UnitOfWorkFactory
from corral.entrypoints.platform import Platform
from corral.entrypoints.web.routes.deploy import DeployKit

__all__ = ["ReaderSecretSource", "SecretCredentials", "wire_deploy"]

log = logging.getLogger("corral.deploy")


@attrs.define
class _Principal:
    user_id: Any
    name: str
    scopes: Any = None
    token_project_id: Any = None


@attrs.define
class ReaderSecretSource:
    """SecretSource through the audited SecretReader (scope deploy), acting for whoever last wrote the desired
    state: a secret reaches the cluster only if that person may read it."""

    reader: Any  # corral.core.secrets.reader.SecretReader

    async def read(self, deployment: Deployment, names: Iterable[str]) -> dict[str, str]:
        from corral.core.secrets.model import SecretScope

        if deployment.updated_by is None:
            raise PermissionDenied("the deployment has no author whose secret:read could be checked")
        principal = _Principal(deployment.updated_by, deployment.updated_by_name or "unknown")
        values: dict[str, str] = await self.reader.read_many(
            principal, deployment.project_id, names, SecretScope.DEPLOY,
            f"deploy {deployment.environment} revision {deployment.desired_revision}")
        return values


@attrs.define
class SecretCredentials:
    """An outside ops repository's credential: its ``credential_secret``, a global secret of scope deploy (or
    all), read through the audited SecretReader by Corral itself (the registration needed admin:settings)."""

    reader: Any  # corral.core.secrets.reader.SecretReader

    async def __call__(self, repo: OpsRepo) -> str:
        from corral.core.identity.bootstrap import SYSTEM
        from corral.core.secrets.model import SecretScope

        assert repo.credential_secret is not None
        value: str = await self.reader.read(SYSTEM, None, repo.credential_secret, SecretScope.DEPLOY,
                                            f"fetch ops repository {repo.name}")
        return value


async def wire_deploy(platform: Platform) -> None:
    from corral.adapters.deploy_git import GitOpsSource
    from corral.adapters.deploy_render import JinjaManifestRenderer
    from corral.adapters.git_cli import GitCli
    from corral.core.secrets.reader import SecretReader

    settings = platform.settings
    uow_factory: UnitOfWorkFactory = platform.uow_factory
    clock: Clock = platform.clock
    cluster = None
    try:
        from corral.adapters.kubernetes_cluster import KubernetesCluster, api_client_from_settings

        api, mode = await api_client_from_settings(settings.deploy_cluster)
        if api is not None:
            platform.closers.append(api.close)
            cluster = KubernetesCluster(api, name=mode)
    except Exception as exc:  # a broken kubeconfig must not stop Corral: the deployer says so instead
        log.error("no Kubernetes cluster for the deployer: %s", exc)
    protected = frozenset(e.strip() for e in settings.deploy_protected_environments.split(",") if e.strip())
    service = DeployService(uow_factory, clock, protected_environments=protected,
                            history_limit=settings.deploy_history_limit,
                            cluster_name=cluster.name if cluster is not None else NOT_CONFIGURED)
    root = settings.git_repos_dir or settings.data_dir / "repos"
    secret_reader = platform.resolve(SecretReader)
    source = GitOpsSource(GitCli(root), uow_factory, root, credentials=SecretCredentials(secret_reader))
    leader: Any
    if platform.database_url:
        from corral.adapters.postgres.observe.leader import PostgresLeaderLock

        leader = PostgresLeaderLock(platform.database_url)
    else:
        from corral.fakes.observe import InMemoryLeaderLock

        leader = InMemoryLeaderLock()
    reconciler = Reconciler(uow_factory, clock, JinjaManifestRenderer(), source,
                            ReaderSecretSource(secret_reader), leader, service, cluster=cluster)
    if settings.observe_self:
        from corral.entrypoints.observe_self import SelfTelemetry

        reconciler.spans = platform.resolve_optional(SelfTelemetry)  # None without self-telemetry: no spans
    platform.register(DeployKit, DeployKit(uow_factory, service, reconciler))
    platform.register(Reconciler, reconciler)

    async def wake_on_ops_push(uow: UnitOfWork, event: OutboxEvent) -> int:
        """A push to an ops repository's project starts a pass at once."""
        if event.topic == topics.PUSH and event.project_id is not None:
            repos = await uow.deploy.list_ops_repos()
            if any(r.project_id == event.project_id for r in repos):
                reconciler.wake()
                return 1
        return 0

    platform.relay.consumers.append(wake_on_ops_push)

    async def deployer() -> None:
        await reconciler.loop(settings.deploy_interval_seconds)

    platform.background.append(deployer)
