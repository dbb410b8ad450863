"""Agent sessions on fakes: lifecycle, follow-ups, resume, stop, interrupt, caps, provider failures, restarts."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import attrs
import pytest

from corral.adapters.claude_code import ClaudeCodeProvider
from corral.core.agents.commands import AgentMessage, NewAgentSession
from corral.core.agents.model import AgentSession, AgentStatus
from corral.core.agents.runner import AgentRunner, RunnerSettings
from corral.core.agents.service import AgentService
from corral.core.errors import InvalidInput, InvalidTransition, PermissionDenied
from corral.core.identity.model import AuthMethod, Principal
from corral.core.ids import uuid7
from corral.core.outbox import topics
from corral.core.projects.model import Project, Visibility
from corral.fakes.agents import InMemoryAgentIdentity, InMemoryAgentRepository
from corral.fakes.clock import FakeClock
from corral.fakes.executor import FakeRun, InMemoryExecutor, InMemoryExecutorWorld
from corral.fakes.uow import InMemoryUnitOfWorkFactory

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
WAIT = 10.0  # every wait in these tests is bounded by this
SID = "5f1c2f6e-5d0a-4b59-9d55-7a3e0f2c9b11"

Behaviour = Callable[[FakeRun], Awaitable[int]]


def line(obj: dict[str, Any]) -> str:
    return json.dumps(obj) + "\n"


def init() -> str:  # the shape Claude Code prints first (trimmed of long lists)
    return line({"type": "system", "subtype": "init", "cwd": "/ws/repo", "session_id": SID,
                 "tools": ["Task", "Bash", "Glob", "Grep", "Read", "Edit", "Write"], "mcp_servers": [],
                 "model": "claude-sonnet-4-5-20250929", "permissionMode": "acceptEdits", "apiKeySource": "none",
                 "uuid": str(uuid.uuid4())})


def assistant(msg_id: str, *blocks: dict[str, Any]) -> str:
    return line({"type": "assistant", "message": {
        "id": msg_id, "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929",
        "content": list(blocks), "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": 4, "output_tokens": 12, "cache_read_input_tokens": 0}},
        "parent_tool_use_id": None, "session_id": SID, "uuid": str(uuid.uuid4())})


def tool_use(tool_id: str, name: str, **tool_input: Any) -> dict[str, Any]:
    return {"type": "tool_use", "id": tool_id, "name": name, "input": tool_input}


def tool_result(tool_id: str, content: str, is_error: bool = False) -> str:
    return line({"type": "user", "message": {"role": "user", "content": [
        {"tool_use_id": tool_id, "type": "tool_result", "content": content, "is_error": is_error}]},
        "parent_tool_use_id": None, "session_id": SID, "uuid": str(uuid.uuid4())})


def result(text: str = "Done.", *, is_error: bool = False, subtype: str = "success", cost: float = 0.0123,
           turns: int = 3) -> str:
    return line({"type": "result", "subtype": subtype, "is_error": is_error, "duration_ms": 2345,
                 "duration_api_ms": 2100, "num_turns": turns, "result": text, "session_id": SID,
                 "total_cost_usd": cost, "usage": {"input_tokens": 40, "output_tokens": 300},
                 "permission_denials": [], "uuid": str(uuid.uuid4())})


def answering(*, cost: float = 0.0123, exit_code: int = 0, work: bool = True) -> Behaviour:
    """A stand-in claude: answers each user message with a little work and a result, until stdin closes."""

    async def claude(run: FakeRun) -> int:
        await run.write(init())
        n = 0
        while (raw := await run.read_line()) is not None:
            message = json.loads(raw)
            if message.get("type") != "user":
                continue
            n += 1
            text = message["message"]["content"]
            if work and n == 1:
                await run.write(assistant(f"msg_{n}a", {"type": "text", "text": f"On it: {text}"},
                                          tool_use("toolu_1", "Read", file_path="/ws/repo/app.py"),
                                          tool_use("toolu_2", "Read", file_path="/ws/repo/README.md")))
                await run.write(tool_result("toolu_1", "print('hi')") + tool_result("toolu_2", "# app"))
                await run.write(assistant(f"msg_{n}b", tool_use("toolu_3", "Edit", file_path="src/app.py",
                                                                old_string="a", new_string="b")))
                await run.write(tool_result("toolu_3", "The file src/app.py has been updated."))
                await run.write(assistant(f"msg_{n}c", tool_use("toolu_4", "Bash", command="python -m pytest -q")))
                await run.write(tool_result("toolu_4", "1 failed, 3 passed", is_error=True))
                await run.write(assistant(f"msg_{n}d", tool_use("toolu_5", "Bash",
                                                                command="git add -A && git commit -m 'fix'")))
                await run.write(tool_result("toolu_5", "[agent/x 1a2b3c4] fix\n 3 files changed, 5 insertions(+)"))
                await run.write(assistant(f"msg_{n}e", tool_use("toolu_6", "Bash", command="git push origin HEAD")))
                await run.write(tool_result("toolu_6", "To http://corral/o/p.git\n * [new branch]  HEAD -> agent/x"))
            else:
                await run.write(assistant(f"msg_{n}", {"type": "text", "text": f"Reply to: {text}"}))
            await run.write(result(f"answered {n}", cost=cost * n, turns=2 * n))
        return exit_code

    return claude


async def git_ok(run: FakeRun) -> int:
    return 0


@attrs.define
class Rig:
    uow: InMemoryUnitOfWorkFactory
    executor: InMemoryExecutor
    identity: InMemoryAgentIdentity
    repo: InMemoryAgentRepository
    runner: AgentRunner
    service: AgentService
    project: Project
    requester: Principal
    clock: FakeClock

    async def wait_finished(self, session_id: uuid.UUID) -> AgentSession:
        async with asyncio.timeout(WAIT):
            while True:
                session = await self.service.get(session_id)
                if session.status.finished and session_id not in self.runner.live:
                    return session
                await asyncio.sleep(0.01)

    async def wait_status(self, session_id: uuid.UUID, status: AgentStatus) -> AgentSession:
        async with asyncio.timeout(WAIT):
            while (session := await self.service.get(session_id)).status is not status:
                await asyncio.sleep(0.01)
            return session

    async def event_types(self, session_id: uuid.UUID) -> list[str]:
        return [e.type for e in await self.service.events(session_id)]

    async def milestones(self, session_id: uuid.UUID) -> list[str]:
        return [e.content for e in await self.service.events(session_id) if e.type == "milestone"]


async def make_rig(claude: Behaviour, *, world: InMemoryExecutorWorld | None = None,
                   uow: InMemoryUnitOfWorkFactory | None = None, project: Project | None = None,
                   wrapup: float = 60.0, clock: FakeClock | None = None) -> Rig:
    clock = clock or FakeClock(T0)
    uow = uow or InMemoryUnitOfWorkFactory(clock=clock)
    executor = InMemoryExecutor(world=world) if world is not None else InMemoryExecutor()
    executor.script("git", git_ok)
    executor.script("claude", claude)
    requester = Principal(user_id=uuid7(), name="ann", method=AuthMethod.TOKEN)
    if project is None:
        pid = uuid7()
        project = Project(id=pid, owner_id=requester.user_id, owner_name="ann", name="app",
                          visibility=Visibility.PRIVATE, default_branch="main", repo_path=f"{pid}.git",
                          created_at=T0, updated_at=T0)
        async with uow() as unit:
            await unit.projects.add(project)
            await unit.commit()
    identity = InMemoryAgentIdentity(held={requester.user_id: {"project:read", "project:write", "agent:run"}})
    repo = InMemoryAgentRepository(heads={(project.id, "main"): "a" * 40})
    runner = AgentRunner(uow, clock, executor, {"claude-code": ClaudeCodeProvider("claude")}, identity, repo,
                         RunnerSettings(base_url="http://corral.test", owner=f"test:{uuid.uuid4().hex[:6]}",
                                        git_source=lambda p: f"/repos/{p.repo_path}", wrapup_seconds=wrapup,
                                        heartbeat_seconds=3600))
    return Rig(uow, executor, identity, repo, runner, AgentService(runner), project, requester, clock)


def new(**changes: Any) -> NewAgentSession:
    return attrs.evolve(NewAgentSession(prompt="Fix the failing test", permissions=["project:read",
                                                                                   "project:write"]), **changes)


async def test_a_session_runs_to_completion_with_events_milestones_and_a_merge_request() -> None:
    rig = await make_rig(answering())

    async def push_on_start(run: FakeRun) -> int:  # the agent's push moves the branch
        rig.repo.heads[(rig.project.id, created.branch)] = "b" * 40
        return await answering()(run)

    rig.executor.script("claude", push_on_start)
    created = await rig.service.create(rig.requester, rig.project, new())
    assert created.status is AgentStatus.PENDING
    assert created.branch == f"agent/{created.id.hex[-8:]}" and created.agent_user_name
    done = await rig.wait_finished(created.id)

    assert done.status is AgentStatus.COMPLETED, done.error
    assert done.cost_usd == pytest.approx(0.0123) and done.turns == 2 and done.duration_ms == 2345
    assert done.merge_request == 1
    project_id, branch, title, body = rig.repo.merge_requests[0]
    assert (project_id, branch, title) == (rig.project.id, created.branch, "Agent: Fix the failing test")
    assert "answered 1" in body and str(created.id) in body
    assert await rig.milestones(created.id) == [
        f"cloned ann/app on {created.branch}", "read 2 files", "edited src/app.py", "ran tests: failed",
        "committed 3 files", "pushed agent/x", "opened merge request !1"]
    types = await rig.event_types(created.id)
    assert types[0] == "message" and types[-1] == "status"
    assert {"system", "text", "tool_use", "tool_result", "result"} <= set(types)
    events = await rig.service.events(created.id)
    assert [e.id for e in events] == list(range(1, len(events) + 1))
    assert (await rig.service.events(created.id, after=len(events) - 1))[0].id == len(events)
    # the provider was run as pinned: stream-json both ways, caps, the session id in the = form
    spec = next(s for s in rig.executor.started if s.argv[0] == "claude")
    assert spec.argv[:7] == ("claude", "-p", "--output-format", "stream-json", "--input-format", "stream-json",
                             "--verbose")
    assert "--max-turns" in spec.argv and "--max-budget-usd" in spec.argv and "--permission-mode" in spec.argv
    assert f"--session-id={created.id}" in spec.argv and spec.interactive and spec.workdir == "repo"
    assert spec.env["CORRAL_SESSION_ID"] == str(created.id) and spec.env["CORRAL_PROJECT"] == "ann/app"
    assert spec.env["OTEL_RESOURCE_ATTRIBUTES"] == f"corral.session_id={created.id},corral.project=ann/app"
    assert spec.secret_env["CORRAL_TOKEN"].startswith("crl_") and "CORRAL_TOKEN" not in spec.env
    assert spec.secret_env["OTEL_EXPORTER_OTLP_HEADERS"] == f"Authorization=Bearer {spec.secret_env['CORRAL_TOKEN']}"
    clone = next(s for s in rig.executor.started if s.argv[:2] == ("git", "clone"))
    assert clone.argv[-2:] == (f"/repos/{rig.project.repo_path}", "repo")
    # identity retired, requester told
    assert rig.identity.retired == [created.id] and not rig.identity.live_tokens
    completed = [e for e in rig.uow.db.outbox.events.values() if e.topic == topics.AGENT_COMPLETED]
    assert len(completed) == 1 and completed[0].payload["user_ids"] == [str(rig.requester.user_id)]
    assert completed[0].payload["outcome"] == "completed"
    audit = [e for e in rig.uow.db.audit.entries.values() if e.resource == "agent_session"]
    assert {e.action for e in audit} == {"agent_session.create", "agent_session.finish"}
    assert all(e.detail["session_id"] == str(created.id) for e in audit)


async def test_permissions_the_requester_lacks_refuse_the_session_and_nothing_runs() -> None:
    rig = await make_rig(answering())
    with pytest.raises(PermissionDenied):
        await rig.service.create(rig.requester, rig.project, new(permissions=["project:read", "secret:read"]))
    with pytest.raises(InvalidInput):
        await rig.service.create(rig.requester, rig.project, new(max_turns=0))
    with pytest.raises(InvalidInput):
        await rig.service.create(rig.requester, rig.project, new(provider="codex"))
    assert rig.executor.started == [] and rig.identity.grants == []


async def test_a_follow_up_is_sent_while_running_and_a_resume_after_the_end() -> None:
    gate = asyncio.Event()
    inner = answering(work=False)

    async def slow(run: FakeRun) -> int:
        await gate.wait()
        return await inner(run)

    rig = await make_rig(slow)
    created = await rig.service.create(rig.requester, rig.project, new())
    await rig.wait_status(created.id, AgentStatus.RUNNING)
    await rig.service.send_message(rig.requester, created.id, AgentMessage(content="also update the docs"))
    gate.set()
    done = await rig.wait_finished(created.id)
    assert done.status is AgentStatus.COMPLETED
    texts = [e.content for e in await rig.service.events(created.id) if e.type == "text"]
    assert texts == ["Reply to: Fix the failing test", "Reply to: also update the docs"]

    resumed = await rig.service.send_message(rig.requester, created.id, AgentMessage(content="one more thing"))
    assert resumed.status is AgentStatus.PENDING and resumed.runs == 2
    again = await rig.wait_finished(created.id)
    assert again.status is AgentStatus.COMPLETED and again.runs == 2
    claude_runs = [s for s in rig.executor.started if s.argv[0] == "claude"]
    assert f"--resume={created.id}" in claude_runs[1].argv
    assert len([s for s in rig.executor.started if s.argv[:2] == ("git", "clone")]) == 1  # the workspace is kept
    assert len(rig.identity.grants) == 2 and rig.identity.retired == [created.id, created.id]
    assert again.cost_usd == pytest.approx(0.0246 + 0.0123)  # both runs add up


async def test_stop_ends_the_process_and_the_identity() -> None:
    async def forever(run: FakeRun) -> int:
        await run.write(init())
        await asyncio.sleep(3600)
        return 0

    rig = await make_rig(forever)
    created = await rig.service.create(rig.requester, rig.project, new())
    await rig.wait_status(created.id, AgentStatus.RUNNING)
    async with asyncio.timeout(WAIT):
        stopped = await rig.service.stop(rig.requester, created.id)
    assert stopped.status is AgentStatus.STOPPED and stopped.error == "stopped by ann"
    assert rig.executor.stopped and not rig.identity.live_tokens
    assert await rig.executor.running({"corral.agent-session": str(created.id)}) == []
    assert (await rig.service.stop(rig.requester, created.id)).status is AgentStatus.STOPPED  # idempotent
    with pytest.raises(InvalidTransition):
        stopped.moved(AgentStatus.RUNNING)


async def test_interrupt_reaches_the_provider_as_a_control_request() -> None:
    seen: list[dict[str, Any]] = []

    async def listening(run: FakeRun) -> int:
        await run.write(init())
        while (raw := await run.read_line()) is not None:
            message = json.loads(raw)
            seen.append(message)
            if message["type"] == "control_request":
                await run.write(result("interrupted", is_error=False))
        return 0

    rig = await make_rig(listening)
    created = await rig.service.create(rig.requester, rig.project, new())
    await rig.wait_status(created.id, AgentStatus.RUNNING)
    await rig.service.interrupt(rig.requester, created.id)
    done = await rig.wait_finished(created.id)
    assert [m["type"] for m in seen] == ["user", "control_request"]
    assert seen[1]["request"] == {"subtype": "interrupt"}
    assert done.status is AgentStatus.COMPLETED
    with pytest.raises(InvalidTransition):
        await rig.service.interrupt(rig.requester, created.id)


async def test_a_provider_exiting_non_zero_fails_the_session() -> None:
    rig = await make_rig(answering(work=False, exit_code=3))
    created = await rig.service.create(rig.requester, rig.project, new())
    done = await rig.wait_finished(created.id)
    assert done.status is AgentStatus.FAILED and done.error == "the provider exited with code 3"
    assert rig.repo.merge_requests == [] and not rig.identity.live_tokens


async def test_is_error_with_exit_zero_is_a_failure_even_with_subtype_success() -> None:
    async def erring(run: FakeRun) -> int:
        await run.write(init())
        await run.read_line()
        await run.write(result("API Error: 401 invalid x-api-key", is_error=True, subtype="success"))
        return 0

    rig = await make_rig(erring)
    created = await rig.service.create(rig.requester, rig.project, new())
    done = await rig.wait_finished(created.id)
    assert done.status is AgentStatus.FAILED
    assert done.error == "the provider reported an error (success): API Error: 401 invalid x-api-key"


async def test_a_provider_ending_without_a_result_fails() -> None:
    async def crashing(run: FakeRun) -> int:
        await run.write("Error: something broke\n    at main (cli.js:1:1)\n")
        return 0

    rig = await make_rig(crashing)
    created = await rig.service.create(rig.requester, rig.project, new())
    done = await rig.wait_finished(created.id)
    assert done.status is AgentStatus.FAILED and done.error == "the provider ended without a result"
    assert "Error: something broke" in [e.content for e in await rig.service.events(created.id)
                                         if e.type == "output"]


async def test_the_cost_cap_is_checked_from_the_events() -> None:
    rig = await make_rig(answering(work=False, cost=2.5))
    created = await rig.service.create(rig.requester, rig.project, new(max_cost_usd=1.0))
    done = await rig.wait_finished(created.id)
    assert done.status is AgentStatus.FAILED
    assert done.error == "the agent spent $2.5000, over its limit of $1.00"
    spec = next(s for s in rig.executor.started if s.argv[0] == "claude")
    assert spec.argv[spec.argv.index("--max-budget-usd") + 1] == "1"


async def test_the_turn_cap_is_checked_from_the_events_and_stops_the_provider() -> None:
    async def chatty(run: FakeRun) -> int:  # ignores --max-turns
        await run.write(init())
        await run.read_line()
        for n in range(50):
            await run.write(assistant(f"msg_{n}", {"type": "text", "text": f"turn {n}"}))
            await asyncio.sleep(0.01)
        await run.write(result())
        return 0

    rig = await make_rig(chatty)
    created = await rig.service.create(rig.requester, rig.project, new(max_turns=5))
    done = await rig.wait_finished(created.id)
    assert done.status is AgentStatus.FAILED and done.error == "the agent went past its limit of 5 turns"
    assert len([e for e in await rig.service.events(created.id) if e.type == "text"]) < 50


async def test_the_wall_clock_sends_the_wrap_up_then_ends_the_session() -> None:
    messages: list[str] = []

    async def slow(run: FakeRun) -> int:
        await run.write(init())
        while (raw := await run.read_line()) is not None:
            messages.append(json.loads(raw)["message"]["content"])
        return 0

    clock = FakeClock(T0)
    rig = await make_rig(slow, clock=clock, wrapup=1.0)
    created = await rig.service.create(rig.requester, rig.project, new(timeout_seconds=10))
    clock.advance(8.5)  # 1.5 s left: the reserve (1 s) comes after 0.5 s
    done = await rig.wait_finished(created.id)
    assert done.status is AgentStatus.FAILED and done.error == "the wall-clock limit of 10 s was reached"
    assert len(messages) == 2 and messages[1].startswith("Time is almost up")


def second_view(rig: Rig) -> Any:
    return type("View", (), {"get": lambda self, sid: _get(rig.uow, sid)})()


async def _get(uow: InMemoryUnitOfWorkFactory, session_id: uuid.UUID) -> AgentSession:
    async with uow() as unit:
        session = await unit.agents.get(session_id)
    assert session is not None
    return session


async def test_a_graceful_shutdown_records_the_end_of_its_sessions() -> None:
    async def forever(run: FakeRun) -> int:
        await run.write(init())
        await asyncio.sleep(3600)
        return 0

    rig = await make_rig(forever)
    created = await rig.service.create(rig.requester, rig.project, new())
    await rig.wait_status(created.id, AgentStatus.RUNNING)
    async with asyncio.timeout(WAIT):
        await rig.runner.aclose()
    ended = await rig.service.get(created.id)
    assert ended.status is AgentStatus.FAILED and (ended.error or "").startswith("the server shut down")
    assert await rig.executor.running({"corral.agent-session": str(created.id)}) == []
    assert not rig.identity.live_tokens


async def test_a_session_whose_server_stopped_is_marked_failed_on_the_next_start() -> None:
    async def forever(run: FakeRun) -> int:
        await run.write(init())
        await asyncio.sleep(3600)
        return 0

    world = InMemoryExecutorWorld()
    first = await make_rig(forever, world=world)
    created = await first.service.create(first.requester, first.project, new())
    await first.wait_status(created.id, AgentStatus.RUNNING)
    # the server dies: its runner task is gone without recording an end (nothing can be written any more)
    task = first.runner.live[created.id].task
    assert task is not None

    def no_database() -> Any:
        raise ConnectionError("the server is gone")

    first.runner.uow_factory = no_database
    first.runner.executor = InMemoryExecutor()  # nor can it end the process: it is left running
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert (await second_view(first).get(created.id)).status is AgentStatus.RUNNING

    second = await make_rig(forever, world=world, uow=first.uow, project=first.project)
    second.identity.held = first.identity.held

    async def gone(owner: str | None) -> bool | None:
        return owner == first.runner.settings.owner

    assert await second.service.recover(gone) == 1
    failed = await second.service.get(created.id)
    assert failed.status is AgentStatus.FAILED and "restart or crash" in (failed.error or "")
    assert await second.executor.running({"corral.agent-session": str(created.id)}) == []
    assert second.identity.retired == [created.id]
    assert await second.service.recover(gone) == 0

    async def alive(owner: str | None) -> bool | None:
        return False

    running = await second.service.create(first.requester, second.project, new())
    await second.wait_status(running.id, AgentStatus.RUNNING)
    assert await second.service.recover(alive) == 0  # its own and live owners' sessions are left alone
    assert await second.service.recover(gone) == 0
    await second.service.stop(first.requester, running.id)


def _events(*ids: int) -> list[Any]:
    from corral.core.agents.model import AgentEvent, EventRole

    return [AgentEvent(session_id=uuid.UUID(int=1), id=i, type="text", role=EventRole.ASSISTANT, content=str(i),
                       metadata={}, created_at=T0) for i in ids]


def test_the_live_feed_serves_only_what_it_holds_without_gaps() -> None:
    from corral.core.agents.runner import LiveFeed

    feed, sid = LiveFeed(keep_events=4), uuid.UUID(int=1)
    assert feed.after(sid, 0, 10) is None
    feed.publish(sid, _events(1, 2, 3))
    assert [e.id for e in feed.after(sid, 0, 10) or []] == [1, 2, 3]
    assert [e.id for e in feed.after(sid, 2, 10) or []] == [3]
    assert feed.after(sid, 3, 10) == []
    feed.publish(sid, _events(4, 5))  # the oldest falls out: after 0 is no longer all in memory
    assert feed.after(sid, 0, 10) is None and [e.id for e in feed.after(sid, 1, 10) or []] == [2, 3, 4, 5]
    feed.publish(sid, _events(7))  # a gap (6 written elsewhere): memory starts again at 7
    assert feed.after(sid, 5, 10) is None and [e.id for e in feed.after(sid, 6, 10) or []] == [7]
    feed.publish(sid, _events(6))  # published out of order: memory is dropped, the store answers
    assert feed.after(sid, 5, 10) is None and feed.after(sid, 6, 10) is None


async def test_the_session_messages_reach_observe_s_timeline_through_its_port() -> None:
    from corral.core.observe.query import ObserveQueries
    from corral.entrypoints.agents_wiring import AgentSessionMessages
    from corral.fakes.observe import InMemoryTelemetryStore

    rig = await make_rig(answering())
    created = await rig.service.create(rig.requester, rig.project, new())
    await rig.wait_finished(created.id)
    events = await rig.service.events(created.id)
    queries = ObserveQueries(hot=InMemoryTelemetryStore(), clock=rig.clock,
                             messages=AgentSessionMessages(rig.service))
    said = await queries.session_messages(str(created.id), None)
    assert [(m.id, m.type, m.role, m.content) for m in said] == [
        (e.id, e.type, e.role.value, e.content) for e in events]
    assert said[0].content == "Fix the failing test" and said[0].timestamp == events[0].created_at
    assert [m.id for m in await queries.session_messages(str(created.id), (rig.project.id,), 3)] == [1, 2, 3]
    assert await queries.session_messages(str(created.id), (uuid7(),)) == []  # another project's caller
    assert await queries.session_messages("sess-not-an-agent", None) == []
    assert await queries.session_messages(str(uuid7()), None) == []
    assert await ObserveQueries(hot=InMemoryTelemetryStore(), clock=rig.clock).session_messages("s", None) == []


async def test_finished_workspaces_are_swept_after_the_retention_and_such_a_session_cannot_resume() -> None:
    from datetime import timedelta

    from corral.core.agents.runner import workspace_key

    rig = await make_rig(answering())
    old = await rig.service.create(rig.requester, rig.project, new())
    await rig.wait_finished(old.id)
    rig.clock.advance(50 * 3600)
    recent = await rig.service.create(rig.requester, rig.project, new())
    await rig.wait_finished(recent.id)
    workspaces = rig.executor.world.workspaces
    assert {workspace_key(old.id), workspace_key(recent.id)} <= set(workspaces)  # kept for a resume

    retention = timedelta(hours=72)
    assert await rig.service.sweep_workspaces(retention) == 0  # 50 h: both are kept
    rig.clock.advance(23 * 3600)  # old: 73 h, recent: 23 h
    assert await rig.service.sweep_workspaces(retention) == 1
    assert workspace_key(old.id) not in workspaces and workspace_key(recent.id) in workspaces
    assert (await rig.service.get(old.id)).workspace_deleted_at == rig.clock.now()
    assert (await rig.event_types(old.id))[-1] == "workspace"
    assert await rig.service.sweep_workspaces(retention) == 0  # once

    with pytest.raises(InvalidTransition, match="workspace was deleted"):
        await rig.service.send_message(rig.requester, old.id, AgentMessage(content="and now?"))
    assert (await rig.service.get(old.id)).status is AgentStatus.COMPLETED
    resumed = await rig.service.send_message(rig.requester, recent.id, AgentMessage(content="more"))
    assert resumed.status is AgentStatus.PENDING  # a kept workspace resumes
    await rig.wait_finished(recent.id)
