"""The `corral` API client against a real `corral serve`: login, generated commands, --json, exit codes."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

from tests.e2e.corral_process import ROOT, CorralProcess
from tests.e2e.test_api_fuzz import ADMIN, _admin_token


@attrs.frozen
class Cli:
    env: dict[str, str]

    def __call__(self, *argv: str, stdin: str = "",
                 env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "corral", *argv], input=stdin, capture_output=True, text=True,
                              env={**self.env, **(env or {})}, cwd=ROOT, timeout=60, check=False)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CorralProcess]:
    proc = CorralProcess.start(tmp_path_factory.mktemp("client-server"), {
        "CORRAL_PROFILE": "memory", "CORRAL_LOG_LEVEL": "warning",
        "CORRAL_BOOTSTRAP_ADMIN_NAME": ADMIN[0], "CORRAL_BOOTSTRAP_ADMIN_PASSWORD": ADMIN[1],
        "CORRAL_BOOTSTRAP_ADMIN_EMAIL": "root@example.com",
    })
    yield proc
    assert proc.stop() == 0, proc.log_text()[-3000:]


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORRAL_")}
    env.update({"XDG_CONFIG_HOME": str(tmp_path / "config"), "XDG_CACHE_HOME": str(tmp_path / "cache"),
                "PYTHONPATH": str(ROOT)})
    return Cli(env)


def test_login_then_generated_commands_against_a_real_server(server: CorralProcess, cli: Cli,
                                                             tmp_path: Path) -> None:
    token = _admin_token(server.base_url)
    before = cli("projects", "list")
    assert before.returncode == 4 and "corral login" in before.stderr
    bad = cli("login", server.base_url, stdin="crl_not_a_token\n")
    assert bad.returncode == 4, bad.stderr
    done = cli("login", server.base_url, stdin=token + "\n")
    assert done.returncode == 0, done.stderr
    assert f"logged in to {server.base_url} as root" in done.stdout
    stored = tmp_path / "config" / "corral" / "client.json"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600

    created = cli("projects", "create", "--name", "demo", "--description", "made by the CLI", "--json")
    assert created.returncode == 0, created.stderr
    project = json.loads(created.stdout)
    assert project["name"] == "demo"
    label = cli("labels", "create", "root/demo", "--name", "cli", "--json")
    assert label.returncode == 0, label.stderr
    issue = cli("issues", "create", "root/demo", "--title", "from the CLI", "--body", "hello", "--labels", "cli",
                "--json")
    assert issue.returncode == 0, issue.stderr
    number = json.loads(issue.stdout)["number"]
    table = cli("issues", "list", "root/demo")
    assert table.returncode == 0, table.stderr
    assert table.stdout.splitlines()[0].split()[:3] == ["NUMBER", "TITLE", "BODY"]
    assert table.stdout.splitlines()[1].split()[:3] == [str(1), "from", "the"]
    listed = json.loads(cli("issues", "list", "root/demo", "--json").stdout)
    assert [i["title"] for i in listed["items"]] == ["from the CLI"]
    assert cli("issues", "close", "root/demo", str(number)).returncode == 0
    assert json.loads(cli("issues", "get", "root/demo", str(number), "--json").stdout)["status"] == "closed"

    # exit codes from real answers
    missing = cli("issues", "get", "root/demo", "999")
    assert missing.returncode == 3 and missing.stderr.startswith("corral: 404") and missing.stdout == ""
    assert len(missing.stderr.strip().splitlines()) == 1
    assert cli("projects", "create", "--name", "demo").returncode == 5  # exists
    assert cli("issues", "create", "root/demo", "--title", "").returncode == 6  # 1-255 characters
    assert cli("issues", "list", "root/demo", "--limit", "x").returncode == 2  # usage: never sent
    assert cli("projects", "get", "root/demo", env={"CORRAL_TOKEN": "crl_revoked"}).returncode == 4
    assert cli("projects", "get", "root/demo", env={"CORRAL_URL": "http://127.0.0.1:9"}).returncode == 7

    # a least-privileged token: reads, but may not create
    reader = json.loads(cli("tokens", "create", "--name", "reader", "--scopes", "project:read", "--json").stdout)
    as_reader = {"CORRAL_TOKEN": reader["token"]}
    assert cli("projects", "get", "root/demo", env=as_reader).returncode == 0
    denied = cli("issues", "create", "root/demo", "--title", "nope", env=as_reader)
    assert denied.returncode == 4, denied.stderr

    # server-side commands still work next to the client (and ignore CORRAL_URL / CORRAL_TOKEN)
    version = cli("version", "--json", env={"CORRAL_URL": server.base_url, "CORRAL_TOKEN": token})
    assert version.returncode == 0 and "version" in json.loads(version.stdout)
    check = cli("config", "check", "--json", env={"CORRAL_URL": server.base_url, "CORRAL_TOKEN": token,
                                                    "CORRAL_PROFILE": "memory"})
    assert check.returncode == 0, check.stderr
    assert token not in server.log_text()
