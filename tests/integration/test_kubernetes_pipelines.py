"""The engine's scheduling suite with the real Kubernetes executor against kmock.

The same scenarios as ``tests/unit/pipelines/test_scheduler.py`` (per-edge DAG order, a failure skips its
dependents, ``failure: ignore``, ``when.status: failure``, cancel, step and workflow timeouts) plus the
fail-fast cases, run by ``PipelineScheduler`` on ``KubernetesExecutor``. kmock runs no pods: a small kubelet
simulator plays each pod by a script (how long it runs, its output, its exit code, or why it cannot start)
looked up by the step's ``corral.step`` label, and serves each pod's log subresource. The Kubernetes executor
has no clone path, so the definitions use ``skip_clone``.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import attrs
import kmock as km
import pytest

from corral.adapters.kubernetes_executor import KubernetesExecutor, KubernetesExecutorSettings
from tests.unit.pipelines.engine_support import Engine, make_engine

NS = "corral"


@attrs.define
class Pod:
    seconds: float = 0.0  # how long the container runs once Running
    exit_code: int = 0
    output: str = ""
    waiting: str = ""  # a waiting reason (ImagePullBackOff...): the pod never starts
    unschedulable: bool = False


@attrs.define
class Kubelet:
    """Plays the kubelet for kmock's pods: Running, then terminated per the step's script (bounded polling)."""

    kmock: Any
    kube_api: Any
    script: dict[str, Pod]
    events: list[tuple[str, str]] = attrs.field(factory=list)  # ("start"|"end", step)
    _seen: dict[str, asyncio.Task[None]] = attrs.field(factory=dict)
    _output: dict[str, bytes] = attrs.field(factory=dict)  # pod -> its log

    def serve_logs(self) -> None:
        def log(request: Any) -> bytes:
            pod = request.url.path.rstrip("/").split("/")[-2]
            return self._output.get(pod, b"")

        self.kmock["get", km.resource("v1/pods"), km.subresource("log")] << log

    def pods(self) -> dict[str, dict[str, Any]]:
        return {name: obj.raw for (resource, ns, name), obj in list(self.kmock.objects.items())
                if resource.plural == "pods" and ns == NS and not obj.deleted}

    def alive(self, pod: str) -> bool:
        return pod in self.pods()

    async def run(self) -> None:
        while True:
            for name, raw in self.pods().items():
                if name not in self._seen:
                    step = ((raw.get("metadata") or {}).get("labels") or {}).get("corral.step", "")
                    self._seen[name] = asyncio.create_task(self._play(name, step, self.script.get(step, Pod())))
            await asyncio.sleep(0.01)

    async def _play(self, pod: str, step: str, script: Pod) -> None:
        self.events.append(("start", step))
        if script.waiting:
            await self._patch(pod, {"phase": "Pending", "containerStatuses": [
                {"name": "main", "state": {"waiting": {"reason": script.waiting, "message": "no such image"}}}]})
            return
        if script.unschedulable:
            await self._patch(pod, {"phase": "Pending", "conditions": [
                {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                 "message": "0/3 nodes are available"}]})
            return
        self._output[pod] = script.output.encode()
        await self._patch(pod, {"phase": "Running", "containerStatuses": [{"name": "main",
                                                                           "state": {"running": {}}}]})
        loop = asyncio.get_running_loop()
        deadline = loop.time() + script.seconds
        while loop.time() < deadline:  # a deleted pod (stop, timeout) ends early
            if not self.alive(pod):
                self.events.append(("killed", step))
                return
            await asyncio.sleep(min(0.02, max(0.0, deadline - loop.time())))
        if not self.alive(pod):
            return
        self.events.append(("end", step))
        code = script.exit_code
        await self._patch(pod, {"phase": "Succeeded" if code == 0 else "Failed", "containerStatuses": [
            {"name": "main", "state": {"terminated": {"exitCode": code}}}]})

    async def _patch(self, pod: str, status: dict[str, Any]) -> None:
        from kubernetes_asyncio.client import CoreV1Api

        response = await CoreV1Api(self.kube_api).patch_namespaced_pod(pod, NS, {"status": status},
                                                                      _preload_content=False)
        response.release()

    def index(self, kind: str, step: str) -> int:
        return self.events.index((kind, step))

    async def aclose(self) -> None:
        for task in self._seen.values():
            task.cancel()
        await asyncio.gather(*self._seen.values(), return_exceptions=True)


@attrs.define
class KubeRig:
    kmock: Any
    kube_api: Any
    executors: list[KubernetesExecutor] = attrs.field(factory=list)
    kubelets: list[tuple[Kubelet, asyncio.Task[None]]] = attrs.field(factory=list)

    async def engine(self, script: dict[str, Pod], **settings: object) -> tuple[Engine, Kubelet]:
        async def factory() -> Any:
            return self.kube_api

        executor = KubernetesExecutor(factory, KubernetesExecutorSettings(
            namespace=NS, poll_seconds=0.05, log_drain_seconds=5), close_client=False)
        self.executors.append(executor)
        kubelet = Kubelet(self.kmock, self.kube_api, script)
        if not self.kubelets:
            kubelet.serve_logs()
        else:  # one log rule serves every kubelet's pods
            first = self.kubelets[0][0]
            kubelet._output = first._output
        self.kubelets.append((kubelet, asyncio.create_task(kubelet.run())))
        engine = await make_engine(executor=executor, local_executor=False, stop_grace_seconds=0, **settings)
        return engine, kubelet


@pytest.fixture
async def rig(kmock: Any, kube_api: Any) -> AsyncIterator[KubeRig]:
    r = KubeRig(kmock, kube_api)
    yield r
    for kubelet, task in r.kubelets:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await kubelet.aclose()
    for executor in r.executors:
        await executor.aclose()


async def _log(engine: Engine, number: int, step: str) -> list[str]:
    async with engine.uow_factory() as uow:
        p = await uow.pipelines.get(engine.project.id, number)
        assert p is not None
        row = next(s for s in await uow.pipelines.steps(p.id) if s.name == step)
    return [text async for _, text in engine.logs.follow(row.id, row.log_key)]


async def _error(engine: Engine, number: int, step: str) -> str:
    async with engine.uow_factory() as uow:
        p = await uow.pipelines.get(engine.project.id, number)
        assert p is not None
        return next(s for s in await uow.pipelines.steps(p.id) if s.name == step).error


async def test_steps_run_in_file_order_with_their_logs_and_pods_are_cleaned_up(rig: KubeRig) -> None:
    engine, kubelet = await rig.engine({"build": Pod(output="built\n", seconds=0.05),
                                        "test": Pod(output="ok\n")})
    p = await engine.create("skip_clone: true\nsteps:\n  build: {image: alpine, commands: [make]}\n"
                            "  test: {image: alpine, commands: [make test]}\n")
    await engine.run_all(timeout=30)
    assert await engine.statuses(p.number) == {"pipeline": "success", "build": "success", "test": "success"}
    assert kubelet.events == [("start", "build"), ("end", "build"), ("start", "test"), ("end", "test")]
    assert await _log(engine, p.number, "build") == ["built"]
    assert await _log(engine, p.number, "test") == ["ok"]
    assert kubelet.pods() == {}  # every pod deleted after its step


async def test_each_step_starts_when_its_own_dependencies_end(rig: KubeRig) -> None:
    yaml = """
