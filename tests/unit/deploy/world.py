"""A deployer world on fakes: a project, an ops repository (a project's git repository), the services."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import attrs

from corral.adapters.deploy_render import JinjaManifestRenderer
from corral.core.deploy.commands import DesiredState, NewOpsRepo
from corral.core.deploy.model import Deployment
from corral.core.deploy.reconciler import Reconciler
from corral.core.deploy.service import Actor, DeployService, ProjectInfo
from corral.core.ids import uuid7
from corral.core.projects.model import Project, Visibility
from corral.fakes.clock import FakeClock
from corral.fakes.deploy import FakeCluster, FakeSecretSource, InMemoryOpsSource
from corral.fakes.git import InMemoryGitRepositories
from corral.fakes.observe import InMemoryLeaderLock
from corral.fakes.uow import InMemoryUnitOfWorkFactory

DEPLOYMENT_YAML = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ app }}
spec:
  replicas: {{ replicas }}
  selector: {matchLabels: {app: {{ app }}}}
  template:
    metadata: {labels: {app: {{ app }}}}
    spec:
      containers:
        - name: {{ app }}
          image: {{ image_ref }}
          env: [{name: ENVIRONMENT, value: "{{ environment }}"}]
"""
SERVICE_YAML = """\
apiVersion: v1
kind: Service
metadata:
  name: {{ app }}
spec:
  selector: {app: {{ app }}}
  ports: [{port: 80}]
"""
VALUES_YAML = "app: web\nreplicas: 2\n"

ANN = Actor(uuid.uuid5(uuid.NAMESPACE_DNS, "ann"), "ann")
BOB = Actor(uuid.uuid5(uuid.NAMESPACE_DNS, "bob"), "bob")


@attrs.define
class World:
    clock: FakeClock
    uow: InMemoryUnitOfWorkFactory
    git: InMemoryGitRepositories
    cluster: FakeCluster | None
    service: DeployService
    reconciler: Reconciler
    secrets: FakeSecretSource
    leader: InMemoryLeaderLock
    project: ProjectInfo
    ops_repo_path: str

    def push(self, files: dict[str, bytes | None]) -> str:
        return self.git.commit(self.ops_repo_path, "main", files)

    async def deploy(self, image: str = "registry.example/web:1", env: str = "staging", **kw: object) -> Deployment:
        state = DesiredState(ops_repo="ops", app_path="apps/web", image_ref=image, namespace="web",
                             **kw)  # type: ignore[arg-type]
        deployment, _ = await self.service.set_desired(ANN, self.project, env, state)
        return deployment

    async def current(self, env: str = "staging") -> Deployment:
        return await self.service.get(self.project, env)

    def reconciler_twin(self) -> Reconciler:
        """A second replica: same database, cluster and lock."""
        return attrs.evolve(self.reconciler, cache={})


async def make_world(*, cluster: bool = True) -> World:
    clock = FakeClock(datetime(2026, 3, 1, 12, 0, tzinfo=UTC))
    uow = InMemoryUnitOfWorkFactory(clock=clock)
    git = InMemoryGitRepositories()
    project = Project(id=uuid7(), owner_id=ANN.id, owner_name="acme", name="web", visibility=Visibility.PRIVATE,
                      default_branch="main", repo_path="web.git", created_at=clock.now(), updated_at=clock.now())
    ops = Project(id=uuid7(), owner_id=ANN.id, owner_name="acme", name="ops", visibility=Visibility.PRIVATE,
                  default_branch="main", repo_path="ops.git", created_at=clock.now(), updated_at=clock.now())
    async with uow() as u:
        await u.projects.add(project)
        await u.projects.add(ops)
        await u.commit()
    await git.create("ops.git", "main")
    git.commit("ops.git", "main", {"apps/web/deployment.yaml": DEPLOYMENT_YAML.encode(),
                                   "apps/web/service.yaml": SERVICE_YAML.encode(),
                                   "apps/web/values.yaml": VALUES_YAML.encode(), "README.md": b"ops"})
    fake_cluster = FakeCluster(clock) if cluster else None
    service = DeployService(uow, clock, cluster_name=fake_cluster.name if fake_cluster else "not configured")
    await service.register_ops_repo(ANN, NewOpsRepo(name="ops", project="acme/ops"))
    secrets = FakeSecretSource({"DB_PASSWORD": "s3cr3t"})
    leader = InMemoryLeaderLock()
    reconciler = Reconciler(uow, clock, JinjaManifestRenderer(), InMemoryOpsSource(git, {ops.id: "ops.git"}),
                            secrets, leader, service, cluster=fake_cluster)
    return World(clock, uow, git, fake_cluster, service, reconciler, secrets, leader,
                 ProjectInfo(project.id, project.full_name), "ops.git")
