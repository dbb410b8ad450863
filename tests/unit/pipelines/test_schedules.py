"""Cron schedules: validation, exactly one pipeline per due time, CI_PIPELINE_CRON and `when: cron`."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest

from corral.adapters.cron import CroniterRules
from corral.adapters.pipeline_yaml import PyYamlPipelineFileParser
from corral.core.errors import Conflict, InvalidInput
from corral.core.pipelines.environment import pipeline_environment, replan
from corral.core.pipelines.schedules import NewSchedule, ScheduleRunner, ScheduleService
from corral.core.projects.model import Actor
from corral.fakes.git import InMemoryGitRepositories
from tests.unit.pipelines.engine_support import Engine, make_engine

PIPELINE = b"""
steps:
  nightly:
    image: alpine
    commands: [echo nightly]
    when:
      - event: cron
        cron: nightly
  other-cron:
    image: alpine
    commands: [echo other]
    when:
      event: cron
      cron: weekly
  on-push:
    image: alpine
    commands: [echo push]
    when:
      event: push
"""

ANN = Actor(uuid.uuid4(), "ann")


def test_cron_rules_accept_five_and_six_fields_descriptors_and_every() -> None:
    rules = CroniterRules()
    t = datetime(2026, 3, 1, 10, 7, 30, tzinfo=UTC)
    assert rules.next_after("*/15 * * * *", t) == datetime(2026, 3, 1, 10, 15, tzinfo=UTC)
    assert rules.next_after("0 30 4 * * *", t) == datetime(2026, 3, 2, 4, 30, tzinfo=UTC)  # seconds first
    assert rules.next_after("@daily", t) == datetime(2026, 3, 2, tzinfo=UTC)
    assert rules.next_after("@every 5m", t) == datetime(2026, 3, 1, 10, 10, tzinfo=UTC)
    assert rules.next_after("*/15 * * * *", datetime(2026, 3, 1, 10, 15, tzinfo=UTC)) == datetime(
        2026, 3, 1, 10, 30, tzinfo=UTC)  # strictly after
    for bad in ("61 * * * *", "* * *", "@sometimes", "@every 5s", "@every soon", ""):
        with pytest.raises(InvalidInput) as err:
            rules.check(bad)
        assert err.value.field == "cron"


async def _setup() -> tuple[Engine, InMemoryGitRepositories, ScheduleService, ScheduleRunner]:
    engine = await make_engine()
    git = InMemoryGitRepositories()
    await git.create(engine.project.repo_path, "main")
    git.commit(engine.project.repo_path, "main", {".woodpecker.yaml": PIPELINE})
    rules = CroniterRules()
    service = ScheduleService(engine.uow_factory, git, rules, engine.clock)
    runner = ScheduleRunner(engine.uow_factory, git, PyYamlPipelineFileParser(), rules, engine.clock,
                            "http://corral.test")
    return engine, git, service, runner


async def test_schedules_are_validated_and_unique_by_name() -> None:
    engine, _, service, _ = await _setup()
    created = await service.create(ANN, engine.project, NewSchedule(name="nightly", cron="0 3 * * *"))
    assert created.branch == "main" and created.next_run_at > engine.clock.now()
    with pytest.raises(Conflict):
        await service.create(ANN, engine.project, NewSchedule(name="nightly", cron="@hourly"))
    with pytest.raises(InvalidInput) as err:
        await service.create(ANN, engine.project, NewSchedule(name="x", cron="@hourly", branch="nope"))
    assert err.value.field == "branch"
    with pytest.raises(InvalidInput) as err:
        await service.create(ANN, engine.project, NewSchedule(name="y", cron="@hourly", variables={"CI_X": "1"}))
    assert err.value.field == "variables"
    assert [s.name for s in await service.list(engine.project)] == ["nightly"]
    await service.delete(ANN, engine.project, "nightly")
    assert await service.list(engine.project) == []


async def test_a_due_schedule_fires_exactly_once_per_due_time_with_its_name_in_the_environment() -> None:
    engine, _, service, runner = await _setup()
    schedule = await service.create(ANN, engine.project, NewSchedule(name="nightly", cron="0 3 * * *",
                                                                      variables={"MODE": "full"}))
    assert await runner.run_once() == 0  # not due yet
    engine.clock.set(schedule.next_run_at)
    # two replicas' runners at the same moment: one pipeline
    results = await asyncio.gather(runner.run_once(), runner.run_once())
    assert sorted(results) == [0, 1]
    assert await runner.run_once() == 0
    async with engine.uow_factory() as uow:
        pipelines = await uow.pipelines.recent(engine.project.id, limit=10)
        moved = await uow.pipelines.schedule(engine.project.id, "nightly")
    assert len(pipelines) == 1
    p = pipelines[0]
    assert (p.event, p.branch, p.triggered_by, p.variables) == ("cron", "main", ANN.id, {"MODE": "full"})
    assert moved is not None and moved.next_run_at > schedule.next_run_at and moved.last_run_at is not None
    env = pipeline_environment(p, engine.project, base_url="http://corral.test")
    assert env["CI_PIPELINE_CRON"] == "nightly" and env["CI_PIPELINE_EVENT"] == "cron" and env["MODE"] == "full"
    planned, _ = replan(p, PyYamlPipelineFileParser(), env)
    assert [s.name for s in planned[0].steps] == ["nightly"]  # `when: cron` filters on the schedule's name

    engine.clock.set(moved.next_run_at)  # the next due time fires again
    assert await runner.run_once() == 1


async def test_missed_due_times_run_once() -> None:
    engine, _, service, runner = await _setup()
    schedule = await service.create(ANN, engine.project, NewSchedule(name="nightly", cron="@hourly"))
    engine.clock.set(schedule.next_run_at)
    engine.clock.advance(5 * 3600 + 60)  # the server was down for five due times
    assert await runner.run_once() == 1
    assert await runner.run_once() == 0
    async with engine.uow_factory() as uow:
        moved = await uow.pipelines.schedule(engine.project.id, "nightly")
    assert moved is not None and moved.next_run_at > engine.clock.now()
