"""The local executor: workloads as process groups on this machine (the embedded default; trusted code only).

Layout under ``root_dir``: ``workspaces/<key slug>/`` (one directory per workspace) and
``workloads/<id>.json`` (one small state file per running workload: id, name, labels, pgid, the leader's
start time; never its environment), so that a new server process finds and ends the leftovers of a crashed
one (``running`` + ``stop``).

What a workload gets:

- ``argv`` run directly (no shell unless the argv is one), in its own session and process group, with cwd
  ``workspace/workdir`` (created if missing; a workdir leaving the workspace is refused);
- exactly ``env`` + ``secret_env`` as its environment, plus ``PATH=/usr/local/bin:/usr/bin:/bin`` and
  ``HOME=<workspace root>`` only when the spec sets neither (a process without them misbehaves);
- stdout and stderr merged into one pipe; stdin is ``spec.stdin`` (then closed) or /dev/null; with
  ``spec.interactive`` it stays open after ``spec.stdin`` for ``send`` until ``close_stdin``.

``image`` is recorded, not pulled: the workload runs on the host with the server's user and rights (the
caller says so in the step log). Resources are ignored. When the main process ends, whatever it left
running in its group is ended too (so nothing outlives a step); a process that escapes with its own
``setsid`` is not tracked: this executor is for trusted code only.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import signal
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import attrs

from corral.adapters.process_groups import end_group, group_members, proc_stat, same_group_owner
from corral.adapters.tar_stream import check_patterns, pack_directory, unpack_directory
from corral.core.errors import Conflict, InvalidInput, NotFound
from corral.core.workloads.model import ExitStatus, Outcome, WorkloadHandle, WorkloadSpec, Workspace

__all__ = ["LocalExecutor"]

log = logging.getLogger("corral.executor.local")

_READ_CHUNK = 64 * 1024
_KEEP_FINISHED = 256  # finished workloads remembered for late wait()/logs() calls
DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"


@attrs.define(eq=False)
class _Run:
    id: str
    spec: WorkloadSpec
    proc: asyncio.subprocess.Process | None
    status: asyncio.Future[ExitStatus]
    exited: asyncio.Future[int] | None = None
    transport: asyncio.SubprocessTransport | None = None
    stop_requested: asyncio.Event = attrs.field(factory=asyncio.Event)
    stop_grace: float = 5.0
    logs_taken: bool = False
    supervisor: asyncio.Task[None] | None = None
    stdin_writer: asyncio.Task[None] | None = None
    stdin_lock: asyncio.Lock = attrs.field(factory=asyncio.Lock)  # sends keep their order
    stdin_closed: bool = False


class _ExitAwareProtocol(asyncio.subprocess.SubprocessStreamProtocol):
    """Says when the main process exits, even while a process it left behind still holds the output pipe
    (``Process.wait()`` also waits for the pipes to close)."""

    def __init__(self, limit: int, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(limit=limit, loop=loop)
        self.exited: asyncio.Future[int] = loop.create_future()

    def process_exited(self) -> None:
        transport = self._transport  # type: ignore[attr-defined]
        code = transport.get_returncode() if transport is not None else None
        super().process_exited()  # may close the transport
        if not self.exited.done():
            self.exited.set_result(code if code is not None else -9)


def _slug(key: str) -> str:
    """A directory name for a workspace key: readable, and unique thanks to a hash of the full key."""
    readable = re.sub(r"[^A-Za-z0-9._-]+", "-", key).strip("-.")[:60] or "ws"
    return f"{readable}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


def _exit_status(returncode: int) -> ExitStatus:
    if returncode < 0:  # killed by a signal: report it the way a shell does
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = str(-returncode)
        return ExitStatus(Outcome.EXITED, 128 - returncode, f"killed by signal {name}")
    return ExitStatus(Outcome.EXITED, returncode)


@attrs.define
class LocalExecutor:
    """Runs workloads as local process groups under ``root_dir`` (see the module docstring)."""

    root_dir: Path = attrs.field(converter=Path)
    grace_seconds: float = 5.0  # SIGTERM → SIGKILL delay on timeout and for leftovers of a finished workload
    _runs: dict[str, _Run] = attrs.field(factory=dict, init=False)

    def __attrs_post_init__(self) -> None:
        self._workspaces.mkdir(parents=True, exist_ok=True)
        self._state_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self._state_dir, 0o700)

    @property
    def _workspaces(self) -> Path:
        return self.root_dir / "workspaces"

    @property
    def _state_dir(self) -> Path:
        return self.root_dir / "workloads"

    # ------------------------------------------------------------------------------------------- workspaces

    async def create_workspace(self, key: str) -> Workspace:
        if not key:
            raise InvalidInput("a workspace key must not be empty", field="key")
        path = self._workspaces / _slug(key)
        path.mkdir(parents=True, exist_ok=True)
        return Workspace(key=key, ref=str(path.resolve()))

    def _workspace_root(self, workspace: Workspace) -> Path:
        root = Path(workspace.ref).resolve()
        if root.parent != self._workspaces.resolve():
            raise InvalidInput(f"workspace {workspace.key!r} is not one of this executor's", field="workspace")
        return root

    async def delete_workspace(self, workspace: Workspace) -> None:
        root = self._workspace_root(workspace)
        await asyncio.to_thread(shutil.rmtree, root, ignore_errors=True)

    # -------------------------------------------------------------------------------------------- workloads

    def _cwd(self, spec: WorkloadSpec) -> Path:
        root = self._workspace_root(spec.workspace)
        cwd = (root / spec.workdir).resolve()
        if not cwd.is_relative_to(root):
            raise InvalidInput(f"workdir {spec.workdir!r} leaves the workspace", field="workdir")
        return cwd

    @staticmethod
    def _environment(spec: WorkloadSpec, root: Path) -> dict[str, str]:
        env = {**spec.env, **spec.secret_env}
        env.setdefault("PATH", DEFAULT_PATH)
        env.setdefault("HOME", str(root))
        return env

    async def start(self, spec: WorkloadSpec) -> WorkloadHandle:
        if not spec.argv or not spec.argv[0]:
            raise InvalidInput("a workload needs a program to run", field="argv")
        if not spec.name:
            raise InvalidInput("a workload needs a name", field="name")
        if any(run.spec.name == spec.name and not run.status.done() for run in self._runs.values()):
            raise Conflict(f"a workload named {spec.name!r} is already running")
        cwd = self._cwd(spec)
        cwd.mkdir(parents=True, exist_ok=True)
        run_id = uuid.uuid4().hex
        status: asyncio.Future[ExitStatus] = asyncio.get_running_loop().create_future()
        loop = asyncio.get_running_loop()
        try:
            transport, protocol = await loop.subprocess_exec(
                lambda: _ExitAwareProtocol(_READ_CHUNK, loop),
                *spec.argv, cwd=cwd, env=self._environment(spec, self._workspace_root(spec.workspace)),
                stdin=asyncio.subprocess.PIPE if spec.stdin is not None or spec.interactive
                else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, start_new_session=True,
            )
        except OSError as exc:
            status.set_result(ExitStatus(Outcome.FAILED_TO_START, None,
                                         f"cannot run {spec.argv[0]!r}: {exc.strerror or exc}"))
            self._remember(_Run(run_id, spec, None, status))
            return WorkloadHandle(spec.name, run_id, dict(spec.labels))
        proc = asyncio.subprocess.Process(transport, protocol, loop)
        run = _Run(run_id, spec, proc, status, protocol.exited, transport)
        self._remember(run)
        self._write_state(run)
        if spec.stdin is not None and not spec.interactive:
            run.stdin_writer = asyncio.create_task(self._feed_stdin(proc, spec.stdin))
        elif spec.stdin and proc.stdin is not None:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                proc.stdin.write(spec.stdin)  # buffered by the transport: before any send()
        run.supervisor = asyncio.create_task(self._supervise(run), name=f"workload {spec.name}")
        return WorkloadHandle(spec.name, run_id, dict(spec.labels))

    def _remember(self, run: _Run) -> None:
        finished = [r for r in self._runs.values() if r.status.done()]
        for old in finished[: max(0, len(finished) - _KEEP_FINISHED)]:
            if old.transport is not None:
                old.transport.close()  # output nobody read: release the pipe
            del self._runs[old.id]
        self._runs[run.id] = run

    @staticmethod
    async def _feed_stdin(proc: asyncio.subprocess.Process, data: bytes) -> None:
        assert proc.stdin is not None
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            proc.stdin.write(data)
            await proc.stdin.drain()
        proc.stdin.close()

    def _write_state(self, run: _Run) -> None:
        assert run.proc is not None
        stat = proc_stat(run.proc.pid)
        state = {
            "id": run.id, "name": run.spec.name, "labels": dict(run.spec.labels), "image": run.spec.image,
            "pgid": run.proc.pid, "leader_start_ticks": stat.start_ticks if stat else None,
            "started_at": time.time(), "workspace": run.spec.workspace.key,
        }  # never the environment: secret_env must not reach a file
        path = self._state_dir / f"{run.id}.json"
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(state, fh)
        tmp.replace(path)

    async def _supervise(self, run: _Run) -> None:
        assert run.proc is not None
        proc, timeout = run.proc, run.spec.timeout_seconds or None  # 0: no timeout, as for Kubernetes
        pgid = proc.pid
        assert run.exited is not None
        exited = run.exited
        stopping = asyncio.ensure_future(run.stop_requested.wait())
        result: ExitStatus | None = None
        try:
            racing: set[asyncio.Future[Any]] = {exited, stopping}
            await asyncio.wait(racing, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            if exited.done():
                result = _exit_status(exited.result())
                await end_group(pgid, self.grace_seconds)  # what it left behind in its group
            elif stopping.done():
                await end_group(pgid, run.stop_grace)
                result = ExitStatus(Outcome.STOPPED, None, "stopped on request")
            else:
                await end_group(pgid, self.grace_seconds)
                result = ExitStatus(Outcome.TIMED_OUT, None, f"timed out after {timeout:g} s")
            await exited
            # not proc.wait(): it also waits for the output pipe, which a slow log reader may still drain
        finally:
            stopping.cancel()
            if result is None:  # cancelled (executor shutting down): leave nothing behind
                await asyncio.shield(end_group(pgid, 0))
                result = ExitStatus(Outcome.LOST, None, "the executor shut down")
            with contextlib.suppress(FileNotFoundError):
                (self._state_dir / f"{run.id}.json").unlink()
            if not run.status.done():
                run.status.set_result(result)

    def _run(self, handle: WorkloadHandle) -> _Run | None:
        return self._runs.get(handle.ref)

    async def logs(self, handle: WorkloadHandle) -> AsyncIterator[bytes]:
        run = self._run(handle)
        if run is None:
            raise NotFound(f"no workload {handle.name!r} started by this executor")
        if run.logs_taken:
            raise Conflict(f"the logs of workload {handle.name!r} were already taken")
        run.logs_taken = True
        if run.proc is None or run.proc.stdout is None:
            return
        stdout = run.proc.stdout
        while chunk := await stdout.read(_READ_CHUNK):
            yield chunk

    async def wait(self, handle: WorkloadHandle) -> ExitStatus:
        run = self._run(handle)
        if run is not None:
            return await asyncio.shield(run.status)
        state = self._read_state(handle.ref)
        if state is None:
            raise NotFound(f"no workload {handle.name!r} started by this executor")
        # a leftover of an earlier server process: all we can do is watch its group vanish
        while True:
            if not self._alive(state):
                break
            await asyncio.sleep(0.5)
        return ExitStatus(Outcome.LOST, None, "started by an earlier server process")

    async def stop(self, handle: WorkloadHandle, grace_seconds: float = 5.0) -> None:
        run = self._run(handle)
        if run is not None:
            if not run.status.done():
                run.stop_grace = grace_seconds
                run.stop_requested.set()
                await asyncio.shield(run.status)
            return
        state = self._read_state(handle.ref)
        if state is None:
            return  # already gone: stop is idempotent
        if self._alive(state):
            await end_group(int(state["pgid"]), grace_seconds)
        with contextlib.suppress(FileNotFoundError):
            (self._state_dir / f"{handle.ref}.json").unlink()

    async def send(self, handle: WorkloadHandle, data: bytes) -> None:
        run = self._run(handle)
        if run is None:
            raise NotFound(f"no workload {handle.name!r} started by this executor")
        if not run.spec.interactive or run.proc is None or run.proc.stdin is None:
            raise Conflict(f"workload {handle.name!r} does not take input")
        async with run.stdin_lock:
            if run.stdin_closed or run.status.done():
                raise Conflict(f"the input of workload {handle.name!r} is closed")
            try:
                run.proc.stdin.write(data)
                await run.proc.stdin.drain()
            except (BrokenPipeError, ConnectionResetError) as exc:
                raise Conflict(f"workload {handle.name!r} no longer reads its input") from exc

    async def close_stdin(self, handle: WorkloadHandle) -> None:
        run = self._run(handle)
        if run is None or run.proc is None or run.proc.stdin is None:
            return
        async with run.stdin_lock:
            if not run.stdin_closed:
                run.stdin_closed = True
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    run.proc.stdin.close()

    # --------------------------------------------------------------------------------------------- restarts

    def _read_state(self, run_id: str) -> dict[str, Any] | None:
        if not re.fullmatch(r"[0-9a-f]{32}", run_id):
            return None
        try:
            data = json.loads((self._state_dir / f"{run_id}.json").read_text())
        except (FileNotFoundError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    @staticmethod
    def _alive(state: Mapping[str, Any]) -> bool:
        ticks = state.get("leader_start_ticks")
        pgid = state.get("pgid")
        if not isinstance(pgid, int) or not isinstance(ticks, int):
            return False
        return same_group_owner(pgid, ticks)

    async def running(self, labels: Mapping[str, str]) -> list[WorkloadHandle]:
        found: list[WorkloadHandle] = []
        for path in sorted(self._state_dir.glob("*.json")):
            state = self._read_state(path.stem)
            if state is None:
                continue
            run = self._runs.get(path.stem)
            alive = (not run.status.done()) if run is not None else self._alive(state)
            if not alive:
                if run is None:  # a crashed process's workload that ended since: forget it
                    with contextlib.suppress(FileNotFoundError):
                        path.unlink()
                continue
            run_labels = {str(k): str(v) for k, v in (state.get("labels") or {}).items()}
            if all(run_labels.get(k) == v for k, v in labels.items()):
                found.append(WorkloadHandle(str(state.get("name", "")), path.stem, run_labels))
        return found

    # ---------------------------------------------------------------------------------------- pack / unpack

    async def pack(self, workspace: Workspace, paths: tuple[str, ...]) -> AsyncIterator[bytes]:
        root = self._workspace_root(workspace)
        check_patterns(paths)
        async for chunk in pack_directory(root, paths):
            yield chunk

    async def unpack(self, workspace: Workspace, chunks: AsyncIterator[bytes]) -> None:
        await unpack_directory(self._workspace_root(workspace), chunks)

    async def aclose(self) -> None:
        """End every workload this instance started (server shutdown)."""
        for run in list(self._runs.values()):
            if run.supervisor is not None and not run.status.done():
                run.stop_grace = 0.5
                run.stop_requested.set()
        await asyncio.gather(*(asyncio.shield(run.status) for run in self._runs.values()), return_exceptions=True)

    def group_members(self, handle: WorkloadHandle) -> list[int]:
        """Pids still alive in the workload's process group (for diagnostics and tests)."""
        run = self._run(handle)
        pgid = run.proc.pid if run is not None and run.proc is not None else None
        if pgid is None:
            state = self._read_state(handle.ref)
            pgid = int(state["pgid"]) if state else None
        return [m.pid for m in group_members(pgid)] if pgid is not None else []
