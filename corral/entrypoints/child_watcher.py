"""Child processes reaped through pidfds on Python 3.11 (what Python 3.12 does by default).

Corral starts a git process for most repository requests. Python 3.11's default child watcher starts a thread
per child to wait for it; with a pidfd the event loop itself hears the exit, which saves a thread start and
a cross-thread wake-up per process. Unlike 3.11's own ``PidfdChildWatcher`` this one is not bound to one
loop (it uses the loop that starts the child), so it is safe in processes that run several loops one after
another (tests, CLI commands).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import warnings
from typing import Any

__all__ = ["install_child_watcher"]

log = logging.getLogger("corral.process")


class _LoopPidfdWatcher(asyncio.AbstractChildWatcher):
    def __enter__(self) -> _LoopPidfdWatcher:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def is_active(self) -> bool:
        return True

    def close(self) -> None:
        return None

    def attach_loop(self, loop: asyncio.AbstractEventLoop | None) -> None:
        return None

    def add_child_handler(self, pid: int, callback: Any, *args: Any) -> None:  # type: ignore[override]
        loop = asyncio.get_running_loop()
        pidfd = os.pidfd_open(pid)
        loop._add_reader(pidfd, self._do_wait, pid, pidfd, callback, args)  # type: ignore[attr-defined]

    def _do_wait(self, pid: int, pidfd: int, callback: Any, args: tuple[Any, ...]) -> None:
        asyncio.get_running_loop()._remove_reader(pidfd)  # type: ignore[attr-defined]
        try:
            _, status = os.waitpid(pid, 0)
        except ChildProcessError:
            returncode = 255  # reaped elsewhere; asyncio reports the same
            log.warning("child process %s was already reaped; its exit status is unknown", pid)
        else:
            returncode = os.waitstatus_to_exitcode(status)
        os.close(pidfd)
        callback(pid, returncode, *args)

    def remove_child_handler(self, pid: int) -> bool:
        return True


def install_child_watcher() -> None:
    """On Python 3.11 on Linux with pidfds, reap asyncio's child processes through pidfds (idempotent)."""
    if sys.version_info >= (3, 12) or not hasattr(os, "pidfd_open") or sys.platform != "linux":
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        if isinstance(asyncio.get_event_loop_policy().get_child_watcher(), _LoopPidfdWatcher):
            return
        try:
            os.close(os.pidfd_open(os.getpid()))
        except OSError:
            return  # kernel without pidfds (older than 5.3) or a sandbox that forbids them
        asyncio.set_child_watcher(_LoopPidfdWatcher())
