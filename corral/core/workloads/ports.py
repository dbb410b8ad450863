"""The executor port: pipeline steps and agent sessions both run through it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Protocol

from corral.core.workloads.model import ExitStatus, WorkloadHandle, WorkloadSpec, Workspace

__all__ = ["Executor"]


class Executor(Protocol):
    """Runs workloads to completion in shared workspaces.

    Behaviour every implementation keeps (``corral.contracts.executor.ExecutorContract``):

    - ``create_workspace(key)`` makes an empty workspace (idempotent for the same key: the same workspace);
      ``delete_workspace`` removes it and everything in it (a missing one is fine).
    - ``start(spec)`` returns once the workload is started (or has failed to start: then ``wait`` answers
      ``FAILED_TO_START`` with the reason at once; ``start`` itself raises only for a malformed spec).
      Names are unique among running workloads of this executor.
    - ``logs(handle)`` yields the workload's output (stdout and stderr merged, in order) as chunks of bytes,
      from the beginning, and ends when the workload has ended and all output was yielded. It may be called
      once per handle. Memory is bounded whatever the output's size.
    - ``wait(handle)`` returns how it ended: ``EXITED`` with the exit code, ``TIMED_OUT`` after
      ``spec.timeout_seconds`` (the workload is killed), ``STOPPED`` after ``stop``, ``FAILED_TO_START`` (with
      the reason: a missing image or binary, an unschedulable pod: never a hang until the timeout), ``LOST``.
    - ``stop(handle, grace_seconds)`` ends the workload and everything it started (its whole process group /
      its pod), SIGTERM first, SIGKILL after the grace; idempotent; returns when nothing is left running.
    - ``pack(workspace, paths)`` yields a tar stream (uncompressed) of the files matching ``paths`` (globs
      relative to the workspace root, ``**`` included; directories recursively), for caches and artifacts;
      ``unpack(workspace, chunks)`` extracts such a stream into the workspace (refusing members that would
      land outside it). Both work while no workload uses the files, with bounded memory.
    - ``send(handle, data)`` writes to the stdin of a workload started with ``spec.interactive`` (after
      ``spec.stdin``, in order); ``close_stdin(handle)`` closes it (idempotent). ``send`` on a workload that is
      not interactive, whose stdin was closed or that has ended raises Conflict (Unavailable when the stream to
      the workload is lost for good). The output of an interactive workload comes through ``logs`` while its
      stdin is still open (a line answered is yielded before the next is sent): the local executor through
      pipes, the Kubernetes executor through the pod's attach WebSocket. ``spec.sandbox`` confines the workload
      where the runtime can (Kubernetes: non-root, read-only root filesystem, a NetworkPolicy of its own).
    - ``running(labels)`` lists workloads started by this executor (also by an earlier process of this
      server) whose labels include ``labels``: used to clean up after a restart.
    """

    async def create_workspace(self, key: str) -> Workspace: ...

    async def delete_workspace(self, workspace: Workspace) -> None: ...

    async def start(self, spec: WorkloadSpec) -> WorkloadHandle: ...

    def logs(self, handle: WorkloadHandle) -> AsyncIterator[bytes]: ...

    async def wait(self, handle: WorkloadHandle) -> ExitStatus: ...

    async def stop(self, handle: WorkloadHandle, grace_seconds: float = 5.0) -> None: ...

    def pack(self, workspace: Workspace, paths: tuple[str, ...]) -> AsyncIterator[bytes]: ...

    async def unpack(self, workspace: Workspace, chunks: AsyncIterator[bytes]) -> None: ...

    async def running(self, labels: Mapping[str, str]) -> list[WorkloadHandle]: ...

    async def send(self, handle: WorkloadHandle, data: bytes) -> None: ...

    async def close_stdin(self, handle: WorkloadHandle) -> None: ...
