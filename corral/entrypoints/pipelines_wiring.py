"""Wiring of the pipelines domain: the file parser, triggers (an outbox consumer), the scheduler loop, the
service behind the API, and the adapters they need (step logs, CORRAL_TOKEN, secrets)."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable, Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any

import attrs

from corral.adapters.pipeline_yaml import PyYamlPipelineFileParser
from corral.core.clock import Clock
from corral.core.outbox.relay import OutboxRelay
from corral.core.pipelines.engine_ports import PipelineToken, StepLogs
from corral.core.pipelines.housekeeping import PipelineHousekeeping, pipeline_purge_parts
from corral.core.pipelines.ports import PipelineFileParser
from corral.core.pipelines.scheduler import EngineSettings, PipelineScheduler
from corral.core.pipelines.service import PipelineService
from corral.core.pipelines.triggers import PipelineTriggers
from corral.core.projects.model import Project
from corral.core.storage.ports import ObjectStore
from corral.core.uow import UnitOfWorkFactory
from corral.entrypoints.platform import Platform

__all__ = ["IdentityPipelineTokens", "ReaderSecretValues", "wire_pipelines"]

log = logging.getLogger("corral.pipelines")


def _principal(user_id: uuid.UUID, name: str) -> Any:
    from corral.core.identity.model import AuthMethod, Principal

    return Principal(user_id=user_id, name=name, method=AuthMethod.SESSION)


@attrs.define
class IdentityPipelineTokens:
    """CORRAL_TOKEN through the identity domain's token service (audited, revocable, expiring)."""

    platform: Any
    clock: Clock
    _owners: dict[uuid.UUID, Any] = attrs.field(factory=dict)

    async def issue(self, user_id: uuid.UUID, user_name: str, project_id: uuid.UUID, *, scopes: frozenset[str],
                    ttl_seconds: float, name: str) -> PipelineToken | None:
        from corral.core.identity.commands import NewToken
        from corral.core.identity.kit import IdentityServices

        ids: IdentityServices = self.platform.resolve(IdentityServices)
        actor = _principal(user_id, user_name)
        held = await ids.authorizer.user_permissions(user_id, project_id)
        wanted = sorted(scopes & held)
        if not wanted:
            return None
        command = NewToken(name=name, scopes=wanted,
                           expires_at=self.clock.now() + timedelta(seconds=ttl_seconds))
        issued = await ids.tokens.create(actor, command, project_id=project_id)
        self._owners[issued.token.id] = actor
        return PipelineToken(issued.token.id, issued.secret)

    async def revoke(self, token_id: uuid.UUID) -> None:
        from corral.core.identity.kit import IdentityServices

        actor = self._owners.pop(token_id, None)
        if actor is not None:
            ids: IdentityServices = self.platform.resolve(IdentityServices)
            await ids.tokens.revoke(actor, token_id)


@attrs.define
class ReaderSecretValues:
    """Secrets of a run read through the audited SecretReader as the triggering user (scope pipeline)."""

    platform: Any

    async def read(self, user_id: uuid.UUID, user_name: str, project_id: uuid.UUID, names: Iterable[str],
                   reason: str) -> dict[str, str]:
        from corral.core.secrets.model import SecretScope
        from corral.core.secrets.reader import SecretReader

        reader: SecretReader = self.platform.resolve(SecretReader)
        return await reader.read_many(_principal(user_id, user_name), project_id, list(names), SecretScope.PIPELINE,
                                      reason)


_HOUSEKEEPING_SECONDS = 300.0


async def _every(seconds: float, work: Callable[[], Awaitable[object]], what: str) -> None:
    """Run ``work`` every ``seconds`` until cancelled; a failed turn is logged and retried next time."""
    while True:
        try:
            await work()
        except Exception:
            log.exception("%s failed; retrying", what)
        await asyncio.sleep(seconds)


async def wire_pipelines(platform: Platform) -> None:
    parser = PyYamlPipelineFileParser()
    platform.register(PipelineFileParser, parser)
    from corral.core.workloads.ports import Executor
    from corral.entrypoints.web.project_access import ProjectsKit

    kit = platform.resolve_optional(ProjectsKit)
    if kit is None:  # no projects domain wired (some unit tests): no engine
        return
    if kit.projects.purger is not None:  # a deleted project's caches, artifacts, logs and workspaces
        kit.projects.purger.contributors.append(pipeline_purge_parts)

    settings = platform.settings
    uow_factory: UnitOfWorkFactory = platform.uow_factory
    clock: Clock = platform.clock
    objects: ObjectStore = platform.objects
    logs: StepLogs
    if settings.profile == "memory":
        from corral.fakes.pipeline_logs import InMemoryStepLogs

        logs = InMemoryStepLogs(objects)
    else:
        from corral.adapters.pipeline_logs import SpooledStepLogs

        logs = SpooledStepLogs(objects, settings.data_dir / "tmp")
    platform.register(StepLogs, logs)
    base_url = settings.public_url()
    triggers = PipelineTriggers(kit.git, parser, clock, base_url)
    relay: OutboxRelay = platform.relay
    relay.consumers.append(triggers.on_event)
    service = PipelineService(uow_factory, kit.git, parser, clock, logs, base_url, objects=objects)
    platform.register(PipelineService, service)
    from corral.adapters.cron import CroniterRules
    from corral.core.pipelines.schedules import ScheduleRunner, ScheduleService

    rules = CroniterRules()
    platform.register(ScheduleService, ScheduleService(uow_factory, kit.git, rules, clock))
    runner = ScheduleRunner(uow_factory, kit.git, parser, rules, clock, base_url)

    async def pipeline_schedules() -> None:
        await _every(settings.pipeline_schedule_poll_seconds, runner.run_once, "pipeline schedules")

    platform.background.append(pipeline_schedules)
    repos_root = Path(settings.git_repos_dir or settings.data_dir / "repos")

    def clone_source(project: Project) -> str:
        return str(repos_root / project.repo_path)

    async def pipeline_scheduler() -> None:
        # resolved when the loops start: the workloads wiring may come after this one
        executor = platform.resolve_optional(Executor)
        if executor is None:
            log.warning("no workload executor is configured: pipelines are recorded but do not run")
            return
        engine = EngineSettings(
            owner=f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}", base_url=base_url,
            max_running_steps=settings.pipeline_max_running_steps,
            workflow_timeout_seconds=settings.pipeline_workflow_timeout_minutes * 60.0,
            local_executor=type(executor).__name__.lower().startswith("local"),
        )
        scheduler = PipelineScheduler(uow_factory, executor, parser, logs, clock, engine, clone_source,
                                      secrets=ReaderSecretValues(platform),
                                      tokens=IdentityPipelineTokens(platform, clock), objects=objects)
        service.cancel_local = scheduler.cancel_local
        triggers.on_created = scheduler.wake
        housekeeping = PipelineHousekeeping(uow_factory, executor, clock, engine.owner, scheduler.files,
                                            settings.pipeline_workspace_retention_hours)
        try:
            await housekeeping.recover()
        except Exception:
            log.exception("stopping the pipeline workloads a previous process left failed")
        sweeper = asyncio.create_task(_every(_HOUSEKEEPING_SECONDS, housekeeping.sweep, "pipeline housekeeping"))
        try:
            await scheduler.loop()
        finally:
            sweeper.cancel()

    platform.background.append(pipeline_scheduler)
