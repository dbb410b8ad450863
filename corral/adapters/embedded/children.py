"""Child processes of the embedded default: start them, recognise them later, stop them.

Corral may die by ``kill -9``. Three mechanisms keep that from leaving a mess:

* every child gets a parent-death signal (util-linux ``setpriv --pdeathsig``), so it
  normally shuts down cleanly when Corral dies, whatever killed Corral;
* every child carries the environment variable ``EMBEDDED_CORRAL_ROOT=<its data root>``
  (inherited by its own children), so a later start finds survivors of a previous
  Corral by scanning ``/proc`` — no pid file that can go stale or point at a reused pid;
* a ``flock`` on a file in the data root (:class:`RootLock`) proves which Corral owns
  the data: while one holds it, another start fails instead of stopping the first's
  servers; the kernel drops the lock when its holder dies, however it dies.

Children run in their own session so a terminal's Ctrl-C reaches only Corral, which then
stops them in order. The parent-death signal is tied to the thread that forks the child:
we spawn with ``asyncio.create_subprocess_exec``, i.e. from the event-loop thread, which
lives as long as the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import logging
import os
import pwd
import shutil
import signal
import stat
import subprocess
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path

import attrs

from corral.core.errors import Unavailable

__all__ = [
    "MARKER_ENV",
    "RootLock",
    "ServerAccount",
    "Supervisor",
    "find_survivors",
    "grant_traverse",
    "log_tail",
    "rotate_log",
    "spawn",
    "stop_child",
    "stop_survivors",
    "wait_until",
]

_log = logging.getLogger(__name__)

MARKER_ENV = "EMBEDDED_CORRAL_ROOT"
# Tests of orphan recovery switch this off to simulate a child that outlived Corral.
SETPRIV: str | None = shutil.which("setpriv")

# A signal to send and how long to wait for the process to go before escalating.
Escalation = Sequence[tuple[signal.Signals, float]]


class RootLock:
    """An exclusive ``flock`` on ``<root>/corral.lock``, held while the embedded server runs."""

    def __init__(self, root: Path) -> None:
        self.path = root / "corral.lock"
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise Unavailable naming the process that holds it (blocking I/O)."""
        if self._fd is not None:
            return
        # O_CLOEXEC (Python's default) matters: a child inheriting the fd would keep the lock alive.
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise
            raise Unavailable(
                f"{self.path.parent} is in use by another Corral process (pid {holder}); "
                "stop it or point CORRAL_DATA_DIR at another directory"
            ) from exc
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None


@attrs.frozen
class ServerAccount:
    """The unprivileged account a server runs as when Corral runs as root."""

    name: str
    uid: int
    gid: int

    @classmethod
    def ensure(cls, name: str) -> ServerAccount:
        """Return the system account ``name``, creating it (no home, no login shell) if missing."""
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            useradd = shutil.which("useradd") or "/usr/sbin/useradd"
            result = subprocess.run(
                [useradd, "--system", "--user-group", "--no-create-home",
                 "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", name],
                capture_output=True, text=True, check=False,
            )
            try:  # a concurrent start may have created it meanwhile: look again either way
                entry = pwd.getpwnam(name)
            except KeyError:
                raise Unavailable(
                    f"running as root, the embedded server needs the system user {name!r}, "
                    f"and useradd failed: {result.stderr.strip() or result.returncode}"
                ) from None
            _log.info("created system user %s for the embedded server", name)
        return cls(name=name, uid=entry.pw_uid, gid=entry.pw_gid)


def grant_traverse(path: Path) -> None:
    """Let other users traverse every ancestor of ``path`` (adds only the o+x bit where missing).

    Needed when Corral runs as root and its server runs as an unprivileged account while the
    data or the wheel's binaries live under a 0700 directory such as /root.
    """
    for parent in path.resolve().parents:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)
            _log.warning("added o+x to %s so the embedded server's account can reach its files", parent)


def rotate_log(path: Path, max_bytes: int = 10 * 1024 * 1024) -> None:
    """Keep one previous generation of a child's log once it grows past ``max_bytes``."""
    with contextlib.suppress(FileNotFoundError):
        if path.stat().st_size > max_bytes:
            path.replace(path.with_name(path.name + ".1"))


