"""A throwaway PostgreSQL cluster from the Debian packages (``/usr/lib/postgresql/15``)."""

from __future__ import annotations

import os
import pwd
import signal
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
    args: list[str] = field(default_factory=list, repr=False)  # how it was started: for kill() and resume()
    run_as: str | None = field(default=None, repr=False)

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{database}"

    @classmethod
    def start(cls, *, timeout: float = 30.0, settings: dict[str, str] | None = None) -> PostgresServer:
        """``settings`` override the test defaults (e.g. ``fsync=on`` for a durable benchmark)."""
        bindir = _pg_bindir()
        base = make_service_dir("postgres")
        data = base / "data"
        log = base / "postgres.log"
        run_as = "postgres" if os.geteuid() == 0 else None
        if run_as is not None:
            try:
                pw = pwd.getpwnam(run_as)
            except KeyError as exc:
                raise ServiceError("running as root but there is no 'postgres' user to run the server") from exc
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
            remove_dir(base)
            raise ServiceError(f"initdb failed ({init.returncode}): {init.stderr.decode(errors='replace')[-800:]}")
        port = free_port()
        overrides = settings or {}
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
        settings.update(overrides)
        args = [str(bindir / "postgres"), "-D", str(data), "-p", str(port)]
        for key, value in settings.items():
            args += ["-c", f"{key}={value}"]
        proc = spawn(args, log_path=log, user=run_as)

        server = cls(host="127.0.0.1", port=port, user="postgres", base_dir=base, proc=proc, args=args, run_as=run_as)
        try:
            server._wait_ready(timeout)
        except ServiceError:
            remove_dir(base)
            raise
        return server

    def _wait_ready(self, timeout: float) -> None:
        assert self.proc is not None
        pg_isready = str(_pg_bindir() / "pg_isready")

        def ready() -> bool:
            probe = subprocess.run(
                [pg_isready, "-q", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-t", "1"],
                check=False,
            )
            return probe.returncode == 0

        wait_until(ready, self.proc, what="PostgreSQL", log=self.base_dir / "postgres.log", timeout=timeout)

    def kill(self) -> None:
        """SIGKILL the whole server (postmaster and backends): a crash, as far as clients can tell."""
        if self.proc is not None:
            terminate(self.proc, signal.SIGKILL)
            self.proc = None

    def resume(self, *, timeout: float = 60.0) -> None:
        """Start the server killed by ``kill()`` again on the same port and data (crash recovery runs)."""
        assert self.proc is None and self.args, "resume() follows kill()"
        self.proc = spawn(self.args, log_path=self.base_dir / "postgres.log", user=self.run_as)
        self._wait_ready(timeout)

    def stop(self) -> None:
        if self.proc is not None:
            terminate(self.proc, signal.SIGQUIT)  # immediate shutdown: the data is thrown away anyway
            self.proc = None
        remove_dir(self.base_dir)
