"""Pipeline use cases behind the API: list, show, run by hand, cancel, restart, logs.

Callers (the web layer) have checked ``pipeline:read`` / ``pipeline:run`` in the project already.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Callable, Mapping

import attrs

from corral.core.audit.model import AuditEntry
from corral.core.clock import Clock
from corral.core.errors import Conflict, InvalidInput, NotFound
from corral.core.git.ports import GitRepositories
from corral.core.ids import uuid7
from corral.core.outbox import topics
from corral.core.pagination import Page, clamp_limit
from corral.core.pipelines.checks import commit_pipelines
from corral.core.pipelines.creation import NewRun, create_pipeline, pipeline_event_payload, read_pipeline_files
from corral.core.pipelines.engine_ports import StepLogs
from corral.core.pipelines.ports import PipelineFileParser
from corral.core.pipelines.runs import Artifact, Pipeline, Status, StepKind, StepRun, WorkflowRun
from corral.core.pipelines.scheduler import finish_pipeline_if_done
from corral.core.pipelines.selection import SourceFile
from corral.core.projects.issues import number_cursor, numbered_page
from corral.core.projects.model import Actor, Project
from corral.core.storage.ports import ObjectStore
from corral.core.uow import UnitOfWork, UnitOfWorkFactory

__all__ = ["PipelineDetail", "PipelineService"]

_VARIABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_RESTARTABLE = frozenset({Status.FAILURE, Status.ERROR, Status.KILLED})


@attrs.frozen
class PipelineDetail:
    pipeline: Pipeline
    workflows: list[WorkflowRun]
    steps: list[StepRun]


@attrs.define
class PipelineService:
    uow_factory: UnitOfWorkFactory
    git: GitRepositories
    parser: PipelineFileParser
    clock: Clock
    logs: StepLogs
    base_url: str = ""
    cancel_local: Callable[[uuid.UUID], bool] | None = None  # the scheduler of this replica
    objects: ObjectStore | None = None  # artifacts

    async def commit_status(self, project: Project, rev: str) -> tuple[str, list[tuple[Pipeline, list[WorkflowRun]]]]:
        """The commit ``rev`` names (a sha, a branch or a tag) and its newest pipelines (newest first)."""
        sha = await self.git.resolve(project.repo_path, rev) if rev and not rev.startswith("-") else None
        if sha is None:
            raise NotFound(f"{rev!r} names no commit of {project.full_name}")
        async with self.uow_factory() as uow:
            return sha, await commit_pipelines(uow, project.id, sha)

    async def artifacts(self, project: Project, number: int) -> list[Artifact]:
        """The files the steps of pipeline ``number`` uploaded (not yet expired), by name."""
        async with self.uow_factory() as uow:
            pipeline = await self._pipeline(uow, project, number)
            found = await uow.pipelines.artifacts(pipeline.id)
        now = self.clock.now()
        return [a for a in found if a.expires_at is None or a.expires_at > now]

    async def artifact(self, project: Project, number: int, name: str) -> tuple[Artifact, AsyncIterator[bytes]]:
        """One artifact and its bytes; NotFound when there is none of that name (or it expired)."""
        async with self.uow_factory() as uow:
            pipeline = await self._pipeline(uow, project, number)
            found = await uow.pipelines.artifact(pipeline.id, name)
        if found is None or self.objects is None or (found.expires_at and found.expires_at <= self.clock.now()):
            raise NotFound(f"pipeline #{number} has no artifact {name!r}")
        return found, self.objects.get(found.key)

    async def recent(self, project: Project, *, limit: int | None, cursor: str | None) -> Page[Pipeline]:
        size = clamp_limit(limit)
        async with self.uow_factory() as uow:
            items = await uow.pipelines.recent(project.id, limit=size + 1, before_number=number_cursor(cursor))
        return numbered_page(items, size)

    async def _pipeline(self, uow: UnitOfWork, project: Project, number: int) -> Pipeline:
        pipeline = await uow.pipelines.get(project.id, number)
        if pipeline is None:
            raise NotFound(f"pipeline #{number} not found in {project.full_name}")
        return pipeline

    async def get(self, project: Project, number: int) -> PipelineDetail:
        async with self.uow_factory() as uow:
            pipeline = await self._pipeline(uow, project, number)
            return PipelineDetail(pipeline, await uow.pipelines.workflows(pipeline.id),
                                  await uow.pipelines.steps(pipeline.id))

    async def run(self, actor: Actor, project: Project, ref: str, variables: Mapping[str, str]) -> Pipeline:
        """A manual run of ``ref`` (a branch, a tag or a commit) with ``variables`` in its environment."""
        for key, value in variables.items():
            if not _VARIABLE.match(key) or key.startswith(("CI_", "CORRAL_")):
                raise InvalidInput(f"variable name {key!r} is not allowed (letters, digits, _; not CI_* or CORRAL_*)",
                                   field="variables")
            if not isinstance(value, str) or len(value) > 65536:
                raise InvalidInput(f"variable {key} must be a string of at most 64 KiB", field="variables")
        ref = ref.strip() or project.default_branch
        full_ref, branch = ref, ""
        sha = None
        for candidate, is_branch in ((f"refs/heads/{ref}", True), (f"refs/tags/{ref}", False)):
            sha = await self.git.resolve(project.repo_path, candidate)
            if sha is not None:
                full_ref, branch = candidate, (ref if is_branch else "")
                break
        if sha is None:
            sha = await self.git.resolve(project.repo_path, ref) if not ref.startswith("-") else None
        if sha is None:
            raise InvalidInput(f"ref {ref} names no branch, tag or commit of {project.full_name}", field="ref")
        commits = await self.git.log(project.repo_path, sha, limit=1)
        message, author = (commits[0].message, commits[0].author.name) if commits else ("", "")
        files = await read_pipeline_files(self.git, project.repo_path, sha)
        run = NewRun(event="manual", ref=full_ref, branch=branch, sha=sha, message=message, author=author,
                     actor_id=actor.id, actor_name=actor.name, variables=dict(variables))
        return await self._create(project, run, files)

    async def _create(self, project: Project, run: NewRun, files: list[SourceFile]) -> Pipeline:
        async with self.uow_factory() as uow:
            pipeline = await create_pipeline(uow, self.clock, self.parser, project, run, files,
                                             base_url=self.base_url, require_workflows=False)
            assert pipeline is not None
            await uow.commit()
        return pipeline

    async def cancel(self, actor: Actor, project: Project, number: int) -> Pipeline:
        """Stop everything the pipeline runs, at once; pending workflows never start."""
        async with self.uow_factory() as uow:
            pipeline = await self._pipeline(uow, project, number)
            if pipeline.status.final:
                raise Conflict(f"pipeline #{number} already ended ({pipeline.status.value})")
            pipeline = attrs.evolve(pipeline, cancel_requested=True)
            await uow.pipelines.update_pipeline(pipeline)
            now = self.clock.now()
            for w in await uow.pipelines.workflows(pipeline.id):
                if w.status in (Status.PENDING, Status.BLOCKED):
                    await uow.pipelines.update_workflow(attrs.evolve(w, status=Status.KILLED, finished_at=now))
                    for s in await uow.pipelines.steps(pipeline.id):
                        if s.workflow_id == w.id and not s.status.final:
                            await uow.pipelines.update_step(attrs.evolve(s, status=Status.SKIPPED))
            await uow.audit.record(AuditEntry(
                id=uuid7(), actor_id=actor.id, actor_name=actor.name, action="pipeline.cancel", resource="pipeline",
                created_at=now, resource_id=pipeline.id, project_id=project.id, detail={"number": number}))
            await uow.outbox.add(topics.PIPELINE, pipeline_event_payload(pipeline, project, "cancel_requested"),
                                 project_id=project.id)
            finished = await finish_pipeline_if_done(uow, self.clock, pipeline.id)
            await uow.commit()
        if self.cancel_local is not None:
            self.cancel_local(pipeline.id)
        return finished or pipeline

    async def restart(self, actor: Actor, project: Project, number: int, step: str | None) -> Pipeline:
        """A new pipeline (``parent`` = ``number``): everything again, or from a failed ``step`` on.

        From a step: that step and the steps depending on it (transitively) run again on the workspace the
        old run left, without a new clone; the steps that ended before are kept as they were (not run again).
        Conflict when the step did not fail or its workspace is gone.
        """
        async with self.uow_factory() as uow:
            old = await self._pipeline(uow, project, number)
            if not old.status.final:
                raise Conflict(f"pipeline #{number} is still {old.status.value}: cancel it or wait for it to end")
            workflows = await uow.pipelines.workflows(old.id)
            steps = await uow.pipelines.steps(old.id)
        files = [SourceFile(str(f["path"]), str(f["text"])) for f in old.definition.get("files") or []]
        c = old.definition.get("context") or {}
        changed = c.get("changed_files")
        run = NewRun(event=old.event, ref=old.ref, branch=old.branch, sha=old.commit_sha, message=old.commit_message,
                     author=old.commit_author, changed_files=tuple(changed) if isinstance(changed, list) else None,
                     actor_id=actor.id, actor_name=actor.name, variables=dict(old.variables),
                     pull_request=old.pull_request, extra=dict(old.definition.get("extra") or {}),
                     parent_number=old.number)
        if step is None:
            return await self._create(project, run, files)
        targets = [s for s in steps if s.name == step and s.kind is StepKind.STEP]
        if not targets:
            raise NotFound(f"pipeline #{number} has no step {step!r}")
        failed = [s for s in targets if s.status in _RESTARTABLE]
        if not failed:
            raise Conflict(f"step {step!r} of pipeline #{number} did not fail ({targets[0].status.value}): "
                           "only a failed step can be restarted on its own; restart the whole pipeline instead")
        by_id = {w.id: w for w in workflows}
        for s in failed:
            w = by_id[s.workflow_id]
            if w.workspace_deleted or not w.workspace_key:
                raise Conflict(f"the workspace of workflow {w.name} of pipeline #{number} is gone (it is deleted "
                               "when a workflow succeeds or is not kept): restart the whole pipeline instead")
        async with self.uow_factory() as uow:
            new_number = await uow.pipelines.next_number(project.id)
            pipeline = Pipeline(
                id=uuid7(), project_id=project.id, number=new_number, event=old.event, ref=old.ref,
                commit_sha=old.commit_sha, status=Status.PENDING, created_at=self.clock.now(), branch=old.branch,
                commit_message=old.commit_message, commit_author=old.commit_author, pull_request=old.pull_request,
                parent_number=old.number, triggered_by=actor.id, triggered_by_name=actor.name,
                variables=dict(old.variables), definition=dict(old.definition))
            rerun_workflows = {s.workflow_id for s in failed}
            new_workflows: list[WorkflowRun] = []
            new_steps: list[StepRun] = []
            for w in workflows:
                new_w = attrs.evolve(w, id=uuid7(), pipeline_id=pipeline.id, lease_owner=None, heartbeat_at=None)
                if w.id in rerun_workflows:
                    new_w = attrs.evolve(new_w, status=Status.PENDING, reuse_workspace=True, workspace_deleted=False,
                                         started_at=None, finished_at=None, error="")
                    # the workspace now belongs to the new run
                    await uow.pipelines.update_workflow(attrs.evolve(w, workspace_deleted=True))
                new_workflows.append(new_w)
                mine = [s for s in steps if s.workflow_id == w.id]
                again = _downstream({s.name for s in failed if s.workflow_id == w.id}, mine) \
                    if w.id in rerun_workflows else set()
                for s in mine:
                    copy = attrs.evolve(s, id=uuid7(), pipeline_id=pipeline.id, workflow_id=new_w.id)
                    if s.name in again or (w.id in rerun_workflows and s.kind is StepKind.SERVICE):
                        copy = attrs.evolve(copy, status=Status.PENDING, exit_code=None, started_at=None,
                                            finished_at=None, log_key=None, error="")
                    new_steps.append(copy)
            await uow.pipelines.add(pipeline, new_workflows, new_steps)
            await uow.audit.record(AuditEntry(
                id=uuid7(), actor_id=actor.id, actor_name=actor.name, action="pipeline.restart", resource="pipeline",
                created_at=self.clock.now(), resource_id=pipeline.id, project_id=project.id,
                detail={"number": new_number, "parent": number, "step": step}))
            await uow.outbox.add(topics.PIPELINE, pipeline_event_payload(pipeline, project, "created"),
                                 project_id=project.id)
            await uow.commit()
        return pipeline

    async def log_lines(self, project: Project, number: int, step: str, *, after: int = 0,
                        workflow: str | None = None, wait: bool = True) -> AsyncIterator[tuple[int, str]]:
        """The masked log of ``step`` (of ``workflow`` when several workflows have a step of that name),
        following it live while it runs."""
        detail = await self.get(project, number)
        names = {w.id: w.name for w in detail.workflows}
        found = [s for s in detail.steps if s.name == step and (workflow is None or names[s.workflow_id] == workflow)]
        if not found:
            raise NotFound(f"pipeline #{number} has no step {step!r}")
        row = found[0]
        if row.status is Status.PENDING:
            return _nothing()
        return self.logs.follow(row.id, row.log_key, after, wait)


async def _nothing() -> AsyncIterator[tuple[int, str]]:
    return
    yield  # pragma: no cover


def _downstream(roots: set[str], steps: list[StepRun]) -> set[str]:
    """``roots`` and every step that depends on them, transitively."""
    found = set(roots)
    changed = True
    while changed:
        changed = False
        for s in steps:
            if s.name not in found and any(d in found for d in s.depends_on):
                found.add(s.name)
                changed = True
    return found