skip_clone: true
steps:
  a: {image: x, commands: [a]}
  b: {image: x, commands: [b]}
  c: {image: x, commands: [c], depends_on: [a]}
  d: {image: x, commands: [d], depends_on: [b]}
"""
    engine, kubelet = await rig.engine({"a": Pod(seconds=1.0), "b": Pod(seconds=0.01)})
    p = await engine.create(yaml)
    await engine.run_all(timeout=30)
    assert kubelet.index("start", "d") < kubelet.index("end", "a")
    assert kubelet.index("end", "b") < kubelet.index("start", "d")
    assert kubelet.index("end", "a") < kubelet.index("start", "c")
    assert (await engine.statuses(p.number))["pipeline"] == "success"


async def test_a_failure_skips_dependents_but_not_ignored_failures_or_status_failure_steps(rig: KubeRig) -> None:
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
    engine, _ = await rig.engine({"lint": Pod(exit_code=1), "build": Pod(exit_code=2)})
    p = await engine.create(yaml)
    await engine.run_all(timeout=30)
    assert await engine.statuses(p.number) == {
        "pipeline": "failure", "lint": "failure", "build": "failure", "after-lint": "success",
        "test": "skipped", "deploy": "skipped", "notify": "success", "fine": "skipped"}


async def test_failure_ignore_alone_is_a_success(rig: KubeRig) -> None:
    engine, _ = await rig.engine({"build": Pod(exit_code=1)})
    p = await engine.create("skip_clone: true\nsteps:\n  build: {image: x, commands: [make], failure: ignore}\n"
                            "  test: {image: x, commands: [t]}\n")
    await engine.run_all(timeout=30)
    assert await engine.statuses(p.number) == {"pipeline": "success", "build": "failure", "test": "success"}


async def test_cancel_deletes_every_pod_at_once(rig: KubeRig) -> None:
    from corral.core.pipelines.service import PipelineService
    from corral.core.projects.model import Actor

    yaml = """
