"""Run ``python -m corral serve`` as a real child process for end-to-end tests; ``admin_env`` makes it create a
first admin, ``AdminApi`` logs in as that admin over plain HTTP (for setup the tested client does not do)."""

from __future__ import annotations

import http.cookiejar
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

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


def admin_env(admin: tuple[str, str]) -> dict[str, str]:
    """The settings that make a fresh server create the first admin (name, password)."""
    return {
        "CORRAL_BOOTSTRAP_ADMIN_NAME": admin[0],
        "CORRAL_BOOTSTRAP_ADMIN_PASSWORD": admin[1],
        "CORRAL_BOOTSTRAP_ADMIN_EMAIL": "root@example.com",
    }


class AdminApi:
    """Plain HTTP as the admin: a session (cookie and CSRF token) once ``login`` ran, and tokens holding everything."""

    def __init__(self, base: str, admin: tuple[str, str]) -> None:
        self.base = base
        self.admin = admin
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        self.csrf = ""

    def call(self, method: str, path: str, body: object = None) -> Any:
        req = urllib.request.Request(self.base + path, data=None if body is None else json.dumps(body).encode(),
                                     method=method, headers={"Content-Type": "application/json",
                                                             "X-CSRF-Token": self.csrf})
        with self.opener.open(req, timeout=10) as resp:
            return json.loads(resp.read())

    def login(self) -> None:
        self.csrf = self.call("POST", "/api/v1/auth/login", {"name": self.admin[0], "password": self.admin[1]})[
            "csrf_token"]

    def token(self, project: str | None = None, *, name: str | None = None) -> str:
        """A new API token with every permission (restricted to ``project``: every project-level one)."""
        scopes = [p["name"] for p in self.call("GET", "/api/v1/permissions")["items"]]
        if project is not None:
            scopes = [s for s in scopes if s.startswith(("project:", "observe:", "secret:"))]
        return self.call("POST", "/api/v1/tokens", {"name": name or f"mcp-{project}", "scopes": scopes,
                                                    "project": project})["token"]
