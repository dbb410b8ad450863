"""The Kubernetes executor: a pod per workload, a PersistentVolumeClaim per workspace (kubernetes-asyncio).

- ``create_workspace`` makes a ReadWriteOnce claim (``settings.workspace_size``, optional storage class)
  mounted at ``/workspace`` in every pod of that workspace; ``delete_workspace`` deletes it.
- ``start`` creates a Secret (``secret_env`` as ``secretKeyRef`` variables; ``stdin`` as a file the command
  reads, which needs ``/bin/sh`` in the image) and a pod with ``restartPolicy: Never``, no service links,
  no service-account token, the spec's resources, labels ``app.kubernetes.io/managed-by: corral`` + the
  spec's labels, and ``activeDeadlineSeconds`` = timeout + 60 s as a backstop if Corral is gone.
- A supervisor task per workload follows the pod (a watch wakes it; it also re-reads every
  ``poll_seconds``, which is all that is left when the watch is unavailable) and fails FAST, with the reason,
  on ImagePullBackOff, ErrImagePull, InvalidImageName, CreateContainerConfigError, an Unschedulable pod and a
  volume Multi-Attach error (events). Timeout and stop delete the pod with the grace period.
- When a workload ends, its pod and Secret are deleted (after the log stream was read to its end).
  ``running(labels)`` lists the pods by label, so a restarted server can ``stop`` (delete) leftovers.
- An interactive workload (an agent session) talks through the pod's attach WebSocket
  (``/api/v1/namespaces/{ns}/pods/{pod}/attach``, subprotocol ``v4.channel.k8s.io``: binary frames of one
  channel byte, 0 stdin, 1 stdout, 2 stderr, 3 the exit status as JSON, then the data), opened with
  kubernetes-asyncio's ``WsApiClient`` (the same configuration and credentials as the API calls). ``spec.stdin``
  and every ``send`` go to channel 0; ``logs`` yields channels 1 and 2 as they come. The protocol cannot close a
  container's stdin, so ``close_stdin`` sends an end-of-input line unique to the pod that the pod's command
  wrapper (``INPUT_WRAPPER``, needs ``/bin/sh`` and ``mkfifo`` in the image) turns into an end of file; the
  same wrapper starts the program only once the first input came (no output is lost before the attach). A
  dropped connection is attached again (``stdinOnce: false``) while the pod runs.
- A sandboxed workload (``spec.sandbox``) runs non-root with a read-only root filesystem and no capabilities,
  and gets a NetworkPolicy of its own (no ingress; egress to DNS, Corral and the model API: the settings'
  ``corral_*`` and ``model_api_cidrs``), created before the pod and deleted with it.
- ``pack``/``unpack`` are not supported yet (they need exec into a helper pod): they raise ``Unavailable``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import attrs

from corral.adapters.kubernetes_pods import (
    ANNOTATION_NAME,
    CONTAINER,
    MANAGED_BY,
    claim_manifest,
    classify_pod,
    event_failure,
    network_policy_manifest,
    network_policy_name,
    own_labels,
    pod_manifest,
    pod_name,
    secret_manifest,
    secret_name,
    workdir_path,
    workspace_claim_name,
)
from corral.core.errors import Conflict, InvalidInput, NotFound, Unavailable
from corral.core.workloads.model import ExitStatus, Outcome, WorkloadHandle, WorkloadSpec, Workspace

__all__ = ["KubernetesExecutor", "KubernetesExecutorSettings", "default_api_client"]

log = logging.getLogger("corral.executor.kubernetes")

_REQUEST_TIMEOUT = 30
_CHUNK = 64 * 1024
_KEEP_FINISHED = 256  # finished workloads remembered for late wait()/logs() calls
_STDIN, _STDOUT, _STDERR, _STATUS = 0, 1, 2, 3  # the channels of v4.channel.k8s.io
_OUTPUT_BACKLOG = 64  # chunks of attach output held for the log reader (then the WebSocket waits)
_REATTACH = 5  # attempts to attach again after a dropped connection while the pod runs


class _ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


async def default_api_client() -> Any:
    """An ApiClient configured as kubernetes-asyncio finds it: the in-cluster service account when running in a
    pod (``KUBERNETES_SERVICE_HOST``), else the kubeconfig (``$KUBECONFIG`` or ``~/.kube/config``)."""
    import os

    from kubernetes_asyncio import client, config

    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        config.load_incluster_config()
    else:
        await config.load_kube_config()
    return client.ApiClient()


@attrs.frozen
class KubernetesExecutorSettings:
    namespace: str = "corral"
    workspace_size: str = "1Gi"
    storage_class: str | None = None
    default_image: str = "alpine:3.20"  # for a workload that names no image
    poll_seconds: float = 2.0  # re-read a pod this often even when the watch says nothing
    log_drain_seconds: float = 30.0  # how long the cleanup waits for a log reader before deleting the pod
    # where a sandboxed workload may connect to (its NetworkPolicy): Corral by address and/or by its pods' labels
    # (in ``corral_namespace``, default: the pods' own namespace), the model API by address on port 443, DNS
    corral_cidrs: tuple[str, ...] = ()
    corral_pod_labels: Mapping[str, str] = attrs.field(factory=lambda: {"app.kubernetes.io/name": "corral"})
    corral_namespace: str | None = None
    model_api_cidrs: tuple[str, ...] = ("160.79.104.0/23", "2607:6bc0::/48")  # api.anthropic.com
    dns_namespace: str | None = "kube-system"
    dns_pod_labels: Mapping[str, str] = attrs.field(factory=lambda: {"k8s-app": "kube-dns"})  # empty: any :53
    attach_heartbeat_seconds: float = 30.0  # WebSocket pings keep an idle attach alive through proxies


@attrs.define(eq=False)
class _PodRun:
    handle: WorkloadHandle
    pod: str
    timeout: float | None
    status: asyncio.Future[ExitStatus]
    wake: asyncio.Event = attrs.field(factory=asyncio.Event)
    started: asyncio.Event = attrs.field(factory=asyncio.Event)
    stop_grace: float | None = None  # set by stop()
    logs_taken: bool = False
    logs_done: asyncio.Event = attrs.field(factory=asyncio.Event)
    supervisor: asyncio.Task[None] | None = None
    # interactive: what goes to stdin (None: the end of the input), what came from stdout/stderr
    interactive: bool = False
    end_of_input: str = ""
    stdin_closed: bool = False
    input: asyncio.Queue[bytes | None] = attrs.field(factory=asyncio.Queue)
    output: asyncio.Queue[bytes] = attrs.field(factory=lambda: asyncio.Queue(_OUTPUT_BACKLOG))
    attach: asyncio.Task[None] | None = None
    attach_error: str | None = None
    sandboxed: bool = False


@attrs.define
class KubernetesExecutor:
    """Runs workloads as pods (see the module docstring). ``api_client_factory`` returns a kubernetes_asyncio
    ``ApiClient`` (configured from a kubeconfig or the in-cluster service account)."""

    api_client_factory: Callable[[], Awaitable[Any]]
    settings: KubernetesExecutorSettings = attrs.field(factory=KubernetesExecutorSettings)
    close_client: bool = True
    # the ApiClient attach WebSockets go through, from the API's client (default: kubernetes-asyncio's
    # WsApiClient over the same configuration); tests point it at their own attach server
    attach_client_factory: Callable[[Any], Awaitable[Any]] | None = None
    _client: Any = attrs.field(default=None, init=False)
    _core: Any = attrs.field(default=None, init=False)
    _attach_client: Any = attrs.field(default=None, init=False)
    _attach_core: Any = attrs.field(default=None, init=False)
    _runs: dict[str, _PodRun] = attrs.field(factory=dict, init=False)
    _watcher: asyncio.Task[None] | None = attrs.field(default=None, init=False)

    @property
    def namespace(self) -> str:
        return self.settings.namespace

    async def _api(self) -> Any:
        if self._core is None:
            from kubernetes_asyncio.client import CoreV1Api

            try:
                self._client = await self.api_client_factory()
            except Exception as exc:  # no kubeconfig, no service account, unreadable files
                raise Unavailable(f"no usable Kubernetes configuration: {exc}") from exc
            self._core = CoreV1Api(self._client)
        return self._core

    async def _attach_api(self) -> Any:
        if self._attach_core is None:
            from kubernetes_asyncio.client import CoreV1Api

            await self._api()
            if self.attach_client_factory is not None:
                client = await self.attach_client_factory(self._client)
            else:
                from kubernetes_asyncio.stream import WsApiClient

                client = WsApiClient(configuration=self._client.configuration,
                                     heartbeat=self.settings.attach_heartbeat_seconds)
            self._attach_client, self._attach_core = client, CoreV1Api(client)
        return self._attach_core

    async def _call(self, method: str, *args: Any, api: str = "core", **kwargs: Any) -> dict[str, Any]:
        """Call a CoreV1Api (``api="networking"``: NetworkingV1Api) method and return the JSON answer; non-2xx
        answers raise ``_ApiError``."""
        core = await self._api()
        if api == "networking":
            from kubernetes_asyncio.client import NetworkingV1Api

            core = NetworkingV1Api(self._client)
        try:
            response = await getattr(core, method)(*args, _preload_content=False,
                                                   _request_timeout=_REQUEST_TIMEOUT, **kwargs)
        except Exception as exc:  # connection refused, DNS, TLS: the cluster is not reachable
            if isinstance(exc, _ApiError):
                raise
            status = getattr(exc, "status", None)
            if isinstance(status, int) and status >= 400:
                raise _ApiError(status, str(getattr(exc, "body", "") or exc)) from exc
            raise Unavailable(f"Kubernetes API unreachable: {exc}") from exc
        try:
            body = await response.read()
        finally:
            response.release()
        if not 200 <= response.status <= 299:
            try:
                message = json.loads(body).get("message") or body.decode(errors="replace")
            except ValueError:
                message = body.decode(errors="replace")
            raise _ApiError(response.status, message)
        data = json.loads(body) if body else {}
        return data if isinstance(data, dict) else {}

    def _placed(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """The manifest with its namespace spelled out (the API fills it in; emulators may not)."""
        manifest["metadata"]["namespace"] = self.namespace
        return manifest

    async def _delete(self, method: str, name: str, **kwargs: Any) -> None:
        with contextlib.suppress(_ApiError):
            await self._call(method, name, self.namespace, **kwargs)

    async def _delete_companions(self, pod: str) -> None:
        """The Secret and the NetworkPolicy of a pod (missing ones are fine)."""
        await self._delete("delete_namespaced_secret", secret_name(pod))
        await self._delete("delete_namespaced_network_policy", network_policy_name(pod), api="networking")

    # ------------------------------------------------------------------------------------------- workspaces

    async def create_workspace(self, key: str) -> Workspace:
        if not key:
            raise InvalidInput("a workspace key must not be empty", field="key")
        name = workspace_claim_name(key)
        body = claim_manifest(name, key, self.settings.workspace_size, self.settings.storage_class)
        try:
            await self._call("create_namespaced_persistent_volume_claim", self.namespace, self._placed(body))
        except _ApiError as exc:
            if exc.status != 409:  # 409: it exists already (idempotent)
                raise Unavailable(f"cannot create the workspace volume {name}: {exc.message}") from exc
        return Workspace(key=key, ref=name)

    async def delete_workspace(self, workspace: Workspace) -> None:
        await self._delete("delete_namespaced_persistent_volume_claim", workspace.ref)

    # -------------------------------------------------------------------------------------------- workloads

    async def start(self, spec: WorkloadSpec) -> WorkloadHandle:
        if not spec.argv or not spec.argv[0]:
            raise InvalidInput("a workload needs a program to run", field="argv")
        if not spec.name:
            raise InvalidInput("a workload needs a name", field="name")
        workdir_path(spec.workdir)  # refuses escapes
        if any(r.handle.name == spec.name and not r.status.done() for r in self._runs.values()):
            raise Conflict(f"a workload named {spec.name!r} is already running")
        name = pod_name(spec.name)
        file_stdin = spec.stdin is not None and not spec.interactive  # interactive: it goes through the attach
        secret = secret_name(name) if spec.secret_env or file_stdin else None
        end_of_input = f"\x04corral-end-of-input-{uuid.uuid4().hex}" if spec.interactive else None
        manifest = pod_manifest(name, spec, claim=spec.workspace.ref, image=spec.image or self.settings.default_image,
                                secret=secret, grace_seconds=5, end_of_input=end_of_input)
        try:
            if spec.sandbox is not None:  # before the pod: it must never run unconfined
                policy = network_policy_manifest(
                    name, spec.labels, corral_cidrs=self.settings.corral_cidrs,
                    corral_pod_labels=self.settings.corral_pod_labels,
                    corral_namespace=self.settings.corral_namespace, model_api_cidrs=self.settings.model_api_cidrs,
                    dns_namespace=self.settings.dns_namespace, dns_pod_labels=self.settings.dns_pod_labels)
                await self._call("create_namespaced_network_policy", self.namespace, self._placed(policy),
                                 api="networking")
            if secret is not None:
                body = secret_manifest(secret, attrs.evolve(spec, stdin=None) if spec.interactive else spec)
                await self._call("create_namespaced_secret", self.namespace, self._placed(body))
            await self._call("create_namespaced_pod", self.namespace, self._placed(manifest))
        except _ApiError as exc:
            await self._delete_companions(name)
            if exc.status in (400, 422):
                raise InvalidInput(f"Kubernetes refused the workload {spec.name!r}: {exc.message}") from exc
            raise Unavailable(f"cannot create the pod for {spec.name!r}: {exc.message}") from exc
        handle = WorkloadHandle(spec.name, name, dict(spec.labels))
        run = _PodRun(handle, name, spec.timeout_seconds, asyncio.get_running_loop().create_future(),
                      interactive=spec.interactive, end_of_input=end_of_input or "", sandboxed=spec.sandbox is not None)
        self._remember(run)
        run.supervisor = asyncio.create_task(self._supervise(run), name=f"pod {name}")
        if spec.interactive:
            if spec.stdin:
                run.input.put_nowait(spec.stdin)
            run.attach = asyncio.create_task(self._attach(run), name=f"attach {name}")
        self._ensure_watcher()
        return handle

    def _remember(self, run: _PodRun) -> None:
        finished = [name for name, r in self._runs.items() if r.status.done()]
        for name in finished[: max(0, len(finished) - _KEEP_FINISHED)]:
            del self._runs[name]
        self._runs[run.pod] = run

    async def _read_pod(self, name: str) -> dict[str, Any] | None:
        try:
            return await self._call("read_namespaced_pod", name, self.namespace)
        except _ApiError as exc:
            if exc.status == 404:
                return None
            raise

    async def _pending_failure(self, name: str) -> ExitStatus | None:
        try:
            events = await self._call("list_namespaced_event", self.namespace,
                                      field_selector=f"involvedObject.name={name}")
        except (_ApiError, Unavailable):
            return None
        return event_failure(events.get("items") or [], name)

    async def _supervise(self, run: _PodRun) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + run.timeout if run.timeout else None
        result: ExitStatus | None = None
        try:
            while result is None:
                run.wake.clear()
                if run.stop_grace is not None:
                    await self._end_pod(run.pod, run.stop_grace)
                    result = ExitStatus(Outcome.STOPPED, None, "stopped on request")
                    break
                if deadline is not None and loop.time() >= deadline:
                    await self._end_pod(run.pod, 5)
                    result = ExitStatus(Outcome.TIMED_OUT, None, f"timed out after {run.timeout:g} s")
                    break
                try:
                    pod = await self._read_pod(run.pod)
                except (_ApiError, Unavailable) as exc:
                    log.warning("cannot read pod %s: %s", run.pod, exc)
                    pod = {}
                if pod is None:
                    result = ExitStatus(Outcome.LOST, None, "the pod was deleted outside Corral")
                    break
                verdict, started = classify_pod(pod)
                if started:
                    run.started.set()
                if verdict is None and not started and pod:
                    verdict = await self._pending_failure(run.pod)
                if verdict is None and run.attach_error is not None:  # running, but nobody can talk to it
                    await self._end_pod(run.pod, 5)
                    verdict = ExitStatus(Outcome.LOST, None, run.attach_error)
                result = verdict
                if result is None:
                    wait = self.settings.poll_seconds
                    if deadline is not None:
                        wait = max(0.0, min(wait, deadline - loop.time()))
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(run.wake.wait(), wait)
            await self._cleanup(run, result)
        except asyncio.CancelledError:
            result = result or ExitStatus(Outcome.LOST, None, "the executor shut down")
            raise
        finally:
            if not run.status.done():
                run.status.set_result(result or ExitStatus(Outcome.LOST, None, "the executor failed"))
            run.started.set()  # release a log reader still waiting for the start

    async def _cleanup(self, run: _PodRun, result: ExitStatus) -> None:
        if result.outcome is Outcome.EXITED and run.logs_taken:
            # let the log reader take everything before the pod (and its logs) go away
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(run.logs_done.wait(), self.settings.log_drain_seconds)
        if run.attach is not None and not run.attach.done():
            if result.outcome is Outcome.EXITED:  # the rest of the output is on its way: bounded wait
                with contextlib.suppress(TimeoutError, Exception):
                    await asyncio.wait_for(asyncio.shield(run.attach), self.settings.log_drain_seconds)
            run.attach.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await run.attach
        try:
            await self._delete_pod(run.pod, 0 if result.outcome is Outcome.EXITED else 5, wait=False)
            await self._delete_companions(run.pod)
        except Unavailable as exc:  # a restarted server cleans up through running()
            log.warning("cannot clean up pod %s: %s", run.pod, exc)
        run.status.set_result(result)

    async def _end_pod(self, name: str, grace: float) -> None:
        try:
            await self._delete_pod(name, grace)
        except (Unavailable, _ApiError) as exc:  # reported anyway; running() shows it if it is still there
            log.warning("cannot delete pod %s: %s", name, exc)

    async def _delete_pod(self, name: str, grace: float, *, wait: bool = True) -> None:
        """Delete the pod; with ``wait``, return once it is gone (bounded by the grace + 30 s)."""
        try:
            await self._call("delete_namespaced_pod", name, self.namespace,
                             grace_period_seconds=max(0, int(grace)))
        except _ApiError as exc:
            if exc.status != 404:
                raise Unavailable(f"cannot delete pod {name}: {exc.message}") from exc
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace + 30
        while wait and loop.time() < deadline:
            if await self._read_pod(name) is None:
                return
            await asyncio.sleep(min(0.5, self.settings.poll_seconds))

    def _ensure_watcher(self) -> None:
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.create_task(self._watch(), name="kubernetes executor pod watch")

    async def _watch(self) -> None:
        """Wake the supervisors on every change of our pods; when the watch fails, polling goes on alone.

        The events only say "look again": the supervisor re-reads the pod, so a missed or duplicated event
        costs at most ``poll_seconds``. (Not kubernetes_asyncio's ``Watch``: it sends ``watch=True``, which
        the kmock emulator does not take for a watch; ``watch=true`` is what both understand.)
        """
        selector = ",".join(f"{k}={v}" for k, v in MANAGED_BY.items())
        while any(not r.status.done() for r in self._runs.values()):
            try:
                core = await self._api()
                response = await core.list_namespaced_pod(self.namespace, label_selector=selector, watch="true",
                                                          timeout_seconds=300, _preload_content=False)
                try:
                    if response.status != 200:
                        raise _ApiError(response.status, "the pod watch was refused")
                    async for line in response.content:
                        if not line.strip():
                            continue
                        event = json.loads(line)
                        name = (((event.get("object") or {}).get("metadata")) or {}).get("name")
                        if (run := self._runs.get(name or "")) is not None:
                            run.wake.set()
                finally:
                    response.release()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.debug("pod watch unavailable, polling every %s s: %s", self.settings.poll_seconds, exc)
                await asyncio.sleep(max(self.settings.poll_seconds * 5, 1.0))

    async def logs(self, handle: WorkloadHandle) -> AsyncIterator[bytes]:
        run = self._runs.get(handle.ref)
        if run is None:
            raise NotFound(f"no workload {handle.name!r} started by this executor")
        if run.logs_taken:
            raise Conflict(f"the logs of workload {handle.name!r} were already taken")
        run.logs_taken = True
        if run.interactive:
            try:
                async for chunk in self._attached_output(run):
                    yield chunk
            finally:
                run.logs_done.set()
            return
        try:
            await run.started.wait()
            if run.status.done() and run.status.result().outcome is Outcome.FAILED_TO_START:
                return
            core = await self._api()
            try:
                response = await core.read_namespaced_pod_log(run.pod, self.namespace, container=CONTAINER,
                                                              follow=True, _preload_content=False)
            except Exception as exc:
                log.warning("cannot stream the logs of pod %s: %s", run.pod, exc)
                return
            try:
                if response.status != 200:
                    return
                async for chunk in response.content.iter_chunked(_CHUNK):
                    yield chunk
            finally:
                response.release()
        finally:
            run.logs_done.set()

    async def wait(self, handle: WorkloadHandle) -> ExitStatus:
        run = self._runs.get(handle.ref)
        if run is None:
            if await self._read_pod(handle.ref) is None:
                raise NotFound(f"no workload {handle.name!r} started by this executor")
            # a pod of an earlier server process: follow it from here
            run = _PodRun(handle, handle.ref, None, asyncio.get_running_loop().create_future())
            self._remember(run)
            run.supervisor = asyncio.create_task(self._supervise(run))
            self._ensure_watcher()
        return await asyncio.shield(run.status)

    async def stop(self, handle: WorkloadHandle, grace_seconds: float = 5.0) -> None:
        run = self._runs.get(handle.ref)
        if run is not None:
            if not run.status.done():
                run.stop_grace = grace_seconds
                run.wake.set()
                await asyncio.shield(run.status)
            return
        # a leftover of an earlier server process (from running()), or already gone
        await self._delete_pod(handle.ref, grace_seconds)
        await self._delete_companions(handle.ref)

    async def running(self, labels: Mapping[str, str]) -> list[WorkloadHandle]:
        wanted = {**labels, **MANAGED_BY}
        pods = await self._call("list_namespaced_pod", self.namespace,
                                label_selector=",".join(f"{k}={v}" for k, v in wanted.items()))
        found = []
        for pod in pods.get("items") or []:
            meta = pod.get("metadata") or {}
            pod_labels = meta.get("labels") or {}
            if meta.get("deletionTimestamp") or any(pod_labels.get(k) != v for k, v in wanted.items()):
                continue  # the selector is applied here too: an API that ignores it must not widen the list
            run = self._runs.get(meta.get("name", ""))
            if run is not None and run.status.done():
                continue
            name = (meta.get("annotations") or {}).get(ANNOTATION_NAME, meta.get("name", ""))
            found.append(WorkloadHandle(name, meta["name"], own_labels(pod_labels)))
        return found

    def _interactive_run(self, handle: WorkloadHandle) -> _PodRun:
        run = self._runs.get(handle.ref)
        if run is None:
            raise Conflict(f"workload {handle.name!r} is not running here (its input belongs to the server that "
                           "started it)")
        if not run.interactive:
            raise Conflict(f"workload {handle.name!r} takes no input")
        return run

    async def send(self, handle: WorkloadHandle, data: bytes) -> None:
        run = self._interactive_run(handle)
        if run.stdin_closed or run.status.done():
            raise Conflict(f"the input of workload {handle.name!r} is closed")
        if run.attach_error is not None:
            raise Unavailable(run.attach_error)
        if data:
            run.input.put_nowait(data)

    async def close_stdin(self, handle: WorkloadHandle) -> None:
        run = self._interactive_run(handle)
        if not run.stdin_closed:
            run.stdin_closed = True
            run.input.put_nowait(None)

    # ----------------------------------------------------------------------------------------------- attach

    async def _attach(self, run: _PodRun) -> None:
        """Attach to the pod once it runs (again after a dropped connection, while it runs) and pump its
        stdin and output; ends when the program ended (the status frame) or the pod is gone."""
        await run.started.wait()
        attempts = 0
        try:
            loop = asyncio.get_running_loop()
            while not run.status.done():
                began = loop.time()
                try:
                    finished = await self._attach_once(run)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    finished = False
                    error = f"cannot attach to pod {run.pod}: {exc}"
                else:
                    error = f"the attach connection to pod {run.pod} kept dropping"
                    if loop.time() - began > 30.0:
                        attempts = 0  # it worked for a while: a drop now and then is not a failure
                if finished:
                    return
                try:
                    pod = await self._read_pod(run.pod)
                except (_ApiError, Unavailable):
                    pod = {}  # unknown: try again (bounded by the attempts)
                if pod is None or (pod and classify_pod(pod)[0] is not None) or run.status.done():
                    return  # the program ended (its status comes from the pod)
                attempts += 1
                if attempts > _REATTACH:
                    run.attach_error = error
                    run.wake.set()
                    return
                log.info("attaching to pod %s again (%s)", run.pod, error)
                await asyncio.sleep(min(0.2 * attempts, 2.0))
        finally:
            if not run.output.full():
                run.output.put_nowait(b"")  # wakes a waiting reader: it sees the end

    async def _attach_once(self, run: _PodRun) -> bool:
        """One attach connection; True when the program's status frame came (it ended)."""
        api = await self._attach_api()
        connection = await api.connect_get_namespaced_pod_attach(
            run.pod, self.namespace, container=CONTAINER, stdin=True, stdout=True, stderr=True, tty=False,
            _preload_content=False)
        async with connection as ws:
            writer = asyncio.create_task(self._write_input(run, ws))
            try:
                async for message in ws:
                    data = message.data
                    if isinstance(data, str):
                        data = data.encode()
                    if not isinstance(data, bytes | bytearray) or not data:
                        continue
                    channel, payload = data[0], bytes(data[1:])
                    if channel in (_STDOUT, _STDERR) and payload:
                        await run.output.put(payload)
                    elif channel == _STATUS and payload:
                        log.debug("pod %s: the attached program ended: %s", run.pod, payload[:500])
                        return True
                return False
            finally:
                writer.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await writer

    async def _write_input(self, run: _PodRun, ws: Any) -> None:
        while True:
            item = await run.input.get()
            pending = (run.end_of_input + "\n").encode() if item is None else item
            try:
                await ws.send_bytes(bytes([_STDIN]) + pending)
            except Exception:  # the connection dropped: the item goes out on the next one
                requeue: list[bytes | None] = [None if item is None else pending]
                while not run.input.empty():
                    requeue.append(run.input.get_nowait())
                for again in requeue:
                    run.input.put_nowait(again)
                raise
            if item is None:
                return

    async def _attached_output(self, run: _PodRun) -> AsyncIterator[bytes]:
        while True:
            if run.output.empty() and (run.attach is None or run.attach.done()):
                return
            try:
                chunk = await asyncio.wait_for(run.output.get(), 1.0)
            except TimeoutError:
                continue
            if chunk:
                yield chunk

    # ---------------------------------------------------------------------------------------- pack / unpack

    async def pack(self, workspace: Workspace, paths: tuple[str, ...]) -> AsyncIterator[bytes]:
        raise Unavailable("pack is not supported by the Kubernetes executor yet")
        yield b""  # pragma: no cover - makes this an async generator

    async def unpack(self, workspace: Workspace, chunks: AsyncIterator[bytes]) -> None:
        raise Unavailable("unpack is not supported by the Kubernetes executor yet")

    async def aclose(self) -> None:
        """Stop following pods (they keep running: a restarted server finds them with ``running``)."""
        tasks = [r.supervisor for r in self._runs.values() if r.supervisor is not None]
        if self._watcher is not None:
            tasks.append(self._watcher)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        attaches = [r.attach for r in self._runs.values() if r.attach is not None]
        for task in attaches:
            task.cancel()
        await asyncio.gather(*attaches, return_exceptions=True)
        if self._attach_client is not None:
            await self._attach_client.close()
        if self._client is not None and self.close_client:
            await self._client.close()
