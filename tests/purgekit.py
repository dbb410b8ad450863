"""Deleting a project leaves nothing behind: one scenario for every layer (fakes; PostgreSQL with real S3).

``PurgeRig`` holds the ports a project's purge touches; ``seed`` stores, for a project, something under every
kind of leftover (cached archive, release asset, LFS object and staged upload, pipeline cache, artifact and
step log, a pipeline workspace, an agent session's workspace, the repository); ``leftovers`` lists what of it
remains. The keys come from the domains' own key functions, so a domain that moves its keys fails here.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import attrs

from corral.core.agents.model import AgentSession, AgentStatus
from corral.core.agents.runner import workspace_key
from corral.core.agents.service import agent_purge_parts
from corral.core.clock import Clock
from corral.core.ids import uuid7
from corral.core.pipelines.housekeeping import pipeline_purge_parts
from corral.core.pipelines.runs import Pipeline, Status, WorkflowRun
from corral.core.pipelines.step_files import artifact_prefix, cache_key
from corral.core.projects.commands import NewProject
from corral.core.projects.model import Actor, Project
from corral.core.projects.purge import ProjectPurger
from corral.core.projects.service import ProjectService
from corral.core.storage.ports import ObjectStore
from corral.entrypoints.web.routes.lfs import key_of, lfs_purge_parts, staging_key_of
from corral.fakes.executor import InMemoryExecutor

__all__ = ["PurgeRig"]


@attrs.define
class PurgeRig:
    uow_factory: Any
    objects: ObjectStore
    repos: Any
    clock: Clock
    make_user: Callable[[str], Awaitable[Any]]
    repo_exists: Callable[[str], bool]
    executor: InMemoryExecutor = attrs.field(factory=InMemoryExecutor)
    workspaces: dict[uuid.UUID, list[str]] = attrs.field(factory=dict)  # seeded, by project
    purger: ProjectPurger = attrs.field(init=False)
    service: ProjectService = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.purger = ProjectPurger(self.uow_factory, self.objects, self.repos, self.clock, executor=self.executor,
                                    contributors=[lfs_purge_parts, pipeline_purge_parts, agent_purge_parts])
        self.service = ProjectService(self.uow_factory, self.repos, self.clock, purger=self.purger)

    async def project(self, name: str) -> tuple[Actor, Project]:
        user = await self.make_user(f"u{uuid.uuid4().hex[:8]}")
        actor = Actor(user.id, user.name)
        return actor, await self.service.create(actor, NewProject(name=name))

    async def seed(self, actor: Actor, project: Project) -> None:
        """Something of ``project`` under every kind of leftover."""
        now = self.clock.now()
        oid = "ab" * 32
        pipeline = Pipeline(id=uuid7(), project_id=project.id, number=1, event="push", ref="refs/heads/main",
                            commit_sha="c" * 40, status=Status.FAILURE, created_at=now, branch="main")
        workflow = WorkflowRun(id=uuid7(), pipeline_id=pipeline.id, project_id=project.id, position=0, name="build",
                               status=Status.FAILURE, workspace_key=f"pipeline-{pipeline.id.hex}-0",
                               workspace_deleted=False, finished_at=now)
        session = AgentSession(
            id=uuid7(), project_id=project.id, requester_id=actor.id, requester_name=actor.name, prompt="p",
            provider="claude-code", permissions=("project:read",), max_turns=1, max_cost_usd=1.0,
            timeout_seconds=60, branch="agent/x", open_merge_request=False, status=AgentStatus.COMPLETED,
            created_at=now, expires_at=now + timedelta(minutes=1), finished_at=now)
        async with self.uow_factory() as uow:
            await uow.pipelines.add(pipeline, [workflow], [])
            await uow.agents.add(session)
            await uow.commit()
        for key in (f"archives/{project.id}/{'a' * 40}/app-main.tar.gz",
                    f"releases/{project.id}/{uuid7()}/{uuid7()}",
                    key_of(project, oid), staging_key_of(project, oid, "0" * 32),
                    cache_key(project.id, "main", "deps"), artifact_prefix(pipeline) + "dist.tar",
                    f"pipelines/{project.id}/{pipeline.id}/{uuid7()}.log"):
            await self.objects.put(key, b"kept outside PostgreSQL")
        self.workspaces[project.id] = [workflow.workspace_key, workspace_key(session.id)]
        for key in self.workspaces[project.id]:
            workspace = await self.executor.create_workspace(key)
            self.executor.world.workspaces[workspace.key]["file"] = b"x"

    async def leftovers(self, project: Project) -> list[str]:
        """What remains of ``project`` outside PostgreSQL: object keys naming it, its workspaces, its repo."""
        left: list[str] = []
        token: str | None = None
        while True:
            listing = await self.objects.list("", token=token)
            left += [o.key for o in listing.objects if str(project.id) in o.key]
            token = listing.next_token
            if not token:
                break
        left += [f"workspace {k}" for k in self.workspaces.get(project.id, []) if k in self.executor.world.workspaces]
        if self.repo_exists(project.repo_path):
            left.append(f"repository {project.repo_path}")
        return left


async def deleting_a_project_leaves_nothing_behind(rig: PurgeRig) -> None:
    """The scenario every layer runs: two seeded projects, one deleted; nothing of it remains, all of the
    other does, and its purge record is gone."""
    actor, doomed = await rig.project("doomed")
    _, kept = await rig.project("kept")
    await rig.seed(actor, doomed)
    await rig.seed(actor, kept)
    before = await rig.leftovers(kept)
    assert len(before) == 7 + 2 + 1, before  # the scenario seeds what it claims to
    assert len(await rig.leftovers(doomed)) == len(before)
    await rig.service.delete(actor, doomed)
    assert await rig.leftovers(doomed) == []
    assert await rig.leftovers(kept) == before
    async with rig.uow_factory() as uow:
        assert await uow.project_purges.get(doomed.id) is None
