"""Behavioural contract of the DeployStore, run against every adapter.

Subclasses provide ``deploy_uow_factory`` (a UnitOfWorkFactory whose units carry ``deploy`` and ``projects``)
and ``make_user``: an async callable ``name -> UserRef`` creating a user a project may be owned by.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest

from corral.core.deploy.model import (
    Deployment,
    DeployStatus,
    HistoryEntry,
    HistoryResult,
    ObjectRef,
    OpsRepo,
    Promotion,
    PromotionStatus,
    SyncStatus,
)
from corral.core.errors import Conflict
from corral.core.ids import uuid7
from corral.core.projects.model import Project, Visibility
from corral.core.projects.ports import UserRef

__all__ = ["DeployStoreContract"]

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class DeployStoreContract:
    async def _world(self, uow_factory: Any, make_user: Callable[[str], Awaitable[UserRef]]) -> tuple[Project, OpsRepo]:
        owner = await make_user(f"u{uuid.uuid4().hex[:8]}")
        pid = uuid7()
        project = Project(id=pid, owner_id=owner.id, owner_name=owner.name, name="web", visibility=Visibility.PRIVATE,
                          default_branch="main", repo_path=f"{pid}.git", created_at=T0, updated_at=T0)
        repo = OpsRepo(id=uuid7(), name=f"ops-{uuid.uuid4().hex[:6]}", branch="main", path="", created_at=T0,
                       project_id=pid)
        async with uow_factory() as uow:
            await uow.projects.add(project)
            await uow.deploy.add_ops_repo(repo)
            await uow.commit()
        return project, repo

    def _deployment(self, project: Project, repo: OpsRepo, env: str = "staging") -> Deployment:
        return Deployment(id=uuid7(), project_id=project.id, environment=env, ops_repo_id=repo.id, app_path="apps/web",
                          image_ref="r/web:1", namespace="web", created_at=T0, updated_at=T0,
                          values_override={"replicas": 2, "nested": {"a": [1, "x"]}}, prune=True, desired_revision=1)

    async def test_ops_repos(self, deploy_uow_factory: Any, make_user: Any) -> None:
        _, repo = await self._world(deploy_uow_factory, make_user)
        async with deploy_uow_factory() as uow:
            assert await uow.deploy.get_ops_repo(repo.id) == repo
            assert await uow.deploy.ops_repo_by_name(repo.name) == repo
            assert repo in await uow.deploy.list_ops_repos()
            with pytest.raises(Conflict):
                await uow.deploy.add_ops_repo(attrs.evolve(repo, id=uuid7()))

    async def test_deployment_round_trip_and_observed_state(self, deploy_uow_factory: Any, make_user: Any) -> None:
        project, repo = await self._world(deploy_uow_factory, make_user)
        d = self._deployment(project, repo)
        async with deploy_uow_factory() as uow:
            await uow.deploy.save(d)
            await uow.commit()
        async with deploy_uow_factory() as uow:
            assert await uow.deploy.get(project.id, "staging") == d
            assert await uow.deploy.get_by_id(d.id) == d
            assert await uow.deploy.list_for_project(project.id) == [d]
            assert d in await uow.deploy.list_all()
        desired = attrs.evolve(d, image_ref="r/web:2", desired_revision=2)
        observed = attrs.evolve(d, sync=SyncStatus.SYNCED, health="Healthy", status=DeployStatus.HEALTHY,
                                applied_revision=1, applied_commit="abc", last_error="x", attempts=3,
                                next_attempt_at=T0 + timedelta(seconds=5), cluster="c1",
                                inventory=(ObjectRef("apps/v1", "Deployment", "web", "web"),
                                           ObjectRef("v1", "Namespace", "web")))
        async with deploy_uow_factory() as uow:
            await uow.deploy.save(desired)
            await uow.deploy.save_observed(observed)  # keeps the desired state written in between
            await uow.commit()
        async with deploy_uow_factory() as uow:
            got = await uow.deploy.get_by_id(d.id)
        assert got == attrs.evolve(observed, image_ref="r/web:2", desired_revision=2)

    async def test_project_names_in_one_read(self, deploy_uow_factory: Any, make_user: Any) -> None:
        project, _ = await self._world(deploy_uow_factory, make_user)
        other, _ = await self._world(deploy_uow_factory, make_user)
        missing = uuid7()
        async with deploy_uow_factory() as uow:
            names = await uow.deploy.project_names({project.id, other.id, missing})
            assert await uow.deploy.project_names(set()) == {}
        assert names == {project.id: project.full_name, other.id: other.full_name}

    async def test_one_deployment_per_environment(self, deploy_uow_factory: Any, make_user: Any) -> None:
        project, repo = await self._world(deploy_uow_factory, make_user)
        async with deploy_uow_factory() as uow:
            await uow.deploy.save(self._deployment(project, repo))
            await uow.commit()
        async with deploy_uow_factory() as uow:
            with pytest.raises(Conflict):
                await uow.deploy.save(self._deployment(project, repo))

    async def test_history_newest_first_trimmed(self, deploy_uow_factory: Any, make_user: Any) -> None:
        project, repo = await self._world(deploy_uow_factory, make_user)
        d = self._deployment(project, repo)
        entries = [HistoryEntry(id=uuid7(), deployment_id=d.id, revision=n, image_ref=f"r/web:{n}",
                                values_override={"n": n}, by_id=None, by_name="ann", at=T0 + timedelta(minutes=n))
                   for n in range(1, 6)]
        async with deploy_uow_factory() as uow:
            await uow.deploy.save(d)
            for e in entries:
                await uow.deploy.add_history(e)
            await uow.deploy.set_history_result(entries[0].id, "healthy")
            await uow.deploy.trim_history(d.id, 3)
            await uow.commit()
        async with deploy_uow_factory() as uow:
            got = await uow.deploy.history(d.id, 10)
            assert [e.revision for e in got] == [5, 4, 3]
            assert [e.revision for e in await uow.deploy.history(d.id, 2)] == [5, 4]
            assert await uow.deploy.get_history(entries[0].id) is None
            assert await uow.deploy.get_history(entries[4].id) == entries[4]
        async with deploy_uow_factory() as uow:
            await uow.deploy.set_history_result(entries[4].id, HistoryResult.FAILED.value)
            await uow.commit()
        async with deploy_uow_factory() as uow:
            assert (await uow.deploy.get_history(entries[4].id)).result is HistoryResult.FAILED

    async def test_promotions(self, deploy_uow_factory: Any, make_user: Any) -> None:
        project, _ = await self._world(deploy_uow_factory, make_user)
        p = Promotion(id=uuid7(), project_id=project.id, from_environment="staging", to_environment="production",
                      image_ref="r/web:1", requested_by=uuid7(), requested_by_name="ann", requested_at=T0)
        async with deploy_uow_factory() as uow:
            await uow.deploy.add_promotion(p)
            await uow.commit()
        done = attrs.evolve(p, status=PromotionStatus.APPLIED, approved_by=uuid7(), approved_by_name="bob",
                            decided_at=T0 + timedelta(minutes=1))
        async with deploy_uow_factory() as uow:
            assert await uow.deploy.get_promotion(p.id) == p
            await uow.deploy.save_promotion(done)
            await uow.commit()
        async with deploy_uow_factory() as uow:
            assert await uow.deploy.list_promotions(project.id) == [done]
