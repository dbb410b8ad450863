"""ExecutorContract: the behaviour every Executor must show (see ``corral.core.workloads.ports.Executor``).

Subclass it once per implementation and provide:

- a fixture ``executor`` returning a fresh executor;
- ``restarted(executor)``: a NEW executor instance over the same state (same root directory, same cluster),
  as a server process started after a crash would build it;
- ``stored_state(executor)``: every byte the executor itself persisted (state files, manifests), to check that
  ``secret_env`` values never reach them.

Workloads are POSIX shell scripts (``/bin/sh -e -c``) restricted to what the in-memory fake interprets
(echo, cat, exit, sleep, env, printenv, mkdir, redirections), so the same suite runs on the fake and on real
processes. ``ExecutorWorkspaceContract`` is the part that needs no workload output (run it where workloads
cannot really execute, e.g. an emulated Kubernetes API).
"""

from __future__ import annotations

import asyncio
import io
import tarfile
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from corral.core.errors import Conflict, InvalidInput
from corral.core.workloads.model import ExitStatus, Outcome, WorkloadSpec, Workspace
from corral.core.workloads.ports import Executor

__all__ = ["ExecutorContract", "ExecutorInteractiveContract", "ExecutorWorkspaceContract", "run_to_end", "sh"]

DEADLINE = 20.0
BASE_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/home/corral"}


def sh(script: str) -> tuple[str, ...]:
    """The argv of a pipeline step: a POSIX shell stopping at the first failing command."""
    return ("/bin/sh", "-e", "-c", script)


def spec(workspace: Workspace, argv: tuple[str, ...], **kwargs: Any) -> WorkloadSpec:
    kwargs.setdefault("env", dict(BASE_ENV))
    kwargs.setdefault("name", f"w-{uuid.uuid4().hex[:10]}")
    kwargs.setdefault("image", "alpine:3.20")
    return WorkloadSpec(argv=argv, workspace=workspace, **kwargs)


async def _collect(chunks: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in chunks])


async def run_to_end(
    executor: Executor, workload: WorkloadSpec, deadline: float = DEADLINE
) -> tuple[bytes, ExitStatus]:
    """Start ``workload``, read its output while waiting for its end (as the engine does)."""
    handle = await executor.start(workload)
    async with asyncio.timeout(deadline):
        output, status = await asyncio.gather(_collect(executor.logs(handle)), executor.wait(handle))
    return output, status


async def _stream(data: bytes) -> AsyncIterator[bytes]:
    for offset in range(0, len(data), 1000):
        yield data[offset : offset + 1000]


