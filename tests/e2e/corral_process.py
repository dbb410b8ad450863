"""Run ``python -m corral serve`` as a real child process for end-to-end tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import attrs

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@attrs.define
class CorralProcess:
    """A running Corral server: ``base_url``, its log file, and SIGTERM-based stop."""

    proc: subprocess.Popen[bytes]
    base_url: str
    log_path: Path

    @classmethod
    def start(cls, data_dir: Path, env: dict[str, str], *, timeout: float = 60.0) -> CorralProcess:
        port = free_port()
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("CORRAL_")}
        full_env.update({"CORRAL_DATA_DIR": str(data_dir), "CORRAL_PORT": str(port), "CORRAL_LOG_LEVEL": "info",
                         # every JSON answer is checked against the OpenAPI document (a mismatch is a 500)
                         "CORRAL_VALIDATE_RESPONSES": "true"})
        full_env.update(env)
        full_env["PYTHONPATH"] = str(ROOT) + os.pathsep + full_env.get("PYTHONPATH", "")
        log_path = data_dir / "corral.log"
        log = log_path.open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "corral", "serve"], cwd=ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT,
        )
        server = cls(proc, f"http://127.0.0.1:{port}", log_path)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"corral serve exited with {proc.returncode}:\n{server.log_text()[-4000:]}")
            try:
                with urllib.request.urlopen(server.base_url + "/readyz", timeout=2) as resp:
                    if resp.status == 200:
                        return server
            except OSError:
                pass
            time.sleep(0.2)
        server.kill()
        raise RuntimeError(f"corral serve not ready within {timeout} s:\n{server.log_text()[-4000:]}")

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait: the graceful path. Returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return int(self.proc.returncode)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
