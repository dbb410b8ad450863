"""Agent sessions on the Kubernetes runtime: kmock for the API objects, ``ProcessKubelet`` for the pods.

What is exercised where (see ``kubelet_sim`` for what the simulator does and does not do):

- on kmock (the API objects as Corral writes them): the session pod (image, non-root securityContext,
  read-only root filesystem, resources, ``stdin: true, stdinOnce: false, tty: false``, the environment with
  the token and the API key only as ``secretKeyRef``), its Secret and its NetworkPolicy, and that all three
  are deleted when the workload ends; the fail-fast verdicts from a pod status kmock holds (ImagePullBackOff,
  Unschedulable);
- against the simulator's attach WebSocket (``v4.channel.k8s.io``, through kubernetes-asyncio's
  ``WsApiClient``): the executor's interactive contract, and whole sessions through the ``AgentRunner``
  (prompt in, events out, a follow-up, an interrupt, the end of the input, stop, an attach that has to be
  made again), with the clone steps run as pods on the shared claim directory.
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import pytest

from corral.adapters.claude_code import ClaudeCodeProvider
from corral.adapters.kubernetes_executor import KubernetesExecutor, KubernetesExecutorSettings
from corral.contracts.executor import ExecutorInteractiveContract, sh, spec
from corral.core.agents.commands import AgentMessage, NewAgentSession
from corral.core.agents.model import AgentSession, AgentStatus
from corral.core.agents.runner import AgentRunner, RunnerSettings
from corral.core.agents.service import AgentService
from corral.core.identity.model import AuthMethod, Principal
from corral.core.ids import uuid7
from corral.core.projects.model import Project, Visibility
from corral.core.workloads.model import Outcome, Resources, Sandbox
from corral.fakes.agents import InMemoryAgentIdentity, InMemoryAgentRepository
from corral.fakes.clock import FakeClock
from corral.fakes.uow import InMemoryUnitOfWorkFactory
from tests.integration.kubelet_sim import ProcessKubelet

NS = "corral"
WAIT = 30.0  # every wait in these tests is bounded by this
T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
IMAGE = "registry.example/corral-agent:1"
PULL_FAILS = "registry.example/corral-agent:missing"
TOO_BIG = "registry.example/corral-agent:huge"
REFUSE = {
    PULL_FAILS: {"phase": "Pending", "containerStatuses": [{"name": "main", "state": {"waiting": {
        "reason": "ImagePullBackOff", "message": f'Back-off pulling image "{PULL_FAILS}"'}}}]},
    TOO_BIG: {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False",
                                                  "reason": "Unschedulable",
                                                  "message": "0/3 nodes are available: 3 Insufficient memory."}]},
}

# A stand-in for Claude Code's CLI, speaking its stream-json shapes (as tests/e2e/claude_standin.py does):
# ``system``/``init`` once, per user message an ``assistant`` text and a ``result``; ``hold`` as the first
# message waits for the next one before answering (so a follow-up lands while it runs); a ``control_request``
# (interrupt) is answered with a ``control_response``; ``wait`` blocks (for stop). Ends at the end of its input.
STANDIN = r'''
import json, os, sys, time, uuid
argv = sys.argv[1:]
assert {"-p", "--verbose"} <= set(argv) and argv[argv.index("--input-format") + 1] == "stream-json", argv
session = next(a.split("=", 1)[1] for a in argv if a.startswith(("--session-id=", "--resume=")))
def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n"); sys.stdout.flush()
def text(n, words):
    emit({"type": "assistant", "message": {"id": f"msg_{uuid.uuid4().hex[:20]}", "type": "message",
          "role": "assistant", "model": "claude-sonnet-4-5-20250929", "content": [{"type": "text", "text": words}],
          "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 10, "output_tokens": 20}},
          "parent_tool_use_id": None, "session_id": session, "uuid": str(uuid.uuid4())})
def result(n):
    emit({"type": "result", "subtype": "success", "is_error": False, "duration_ms": 1000 * n, "num_turns": 2 * n,
          "result": f"answered {n}", "session_id": session, "total_cost_usd": round(0.01 * n, 4),
          "usage": {"input_tokens": 100, "output_tokens": 50}, "permission_denials": [], "uuid": str(uuid.uuid4())})
sys.stderr.write("standin: token %s, key %s, home %s\n" % (
    "set" if os.environ.get("CORRAL_TOKEN") else "missing",
    "set" if os.environ.get("ANTHROPIC_API_KEY") else "missing", os.environ.get("HOME")))
sys.stderr.flush()
emit({"type": "system", "subtype": "init", "cwd": os.getcwd(), "session_id": session, "tools": ["Bash", "Read"],
      "mcp_servers": [], "model": "claude-sonnet-4-5-20250929", "permissionMode": "acceptEdits",
      "apiKeySource": "ANTHROPIC_API_KEY", "uuid": str(uuid.uuid4())})
n = 0
held = False
for raw in sys.stdin:
    message = json.loads(raw)
    if message.get("type") == "control_request":
        emit({"type": "control_response", "response": {"subtype": "success",
              "request_id": message["request_id"]}})
        continue
    n += 1
    words = message["message"]["content"]
    if n == 1 and words == "wait":
        text(n, "This will take a while.")
        time.sleep(600)
    if n == 1 and words == "hold":
        text(n, "holding")
        held = True
        continue
    if held:
        text(n, "Noted: hold"); result(n - 1); held = False
    text(n, f"Noted: {words}")
    result(n)
'''


async def _collect(chunks: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in chunks])


@pytest.fixture
async def kubelet(kmock: Any, kube_api: Any, tmp_path: Path) -> AsyncIterator[ProcessKubelet]:
    sim = ProcessKubelet(kmock, kube_api, tmp_path / "kubelet", NS, refuse=dict(REFUSE))
    await sim.start()
    yield sim
    await sim.aclose()


def _make(kube_api: Any, kubelet: ProcessKubelet) -> KubernetesExecutor:
    async def factory() -> Any:
        return kube_api

    return KubernetesExecutor(factory, KubernetesExecutorSettings(
        namespace=NS, poll_seconds=0.05, log_drain_seconds=5, corral_cidrs=("10.20.0.0/16",)),
        close_client=False, attach_client_factory=kubelet.attach_client)


@pytest.fixture
async def executor(kube_api: Any, kubelet: ProcessKubelet) -> AsyncIterator[KubernetesExecutor]:
    ex = _make(kube_api, kubelet)
    yield ex
    await ex.aclose()


class TestKubernetesInteractive(ExecutorInteractiveContract):
    """The executor's interactive contract, through the attach WebSocket of the simulated kubelet."""

    @pytest.fixture
    async def executor(self, kube_api: Any, kubelet: ProcessKubelet  # type: ignore[override]
                       ) -> AsyncIterator[KubernetesExecutor]:
        ex = _make(kube_api, kubelet)
        yield ex
        await ex.aclose()