def log_tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _child_env(root: Path, extra: Mapping[str, str]) -> dict[str, str]:
    # Corral's own settings (some are secrets) are none of the child's business.
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORRAL_")}
    env.update(extra)
    env[MARKER_ENV] = str(root)
    return env


async def spawn(
    argv: Sequence[str],
    *,
    root: Path,
    log_path: Path,
    death_signal: signal.Signals,
    account: ServerAccount | None = None,
    stdin_data: bytes | None = None,
    env: Mapping[str, str] | None = None,
) -> asyncio.subprocess.Process:
    """Start ``argv`` as a marked child of this process, output appended to ``log_path``.

    ``death_signal`` is what the child receives if Corral dies first (the server's clean-shutdown
    signal). ``stdin_data`` is written to the child's stdin, which is then closed (used to hand over
    configuration that must not appear on the command line).
    """
    cmd = list(argv)
    identity: dict[str, object] = {}
    if SETPRIV:
        # setpriv switches the account first, then sets the signal (a credential change clears it);
        # doing both in setpriv also works on event loops whose spawn lacks user=/group= (uvloop).
        switch = [] if account is None else [
            f"--reuid={account.uid}", f"--regid={account.gid}", "--clear-groups"]
        cmd = [SETPRIV, *switch, "--pdeathsig", death_signal.name.removeprefix("SIG"), "--", *cmd]
    elif account is not None:
        identity = {"user": account.uid, "group": account.gid, "extra_groups": []}
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
    try:
        proc = await asyncio.create_subprocess_exec(
            *cmd,
            stdin=asyncio.subprocess.PIPE if stdin_data is not None else asyncio.subprocess.DEVNULL,
            stdout=log_fd,
            stderr=log_fd,
            cwd=root,
            env=_child_env(root, env or {}),
            start_new_session=True,
            **identity,  # type: ignore[arg-type]
        )
    finally:
        os.close(log_fd)
    if stdin_data is not None:
        assert proc.stdin is not None
        proc.stdin.write(stdin_data)
        with contextlib.suppress(ConnectionError):
            await proc.stdin.drain()
        proc.stdin.close()
    return proc


async def stop_child(proc: asyncio.subprocess.Process, escalation: Escalation) -> None:
    """Stop a child started by :func:`spawn`: each signal in turn, then SIGKILL."""
    for sig, timeout in escalation:
        if proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proc.wait(), timeout)
    if proc.returncode is None:
        _log.warning("embedded server pid %s ignored %s; killing it", proc.pid, escalation)
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()


class Supervisor:
    """Starts a child again whenever it exits unexpectedly, with backoff, and says when it cannot.

    ``restart`` brings the server back (and returns its new process) or raises. While the child is
    down, :meth:`failure` is None until ``giveup_seconds`` have passed without a successful restart;
    then it is the reason, for the liveness probe (a supervisor of Corral restarts the whole process).
    Attempts go on after that: a child that comes back clears the failure.
    """

    def __init__(
        self,
        what: str,
        log_path: Path,
        restart: Callable[[], Awaitable[asyncio.subprocess.Process]],
        *,
        giveup_seconds: float = 60.0,
        max_delay: float = 5.0,
    ) -> None:
        self.what = what
        self.log_path = log_path
        self.giveup_seconds = giveup_seconds
        self.restarts = 0
        self._restart = restart
        self._max_delay = max_delay
        self._down_since: float | None = None
        self._last_error: str | None = None
        self._task: asyncio.Task[None] | None = None

    def watch(self, proc: asyncio.subprocess.Process) -> None:
        """Supervise ``proc`` (call :meth:`cancel` before stopping it on purpose)."""
        self.cancel()
        self._task = asyncio.create_task(self._supervise(proc), name=f"supervise {self.what}")

    def cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    def failure(self) -> str | None:
        """Why the child is given up on (down longer than ``giveup_seconds``), or None."""
        if self._down_since is None:
            return None
        down = time.monotonic() - self._down_since
        if down < self.giveup_seconds:
            return None
        return (f"{self.what} is down for {down:.0f} s and could not be restarted within "
                f"{self.giveup_seconds:g} s ({self._last_error or 'restart in progress'})")

    async def _supervise(self, proc: asyncio.subprocess.Process) -> None:
        while True:
            code = await proc.wait()
            self._down_since = time.monotonic()
            self._last_error = None
            _log.error("%s (pid %s) exited unexpectedly with code %s; starting it again. Its log ends with:\n%s",
                       self.what, proc.pid, code, log_tail(self.log_path))
            proc = await self._bring_back()
            self.restarts += 1
            _log.warning("%s is running again (pid %s) after %.1f s down", self.what, proc.pid,
                         time.monotonic() - self._down_since)
            self._down_since = None
            self._last_error = None

    async def _bring_back(self) -> asyncio.subprocess.Process:
        delay = 0.2
        reported = first = False
        while True:
            try:
                return await self._restart()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # anything: keep trying, the probe reports it
                self._last_error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                failure = self.failure()
                if failure is not None and not reported:
                    reported = True
                    _log.error("%s; /healthz now fails. Its log ends with:\n%s", failure, log_tail(self.log_path))
                elif not first:
                    first = True
                    _log.warning("could not start %s again (%s); retrying", self.what, self._last_error)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._max_delay)


