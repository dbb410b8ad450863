"""What a workload is, what it asks for, and how it ended."""

from __future__ import annotations

import enum
from collections.abc import Mapping

import attrs

__all__ = ["ExitStatus", "Outcome", "Resources", "Sandbox", "WorkloadHandle", "WorkloadSpec", "Workspace"]


@attrs.frozen
class Workspace:
    """A place several workloads share files in: a directory (local) or a volume (Kubernetes).

    ``key`` is the caller's stable name for it (e.g. ``pipeline-<id>-<workflow>``); ``ref`` is the
    executor's own reference (a path, a claim name), opaque to callers.
    """

    key: str
    ref: str


@attrs.frozen
class Resources:
    """Requests and limits as Kubernetes spells them (``"500m"``, ``"1Gi"``); the local executor ignores them."""

    cpu_request: str | None = None
    cpu_limit: str | None = None
    memory_request: str | None = None
    memory_limit: str | None = None


@attrs.frozen
class Sandbox:
    """Confine a workload that runs code nobody reviewed (an agent): as the non-root user ``user_id``, with a
    read-only root filesystem (writable: the workspace and a scratch ``/tmp``), no privilege escalation, no
    capabilities, and network egress only to the destinations the executor allows (Corral, the model API, DNS).
    ``home`` is ``$HOME``, a directory of the workspace (relative to its root), so the program's own state (e.g.
    its conversation, for a resume) lives as long as the workspace. The Kubernetes executor enforces it
    (securityContext, a NetworkPolicy); the local executor cannot confine a process and runs it as the server's
    user (trusted code only)."""

    user_id: int = 1000
    home: str = ".home"


@attrs.frozen(kw_only=True)
class WorkloadSpec:
    """One process (local) or one pod (Kubernetes) to run to completion.

    ``argv`` is run as given (a pipeline step passes ``["/bin/sh", "-e", "-c", script]``) in
    ``workspace`` under ``workdir`` (relative to the workspace root). ``env`` is the plain environment;
    ``secret_env`` holds values that must never be written anywhere in plain text by the executor (the
    Kubernetes executor puts them in a Secret; both merge them into the environment of the process).
    ``image`` is what the Kubernetes executor pulls; the local executor records it and runs on the host.
    ``labels`` identify the workload for listing and cleanup (e.g. after a server restart).
    """

    name: str
    argv: tuple[str, ...]
    workspace: Workspace
    workdir: str = ""
    env: Mapping[str, str] = attrs.field(factory=dict)
    secret_env: Mapping[str, str] = attrs.field(factory=dict, repr=False)
    image: str | None = None
    timeout_seconds: float | None = None
    labels: Mapping[str, str] = attrs.field(factory=dict)
    resources: Resources | None = None
    stdin: bytes | None = None  # written to the process's stdin, then closed (agent prompts)
    # True: stdin stays open after ``stdin`` (if any) was written; more comes with ``Executor.send`` and
    # ``Executor.close_stdin`` ends it (agent sessions taking follow-up messages)
    interactive: bool = False
    sandbox: Sandbox | None = None


@attrs.frozen
class WorkloadHandle:
    """A started workload; ``ref`` is the executor's own id (a process group id, a pod name)."""

    name: str
    ref: str
    labels: Mapping[str, str] = attrs.field(factory=dict)


class Outcome(enum.StrEnum):
    """How a workload ended."""

    EXITED = "exited"  # the process ended by itself: see exit_code
    TIMED_OUT = "timed_out"  # killed after timeout_seconds
    STOPPED = "stopped"  # killed on request (cancel)
    FAILED_TO_START = "failed_to_start"  # never ran: image pull failed, unschedulable, no such binary...
    LOST = "lost"  # the executor lost track of it (node gone, pod deleted from outside)


@attrs.frozen
class ExitStatus:
    """The end of a workload: ``exit_code`` is set when the process ran and exited; ``reason`` says why in
    words a user can act on (e.g. ``"ImagePullBackOff: image alpine:nope not found"``)."""

    outcome: Outcome
    exit_code: int | None = None
    reason: str = ""

    @property
    def succeeded(self) -> bool:
        return self.outcome is Outcome.EXITED and self.exit_code == 0
