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


def _cli_env(home: Path, data_dir: Path | None = None) -> dict[str, str]:
    """A CLI environment whose per-user directories (default data directory, server pointers) are under ``home``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CORRAL_", "XDG_"))}
    env.update({"HOME": str(home), "PYTHONPATH": str(ROOT)})
    if data_dir is not None:
        env["CORRAL_DATA_DIR"] = str(data_dir)
    return env


def _create_user(env: dict[str, str], name: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "corral", "admin", "create-user", name, "--email", f"{name}@example.com", *extra],
        input="a-long-password-42\n", capture_output=True, text=True, env=env, cwd=ROOT, timeout=180, check=False,
    )


def _sign_in(base_url: str, name: str) -> str:
    req = urllib.request.Request(base_url + "/api/v1/auth/login", method="POST",
                                 data=json.dumps({"name": name, "password": "a-long-password-42"}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return str(json.loads(resp.read())["user"]["name"])


def test_admin_cli_refuses_to_create_a_new_empty_instance(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    default_dir = home / ".local" / "share" / "corral"
    for env, data_dir in ((_cli_env(home), default_dir), (_cli_env(home, tmp_path / "x"), tmp_path / "x")):
        proc = _create_user(env, "ada", "--admin")
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert lines == [
            f"corral: using data directory {data_dir} (no running server found)",
            f"corral: no Corral instance in {data_dir} (no database yet, no running server): set CORRAL_DATA_DIR "
            "to the server's data directory, or pass --init to create a new instance there",
        ]
        assert proc.stdout == ""
        assert not (data_dir / "postgres").exists()  # nothing was initialised


def test_admin_cli_init_creates_the_instance_then_a_server_serves_it(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = _cli_env(tmp_path, data_dir)
    first = _create_user(env, "ada", "--admin", "--init")
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("created admin ada ")
    assert f"using data directory {data_dir} (no running server found)" in first.stderr
    # the instance exists now: no --init needed any more
    second = _create_user(env, "bob")
    assert second.returncode == 0, second.stderr
    assert second.stdout.startswith("created user bob ")
    server = CorralProcess.start(data_dir, {"HOME": str(tmp_path), "XDG_RUNTIME_DIR": "", "XDG_DATA_HOME": ""})
    try:
        assert _sign_in(server.base_url, "ada") == "ada"
        assert _sign_in(server.base_url, "bob") == "bob"
    finally:
        assert server.stop() == 0


def test_cli_without_data_dir_finds_the_running_server_and_serve_says_where_it_runs(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    data_dir = tmp_path / "elsewhere"
    data_dir.mkdir()
    server = CorralProcess.start(data_dir, {"HOME": str(home), "XDG_RUNTIME_DIR": "", "XDG_DATA_HOME": ""})
    try:
        running_lines = [line for line in server.log_text().splitlines() if line.startswith("Corral is running at")]
        assert running_lines == [f"Corral is running at {server.base_url} (data directory {data_dir})"]
        pointers = list((home / ".local" / "state" / "corral" / "servers").glob("*.json"))
        assert [p.name for p in pointers] == [f"{server.proc.pid}.json"]
        assert pointers[0].stat().st_mode & 0o777 == 0o600
        # no CORRAL_DATA_DIR: the tool works on the running server's instance, not on an empty default one
        proc = _create_user(_cli_env(home), "ada", "--admin")
        assert proc.returncode == 0, proc.stderr
        assert proc.stderr.strip().splitlines() == [
            f"corral: using data directory {data_dir} (the running server at {server.base_url}, "
            f"pid {server.proc.pid})"
        ]
        assert not (home / ".local" / "share" / "corral").exists()
        assert _sign_in(server.base_url, "ada") == "ada"
    finally:
        assert server.stop() == 0
    assert list((home / ".local" / "state" / "corral" / "servers").glob("*.json")) == []
