"""The in-memory executor passes the Executor contract, and its scripting hooks work for engine tests."""

from __future__ import annotations

import asyncio

import pytest

from corral.contracts.executor import ExecutorContract, run_to_end, sh, spec
from corral.core.workloads.model import ExitStatus, Outcome
from corral.fakes.executor import FakeRun, InMemoryExecutor


class TestInMemoryExecutor(ExecutorContract):
    @pytest.fixture
    def executor(self) -> InMemoryExecutor:
        return InMemoryExecutor()

    def restarted(self, executor: InMemoryExecutor) -> InMemoryExecutor:  # type: ignore[override]
        return InMemoryExecutor(world=executor.world)

    def stored_state(self, executor: InMemoryExecutor) -> bytes:  # type: ignore[override]
        return executor.world.state()


async def test_a_scripted_program_sees_its_env_stdin_and_workspace() -> None:
    executor = InMemoryExecutor()
    seen: dict[str, object] = {}

    async def claude(run: FakeRun) -> int:
        seen["env"] = dict(run.env)
        seen["stdin"] = run.stdin
        run.files["out.txt"] = b"written by claude"
        await run.write(b'{"type": "result", "is_error": false}\n')
        return 0

    executor.script("claude", claude)
    ws = await executor.create_workspace("agent-1")
    output, status = await run_to_end(executor, spec(ws, ("/usr/local/bin/claude", "-p"), stdin=b"prompt",
                                                     secret_env={"ANTHROPIC_API_KEY": "k"}))
    assert status == ExitStatus(Outcome.EXITED, 0)
    assert output == b'{"type": "result", "is_error": false}\n'
    assert seen["stdin"] == b"prompt"
    assert seen["env"]["ANTHROPIC_API_KEY"] == "k"  # type: ignore[index]
    assert executor.files(ws) == {"out.txt": b"written by claude"}
    assert [s.argv[0] for s in executor.started] == ["/usr/local/bin/claude"]


async def test_a_scripted_program_is_found_inside_a_shell_step() -> None:
    executor = InMemoryExecutor()

    async def make(run: FakeRun) -> int:
        await run.write("make: *** [all] Error 2\n")
        return 2

    executor.script("make", make)
    ws = await executor.create_workspace("p")
    output, status = await run_to_end(executor, spec(ws, sh("echo building\nmake all\necho unreachable")))
    assert output == b"building\nmake: *** [all] Error 2\n"
    assert status.exit_code == 2


async def test_a_failing_image_fails_to_start_with_its_reason() -> None:
    executor = InMemoryExecutor()
    executor.fail_image("alpine:nope", "ImagePullBackOff: alpine:nope not found")
    ws = await executor.create_workspace("p")
    output, status = await run_to_end(executor, spec(ws, sh("echo hi")).__class__(
        name="x", argv=sh("echo hi"), workspace=ws, image="alpine:nope"))
    assert status == ExitStatus(Outcome.FAILED_TO_START, None, "ImagePullBackOff: alpine:nope not found")
    assert output == b""


async def test_an_unknown_command_in_a_script_is_127_and_or_chains_work() -> None:
    executor = InMemoryExecutor()
    ws = await executor.create_workspace("p")
    output, status = await run_to_end(executor, spec(ws, sh("nosuch || echo fallback\ntrue && echo yes\nnosuch")))
    assert output == b"sh: 1: nosuch: not found\nfallback\nyes\nsh: 1: nosuch: not found\n"
    assert status.exit_code == 127


async def test_variables_are_expanded_and_stop_is_recorded() -> None:
    executor = InMemoryExecutor()
    ws = await executor.create_workspace("p")
    handle = await executor.start(spec(ws, sh("echo $CI_COMMIT_SHA ${CI_REPO}; sleep 100"),
                                       env={"CI_COMMIT_SHA": "abc", "CI_REPO": "o/r"}))
    logs = executor.logs(handle)
    async with asyncio.timeout(5):
        assert await anext(logs) == b"abc o/r\n"
        await executor.stop(handle)
    assert executor.stopped == [handle.name]
