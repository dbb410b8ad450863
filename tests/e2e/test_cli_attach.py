"""`corral admin` and `corral migrate` work while `corral serve` owns the embedded PostgreSQL and Valkey."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

from tests.e2e.corral_process import ROOT, CorralProcess


def test_admin_cli_attaches_to_the_running_server(tmp_path: Path) -> None:
    server = CorralProcess.start(tmp_path, {})
    try:
        runtime = tmp_path / "runtime.json"
        assert runtime.stat().st_mode & 0o777 == 0o600
        env = {k: v for k, v in os.environ.items() if not k.startswith("CORRAL_")}
        env.update({"CORRAL_DATA_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)})
        proc = subprocess.run(
            [sys.executable, "-m", "corral", "admin", "create-user", "ada", "--email", "ada@example.com", "--admin"],
            input="a-long-password-42\n", capture_output=True, text=True, env=env, cwd=ROOT, timeout=120, check=False,
        )
        assert proc.returncode == 0, proc.stderr
        assert "ada" in proc.stdout
        migrate = subprocess.run([sys.executable, "-m", "corral", "migrate", "--json"], capture_output=True, text=True,
                                 env=env, cwd=ROOT, timeout=120, check=False)
        assert migrate.returncode == 0, migrate.stderr
        assert json.loads(migrate.stdout)["applied"] == []
        # the server sees the user the tool created: sign in over HTTP
        req = urllib.request.Request(server.base_url + "/api/v1/auth/login", method="POST",
                                     data=json.dumps({"name": "ada", "password": "a-long-password-42"}).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert json.loads(resp.read())["user"]["name"] == "ada"
    finally:
        assert server.stop() == 0
    assert not (tmp_path / "runtime.json").exists()