skip_clone: true
services:
  db: {image: postgres, commands: [serve]}
steps:
  a: {image: x, commands: [sleep], depends_on: []}
  b: {image: x, commands: [sleep], depends_on: []}
  c: {image: x, commands: [after], depends_on: [a]}
"""
    engine, kubelet = await rig.engine({"a": Pod(seconds=60), "b": Pod(seconds=60), "db": Pod(seconds=60)})
    p = await engine.create(yaml)
    await engine.scheduler.run_once()
    async with asyncio.timeout(10):
        while sum(1 for k, _ in kubelet.events if k == "start") < 3:
            await asyncio.sleep(0.02)
    service = PipelineService(engine.uow_factory, None, None, engine.clock, engine.logs,  # type: ignore[arg-type]
                              cancel_local=engine.scheduler.cancel_local)
    loop = asyncio.get_running_loop()
    began = loop.time()
    await service.cancel(Actor(uuid.uuid4(), "ann"), engine.project, p.number)
    await asyncio.wait_for(engine.scheduler.wait_idle(), 20)
    assert loop.time() - began < 10  # not the minute the pods would run
    assert await engine.statuses(p.number) == {"pipeline": "killed", "db": "success", "a": "killed",
                                                "b": "killed", "c": "skipped"}
    assert kubelet.pods() == {}


async def test_a_step_timeout_fails_the_step(rig: KubeRig) -> None:
    engine, kubelet = await rig.engine({"slow": Pod(seconds=60)})
    p = await engine.create("skip_clone: true\nsteps:\n  slow: {image: x, commands: [sleep], timeout: 1s}\n"
                            "  next: {image: x, commands: [n], depends_on: [slow]}\n")
    await engine.run_all(timeout=30)
    assert await engine.statuses(p.number) == {"pipeline": "failure", "slow": "failure", "next": "skipped"}
    assert "timed out" in await _error(engine, p.number, "slow")
    assert kubelet.pods() == {}


async def test_the_workflow_timeout_kills_the_rest(rig: KubeRig) -> None:
    engine, kubelet = await rig.engine({"a": Pod(seconds=60)}, workflow_timeout_seconds=0.5)
    p = await engine.create("skip_clone: true\nsteps:\n  a: {image: x, commands: [sleep]}\n"
                            "  b: {image: x, commands: [b]}\n")
    await engine.run_all(timeout=30)
    assert await engine.statuses(p.number) == {"pipeline": "failure", "a": "killed", "b": "skipped"}
    assert kubelet.pods() == {}


@pytest.mark.parametrize("script", [Pod(waiting="ImagePullBackOff"), Pod(waiting="ErrImagePull"),
                                    Pod(waiting="InvalidImageName"), Pod(unschedulable=True)],
                         ids=["ImagePullBackOff", "ErrImagePull", "InvalidImageName", "Unschedulable"])
async def test_a_pod_that_cannot_start_fails_its_step_at_once_and_skips_its_dependents(
        rig: KubeRig, script: Pod) -> None:
    engine, kubelet = await rig.engine({"build": script, "lint": Pod(seconds=0.05)})
    yaml = """
skip_clone: true
steps:
  build: {image: alpine:nope, commands: [make], timeout: 1h}
  lint: {image: x, commands: [lint], depends_on: []}
  test: {image: x, commands: [test], depends_on: [build]}
  report: {image: x, commands: [r], depends_on: [build], when: {status: [failure]}}
"""
    p = await engine.create(yaml)
    loop = asyncio.get_running_loop()
    began = loop.time()
    await engine.run_all(timeout=20)  # not the hour of the step's timeout
    assert loop.time() - began < 15
    st = await engine.statuses(p.number)
    assert st == {"pipeline": "error", "build": "error", "lint": "success", "test": "skipped",
                  "report": "success"}
    reason = "Unschedulable" if script.unschedulable else script.waiting
    assert reason in await _error(engine, p.number, "build")
    assert any(reason in line for line in await _log(engine, p.number, "build"))
    assert kubelet.pods() == {}
