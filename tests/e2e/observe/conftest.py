"""A running Corral (tests/e2e/observe/harness.py) over real PostgreSQL and Valkey, per test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from tests.servicekit import free_ports

TOKEN = "e2e-observe-token"


@attrs.define
class CorralProcess:
    dsn: str
    valkey: str
    data_dir: Path
    port: int
    otlp_port: int
    restricted: list[str] = attrs.Factory(list)
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def otlp(self) -> str:
        return f"http://127.0.0.1:{self.otlp_port}"

    def start(self, timeout: float = 60.0) -> None:
        self.log_path = self.data_dir.parent / f"server-{time.monotonic_ns()}.log"
        log = self.log_path.open("wb")
        cmd = [
            sys.executable,
            "-m",
            "tests.e2e.observe.harness",
            "--dsn",
            self.dsn,
            "--valkey",
            self.valkey,
            "--data-dir",
            str(self.data_dir),
            "--port",
            str(self.port),
            "--otlp-port",
            str(self.otlp_port),
            "--token",
            TOKEN,
        ]
        if self.restricted:
            cmd += ["--restricted", *self.restricted]
        root = Path(__file__).resolve().parents[3]
        env = {k: v for k, v in os.environ.items() if not k.startswith("CORRAL_")}
        self.proc = subprocess.Popen(cmd, cwd=root, stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{self.base}/healthz", timeout=1):
                    return
            except (urllib.error.URLError, OSError):
                time.sleep(0.1)
        raise RuntimeError(f"server did not start: {self.log_path.read_text()[-3000:]}")

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def get(self, path: str, token: str = TOKEN) -> tuple[int, Any]:
        req = urllib.request.Request(self.base + path, headers={"Authorization": f"Bearer {token}"})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def post(
        self,
        path: str,
        body: bytes,
        content_type: str = "application/json",
        token: str | None = TOKEN,
        base: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes, dict[str, str]]:
        h = {"Content-Type": content_type, **(headers or {})}
        if token:
            h["Authorization"] = f"Bearer {token}"
        req = urllib.request.Request((base or self.base) + path, data=body, method="POST", headers=h)
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, r.read(), dict(r.headers)
        except urllib.error.HTTPError as e:
            return e.code, e.read(), dict(e.headers)


@pytest.fixture
def corral_factory(db_dsn: str, valkey_url: str, tmp_path: Path) -> Iterator[Any]:
    made: list[CorralProcess] = []

    def make(**kw: Any) -> CorralProcess:
        port, otlp_port = free_ports(2)
        server = CorralProcess(
            dsn=db_dsn, valkey=valkey_url, data_dir=tmp_path / "data", port=port, otlp_port=otlp_port, **kw
        )
        made.append(server)
        server.start()
        return server

    yield make
    for server in made:
        server.stop()


@pytest.fixture
def corral(corral_factory: Any) -> CorralProcess:
    server: CorralProcess = corral_factory()
    return server
