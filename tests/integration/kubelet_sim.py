"""A kubelet for kmock's pods that really runs them, as local processes, and serves their attach WebSocket.

kmock emulates the API server (objects, watches) but runs no pods and has no attach/exec endpoint. This
simulator fills that gap for the tests of interactive workloads (agent sessions):

- every pod created in the namespace is "run": its container's command as a local process (in its own
  process group), with the pod's environment (``secretKeyRef`` values read from the Secret stored in kmock: so
  a value that is not in the Secret does not reach the process), its volumes as directories (a claim: one
  directory per claim name, shared like a volume; an emptyDir: one per pod; a Secret volume: its items as
  files), paths under a mount translated to those directories (but ``/tmp``, where the test's own files are:
  ``TMPDIR`` names the pod's), in the command, the working directory and the environment;
- its status is patched in kmock as a kubelet would: ``Running`` when the process starts, ``terminated``
  with the exit code when it ends; a pod deleted in kmock has its process ended (SIGTERM, then SIGKILL);
- ``refuse`` maps an image to the status a pod of that image gets instead of running (an image pull that
  fails, an unschedulable pod): the fail-fast cases;
- a non-interactive pod's output is served by the ``log`` subresource (once the process ended);
- an interactive pod (``stdin: true``) is served at ``/api/v1/namespaces/{ns}/pods/{pod}/attach`` on this
  simulator's own aiohttp server, speaking ``v4.channel.k8s.io`` as the API server does (binary frames of one
  channel byte then data: 0 stdin, 1 stdout, 2 stderr, 3 the exit status JSON when the program ended).
  ``refuse_attaches`` answers that many attach attempts of a pod (by name prefix) with a 503 first (a
  connection the executor has to make again).

What it does not do: scheduling, image pulls, securityContext, NetworkPolicy enforcement (a process runs as
the test's user with the host's network), resource limits.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import signal
from pathlib import Path
from typing import Any

import aiohttp
import attrs
import kmock as km
from aiohttp import web

STDIN, STDOUT, STDERR, STATUS = 0, 1, 2, 3


@attrs.define(eq=False)
class SimPod:
    name: str
    raw: dict[str, Any]
    process: asyncio.subprocess.Process | None = None
    exit_code: int | None = None
    ended: asyncio.Event = attrs.field(factory=asyncio.Event)
    output: bytearray = attrs.field(factory=bytearray)  # non-interactive: stdout and stderr merged
    attaches: int = 0
    attach_attempts: int = 0
    stdin_frames: int = 0
    env: dict[str, str] = attrs.field(factory=dict)


@attrs.define
class ProcessKubelet:
    kmock: Any
    kube_api: Any
    root: Path
    namespace: str = "corral"
    refuse: dict[str, dict[str, Any]] = attrs.field(factory=dict)  # image -> the pod status it gets
    refuse_attaches: dict[str, int] = attrs.field(factory=dict)  # pod name prefix -> attempts answered 503
    pods: dict[str, SimPod] = attrs.field(factory=dict)  # every pod this kubelet saw (also deleted ones)
    url: str = ""
    _tasks: list[asyncio.Task[None]] = attrs.field(factory=list)
    _runner: web.AppRunner | None = None

    # ------------------------------------------------------------------------------------------ life cycle

    async def start(self) -> None:
        self.kmock["get", km.resource("v1/pods"), km.subresource("log")] << self._serve_log
        app = web.Application()
        app.router.add_get("/api/v1/namespaces/{ns}/pods/{pod}/attach", self._serve_attach)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        self._tasks.append(asyncio.create_task(self._loop()))

    async def attach_client(self, _api_client: Any) -> Any:
        """The executor's ``attach_client_factory``: kubernetes-asyncio's WsApiClient pointed at this server."""
        from kubernetes_asyncio.client import Configuration
        from kubernetes_asyncio.stream import WsApiClient

        return WsApiClient(configuration=Configuration(host=self.url))

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for pod in self.pods.values():
            if pod.process is not None and pod.process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pod.process.pid, signal.SIGKILL)
                await pod.process.wait()
        if self._runner is not None:
            await self._runner.cleanup()

    # --------------------------------------------------------------------------------------------- objects

    def objects(self, plural: str) -> dict[str, dict[str, Any]]:
        return {name: obj.raw for (resource, ns, name), obj in list(self.kmock.objects.items())
                if resource.plural == plural and ns == self.namespace and not obj.deleted}

    async def _patch(self, pod: str, status: dict[str, Any]) -> None:
        from kubernetes_asyncio.client import CoreV1Api

        if pod not in self.objects("pods"):
            return
        response = await CoreV1Api(self.kube_api).patch_namespaced_pod(pod, self.namespace, {"status": status},
                                                                      _preload_content=False)
        response.release()

    async def _loop(self) -> None:
        while True:
            alive = self.objects("pods")
            for name, raw in alive.items():
                if name not in self.pods:
                    pod = self.pods[name] = SimPod(name, raw)
                    self._tasks.append(asyncio.create_task(self._play(pod)))
            for name, pod in self.pods.items():
                if name not in alive and pod.process is not None and pod.process.returncode is None:
                    self._tasks.append(asyncio.create_task(self._kill(pod)))
            await asyncio.sleep(0.02)

    async def _kill(self, pod: SimPod) -> None:
        process = pod.process
        assert process is not None
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGTERM)  # to PID 1 of the "container", as the kubelet does
        try:
            await asyncio.wait_for(process.wait(), 1.0)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)

    # ------------------------------------------------------------------------------------------- a pod

    def _secret_value(self, name: str, key: str) -> str:
        secret = self.objects("secrets")[name]
        if key in (secret.get("stringData") or {}):
            return str(secret["stringData"][key])
        return base64.b64decode(secret["data"][key]).decode()

    def _mounts(self, pod: SimPod, container: dict[str, Any]) -> dict[str, Path]:
        volumes = {v["name"]: v for v in pod.raw["spec"].get("volumes") or []}
        mounts: dict[str, Path] = {}
        for mount in container.get("volumeMounts") or []:
            volume = volumes[mount["name"]]
            if "persistentVolumeClaim" in volume:
                path = self.root / "claims" / volume["persistentVolumeClaim"]["claimName"]
            elif "emptyDir" in volume:
                path = self.root / "empty" / pod.name / mount["name"]
            elif "secret" in volume:
                path = self.root / "secrets" / pod.name / mount["name"]
                path.mkdir(parents=True, exist_ok=True)
                for item in volume["secret"].get("items") or []:
                    secret = self.objects("secrets")[volume["secret"]["secretName"]]
                    data = base64.b64decode(secret["data"][item["key"]])
                    (path / item["path"]).write_bytes(data)
            else:
                raise AssertionError(f"the simulator does not know volume {volume}")
            path.mkdir(parents=True, exist_ok=True)
            mounts[mount["mountPath"]] = path
        return mounts

    async def _play(self, pod: SimPod) -> None:
        spec = pod.raw["spec"]
        container = spec["containers"][0]
        refused = self.refuse.get(container["image"])
        if refused is not None:
            await self._patch(pod.name, refused)
            return
        mounts = self._mounts(pod, container)

        def path(text: str) -> str:
            for mount in sorted(mounts, key=len, reverse=True):
                if mount == "/tmp":
                    continue
                if text == mount or text.startswith(mount + "/"):
                    return str(mounts[mount]) + text[len(mount):]
                if mount.startswith("/var/run/") and mount in text:  # a file named inside a script
                    return text.replace(mount, str(mounts[mount]))
            return text

        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        if "/tmp" in mounts:
            env["TMPDIR"] = str(mounts["/tmp"])
        for item in container.get("env") or []:
            if "value" in item:
                env[item["name"]] = path(item["value"])
            else:
                ref = item["valueFrom"]["secretKeyRef"]
                env[item["name"]] = self._secret_value(ref["name"], ref["key"])
        pod.env = env
        cwd = Path(path(container.get("workingDir") or "/"))
        cwd.mkdir(parents=True, exist_ok=True)
        interactive = bool(container.get("stdin"))
        pod.process = await asyncio.create_subprocess_exec(
            *[path(arg) for arg in container["command"]], cwd=cwd, env=env, start_new_session=True,
            stdin=asyncio.subprocess.PIPE if interactive else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE if interactive else asyncio.subprocess.STDOUT)
        await self._patch(pod.name, {"phase": "Running",
                                     "containerStatuses": [{"name": "main", "state": {"running": {}}}]})
        if not interactive:
            assert pod.process.stdout is not None
            while chunk := await pod.process.stdout.read(65536):
                pod.output += chunk
        code = await pod.process.wait()
        pod.exit_code = code
        if interactive:  # the attach connection sends the status frame once the output was read
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(pod.ended.wait(), 10.0)
        pod.ended.set()
        await self._patch(pod.name, {"phase": "Succeeded" if code == 0 else "Failed", "containerStatuses": [
            {"name": "main", "state": {"terminated": {"exitCode": code}}}]})

    # --------------------------------------------------------------------------------------- log, attach

    async def _serve_log(self, request: Any) -> Any:
        name = request.url.path.rstrip("/").split("/")[-2]

        async def after_the_end() -> bytes:
            pod = self.pods.get(name)
            if pod is None:
                return b""
            await pod.ended.wait()
            return bytes(pod.output)

        return after_the_end()

    async def _serve_attach(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["pod"]
        pod = self.pods.get(name)
        query = request.query
        if pod is None or pod.process is None or pod.process.returncode is not None:
            raise web.HTTPBadRequest(text=f"pod {name} has no running container to attach to")
        # the API server reads a boolean as false only for "false" and "0" (kubernetes-asyncio sends "True")
        assert query.get("container") == "main", query
        assert all(query.get(k, "false").lower() not in ("false", "0") for k in ("stdin", "stdout", "stderr")), query
        assert query.get("tty", "false").lower() in ("false", "0"), query
        pod.attach_attempts += 1
        refused = self.refuse_attaches.get(next((p for p in self.refuse_attaches if name.startswith(p)), ""), 0)
        if pod.attach_attempts <= refused:
            raise web.HTTPServiceUnavailable(text="the kubelet is not reachable (simulated)")
        ws = web.WebSocketResponse(protocols=("v4.channel.k8s.io",))
        await ws.prepare(request)
        assert ws.ws_protocol == "v4.channel.k8s.io"
        pod.attaches += 1
        process = pod.process
        assert process.stdin is not None and process.stdout is not None and process.stderr is not None

        async def pump(stream: asyncio.StreamReader, channel: int) -> None:
            while chunk := await stream.read(65536):
                await ws.send_bytes(bytes([channel]) + chunk)

        async def feed() -> None:
            async for message in ws:
                if message.type is not aiohttp.WSMsgType.BINARY or not message.data:
                    continue
                if message.data[0] == STDIN and len(message.data) > 1:
                    pod.stdin_frames += 1
                    with contextlib.suppress(ConnectionError):  # the program ended: its status follows
                        process.stdin.write(message.data[1:])  # type: ignore[union-attr]
                        await process.stdin.drain()  # type: ignore[union-attr]

        pumps = asyncio.gather(pump(process.stdout, STDOUT), pump(process.stderr, STDERR))
        feeder = asyncio.create_task(feed())
        await asyncio.wait([pumps, feeder], return_when=asyncio.FIRST_COMPLETED)
        if feeder.done() and not pumps.done():  # the client left: the program runs on
            pumps.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pumps
            await ws.close()
            return ws
        code = await process.wait()
        status = ({"metadata": {}, "status": "Success"} if code == 0 else
                  {"metadata": {}, "status": "Failure", "message": f"command terminated with non-zero exit code: "
                   f"{code}", "reason": "NonZeroExitCode",
                   "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}})
        with contextlib.suppress(ConnectionError, RuntimeError):
            await ws.send_bytes(bytes([STATUS]) + json.dumps(status).encode())
        pod.ended.set()
        feeder.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await feeder
        await ws.close()
        return ws
