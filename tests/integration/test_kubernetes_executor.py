"""The Kubernetes executor against kmock (an emulated API server that runs no pods).

The tests play the kubelet: they patch the pod's status (Running, terminated with an exit code, waiting on
an image pull...), add events and serve the log subresource, and assert what the executor does with that.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import kmock as km
import pytest

from corral.adapters.kubernetes_executor import KubernetesExecutor, KubernetesExecutorSettings
from corral.contracts.executor import ExecutorWorkspaceContract, sh, spec
from corral.core.errors import Unavailable
from corral.core.workloads.model import ExitStatus, Outcome, Resources

NS = "corral"


def _make(kube_api: Any) -> KubernetesExecutor:
    async def factory() -> Any:
        return kube_api

    return KubernetesExecutor(factory, KubernetesExecutorSettings(namespace=NS, poll_seconds=0.05,
                                                                  log_drain_seconds=5), close_client=False)


@pytest.fixture
async def executor(kube_api: Any) -> AsyncIterator[KubernetesExecutor]:
    ex = _make(kube_api)
    yield ex
    await ex.aclose()


def _objects(kmock: Any, plural: str) -> dict[str, dict[str, Any]]:
    return {name: obj.raw for (resource, ns, name), obj in kmock.objects.items()
            if resource.plural == plural and ns == NS and not obj.deleted}


async def _patch_status(kube_api: Any, pod: str, status: dict[str, Any]) -> None:
    from kubernetes_asyncio.client import CoreV1Api

    response = await CoreV1Api(kube_api).patch_namespaced_pod(pod, NS, {"status": status}, _preload_content=False)
    assert response.status == 200, await response.text()
    response.release()


def _running() -> dict[str, Any]:
    return {"phase": "Running", "containerStatuses": [{"name": "main", "state": {"running": {}}}]}


def _terminated(code: int) -> dict[str, Any]:
    return {"phase": "Succeeded" if code == 0 else "Failed",
            "containerStatuses": [{"name": "main", "state": {"terminated": {"exitCode": code}}}]}


class TestKubernetesExecutorWorkspaces(ExecutorWorkspaceContract):
    """The part of the contract that needs no running container."""

    @pytest.fixture
    async def executor(self, kube_api: Any) -> AsyncIterator[KubernetesExecutor]:  # type: ignore[override]
        ex = _make(kube_api)
        yield ex
        await ex.aclose()

    def restarted(self, executor: KubernetesExecutor) -> KubernetesExecutor:  # type: ignore[override]
        return KubernetesExecutor(executor.api_client_factory, executor.settings, close_client=False)

    def stored_state(self, executor: KubernetesExecutor) -> bytes:  # type: ignore[override]
        # everything in the cluster but Secrets (which are where secret values belong)
        return json.dumps([obj.raw for (resource, _ns, _name), obj in self._kmock.objects.items()
                           if resource.plural != "secrets"]).encode()

    @pytest.fixture(autouse=True)
    def _remember_kmock(self, kmock: Any) -> None:
        self._kmock = kmock


async def test_the_pod_and_secret_manifests(executor: KubernetesExecutor, kmock: Any) -> None:
    ws = await executor.create_workspace("pipeline-12-build")
    handle = await executor.start(spec(
        ws, sh("make test"), name="build/test", workdir="src/app", env={"CI": "woodpecker", "PATH": "/bin"},
        secret_env={"TOKEN": "s3cr3t-value", "weird.name": "x"}, labels={"corral.dev/pipeline": "12"},
        timeout_seconds=600, resources=Resources(cpu_request="500m", memory_limit="1Gi")))
    pod = _objects(kmock, "pods")[handle.ref]
    container = pod["spec"]["containers"][0]
    assert pod["spec"]["restartPolicy"] == "Never"
    assert pod["spec"]["activeDeadlineSeconds"] == 660
    assert pod["metadata"]["labels"] == {"corral.dev/pipeline": "12", "app.kubernetes.io/managed-by": "corral"}
    assert pod["metadata"]["annotations"]["corral.dev/workload-name"] == "build/test"
    assert container["image"] == "alpine:3.20"
    assert container["command"] == ["/bin/sh", "-e", "-c", "make test"]
    assert container["workingDir"] == "/workspace/src/app"
    assert container["volumeMounts"] == [{"name": "workspace", "mountPath": "/workspace"}]
    assert pod["spec"]["volumes"] == [{"name": "workspace", "persistentVolumeClaim": {"claimName": ws.ref}}]
    assert container["resources"] == {"requests": {"cpu": "500m"}, "limits": {"memory": "1Gi"}}
    secret_ref = f"{handle.ref}-env"
    assert container["env"] == [
        {"name": "CI", "value": "woodpecker"}, {"name": "PATH", "value": "/bin"},
        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": secret_ref, "key": "e0"}}},
        {"name": "weird.name", "valueFrom": {"secretKeyRef": {"name": secret_ref, "key": "e1"}}},
    ]
    assert "s3cr3t-value" not in json.dumps(pod)
    secret = _objects(kmock, "secrets")[secret_ref]
    assert secret["stringData"] == {"e0": "s3cr3t-value", "e1": "x"}
    assert secret["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "corral"
    claim = _objects(kmock, "persistentvolumeclaims")[ws.ref]
    assert claim["spec"] == {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
    await executor.stop(handle, grace_seconds=0)


async def test_stdin_comes_from_the_secret_as_a_file(executor: KubernetesExecutor, kmock: Any) -> None:
    ws = await executor.create_workspace("agent")
    handle = await executor.start(spec(ws, ("claude", "-p"), stdin=b'{"type":"user"}\n'))
    pod = _objects(kmock, "pods")[handle.ref]
    assert pod["spec"]["containers"][0]["command"] == [
        "/bin/sh", "-c", 'exec "$@" < /var/run/corral-stdin/stdin', "sh", "claude", "-p"]
    secret = _objects(kmock, "secrets")[f"{handle.ref}-env"]
    assert base64.b64decode(secret["data"]["stdin"]) == b'{"type":"user"}\n'
    await executor.stop(handle, grace_seconds=0)


@pytest.mark.parametrize("code", [0, 3])
async def test_a_pod_that_runs_and_exits_reports_its_logs_and_exit_code_then_is_cleaned_up(
        executor: KubernetesExecutor, kube_api: Any, kmock: Any, code: int) -> None:
    kmock["get", km.resource("v1/pods"), km.subresource("log")] << (b"one\n", b"two\n")
    ws = await executor.create_workspace("p")
    handle = await executor.start(spec(ws, sh("echo one; echo two"), secret_env={"T": "x"}))
    output_task = asyncio.create_task(_collect(executor.logs(handle)))
    wait_task = asyncio.create_task(executor.wait(handle))
    await asyncio.sleep(0.2)
    assert not wait_task.done()  # Pending: nothing decided yet
    await _patch_status(kube_api, handle.ref, _running())
    async with asyncio.timeout(10):
        output = await output_task
        await _patch_status(kube_api, handle.ref, _terminated(code))
        status = await wait_task
    assert output == b"one\ntwo\n"
    assert status == ExitStatus(Outcome.EXITED, code)
    assert handle.ref not in _objects(kmock, "pods")
    assert f"{handle.ref}-env" not in _objects(kmock, "secrets")


@pytest.mark.parametrize("reason", ["ImagePullBackOff", "ErrImagePull", "InvalidImageName",
                                    "CreateContainerConfigError"])
async def test_fails_fast_when_the_container_cannot_start(
        executor: KubernetesExecutor, kube_api: Any, kmock: Any, reason: str) -> None:
    ws = await executor.create_workspace("p")
    handle = await executor.start(spec(ws, sh("true"), timeout_seconds=3600))
    logs_task = asyncio.create_task(_collect(executor.logs(handle)))
    await _patch_status(kube_api, handle.ref, {"phase": "Pending", "containerStatuses": [
        {"name": "main", "state": {"waiting": {"reason": reason, "message": "image alpine:nope not found"}}}]})
    async with asyncio.timeout(5):  # not the hour of the timeout
        status = await executor.wait(handle)
        assert await logs_task == b""
    assert status == ExitStatus(Outcome.FAILED_TO_START, None, f"{reason}: image alpine:nope not found")
    assert handle.ref not in _objects(kmock, "pods")


async def test_fails_fast_when_the_pod_is_unschedulable(executor: KubernetesExecutor, kube_api: Any) -> None:
    ws = await executor.create_workspace("p")
    handle = await executor.start(spec(ws, sh("true"), timeout_seconds=3600))
    await _patch_status(kube_api, handle.ref, {"phase": "Pending", "conditions": [
        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
         "message": "0/3 nodes are available: 3 Insufficient memory."}]})
    async with asyncio.timeout(5):
        status = await executor.wait(handle)
    assert status.outcome is Outcome.FAILED_TO_START
    assert status.reason == "Unschedulable: 0/3 nodes are available: 3 Insufficient memory."


async def test_fails_fast_on_a_volume_multi_attach_error(executor: KubernetesExecutor, kube_api: Any) -> None:
    from kubernetes_asyncio.client import CoreV1Api

    ws = await executor.create_workspace("p")
    handle = await executor.start(spec(ws, sh("true"), timeout_seconds=3600))
    message = f"Multi-Attach error for volume \"pvc-1\" Volume is already used by pod(s) {handle.ref}-other"
    await CoreV1Api(kube_api).create_namespaced_event(NS, {
        "metadata": {"name": f"{handle.ref}.1", "namespace": NS},
        "involvedObject": {"kind": "Pod", "name": handle.ref, "namespace": NS},
        "reason": "FailedAttachVolume", "message": message, "type": "Warning"})
    async with asyncio.timeout(5):
        status = await executor.wait(handle)
    assert status == ExitStatus(Outcome.FAILED_TO_START, None, f"FailedAttachVolume: {message}")


async def test_a_timeout_deletes_the_pod(executor: KubernetesExecutor, kube_api: Any, kmock: Any) -> None:
    ws = await executor.create_workspace("p")
    handle = await executor.start(spec(ws, sh("sleep 300"), timeout_seconds=0.3))
    await _patch_status(kube_api, handle.ref, _running())
    async with asyncio.timeout(10):
        status = await executor.wait(handle)
    assert status.outcome is Outcome.TIMED_OUT
    assert handle.ref not in _objects(kmock, "pods")


async def test_stop_deletes_the_pod_and_secret(executor: KubernetesExecutor, kube_api: Any, kmock: Any) -> None:
    ws = await executor.create_workspace("p")
    handle = await executor.start(spec(ws, sh("sleep 300"), secret_env={"T": "x"}))
    await _patch_status(kube_api, handle.ref, _running())
    async with asyncio.timeout(10):
        await executor.stop(handle, grace_seconds=1)
        status = await executor.wait(handle)
    assert status.outcome is Outcome.STOPPED
    assert handle.ref not in _objects(kmock, "pods")
    assert f"{handle.ref}-env" not in _objects(kmock, "secrets")


async def test_a_pod_deleted_from_outside_is_lost(executor: KubernetesExecutor, kube_api: Any) -> None:
    from kubernetes_asyncio.client import CoreV1Api

    ws = await executor.create_workspace("p")
    handle = await executor.start(spec(ws, sh("sleep 300")))
    await CoreV1Api(kube_api).delete_namespaced_pod(handle.ref, NS)
    async with asyncio.timeout(5):
        status = await executor.wait(handle)
    assert status.outcome is Outcome.LOST


async def test_deadline_exceeded_is_a_timeout(executor: KubernetesExecutor, kube_api: Any) -> None:
    ws = await executor.create_workspace("p")
    handle = await executor.start(spec(ws, sh("sleep 300")))
    await _patch_status(kube_api, handle.ref, {"phase": "Failed", "reason": "DeadlineExceeded",
                                                "message": "Pod was active on the node longer than allowed"})
    async with asyncio.timeout(5):
        status = await executor.wait(handle)
    assert status.outcome is Outcome.TIMED_OUT


async def test_a_restarted_server_reattaches_to_a_pod_and_sees_it_end(kube_api: Any) -> None:
    first = _make(kube_api)
    ws = await first.create_workspace("p")
    handle = await first.start(spec(ws, sh("sleep 300"), labels={"corral.dev/pipeline": "5"}))
    await first.aclose()  # the server went away; the pod keeps running
    second = _make(kube_api)
    try:
        (found,) = await second.running({"corral.dev/pipeline": "5"})
        assert (found.name, found.ref) == (handle.name, handle.ref)
        waiting = asyncio.create_task(second.wait(found))
        await _patch_status(kube_api, handle.ref, _terminated(0))
        async with asyncio.timeout(5):
            assert await waiting == ExitStatus(Outcome.EXITED, 0)
    finally:
        await second.aclose()


async def test_pack_and_unpack_are_not_supported_yet(executor: KubernetesExecutor) -> None:
    ws = await executor.create_workspace("p")
    with pytest.raises(Unavailable, match="not supported by the Kubernetes executor"):
        await _collect(executor.pack(ws, ("a",)))

    async def empty() -> AsyncIterator[bytes]:
        yield b""

    with pytest.raises(Unavailable, match="not supported by the Kubernetes executor"):
        await executor.unpack(ws, empty())


async def _collect(chunks: AsyncIterator[bytes]) -> bytes:
    return b"".join([c async for c in chunks])


async def test_the_pod_watch_wakes_the_executor_long_before_its_next_poll(kube_api: Any) -> None:
    async def factory() -> Any:
        return kube_api

    slow_poll = KubernetesExecutor(factory, KubernetesExecutorSettings(namespace=NS, poll_seconds=60),
                                   close_client=False)
    try:
        ws = await slow_poll.create_workspace("watched")
        handle = await slow_poll.start(spec(ws, sh("true")))
        waiting = asyncio.create_task(slow_poll.wait(handle))
        await asyncio.sleep(0.5)  # the first read saw a Pending pod: the next poll is a minute away
        assert not waiting.done()
        await _patch_status(kube_api, handle.ref, _terminated(4))
        async with asyncio.timeout(5):
            assert await waiting == ExitStatus(Outcome.EXITED, 4)
    finally:
        await slow_poll.aclose()
