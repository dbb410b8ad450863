"""The local executor passes the Executor contract with real processes, and keeps its process-group promises."""

from __future__ import annotations

import asyncio
import io
import json
import os
import resource
import tarfile
from pathlib import Path

import pytest

from corral.adapters.local_executor import LocalExecutor
from corral.adapters.process_groups import proc_stat
from corral.contracts.executor import ExecutorContract, run_to_end, sh, spec
from corral.core.errors import InvalidInput
from corral.core.workloads.model import Outcome


def _alive(pid: int) -> bool:
    stat = proc_stat(pid)
    return stat is not None and stat.state not in ("Z", "X")


async def _until(predicate, seconds: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not predicate():
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


class TestLocalExecutor(ExecutorContract):
    @pytest.fixture
    def executor(self, tmp_path: Path) -> LocalExecutor:
        return LocalExecutor(tmp_path / "executor", grace_seconds=1.0)

    def restarted(self, executor: LocalExecutor) -> LocalExecutor:  # type: ignore[override]
        return LocalExecutor(executor.root_dir, grace_seconds=1.0)

    def stored_state(self, executor: LocalExecutor) -> bytes:  # type: ignore[override]
        # every file the executor wrote itself (workspaces hold only what the workloads wrote)
        return b"".join(p.read_bytes() for p in executor.root_dir.rglob("*")
                        if p.is_file() and "workspaces" not in p.relative_to(executor.root_dir).parts)


@pytest.fixture
def executor(tmp_path: Path) -> LocalExecutor:
    return LocalExecutor(tmp_path / "executor", grace_seconds=1.0)


async def _first_line(executor: LocalExecutor, handle) -> tuple[bytes, object]:  # type: ignore[no-untyped-def]
    logs = executor.logs(handle)
    async with asyncio.timeout(10):
        line = await anext(logs)
    return line, logs


async def test_stop_kills_background_children_of_the_step(executor: LocalExecutor) -> None:
    ws = await executor.create_workspace("bg")
    handle = await executor.start(spec(ws, sh("sleep 1000 & echo $!; sleep 1000")))
    line, _logs = await _first_line(executor, handle)
    child = int(line.decode().strip())
    assert _alive(child)
    async with asyncio.timeout(15):
        await executor.stop(handle, grace_seconds=1)
        status = await executor.wait(handle)
    assert status.outcome is Outcome.STOPPED
    assert not _alive(child)
    assert executor.group_members(handle) == []


async def test_a_step_that_ignores_sigterm_is_killed_after_the_grace(executor: LocalExecutor) -> None:
    ws = await executor.create_workspace("stubborn")
    handle = await executor.start(spec(ws, sh("trap '' TERM; echo ready; while true; do sleep 0.05; done")))
    await _first_line(executor, handle)
    loop = asyncio.get_running_loop()
    began = loop.time()
    async with asyncio.timeout(15):
        await executor.stop(handle, grace_seconds=0.5)
    assert loop.time() - began >= 0.4
    assert executor.group_members(handle) == []
    assert (await executor.wait(handle)).outcome is Outcome.STOPPED


async def test_what_a_finished_step_left_running_is_ended_too(executor: LocalExecutor) -> None:
    ws = await executor.create_workspace("leftover")
    output, status = await run_to_end(executor, spec(ws, sh("sleep 1000 & echo $!")))
    child = int(output.decode().strip())
    assert status.succeeded
    assert await _until(lambda: not _alive(child))


async def test_timeout_kills_the_whole_group(executor: LocalExecutor) -> None:
    ws = await executor.create_workspace("timeout")
    output, status = await run_to_end(executor, spec(ws, sh("sleep 1000 & echo $!; sleep 1000"), timeout_seconds=0.5))
    assert status.outcome is Outcome.TIMED_OUT
    assert not _alive(int(output.decode().strip()))


async def test_a_signal_exit_is_reported_as_a_shell_does(executor: LocalExecutor) -> None:
    ws = await executor.create_workspace("signal")
    _, status = await run_to_end(executor, spec(ws, sh("kill -KILL $$")))
    assert (status.outcome, status.exit_code) == (Outcome.EXITED, 137)
    assert "SIGKILL" in status.reason


async def test_large_output_streams_with_bounded_memory(executor: LocalExecutor) -> None:
    ws = await executor.create_workspace("big")
    size = 1024 * 1024 * 1024  # 1 GiB, as a runaway step might print
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB
    handle = await executor.start(spec(ws, ("head", "-c", str(size), "/dev/zero")))
    total, largest = 0, 0
    async with asyncio.timeout(120):
        async for chunk in executor.logs(handle):
            total += len(chunk)
            largest = max(largest, len(chunk))
        status = await executor.wait(handle)
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert status.succeeded
    assert total == size
    assert largest <= 256 * 1024
    assert grown_mib < 64, f"peak memory grew by {grown_mib:.0f} MiB while streaming {size >> 20} MiB"


async def test_state_files_are_private_and_hold_no_environment(executor: LocalExecutor) -> None:
    ws = await executor.create_workspace("state")
    handle = await executor.start(spec(ws, sh("echo up; sleep 1000"), env={"PATH": "/usr/bin:/bin", "PLAIN": "p1"},
                                       secret_env={"TOKEN": "tok-123"}, labels={"pipeline": "7"}))
    await _first_line(executor, handle)
    try:
        (state_file,) = (executor.root_dir / "workloads").glob("*.json")
        assert state_file.stat().st_mode & 0o777 == 0o600
        state = json.loads(state_file.read_text())
        assert state["labels"] == {"pipeline": "7"}
        assert state["image"] == "alpine:3.20"
        assert "tok-123" not in state_file.read_text() and "p1" not in state_file.read_text()
    finally:
        await executor.stop(handle, grace_seconds=0.5)
    assert list((executor.root_dir / "workloads").glob("*.json")) == []


async def test_path_and_home_get_defaults_only_when_missing(executor: LocalExecutor) -> None:
    ws = await executor.create_workspace("defaults")
    output, status = await run_to_end(executor, spec(ws, ("/usr/bin/env",), env={"ONLY": "1"}))
    assert status.succeeded
    env = dict(line.split("=", 1) for line in output.decode().splitlines())
    assert env == {"ONLY": "1", "PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": ws.ref}


async def test_a_stale_state_file_is_dropped_and_a_reused_pid_is_not_ours(executor: LocalExecutor) -> None:
    state_dir = executor.root_dir / "workloads"
    me = proc_stat(os.getpid())
    assert me is not None
    # our own pid with another start time: a pid reused by an unrelated process must never be signalled
    (state_dir / ("a" * 32 + ".json")).write_text(json.dumps(
        {"id": "a" * 32, "name": "ghost", "labels": {}, "pgid": os.getpid(), "leader_start_ticks": me.start_ticks + 1}))
    (state_dir / ("b" * 32 + ".json")).write_text(json.dumps(
        {"id": "b" * 32, "name": "dead", "labels": {}, "pgid": 2**22 + 1, "leader_start_ticks": 5}))
    assert await executor.running({}) == []
    assert list(state_dir.glob("*.json")) == []


async def test_a_crashed_servers_workload_is_found_and_ended_by_pid(tmp_path: Path) -> None:
    first = LocalExecutor(tmp_path / "ex", grace_seconds=0.5)
    ws = await first.create_workspace("crash")
    handle = await first.start(spec(ws, sh("sleep 1000 & echo $!; sleep 1000"), labels={"pipeline": "9"}))
    line, _ = await _first_line(first, handle)
    child = int(line.decode().strip())
    second = LocalExecutor(tmp_path / "ex", grace_seconds=0.5)  # "the server restarted"
    (found,) = await second.running({"pipeline": "9"})
    async with asyncio.timeout(15):
        await second.stop(found, grace_seconds=0.5)
    assert not _alive(child)
    assert second.group_members(found) == []
    await first.stop(handle)


async def test_unpack_does_not_follow_a_symlink_planted_in_the_workspace(
        executor: LocalExecutor, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    ws = await executor.create_workspace("planted")
    os.symlink(outside, Path(ws.ref) / "link")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("link/evil.txt")
        info.size = 4
        tar.addfile(info, io.BytesIO(b"evil"))

    async def chunks():  # type: ignore[no-untyped-def]
        yield buffer.getvalue()

    with pytest.raises(InvalidInput):
        await executor.unpack(ws, chunks())
    assert list(outside.iterdir()) == []


async def test_pack_stores_symlinks_without_following_them(executor: LocalExecutor, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("do not pack")
    ws = await executor.create_workspace("links")
    os.symlink(secret, Path(ws.ref) / "link.txt")
    data = b"".join([c async for c in executor.pack(ws, ("*.txt",))])
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        (member,) = tar.getmembers()
    assert member.issym() and member.linkname == str(secret)
    assert b"do not pack" not in data


async def test_finished_workloads_are_forgotten_and_unread_pipes_closed(
        executor: LocalExecutor, monkeypatch: pytest.MonkeyPatch) -> None:
    import corral.adapters.local_executor as module

    monkeypatch.setattr(module, "_KEEP_FINISHED", 2)
    ws = await executor.create_workspace("many")
    fds_before = len(os.listdir("/proc/self/fd"))
    for i in range(8):
        handle = await executor.start(spec(ws, sh(f"echo never read {i}")))
        async with asyncio.timeout(10):
            assert (await executor.wait(handle)).succeeded  # nobody reads its logs
    assert len(executor._runs) <= 3
    assert len(os.listdir("/proc/self/fd")) <= fds_before + 4