# ------------------------------------------------------------------------------------- the executor alone


async def test_a_sandboxed_interactive_pod_its_secret_and_its_network_policy(
        executor: KubernetesExecutor, kubelet: ProcessKubelet) -> None:
    ws = await executor.create_workspace("agent-abc")
    handle = await executor.start(spec(
        ws, sh("cat"), name="agent-1", workdir="repo", image=IMAGE, interactive=True, stdin=b"first\n",
        env={"CORRAL_URL": "http://corral.corral.svc"}, secret_env={"CORRAL_TOKEN": "crl_sekret-token"},
        labels={"corral.agent-session": "abc"}, timeout_seconds=600, sandbox=Sandbox(user_id=1234),
        resources=Resources(cpu_request="500m", cpu_limit="2", memory_request="1Gi", memory_limit="4Gi")))
    async with asyncio.timeout(WAIT):
        output = asyncio.ensure_future(_collect(executor.logs(handle)))
        while handle.ref not in kubelet.pods or kubelet.pods[handle.ref].attaches == 0:
            await asyncio.sleep(0.02)
        pod = kubelet.objects("pods")[handle.ref]
        secret = kubelet.objects("secrets")[f"{handle.ref}-env"]
        policy = kubelet.objects("networkpolicies")[f"{handle.ref}-egress"]
        await executor.send(handle, b"second\n")
        await executor.close_stdin(handle)
        status = await executor.wait(handle)
        assert await output == b"first\nsecond\n"
    assert status.succeeded

    container = pod["spec"]["containers"][0]
    assert container["image"] == IMAGE
    assert (container["stdin"], container["stdinOnce"], container["tty"]) == (True, False, False)
    wrapper, end_of_input, program = container["command"][:4], container["command"][4], container["command"][5:]
    assert wrapper[:2] == ["/bin/sh", "-c"] and wrapper[3] == "sh" and program == ["/bin/sh", "-e", "-c", "cat"]
    assert end_of_input.startswith("\x04corral-end-of-input-")
    assert pod["spec"]["securityContext"] == {"runAsNonRoot": True, "runAsUser": 1234, "runAsGroup": 1234,
                                              "fsGroup": 1234, "seccompProfile": {"type": "RuntimeDefault"}}
    assert container["securityContext"] == {
        "runAsNonRoot": True, "runAsUser": 1234, "runAsGroup": 1234, "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}, "privileged": False}
    assert container["resources"] == {"requests": {"cpu": "500m", "memory": "1Gi"},
                                      "limits": {"cpu": "2", "memory": "4Gi"}}
    assert {"name": "HOME", "value": "/workspace/.home"} in container["env"]
    assert {"name": "CORRAL_TOKEN", "valueFrom": {"secretKeyRef": {"name": f"{handle.ref}-env", "key": "e0"}}} \
        in container["env"]
    assert "crl_sekret-token" not in json.dumps(pod) and "first" not in json.dumps(pod)
    assert secret["stringData"] == {"e0": "crl_sekret-token"} and "data" not in secret  # stdin: the attach
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert pod["metadata"]["labels"]["corral.dev/pod"] == handle.ref
    assert policy["spec"]["podSelector"] == {"matchLabels": {"corral.dev/pod": handle.ref}}
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"] and policy["spec"]["ingress"] == []
    assert policy["spec"]["egress"] == [
        {"ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
         "to": [{"podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                 "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}}]},
        {"to": [{"ipBlock": {"cidr": "10.20.0.0/16"}},
                {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "corral"}}}]},
        {"to": [{"ipBlock": {"cidr": "160.79.104.0/23"}}, {"ipBlock": {"cidr": "2607:6bc0::/48"}}],
         "ports": [{"protocol": "TCP", "port": 443}]},
    ]
    assert policy["metadata"]["labels"]["corral.agent-session"] == "abc"
    async with asyncio.timeout(WAIT):  # the pod, its Secret and its NetworkPolicy go with the workload
        while kubelet.objects("pods") or kubelet.objects("secrets") or kubelet.objects("networkpolicies"):
            await asyncio.sleep(0.02)


