"""Pipelines: push → first step running (p50/p95 over 20 pushes), and log throughput of a step printing 1M lines
with a secret to mask.

Run: ./dev bench bench_pipelines [--pushes 20] [--lines 1000000]

1. A Corral web app (in-memory stores, real repositories on disk, ``tests/e2e/gitkit.py``) with the pipeline
   engine on the real LocalExecutor, the outbox relay and the scheduler polling at their production periods
   (relay idle 0.5 s, scheduler poll 0.5 s). Each round commits and pushes with the real git CLI; the time is
   from just before ``git push`` starts to the moment the first step's process writes a timestamp (after the
   clone step cloned the pushed commit). Goal: p50 < 1 s.
2. One step printing N lines that each hold a secret (``from_secret``), masked and spooled by the production
   log writer (``SpooledStepLogs`` into a local-filesystem object store): lines stored per second from the
   step's start to the stored log. Baseline: the same command piped to ``cat`` into a file. Goal >= 100k lines/s.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from corral.adapters.local_executor import LocalExecutor
from corral.adapters.localfs import LocalFsObjectStore
from corral.adapters.pipeline_logs import SpooledStepLogs
from corral.adapters.pipeline_yaml import PyYamlPipelineFileParser
from corral.core.outbox.relay import OutboxRelay
from corral.core.pipelines.creation import NewRun, create_pipeline
from corral.core.pipelines.scheduler import EngineSettings, PipelineScheduler
from corral.core.pipelines.selection import SourceFile
from corral.core.projects.model import Project, Visibility
from corral.core.secrets.masking import MASK
from corral.fakes.clock import FakeClock
from corral.fakes.pipeline_logs import InMemoryStepLogs
from corral.fakes.uow import InMemoryUnitOfWorkFactory
from tests.e2e.gitkit import git, start_corral, stop_corral, write

SECRET = "s3cr3t-T0KEN-value"


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def push_to_running(pushes: int) -> list[float]:
    with tempfile.TemporaryDirectory(prefix="bench-pipelines-") as tmp_name:
        tmp = Path(tmp_name)
        c = await start_corral(tmp)
        for task in c.tasks:
            task.cancel()
        await asyncio.gather(*c.tasks, return_exceptions=True)
        c.tasks.clear()
        from corral.core.pipelines.triggers import PipelineTriggers

        parser = PyYamlPipelineFileParser()
        triggers = PipelineTriggers(c.kit.git, parser, c.kit.clock, c.base)
        relay = OutboxRelay(c.memory, [c.kit.merge_requests.on_push, c.kit.webhooks.fan_out, triggers.on_event])
        scheduler = PipelineScheduler(
            c.memory, LocalExecutor(tmp / "executor", grace_seconds=2), parser, InMemoryStepLogs(), c.kit.clock,
            EngineSettings(owner="bench", base_url=c.base, max_running_steps=4),  # production poll periods
            clone_source=lambda p: str(tmp / "repos" / p.repo_path))

        async def relay_loop() -> None:  # as corral.entrypoints.bootstrap runs it
            while True:
                if not await relay.run_once():
                    await asyncio.sleep(0.5)

        triggers.on_created = scheduler.wake  # as corral.entrypoints.pipelines_wiring wires it
        c.tasks += [asyncio.create_task(relay_loop()), asyncio.create_task(scheduler.loop())]
        try:
            alice = await c.user("alice", admin=True)
            remote = await c.project(alice)
            work = tmp / "work"
            marks = tmp / "marks"
            marks.mkdir()
            await git(tmp, "init", "-q", "-b", "main", str(work))
            write(work / ".woodpecker.yaml",
                  f"steps:\n  first:\n    image: busybox\n    commands:\n"
                  f"      - date +%s.%N > {marks}/$CI_PIPELINE_NUMBER\n")
            latencies: list[float] = []
            for i in range(1, pushes + 1):
                write(work / "round.txt", str(i))
                await git(work, "add", ".")
                await git(work, "commit", "-qm", f"round {i}")
                started = time.time()
                await git(work, "push", "-q", remote, "main", token=alice)
                mark = marks / str(i)
                deadline = time.monotonic() + 30
                while not (mark.exists() and mark.read_text().strip()):
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"push {i}: the first step did not run within 30 s")
                    await asyncio.sleep(0.005)
                latencies.append(float(mark.read_text()) - started)
                await scheduler.wait_idle()
            return latencies
        finally:
            await stop_corral(c)


class _Secrets:
    async def read(self, user_id: uuid.UUID, user_name: str, project_id: uuid.UUID, names: object,
                   reason: str) -> dict[str, str]:
        return {"token": SECRET}


async def log_throughput(lines: int) -> tuple[float, float, int]:
    """(lines/s stored by the engine, lines/s of the cat baseline, masked lines found)."""
    command = f"seq 1 {lines} | sed \"s/$/ token=$TOKEN/\""
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-logs-") as tmp_name:
        tmp = Path(tmp_name)
        env = {"TOKEN": SECRET, "PATH": "/usr/bin:/bin"}
        t0 = time.perf_counter()
        subprocess.run(["/bin/sh", "-c", f"{command} | cat > {tmp / 'baseline.txt'}"], env=env, check=True)
        baseline = lines / (time.perf_counter() - t0)

        clock = FakeClock.real_time()
        uow_factory = InMemoryUnitOfWorkFactory(clock=clock)
        now = datetime.now(UTC)
        project = Project(id=uuid.uuid4(), owner_id=uuid.uuid4(), owner_name="acme", name="app",
                          visibility=Visibility.PRIVATE, default_branch="main", repo_path="acme/app.git",
                          created_at=now, updated_at=now)
        async with uow_factory() as uow:
            await uow.projects.add(project)
            await uow.commit()
        objects = LocalFsObjectStore(tmp / "objects", signing_key=b"k" * 32, base_url="http://bench", fsync=False)
        logs = SpooledStepLogs(objects, tmp / "spool")
        parser = PyYamlPipelineFileParser()
        scheduler = PipelineScheduler(uow_factory, LocalExecutor(tmp / "executor", grace_seconds=2), parser, logs,
                                      clock, EngineSettings(owner="bench", poll_seconds=0.05),
                                      clone_source=lambda p: "", secrets=_Secrets())
        yaml = ("skip_clone: true\nsteps:\n  loud:\n    image: busybox\n    environment:\n"
                "      TOKEN:\n        from_secret: token\n    commands:\n"
                f"      - '{command.replace('$TOKEN', '$${TOKEN}')}'\n")  # $$: not substituted in the file
        run = NewRun(event="push", ref="refs/heads/main", branch="main", sha="a" * 40, actor_id=uuid.uuid4(),
                     actor_name="ann")
        async with uow_factory() as uow:
            pipeline = await create_pipeline(uow, clock, parser, project, run, [SourceFile(".woodpecker.yaml", yaml)],
                                             base_url="")
            assert pipeline is not None
            await uow.commit()
        await scheduler.run_once()
        await scheduler.wait_idle()
        async with uow_factory() as uow:
            [step] = [s for s in await uow.pipelines.steps(pipeline.id) if s.name == "loud"]
        assert step.status.value == "success", step
        assert step.started_at is not None and step.finished_at is not None and step.log_key
        stored = (step.finished_at - step.started_at).total_seconds()
        text = (await objects.read(step.log_key)).decode()
        assert SECRET not in text
        masked = text.count(f"token={MASK}")
        return lines / stored, baseline, masked


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pushes", type=int, default=20)
    parser.add_argument("--lines", type=int, default=1_000_000)
    args = parser.parse_args()
    latencies = await push_to_running(args.pushes)
    print(f"push -> first step running over {len(latencies)} pushes (local executor, production poll periods): "
          f"p50 {statistics.median(latencies) * 1000:.0f} ms, p95 {_pct(latencies, 0.95) * 1000:.0f} ms, "
          f"max {max(latencies) * 1000:.0f} ms (goal p50 < 1000 ms)")
    engine, baseline, masked = await log_throughput(args.lines)
    print(f"step log of {args.lines} lines with a secret: {engine:,.0f} lines/s masked and stored "
          f"({masked} lines masked) vs cat {baseline:,.0f} lines/s (goal >= 100,000 lines/s)")


if __name__ == "__main__":
    asyncio.run(main())
