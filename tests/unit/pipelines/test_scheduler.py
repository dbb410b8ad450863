"""The scheduler over in-memory fakes and a scripted executor: ordering, failures, cancel, timeouts, leases."""

from __future__ import annotations

import asyncio
import uuid

import attrs

from corral.core.pipelines.runs import Status
from tests.unit.pipelines.engine_support import Script, make_engine

SEQUENTIAL = """
steps:
  build:
    image: alpine
    commands: [make]
  test:
    image: alpine
    commands: [make test]
"""


async def test_a_push_runs_clone_then_steps_in_file_order() -> None:
    engine = await make_engine({"build": Script(output="built\n"), "test": Script(output="ok\n")})
    p = await engine.create(SEQUENTIAL)
    await engine.run_all()
    assert await engine.statuses(p.number) == {"pipeline": "success", "clone": "success", "build": "success",
                                                "test": "success"}
    assert engine.executor.order() == ["start:clone", "end:clone", "start:build", "end:build", "start:test",
                                       "end:test"]
    clone = engine.executor.specs["clone"]
    assert clone.argv[:3] == ("/bin/sh", "-e", "-c")
    assert "git clone -q --no-checkout /repos/acme/app.git ." in clone.argv[3]
    assert "checkout -q " + "a" * 40 in clone.argv[3]
    env = engine.executor.specs["build"].env
    assert env["CI"] == "woodpecker" and env["CI_REPO"] == "acme/app" and env["CI_COMMIT_SHA"] == "a" * 40
    assert env["CI_COMMIT_BRANCH"] == "main" and env["CI_PIPELINE_EVENT"] == "push"
    assert env["CI_PIPELINE_NUMBER"] == str(p.number) and env["CI_STEP_NAME"] == "build"
    assert env["CI_WORKFLOW_NAME"] == "woodpecker" and env["CI_FORGE_TYPE"] == "corral"
    assert env["CI_PIPELINE_URL"] == f"http://corral.test/acme/app/pipelines/{p.number}"
    assert env["CI_WORKSPACE"].startswith("/workspaces/pipeline-")
    key = (await _step(engine, p.number, "build")).log_key
    lines = [text async for _, text in engine.logs.follow(uuid.uuid4(), key)]
    assert lines == ["image alpine is not used by the local executor", "built"]
    assert engine.executor.deleted  # a successful workflow's workspace is deleted


async def _step(engine, number, name):  # type: ignore[no-untyped-def]
    async with engine.uow_factory() as uow:
        p = await uow.pipelines.get(engine.project.id, number)
        return next(s for s in await uow.pipelines.steps(p.id) if s.name == name)


async def test_each_step_starts_when_its_own_dependencies_end() -> None:
    # a (slow) <- c ; b (fast) <- d : d must start before a ends
    yaml = """
skip_clone: true
steps:
  a: {image: x, commands: [a]}
  b: {image: x, commands: [b]}
  c: {image: x, commands: [c], depends_on: [a]}
  d: {image: x, commands: [d], depends_on: [b]}
"""
    engine = await make_engine({"a": Script(seconds=0.3), "b": Script(seconds=0.01)})
    p = await engine.create(yaml)
    await engine.run_all()
    ex = engine.executor
    assert ex.index("start", "d") < ex.index("end", "a")
    assert ex.index("end", "b") < ex.index("start", "d")
    assert ex.index("end", "a") < ex.index("start", "c")
    assert (await engine.statuses(p.number))["pipeline"] == "success"


async def test_a_failure_skips_dependents_but_not_ignored_failures_or_status_failure_steps() -> None:
    yaml = """
skip_clone: true
steps:
  lint: {image: x, commands: [lint], failure: ignore}
  build: {image: x, commands: [build]}
  after-lint: {image: x, commands: [x], depends_on: [lint]}
  test: {image: x, commands: [test], depends_on: [build]}
  deploy: {image: x, commands: [deploy], depends_on: [test]}
  notify: {image: x, commands: [notify], depends_on: [test], when: {status: [failure]}}
  fine: {image: x, commands: [ok], depends_on: [lint], when: {status: [failure]}}
"""
    engine = await make_engine({"lint": Script(exit_code=1), "build": Script(exit_code=2)})
    p = await engine.create(yaml)
    await engine.run_all()
    st = await engine.statuses(p.number)
    assert st == {"pipeline": "failure", "lint": "failure", "build": "failure", "after-lint": "success",
                  "test": "skipped", "deploy": "skipped", "notify": "success", "fine": "skipped"}
    assert (await _step(engine, p.number, "build")).exit_code == 2
    assert engine.executor.workspaces  # a failed workflow keeps its workspace (restart from a step)


async def test_failure_ignore_alone_is_a_success() -> None:
    engine = await make_engine({"build": Script(exit_code=1)})
    p = await engine.create(SEQUENTIAL.replace("commands: [make]", "commands: [make]\n    failure: ignore"))
    await engine.run_all()
    assert await engine.statuses(p.number) == {"pipeline": "success", "clone": "success", "build": "failure",
                                                "test": "success"}


async def test_secrets_are_masked_and_passed_as_secret_env() -> None:
    class Secrets:
        async def read(self, user_id, user_name, project_id, names, reason):  # type: ignore[no-untyped-def]
            assert list(names) == ["token"]
            return {"token": "hunter2-very-secret"}

    yaml = """
skip_clone: true
steps:
  show:
    image: x
    commands: [echo]
    environment:
      TOKEN: {from_secret: token}
      PLAIN: visible
"""
    engine = await make_engine({"show": Script(output="value=hunter2-very-secret\nb64=aHVudGVyMi12ZXJ5LXNlY3JldA==\n")})
    engine.scheduler.secrets = Secrets()
    p = await engine.create(yaml, actor=uuid.uuid4())
    await engine.run_all()
    spec = engine.executor.specs["show"]
    assert spec.secret_env == {"TOKEN": "hunter2-very-secret"} and spec.env["PLAIN"] == "visible"
    assert "TOKEN" not in spec.env
    row = await _step(engine, p.number, "show")
    lines = [t async for _, t in engine.logs.follow(row.id, row.log_key)]
    assert lines == ["image x is not used by the local executor", "value=***", "b64=***"]