@pytest.mark.parametrize(("image", "reason"), [(PULL_FAILS, "ImagePullBackOff"), (TOO_BIG, "Unschedulable")])
async def test_an_interactive_pod_that_cannot_start_fails_fast_with_the_reason(
        executor: KubernetesExecutor, kubelet: ProcessKubelet, image: str, reason: str) -> None:
    ws = await executor.create_workspace("agent-ff")
    handle = await executor.start(spec(ws, ("claude", "-p"), image=image, interactive=True, stdin=b"hi\n",
                                       secret_env={"CORRAL_TOKEN": "t"}, sandbox=Sandbox(),
                                       timeout_seconds=3600))  # far beyond the test's own bound
    async with asyncio.timeout(WAIT):
        output = b"".join([c async for c in executor.logs(handle)])
        status = await executor.wait(handle)
        while kubelet.objects("pods") or kubelet.objects("secrets") or kubelet.objects("networkpolicies"):
            await asyncio.sleep(0.02)
    assert status.outcome is Outcome.FAILED_TO_START
    assert status.reason.startswith(reason)
    assert output == b""
    assert kubelet.pods[handle.ref].attach_attempts == 0  # never attached to a pod that never ran


async def test_an_attach_that_fails_is_made_again_while_the_pod_runs(
        executor: KubernetesExecutor, kubelet: ProcessKubelet) -> None:
    kubelet.refuse_attaches["corral-again"] = 2
    ws = await executor.create_workspace("agent-again")
    handle = await executor.start(spec(ws, sh("cat"), name="again", interactive=True, stdin=b"one\n"))
    async with asyncio.timeout(WAIT):
        output = asyncio.ensure_future(_collect(executor.logs(handle)))
        await executor.send(handle, b"two\n")
        await executor.close_stdin(handle)
        status = await executor.wait(handle)
        assert await output == b"one\ntwo\n"
    assert status.succeeded
    assert kubelet.pods[handle.ref].attach_attempts == 3 and kubelet.pods[handle.ref].attaches == 1


async def test_a_restarted_server_stops_a_leftover_session_pod_with_its_secret_and_policy(
        executor: KubernetesExecutor, kubelet: ProcessKubelet, kube_api: Any) -> None:
    ws = await executor.create_workspace("agent-left")
    handle = await executor.start(spec(ws, sh("cat"), interactive=True, stdin=b"x\n", sandbox=Sandbox(),
                                       secret_env={"CORRAL_TOKEN": "t"}, labels={"corral.agent-session": "left"}))
    async with asyncio.timeout(WAIT):
        while handle.ref not in kubelet.pods or kubelet.pods[handle.ref].attaches == 0:
            await asyncio.sleep(0.02)
    await executor.aclose()  # the server goes away; the pod runs on
    later = _make(kube_api, kubelet)
    try:
        found = await later.running({"corral.agent-session": "left"})
        assert [(h.ref, dict(h.labels)) for h in found] == [(handle.ref, {"corral.agent-session": "left"})]
        async with asyncio.timeout(WAIT):
            await later.stop(found[0], grace_seconds=1)
        assert kubelet.objects("pods") == {} and kubelet.objects("secrets") == {}
        assert kubelet.objects("networkpolicies") == {}
    finally:
        await later.aclose()