def _tar(members: list[tuple[tarfile.TarInfo, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for info, content in members:
            info.size = len(content) if info.isfile() else 0
            tar.addfile(info, io.BytesIO(content) if info.isfile() else None)
    return buffer.getvalue()


def _member(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info


class ExecutorWorkspaceContract:
    """Workspaces, and the lifecycle of a workload that never produces output (start, list, stop)."""

    @pytest.fixture
    def executor(self) -> Executor:
        raise NotImplementedError

    def restarted(self, executor: Executor) -> Executor:
        raise NotImplementedError

    def stored_state(self, executor: Executor) -> bytes:
        raise NotImplementedError

    async def test_create_workspace_is_idempotent_and_delete_tolerates_missing(self, executor: Executor) -> None:
        key = f"pipeline-{uuid.uuid4().hex[:8]}-build"
        first = await executor.create_workspace(key)
        again = await executor.create_workspace(key)
        assert first == again
        assert first.key == key
        other = await executor.create_workspace(key + "-other")
        assert other.ref != first.ref
        await executor.delete_workspace(first)
        await executor.delete_workspace(first)  # a missing one is fine

    async def test_running_lists_by_labels_across_a_restart_and_stop_ends_it(self, executor: Executor) -> None:
        ws = await executor.create_workspace(f"restart-{uuid.uuid4().hex[:8]}")
        tag = uuid.uuid4().hex[:12]
        handle = await executor.start(spec(ws, sh("sleep 300"), labels={"corral.dev/test": tag, "kind": "step"},
                                           secret_env={"TOKEN": "secret-" + tag}))
        await executor.start(spec(ws, sh("sleep 300"), labels={"corral.dev/test": "other-" + tag}))
        try:
            assert [h.name for h in await executor.running({"corral.dev/test": tag})] == [handle.name]
            assert ("secret-" + tag).encode() not in self.stored_state(executor)

            later = self.restarted(executor)
            found = await later.running({"corral.dev/test": tag})
            expected = [(handle.name, {"corral.dev/test": tag, "kind": "step"})]
            assert [(h.name, dict(h.labels)) for h in found] == expected
            async with asyncio.timeout(DEADLINE):
                await later.stop(found[0], grace_seconds=1)
                await later.stop(found[0], grace_seconds=1)  # idempotent
            assert await later.running({"corral.dev/test": tag}) == []
            assert await executor.running({"corral.dev/test": tag}) == []
        finally:
            for leftover in await executor.running({}):
                if leftover.labels.get("corral.dev/test", "").endswith(tag):
                    await executor.stop(leftover, grace_seconds=0.5)

    async def test_a_running_name_cannot_be_reused(self, executor: Executor) -> None:
        ws = await executor.create_workspace(f"names-{uuid.uuid4().hex[:8]}")
        first = await executor.start(spec(ws, sh("sleep 300"), name="same-name"))
        try:
            with pytest.raises(Conflict):
                await executor.start(spec(ws, sh("sleep 300"), name="same-name"))
        finally:
            async with asyncio.timeout(DEADLINE):
                await executor.stop(first, grace_seconds=0.5)

    async def test_a_workdir_leaving_the_workspace_is_refused(self, executor: Executor) -> None:
        ws = await executor.create_workspace(f"workdir-{uuid.uuid4().hex[:8]}")
        for workdir in ("../elsewhere", "a/../../up", "/etc"):
            with pytest.raises(InvalidInput):
                await executor.start(spec(ws, sh("true"), workdir=workdir))


class ExecutorInteractiveContract:
    """Workloads whose stdin stays open (``spec.interactive``: agent sessions): ``send``, ``close_stdin``, and
    output that comes while the input is still open. Also part of ``ExecutorContract``; run on its own where
    only interactive workloads can really execute (the Kubernetes executor against its attach simulator)."""

    @pytest.fixture
    def executor(self) -> Executor:
        raise NotImplementedError

    async def _ws(self, executor: Executor) -> Workspace:
        return await executor.create_workspace(f"ws-{uuid.uuid4().hex[:8]}")

    async def test_an_interactive_stdin_takes_sends_in_order_until_closed(self, executor: Executor) -> None:
        ws = await self._ws(executor)
        handle = await executor.start(spec(ws, sh("cat; echo end"), stdin=b"first\n", interactive=True))
        async with asyncio.timeout(DEADLINE):
            output = asyncio.ensure_future(_collect(executor.logs(handle)))
            await executor.send(handle, b"second\n")
            await executor.send(handle, b"third\n")
            await executor.close_stdin(handle)
            await executor.close_stdin(handle)  # idempotent
            status = await executor.wait(handle)
            assert await output == b"first\nsecond\nthird\nend\n"
        assert status.succeeded
        with pytest.raises(Conflict):
            await executor.send(handle, b"too late\n")

    async def test_send_to_a_workload_that_takes_no_input_is_a_conflict(self, executor: Executor) -> None:
        ws = await self._ws(executor)
        handle = await executor.start(spec(ws, sh("sleep 5")))
        try:
            with pytest.raises(Conflict):
                await executor.send(handle, b"hello\n")
        finally:
            await executor.stop(handle, grace_seconds=1)

    async def test_output_comes_while_the_input_is_still_open(self, executor: Executor) -> None:
        ws = await self._ws(executor)
        handle = await executor.start(spec(ws, sh("cat; echo bye"), stdin=b"a\n", interactive=True))
        async with asyncio.timeout(DEADLINE):
            chunks = aiter(executor.logs(handle))
            seen = b""
            while b"a\n" not in seen:  # answered before any more input or the end of it
                seen += await anext(chunks)
            await executor.send(handle, b"b\n")
            while b"b\n" not in seen:
                seen += await anext(chunks)
            await executor.close_stdin(handle)
            seen += b"".join([chunk async for chunk in chunks])
            status = await executor.wait(handle)
        assert seen == b"a\nb\nbye\n"
        assert status.succeeded

    async def test_an_interactive_program_may_end_with_its_input_open(self, executor: Executor) -> None:
        ws = await self._ws(executor)
        handle = await executor.start(spec(ws, sh("echo started; exit 4"), stdin=b"x\n", interactive=True))
        async with asyncio.timeout(DEADLINE):
            output, status = await asyncio.gather(_collect(executor.logs(handle)), executor.wait(handle))
        assert output == b"started\n"
        assert status == ExitStatus(Outcome.EXITED, 4)
        with pytest.raises(Conflict):
            await executor.send(handle, b"too late\n")

    async def test_stop_ends_an_interactive_workload_waiting_for_input(self, executor: Executor) -> None:
        ws = await self._ws(executor)
        handle = await executor.start(spec(ws, sh("echo ready; cat"), stdin=b"", interactive=True))
        async with asyncio.timeout(DEADLINE):
            chunks = aiter(executor.logs(handle))
            await executor.send(handle, b"first\n")
            seen = b""
            while b"first\n" not in seen:
                seen += await anext(chunks)
            await executor.stop(handle, grace_seconds=1)
            status = await executor.wait(handle)
            seen += b"".join([chunk async for chunk in chunks])  # the output ends too
        assert status.outcome is Outcome.STOPPED
        assert seen == b"ready\nfirst\n"


class ExecutorContract(ExecutorWorkspaceContract, ExecutorInteractiveContract):
    """Everything, with workloads that really produce output (the fake and real processes)."""

    async def _ws(self, executor: Executor) -> Workspace:
        return await executor.create_workspace(f"ws-{uuid.uuid4().hex[:8]}")

    async def test_output_is_merged_in_order_and_the_exit_code_is_reported(self, executor: Executor) -> None:
        ws = await self._ws(executor)
        output, status = await run_to_end(executor, spec(ws, sh("echo one; echo two >&2; echo three; exit 3")))
        assert output == b"one\ntwo\nthree\n"
        assert status == ExitStatus(Outcome.EXITED, 3)
        assert not status.succeeded

    async def test_success(self, executor: Executor) -> None:
        ws = await self._ws(executor)
        output, status = await run_to_end(executor, spec(ws, sh("echo done")))
        assert (output, status.outcome, status.exit_code, status.succeeded) == (b"done\n", Outcome.EXITED, 0, True)

    async def test_errexit_stops_at_the_first_failing_command(self, executor: Executor) -> None:
        ws = await self._ws(executor)
        output, status = await run_to_end(executor, spec(ws, sh("echo before\nfalse\necho after")))
        assert output == b"before\n"
        assert status.exit_code == 1

    async def test_the_environment_is_exactly_env_plus_secret_env(self, executor: Executor) -> None:
        ws = await self._ws(executor)
        env = {**BASE_ENV, "CI_COMMIT_SHA": "abc123", "SPACED": "two words"}
        output, status = await run_to_end(executor, spec(ws, ("env",), env=env, secret_env={"TOKEN": "s3cr3t"}))
        assert status.succeeded
        assert sorted(output.decode().splitlines()) == sorted(f"{k}={v}" for k, v in {**env, "TOKEN": "s3cr3t"}.items())

    async def test_secret_env_reaches_the_process_but_no_stored_state(self, executor: Executor) -> None:
        ws = await self._ws(executor)
        secret = "hunter2-" + uuid.uuid4().hex
        handle = await executor.start(spec(ws, sh("printenv TOKEN; sleep 300"), secret_env={"TOKEN": secret}))
        chunks = executor.logs(handle)
        try:
            async with asyncio.timeout(DEADLINE):
                first = await anext(chunks)
            assert first == secret.encode() + b"\n"
            assert secret.encode() not in self.stored_state(executor)
        finally:
            async with asyncio.timeout(DEADLINE):
                await executor.stop(handle, grace_seconds=1)
                rest = await _collect(chunks)
        assert rest == b""

    async def test_a_timeout_kills_the_workload_and_says_so(self, executor: Executor) -> None:
        ws = await self._ws(executor)
        loop = asyncio.get_running_loop()
        began = loop.time()
        output, status = await run_to_end(executor, spec(ws, sh("echo started; sleep 300"), timeout_seconds=0.5))
        assert status.outcome is Outcome.TIMED_OUT
        assert status.reason
        assert output == b"started\n"
        assert loop.time() - began < 15

    async def test_a_workload_ending_before_its_timeout_is_not_timed_out(self, executor: Executor) -> None:
        ws = await self._ws(executor)
        output, status = await run_to_end(executor, spec(ws, sh("echo quick"), timeout_seconds=30))
        assert (output, status) == (b"quick\n", ExitStatus(Outcome.EXITED, 0))

    async def test_stop_ends_the_workload_and_its_logs(self, executor: Executor) -> None:
        ws = await self._ws(executor)
        handle = await executor.start(spec(ws, sh("echo up; sleep 300"), labels={"stop": handle_tag()}))
        chunks = executor.logs(handle)
        async with asyncio.timeout(DEADLINE):
            assert await anext(chunks) == b"up\n"
            await executor.stop(handle, grace_seconds=1)
            assert await _collect(chunks) == b""
            status = await executor.wait(handle)
            await executor.stop(handle)  # idempotent
        assert status.outcome is Outcome.STOPPED
        assert await executor.running(dict(handle.labels)) == []

    async def test_a_missing_program_fails_to_start_with_the_reason(self, executor: Executor) -> None:
        ws = await self._ws(executor)
        output, status = await run_to_end(executor, spec(ws, ("/nonexistent/corral-no-such-tool", "--help")))
        assert status.outcome is Outcome.FAILED_TO_START
        assert "corral-no-such-tool" in status.reason
        assert status.exit_code is None
        assert output == b""

    async def test_a_workspace_is_shared_by_sequential_workloads(self, executor: Executor) -> None:
        ws = await self._ws(executor)
        _, first = await run_to_end(executor, spec(ws, sh("echo built > artifact.txt; echo more >> artifact.txt")))
        output, second = await run_to_end(executor, spec(ws, sh("cat artifact.txt")))
        assert first.succeeded and second.succeeded
        assert output == b"built\nmore\n"
        other = await self._ws(executor)
        output, third = await run_to_end(executor, spec(other, sh("cat artifact.txt")))
        assert third.exit_code != 0  # another workspace does not see it

    async def test_workdir_is_relative_to_the_workspace(self, executor: Executor) -> None:
        ws = await self._ws(executor)
        _, made = await run_to_end(executor, spec(ws, sh("mkdir -p sub/dir")))
        _, wrote = await run_to_end(executor, spec(ws, sh("echo inside > f.txt"), workdir="sub/dir"))
        output, read = await run_to_end(executor, spec(ws, sh("cat sub/dir/f.txt")))
        assert made.succeeded and wrote.succeeded and read.succeeded
        assert output == b"inside\n"

    async def test_stdin_is_written_then_closed(self, executor: Executor) -> None:
        ws = await self._ws(executor)
        output, status = await run_to_end(executor, spec(ws, sh("cat; echo end"), stdin=b'{"prompt": "hi"}\n'))
        assert status.succeeded
        assert output == b'{"prompt": "hi"}\nend\n'

    async def test_pack_then_unpack_round_trips_the_selected_files(self, executor: Executor) -> None:
        source = await self._ws(executor)
        _, made = await run_to_end(executor, spec(source, sh(
            "mkdir -p cache/deep\necho one > cache/deep/one.txt\necho two > top.log\n"
            "echo three > nested.log\necho no > skipped.txt")))
        assert made.succeeded
        data = await _collect(executor.pack(source, ("cache", "*.log")))
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            names = {m.name for m in tar.getmembers() if m.isfile()}
        assert names == {"cache/deep/one.txt", "top.log", "nested.log"}

        target = await self._ws(executor)
        await executor.unpack(target, _stream(data))
        output, status = await run_to_end(executor, spec(target, sh("cat cache/deep/one.txt top.log nested.log")))
        assert status.succeeded
        assert output == b"one\ntwo\nthree\n"
        _, missing = await run_to_end(executor, spec(target, sh("cat skipped.txt")))
        assert missing.exit_code != 0

    async def test_pack_with_recursive_glob(self, executor: Executor) -> None:
        ws = await self._ws(executor)
        _, made = await run_to_end(executor, spec(ws, sh(
            "mkdir -p a/b/c\necho x > a/b/c/report.xml\necho y > a/top.xml\necho z > a/b/note.txt")))
        assert made.succeeded
        data = await _collect(executor.pack(ws, ("**/*.xml",)))
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            names = {m.name for m in tar.getmembers() if m.isfile()}
        assert names == {"a/b/c/report.xml", "a/top.xml"}

    @pytest.mark.parametrize("pattern", ["../outside", "/etc/passwd", ""])
    async def test_pack_refuses_patterns_leaving_the_workspace(self, executor: Executor, pattern: str) -> None:
        ws = await self._ws(executor)
        with pytest.raises(InvalidInput):
            await _collect(executor.pack(ws, (pattern,)))

    @pytest.mark.parametrize("member", [
        _member("../evil.txt"),
        _member("/abs/evil.txt"),
        _member("ok/../../evil.txt"),
        _member("escape", tarfile.SYMTYPE, "/etc"),
        _member("escape2", tarfile.SYMTYPE, "../../.."),
    ], ids=["dotdot", "absolute", "nested-dotdot", "absolute-symlink", "relative-symlink"])
    async def test_unpack_refuses_members_landing_outside(self, executor: Executor, member: tarfile.TarInfo) -> None:
        ws = await self._ws(executor)
        with pytest.raises(InvalidInput):
            await executor.unpack(ws, _stream(_tar([(_member("fine.txt"), b"ok\n"), (member, b"evil\n")])))

    async def test_many_workloads_at_once(self, executor: Executor) -> None:
        ws = await self._ws(executor)
        results = await asyncio.gather(*(run_to_end(executor, spec(ws, sh(f"echo n{i}; exit {i % 3}")))
                                         for i in range(8)))
        assert [(out, status.exit_code) for out, status in results] == [
            (f"n{i}\n".encode(), i % 3) for i in range(8)]


def handle_tag() -> str:
    return uuid.uuid4().hex[:12]

