"""Cron schedules: per project, a ``cron`` pipeline of a branch at every due time.

``ScheduleService`` manages them (callers checked ``pipeline:run``); ``ScheduleRunner.run_once`` fires the due
ones: each due time makes exactly one pipeline (its ``trigger_key`` is ``cron:<schedule id>:<due time>`` and
the schedule row is locked while it fires), then the schedule moves to its next due time after now (missed
times while the server was down run once, not once each). The run's environment has ``CI_PIPELINE_CRON`` =
the schedule's name, as Woodpecker passes it, and ``when: cron:`` filters match that name.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Protocol

import attrs

from corral.core.audit.model import AuditEntry
from corral.core.clock import Clock
from corral.core.errors import CorralError, InvalidInput, NotFound
from corral.core.git.ports import GitRepositories
from corral.core.ids import uuid7
from corral.core.pipelines.creation import NewRun, create_pipeline, read_pipeline_files
from corral.core.pipelines.ports import PipelineFileParser
from corral.core.pipelines.runs import Schedule
from corral.core.projects.model import Actor, Project
from corral.core.uow import UnitOfWork, UnitOfWorkFactory

__all__ = ["CronRules", "NewSchedule", "ScheduleRunner", "ScheduleService"]

log = logging.getLogger("corral.pipelines")

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,99}$")
_VARIABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


class CronRules(Protocol):
    """Cron expressions (UTC): five fields (minute first), six fields (Woodpecker's: seconds first),
    ``@hourly``/``@daily``/``@weekly``/``@monthly``/``@yearly`` and ``@every <duration>`` (e.g. ``@every 30m``)."""

    def check(self, expression: str) -> None:
        """Raise InvalidInput(field="cron") naming what is wrong."""
        ...

    def next_after(self, expression: str, after: datetime) -> datetime:
        """The first due time strictly after ``after``."""
        ...


@attrs.frozen(kw_only=True)
class NewSchedule:
    """A cron schedule of a project's pipelines."""

    name: str = attrs.field(metadata={"doc": "unique in the project; `CI_PIPELINE_CRON` and `when: cron:` see it"})
    cron: str = attrs.field(metadata={
        "doc": "UTC: 5 fields (`30 4 * * *`), 6 fields with seconds first (Woodpecker's `0 30 4 * * *`), "
               "`@daily`, `@hourly`... or `@every 30m`"})
    branch: str = attrs.field(default="", metadata={"doc": "the branch to run (default: the default branch)"})
    variables: dict[str, str] = attrs.field(factory=dict, metadata={
        "doc": "extra environment variables of every step (names: letters, digits, _; not CI_* or CORRAL_*)"})


def _check_variables(variables: Mapping[str, str]) -> None:
    for key, value in variables.items():
        if not _VARIABLE.match(key) or key.startswith(("CI_", "CORRAL_")):
            raise InvalidInput(f"variable name {key!r} is not allowed (letters, digits, _; not CI_* or CORRAL_*)",
                               field="variables")
        if not isinstance(value, str) or len(value) > 65536:
            raise InvalidInput(f"variable {key} must be a string of at most 64 KiB", field="variables")


@attrs.define
class ScheduleService:
    uow_factory: UnitOfWorkFactory
    git: GitRepositories
    rules: CronRules
    clock: Clock

    async def create(self, actor: Actor, project: Project, command: NewSchedule) -> Schedule:
        name = command.name.strip()
        if not _NAME.match(name):
            raise InvalidInput("name must be 1-100 letters, digits, spaces, '.', '_' or '-'", field="name")
        self.rules.check(command.cron.strip())
        _check_variables(command.variables)
        branch = command.branch.strip() or project.default_branch
        if await self.git.resolve(project.repo_path, f"refs/heads/{branch}") is None:
            raise InvalidInput(f"branch {branch} does not exist in {project.full_name}", field="branch")
        now = self.clock.now()
        schedule = Schedule(id=uuid7(), project_id=project.id, name=name, cron=command.cron.strip(), branch=branch,
                            created_at=now, next_run_at=self.rules.next_after(command.cron.strip(), now),
                            variables=dict(command.variables), created_by=actor.id, created_by_name=actor.name)
        async with self.uow_factory() as uow:
            await uow.pipelines.add_schedule(schedule)
            await uow.audit.record(AuditEntry(
                id=uuid7(), actor_id=actor.id, actor_name=actor.name, action="pipeline_schedule.create",
                resource="pipeline_schedule", created_at=now, resource_id=schedule.id, project_id=project.id,
                detail={"name": name, "cron": schedule.cron, "branch": branch}))
            await uow.commit()
        return schedule

    async def list(self, project: Project) -> list[Schedule]:
        async with self.uow_factory() as uow:
            return await uow.pipelines.schedules(project.id)

    async def delete(self, actor: Actor, project: Project, name: str) -> None:
        async with self.uow_factory() as uow:
            found = await uow.pipelines.schedule(project.id, name)
            if found is None:
                raise NotFound(f"{project.full_name} has no pipeline schedule {name!r}")
            await uow.pipelines.delete_schedule(found.id)
            await uow.audit.record(AuditEntry(
                id=uuid7(), actor_id=actor.id, actor_name=actor.name, action="pipeline_schedule.delete",
                resource="pipeline_schedule", created_at=self.clock.now(), resource_id=found.id,
                project_id=project.id, detail={"name": name}))
            await uow.commit()


@attrs.define
class ScheduleRunner:
    uow_factory: UnitOfWorkFactory
    git: GitRepositories
    parser: PipelineFileParser
    rules: CronRules
    clock: Clock
    base_url: str = ""

    async def run_once(self, limit: int = 20) -> int:
        """Fire the due schedules; returns how many pipelines were created."""
        created = 0
        async with self.uow_factory() as uow:
            for schedule in await uow.pipelines.due_schedules(self.clock.now(), limit):
                if await self._fire(uow, schedule):
                    created += 1
                now = self.clock.now()
                following = self.rules.next_after(schedule.cron, max(now, schedule.next_run_at))
                await uow.pipelines.update_schedule(attrs.evolve(schedule, next_run_at=following, last_run_at=now))
            await uow.commit()
        return created

    async def _fire(self, uow: UnitOfWork, schedule: Schedule) -> bool:
        key = f"cron:{schedule.id}:{schedule.next_run_at.isoformat()}"
        if await uow.pipelines.by_trigger(key) is not None:
            return False
        project = await uow.projects.get(schedule.project_id)
        if project is None or not project.is_active:
            return False
        ref = f"refs/heads/{schedule.branch}"
        try:
            sha = await self.git.resolve(project.repo_path, ref)
            if sha is None:
                log.warning("pipeline schedule %s: branch %s is gone", schedule.name, schedule.branch)
                return False
            commits = await self.git.log(project.repo_path, sha, limit=1)
            files = await read_pipeline_files(self.git, project.repo_path, sha)
        except CorralError as exc:
            log.warning("pipeline schedule %s not fired: %s", schedule.name, exc)
            return False
        message, author = (commits[0].message, commits[0].author.name) if commits else ("", "")
        run = NewRun(event="cron", ref=ref, branch=schedule.branch, sha=sha, message=message, author=author,
                     actor_id=schedule.created_by, actor_name=schedule.created_by_name,
                     variables=dict(schedule.variables), extra={"cron": schedule.name}, trigger_key=key)
        pipeline = await create_pipeline(uow, self.clock, self.parser, project, run, files, base_url=self.base_url)
        return pipeline is not None