# --- survivors of a previous Corral ------------------------------------------------------


def _read_proc(pid: int, name: str) -> bytes | None:
    try:
        return Path(f"/proc/{pid}/{name}").read_bytes()
    except OSError:  # gone, or another user's process we may not inspect
        return None


def _alive(pid: int) -> bool:
    stat_line = _read_proc(pid, "stat")
    if stat_line is None:
        return False
    # "pid (comm) S ...": comm may contain spaces and parentheses; the state follows the last ')'.
    state = stat_line.rpartition(b")")[2].split()[:1]
    return state not in ([b"Z"], [b"X"])


def _ppid(pid: int) -> int | None:
    stat_line = _read_proc(pid, "stat")
    if stat_line is None:
        return None
    fields = stat_line.rpartition(b")")[2].split()
    return int(fields[1]) if len(fields) > 1 else None


def _link(pid: int, name: str) -> Path | None:
    try:
        return Path(os.readlink(f"/proc/{pid}/{name}").removesuffix(" (deleted)"))
    except OSError:
        return None


def find_survivors(root: Path, program: str) -> list[int]:
    """Pids of live processes a previous Corral left running on ``root``.

    A survivor runs ``program`` (the executable's file name) and either carries this root's
    marker in its environment or works in a directory under ``root``. Both are checked because
    servers that rewrite their process title (valkey-server, postgres backends) clobber their
    environment block, while every one of them works in its data directory.
    """
    proc_dir = Path("/proc")
    if not proc_dir.is_dir():
        return []
    wanted = f"{MARKER_ENV}={root}".encode()
    own = os.getpid()
    found = []
    for entry in proc_dir.iterdir():
        if not entry.name.isdigit() or int(entry.name) == own:
            continue
        pid = int(entry.name)
        exe = _link(pid, "exe")
        if exe is None or exe.name != program or not _alive(pid):
            continue
        cwd = _link(pid, "cwd")
        environ = _read_proc(pid, "environ") or b""
        if (cwd is not None and (cwd == root or root in cwd.parents)) or wanted in environ.split(b"\0"):
            found.append(pid)
    return found


async def stop_survivors(root: Path, program: str, escalation: Escalation) -> list[int]:
    """Stop every survivor (see :func:`find_survivors`): signal the top-most ones, escalate, then SIGKILL all.

    Only the top of each process tree is signalled (a PostgreSQL postmaster shuts its backends
    down itself); the rest are waited for. Returns the pids that were found.
    """
    pids = await asyncio.to_thread(find_survivors, root, program)
    if not pids:
        return []
    _log.warning("stopping embedded server processes %s left behind in %s by a previous run", pids, root)
    marked = set(pids)
    tops = [p for p in pids if _ppid(p) not in marked]

    def remaining() -> list[int]:
        return [p for p in pids if _alive(p)]

    for sig, timeout in escalation:
        for pid in tops:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        if await wait_until(lambda: not remaining(), timeout):
            return pids
    for pid in remaining():
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    if not await wait_until(lambda: not remaining(), 10.0):
        raise Unavailable(f"could not stop embedded server processes {remaining()} left behind in {root}")
    return pids


async def wait_until(done: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    """Poll ``done`` until it is true (True) or ``timeout`` seconds pass (False).

    For state outside this process (another process's exit, a file another process writes),
    where there is no event to await.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        if done():
            return True
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(interval)
