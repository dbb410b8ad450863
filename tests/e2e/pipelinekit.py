"""The pipeline engine wired onto the in-process Corral of ``tests/e2e/gitkit.py``, with the real local executor,
plus the small HTTP helpers the pipeline e2e tests share."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp

from corral.adapters.local_executor import LocalExecutor
from corral.adapters.pipeline_yaml import PyYamlPipelineFileParser
from corral.core.outbox.relay import OutboxRelay
from corral.core.pipelines.scheduler import EngineSettings, PipelineScheduler
from corral.core.pipelines.service import PipelineService
from corral.core.pipelines.triggers import PipelineTriggers
from corral.core.storage.ports import ObjectStore
from corral.entrypoints.web.keys import PLATFORM
from corral.fakes.pipeline_logs import InMemoryStepLogs
from tests.e2e.gitkit import Corral, start_corral

__all__ = ["api_call", "start_pipeline_corral", "until_done"]


async def start_pipeline_corral(tmp_path: Path, *, secrets: Any = None, objects: bool = False,
                                extra: Any = None) -> Corral:
    """A started Corral whose outbox relay also feeds the pipeline triggers and whose scheduler runs steps on the
    real LocalExecutor. ``objects``: caches and artifacts in the platform's object store; ``extra(corral,
    platform)`` registers more services (e.g. schedules)."""
    c = await start_corral(tmp_path)
    for task in c.tasks:  # replaced below by a loop whose relay also feeds the pipeline triggers
        task.cancel()
    await asyncio.gather(*c.tasks, return_exceptions=True)
    c.tasks.clear()
    platform = c.runner.app[PLATFORM]
    store = platform.resolve(ObjectStore) if objects else None
    parser = PyYamlPipelineFileParser()
    logs = InMemoryStepLogs()
    service = PipelineService(c.memory, c.kit.git, parser, c.kit.clock, logs, c.base,
                              **({"objects": store} if store is not None else {}))
    platform.register(PipelineService, service)
    if extra is not None:
        extra(c, platform)
    triggers = PipelineTriggers(c.kit.git, parser, c.kit.clock, c.base)
    relay = OutboxRelay(c.memory, [c.kit.merge_requests.on_push, c.kit.webhooks.fan_out, triggers.on_event])
    options: dict[str, Any] = {}
    if secrets is not None:
        options["secrets"] = secrets
    if store is not None:
        options["objects"] = store
    scheduler = PipelineScheduler(
        c.memory, LocalExecutor(tmp_path / "executor", grace_seconds=2), parser, logs, c.kit.clock,
        EngineSettings(owner="e2e", base_url=c.base, max_running_steps=4, poll_seconds=0.05, heartbeat_seconds=0.5,
                       stop_grace_seconds=2),
        clone_source=lambda p: str(tmp_path / "repos" / p.repo_path), **options)
    service.cancel_local = scheduler.cancel_local

    async def relay_loop() -> None:
        while True:
            while await relay.run_once():
                pass
            await asyncio.sleep(0.02)

    c.tasks += [asyncio.create_task(relay_loop()), asyncio.create_task(scheduler.loop())]
    return c


async def api_call(session: aiohttp.ClientSession, method: str, url: str, token: str,
                   **kw: Any) -> tuple[int, Any]:
    """(status, JSON body or text) of one API call with a bearer token."""
    async with session.request(method, url, headers={"Authorization": f"Bearer {token}"}, **kw) as r:
        body = await r.json() if r.content_type == "application/json" else await r.text()
        return r.status, body


async def until_done(session: aiohttp.ClientSession, url: str, token: str, timeout: float = 30) -> dict[str, Any]:
    """The pipeline detail at ``url`` once it has finished (AssertionError after ``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    body: Any = None
    while time.monotonic() < deadline:
        status, body = await api_call(session, "GET", url, token)
        assert status == 200, body
        if body["finished_at"] is not None:
            return body
        await asyncio.sleep(0.1)
    raise AssertionError(f"pipeline not finished within {timeout} s: {body}")
