"""Child processes of the test services: free ports, private directories, spawning and stopping.

Children run in their own process group (a Ctrl-C in the terminal does not race our own
shutdown) and get SIGKILL from the kernel if the test process dies without cleaning up
(``PR_SET_PDEATHSIG``). Start services from the main thread: the parent-death signal is
tied to the thread that spawned the child.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any


class ServiceError(RuntimeError):
    """A service could not be started; the message says why (and where its log is)."""

_live: set[subprocess.Popen[bytes]] = set()
_live_lock = threading.Lock()
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child between fork and exec
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (bind port 0 and read it back)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct free ports (all sockets held open while choosing, so no duplicates)."""
    socks = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((host, 0))
            socks.append(sock)
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for sock in socks:
            sock.close()


_SHM = Path("/dev/shm")
_SHM_MIN_FREE = 2 * 1024**3


def _services_root() -> Path:
    """Where service directories go: $TEST_SERVICES_TMPDIR, else /dev/shm, else the temp directory.

    Memory beats disk by far here: CREATE DATABASE takes ~0.1 s on tmpfs and ~2 s on this
    machine's disk even with fsync off, and every ``db_dsn`` test creates one.
    """
    override = os.environ.get("TEST_SERVICES_TMPDIR")
    if override:
        return Path(override)
    try:
        stat = os.statvfs(_SHM)
        if os.access(_SHM, os.W_OK) and stat.f_bavail * stat.f_frsize >= _SHM_MIN_FREE:
            return _SHM
    except OSError:
        pass
    return Path(tempfile.gettempdir())


def _sweep_orphans(name: str) -> None:
    """Remove directories of earlier runs whose test process died without cleaning up (``kill -9``)."""
    for path in _services_root().glob(f"corral-{name}-*"):
        try:
            owner = int((path / ".owner-pid").read_text())
        except (OSError, ValueError):
            continue  # not ours, or still being created
        try:
            os.kill(owner, 0)
        except ProcessLookupError:
            remove_dir(path)
        except PermissionError:
            pass  # alive, owned by another user


def make_service_dir(name: str) -> Path:
    """A private directory for one service, traversable by other users (the ``postgres`` user)."""
    _sweep_orphans(name)
    path = _services_root() / f"corral-{name}-{uuid.uuid4().hex[:8]}"
    path.mkdir(mode=0o755)
    path.chmod(0o755)
    (path / ".owner-pid").write_text(str(os.getpid()))
    return path


def spawn(
    args: Sequence[str],
    *,
    log_path: Path,
    env: dict[str, str] | None = None,
    user: str | None = None,
    cwd: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start a child in its own process group, its output appended to ``log_path``."""
    kwargs: dict[str, Any] = {}
    if user is not None:
        kwargs.update(user=user, group=pwd.getpwnam(user).pw_gid, extra_groups=[])
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            list(args),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,
            preexec_fn=_die_with_parent,
            **kwargs,
        )
    with _live_lock:
        _live.add(proc)
    return proc


def terminate(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
    """Send ``sig`` to the child's process group, wait, then SIGKILL the group if it lingers."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout)
    # Always sweep the group: helpers of the leader may still run after it exited.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(5)
    with _live_lock:
        _live.discard(proc)


def stop_all() -> None:
    """Kill every child still registered (safety net at interpreter exit)."""
    with _live_lock:
        procs = list(_live)
    for proc in procs:
        terminate(proc, signal.SIGKILL, timeout=2)


atexit.register(stop_all)


def log_tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(text[-lines:])


def wait_until(
    probe: Callable[[], bool], proc: subprocess.Popen[bytes], *, what: str, log: Path, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise ServiceError(f"{what} exited with code {proc.returncode} while starting; log {log}:\n{log_tail(log)}")
        try:
            if probe():
                return
        except Exception:
            pass
        if time.monotonic() > deadline:
            terminate(proc, signal.SIGKILL)
            raise ServiceError(f"{what} did not become ready within {timeout:.0f}s; log {log}:\n{log_tail(log)}")
        time.sleep(0.03)


def remove_dir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def venv_bin(name: str) -> str | None:
    """An executable from this interpreter's environment first (wheels put binaries there), then PATH."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    return shutil.which(name)