async def test_cancel_stops_everything_at_once() -> None:
    yaml = """
skip_clone: true
services:
  db: {image: postgres, commands: [serve]}
steps:
  a: {image: x, commands: [sleep], depends_on: []}
  b: {image: x, commands: [sleep], depends_on: []}
  c: {image: x, commands: [after], depends_on: [a]}
"""
    engine = await make_engine({"a": Script(seconds=30), "b": Script(seconds=30), "db": Script(seconds=30)})
    p = await engine.create(yaml)
    await engine.scheduler.run_once()
    for _ in range(200):
        if sum(1 for k, _ in engine.executor.events if k == "start") == 3:
            break
        await asyncio.sleep(0.01)
    from corral.core.pipelines.service import PipelineService
    from corral.core.projects.model import Actor

    service = PipelineService(engine.uow_factory, None, None, engine.clock, engine.logs,  # type: ignore[arg-type]
                              cancel_local=engine.scheduler.cancel_local)
    await service.cancel(Actor(uuid.uuid4(), "ann"), engine.project, p.number)
    await asyncio.wait_for(engine.scheduler.wait_idle(), 5)
    st = await engine.statuses(p.number)
    assert st == {"pipeline": "killed", "db": "success", "a": "killed", "b": "killed", "c": "skipped"}


async def test_step_timeout_fails_the_step_and_workflow_timeout_kills_the_rest() -> None:
    yaml = """
skip_clone: true
steps:
  slow: {image: x, commands: [sleep], timeout: 1s}
"""
    engine = await make_engine({"slow": Script(seconds=30)})
    p = await engine.create(yaml)
    await engine.run_all()
    assert (await engine.statuses(p.number))["slow"] == "failure"
    engine2 = await make_engine({"a": Script(seconds=30)}, workflow_timeout_seconds=0.2)
    p2 = await engine2.create(
        "skip_clone: true\nsteps:\n  a: {image: x, commands: [sleep]}\n  b: {image: x, commands: [b]}\n")
    await engine2.run_all()
    assert await engine2.statuses(p2.number) == {"pipeline": "failure", "a": "killed", "b": "skipped"}


async def test_an_expired_lease_marks_running_steps_error() -> None:
    engine = await make_engine({"build": Script(seconds=30)}, lease_seconds=30)
    p = await engine.create(SEQUENTIAL)
    async with engine.uow_factory() as uow:  # another replica claimed it and died
        assert len(await uow.pipelines.claim("dead-replica", engine.clock.now(), 10)) == 1
        steps = await uow.pipelines.steps(p.id)
        await uow.pipelines.update_step(attrs.evolve(steps[0], status=Status.SUCCESS))
        await uow.pipelines.update_step(attrs.evolve(steps[1], status=Status.RUNNING))
        await uow.commit()
    assert await engine.scheduler.expire_leases() == 0  # still fresh
    engine.clock.advance(31)
    assert await engine.scheduler.expire_leases() == 1
    st = await engine.statuses(p.number)
    assert st == {"pipeline": "error", "clone": "success", "build": "error", "test": "skipped"}


async def test_restart_from_a_failed_step_reruns_it_and_its_dependents_only() -> None:
    from corral.core.pipelines.service import PipelineService
    from corral.core.projects.model import Actor

    yaml = """
steps:
  prep: {image: x, commands: [prep]}
  build: {image: x, commands: [build], depends_on: [prep]}
  test: {image: x, commands: [test], depends_on: [build]}
"""
    engine = await make_engine({"build": Script(exit_code=1)})
    p = await engine.create(yaml)
    await engine.run_all()
    service = PipelineService(engine.uow_factory, None, None, engine.clock, engine.logs)  # type: ignore[arg-type]
    engine.executor.script["build"] = engine.executor.script["build"].__class__()
    engine.executor.events.clear()
    again = await service.restart(Actor(uuid.uuid4(), "ann"), engine.project, p.number, "build")
    assert again.parent_number == p.number
    await engine.run_all()
    assert engine.executor.order() == ["start:build", "end:build", "start:test", "end:test"]
    assert await engine.statuses(again.number) == {"pipeline": "success", "clone": "success", "prep": "success",
                                                    "build": "success", "test": "success"}
    # the workspace was the old one, and it is gone now: a second restart from a step says so
    import pytest

    from corral.core.errors import Conflict

    with pytest.raises(Conflict, match="workspace"):
        await service.restart(Actor(uuid.uuid4(), "ann"), engine.project, p.number, "build")


async def test_the_concurrency_limit_bounds_running_steps() -> None:
    yaml = "skip_clone: true\nsteps:\n" + "".join(
        f"  s{i}: {{image: x, commands: [x], depends_on: []}}\n" for i in range(6))
    engine = await make_engine({f"s{i}": Script(seconds=0.05) for i in range(6)}, max_running_steps=2)
    p = await engine.create(yaml)
    await engine.run_all()
    running = peak = 0
    for kind, _ in engine.executor.events:
        running += 1 if kind == "start" else -1
        peak = max(peak, running)
    assert peak == 2
    assert (await engine.statuses(p.number))["pipeline"] == "success"