# ----------------------------------------------------------------------------------- whole agent sessions


@attrs.define
class Rig:
    runner: AgentRunner
    service: AgentService
    project: Project
    requester: Principal
    identity: InMemoryAgentIdentity
    kubelet: ProcessKubelet

    async def wait_finished(self, session_id: uuid.UUID) -> AgentSession:
        async with asyncio.timeout(WAIT):
            while True:
                session = await self.service.get(session_id)
                if session.status.finished and session_id not in self.runner.live:
                    return session
                await asyncio.sleep(0.02)

    async def wait_event(self, session_id: uuid.UUID, kind: str, content: str | None = None) -> None:
        try:
            async with asyncio.timeout(WAIT):
                while not any(e.type == kind and (content is None or e.content == content)
                              for e in await self.service.events(session_id)):
                    await asyncio.sleep(0.02)
        except TimeoutError:
            events = [(e.type, e.content[:300], e.metadata) for e in await self.service.events(session_id)]
            raise AssertionError(f"no {kind} {content!r} event: {events}") from None


def _origin(path: Path) -> Path:
    import subprocess

    path.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
    (path / "README.md").write_text("# app\n")
    git = ["git", "-C", str(path), "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run([*git, "add", "README.md"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "init"], check=True)
    return path


@pytest.fixture
async def rig(kube_api: Any, kubelet: ProcessKubelet, tmp_path: Path) -> AsyncIterator[Rig]:
    standin = tmp_path / "claude"
    standin.write_text(f"#!{sys.executable}\n{STANDIN}")
    standin.chmod(0o755)
    origin = _origin(tmp_path / "origin.git")
    clock = FakeClock(T0)
    uow = InMemoryUnitOfWorkFactory(clock=clock)
    requester = Principal(user_id=uuid7(), name="ann", method=AuthMethod.TOKEN)
    pid = uuid7()
    project = Project(id=pid, owner_id=requester.user_id, owner_name="ann", name="app",
                      visibility=Visibility.PRIVATE, default_branch="main", repo_path=f"{pid}.git",
                      created_at=T0, updated_at=T0)
    async with uow() as unit:
        await unit.projects.add(project)
        await unit.commit()
    identity = InMemoryAgentIdentity(held={requester.user_id: {"project:read", "project:write", "agent:run"}})
    repo = InMemoryAgentRepository(heads={(project.id, "main"): "a" * 40})
    executor = _make(kube_api, kubelet)

    async def api_key(session: AgentSession) -> dict[str, str]:
        return {"ANTHROPIC_API_KEY": "sk-ant-test-key"}

    runner = AgentRunner(
        uow, clock, executor, {"claude-code": ClaudeCodeProvider(str(standin))}, identity, repo,
        RunnerSettings(base_url="http://corral.corral.svc:8080", owner=f"test:{uuid.uuid4().hex[:6]}",
                       git_source=lambda p: str(origin), image=IMAGE, heartbeat_seconds=3600,
                       resources=Resources(cpu_request="250m", memory_limit="2Gi"), sandbox=Sandbox(user_id=1000)),
        secrets=api_key)
    yield Rig(runner, AgentService(runner), project, requester, identity, kubelet)
    await runner.aclose()
    await executor.aclose()


def _new(prompt: str) -> NewAgentSession:
    return NewAgentSession(prompt=prompt, permissions=["project:read", "project:write"], timeout_seconds=3600)


async def test_a_whole_session_through_the_attach_prompt_follow_up_interrupt_and_end(rig: Rig) -> None:
    created = await rig.service.create(rig.requester, rig.project, _new("hold"))
    await rig.wait_event(created.id, "text", "holding")  # running: the prompt went in through the attach
    await rig.runner.interrupt(created.id)
    await rig.wait_event(created.id, "control_response")
    await rig.service.send_message(rig.requester, created.id, AgentMessage(content="also the docs"))
    done = await rig.wait_finished(created.id)

    assert done.status is AgentStatus.COMPLETED, done.error
    assert done.cost_usd == pytest.approx(0.02) and done.turns == 4
    events = await rig.service.events(created.id)
    texts = [e.content for e in events if e.type == "text"]
    assert texts == ["holding", "Noted: hold", "Noted: also the docs"]
    assert [e.type for e in events].count("result") == 2
    init = next(e for e in events if e.type == "system")
    assert init.metadata["session_id"] == str(created.id)
    stderr = next(e.content for e in events if e.type == "output" and e.content.startswith("standin:"))
    assert stderr.startswith("standin: token set, key set, home ")  # the Secret's values reached the process
    assert stderr.endswith("/claims/" + next(iter(rig.kubelet.objects("persistentvolumeclaims"))) + "/.home")

    agent_pods = {n: p.raw for n, p in rig.kubelet.pods.items()
                  if p.raw["spec"]["containers"][0].get("stdin")}
    assert len(agent_pods) == 1
    (name, pod), = agent_pods.items()
    container = pod["spec"]["containers"][0]
    assert container["image"] == IMAGE and pod["metadata"]["labels"]["corral.agent-session"] == str(created.id)
    assert container["resources"] == {"requests": {"cpu": "250m"}, "limits": {"memory": "2Gi"}}
    assert container["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    secret_refs = {e["name"] for e in container["env"] if "valueFrom" in e}
    assert secret_refs == {"CORRAL_TOKEN", "OTEL_EXPORTER_OTLP_HEADERS", "GIT_CONFIG_VALUE_0", "ANTHROPIC_API_KEY"}
    token = rig.identity.grants[0].token_secret
    assert token not in json.dumps(pod) and "sk-ant-test-key" not in json.dumps(pod)
    plain = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    assert plain["CORRAL_SESSION_ID"] == str(created.id) and plain["CORRAL_PROJECT"] == "ann/app"
    assert plain["CORRAL_URL"] == "http://corral.corral.svc:8080"
    assert plain["OTEL_RESOURCE_ATTRIBUTES"] == f"corral.session_id={created.id},corral.project=ann/app"
    assert container["workingDir"] == "/workspace/repo"
    # the clone steps ran as sandboxed pods too, on the same claim, and the agent worked in the clone
    clones = [p.raw for p in rig.kubelet.pods.values() if p.raw["spec"]["containers"][0]["command"][:2]
              == ["git", "clone"]]
    assert len(clones) == 1 and clones[0]["spec"]["securityContext"]["runAsNonRoot"] is True
    assert init.metadata["model"] and rig.kubelet.pods[name].exit_code == 0
    async with asyncio.timeout(WAIT):  # nothing of the session is left in the cluster but its workspace claim
        while rig.kubelet.objects("pods") or rig.kubelet.objects("secrets") \
                or rig.kubelet.objects("networkpolicies"):
            await asyncio.sleep(0.02)
    assert rig.identity.retired == [created.id]


async def test_stop_deletes_the_session_pod_and_the_session_is_stopped(rig: Rig) -> None:
    created = await rig.service.create(rig.requester, rig.project, _new("wait"))
    await rig.wait_event(created.id, "text", "This will take a while.")
    assert await rig.runner.stop(created.id, "ann", grace_seconds=1)
    done = await rig.wait_finished(created.id)
    assert done.status is AgentStatus.STOPPED and done.error == "stopped by ann"
    async with asyncio.timeout(WAIT):
        while rig.kubelet.objects("pods") or rig.kubelet.objects("secrets") \
                or rig.kubelet.objects("networkpolicies"):
            await asyncio.sleep(0.02)
    agent = next(p for p in rig.kubelet.pods.values() if p.raw["spec"]["containers"][0].get("stdin"))
    assert agent.process is not None and agent.process.returncode is not None  # the program was ended


@pytest.mark.parametrize(("image", "reason", "detail"), [(PULL_FAILS, "ImagePullBackOff", PULL_FAILS),
                                                         (TOO_BIG, "Unschedulable", "Insufficient memory")])
async def test_a_session_whose_pod_cannot_start_fails_fast_naming_why(rig: Rig, image: str, reason: str,
                                                                      detail: str) -> None:
    rig.runner.settings = attrs.evolve(rig.runner.settings, image=image)
    created = await rig.service.create(rig.requester, rig.project, _new("hello"))
    done = await rig.wait_finished(created.id)  # bounded by WAIT; the session's own limit is an hour
    assert done.status is AgentStatus.FAILED
    assert done.error is not None and f"{reason}: " in done.error and detail in done.error
    assert rig.identity.retired == [created.id]
