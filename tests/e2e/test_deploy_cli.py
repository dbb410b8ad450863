"""``corral deploy render|diff`` attached to a running ``corral serve`` (PostgreSQL, Valkey, no cluster): an ops
repository pushed with the git CLI, a desired state written through the API, then the CLI prints what would be
applied (the secret masked) and says the cluster is not configured; errors are one line."""

from __future__ import annotations

import http.cookiejar
import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.corral_process import ROOT, CorralProcess
from tests.e2e.gitkit import git, git_env, write
from tests.unit.deploy.world import DEPLOYMENT_YAML, SERVICE_YAML, VALUES_YAML

pytestmark = pytest.mark.e2e

ADMIN = ("root", "deploy-cli-password-1234")
SECRET_YAML = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  password: ${{ secrets.DB }}\n"


@pytest.fixture
def server(tmp_path: Path, db_dsn: str, valkey_url: str) -> Iterator[tuple[CorralProcess, dict[str, str]]]:
    data = tmp_path / "data"
    data.mkdir()
    env = {"CORRAL_DATABASE_URL": db_dsn, "CORRAL_VALKEY_URL": valkey_url, "CORRAL_LOG_LEVEL": "warning",
           "CORRAL_DEPLOY_CLUSTER": "none", "CORRAL_OTLP_DECODE_PROCESSES": "0"}
    proc = CorralProcess.start(data, {**env, "CORRAL_BOOTSTRAP_ADMIN_NAME": ADMIN[0],
                                      "CORRAL_BOOTSTRAP_ADMIN_PASSWORD": ADMIN[1],
                                      "CORRAL_BOOTSTRAP_ADMIN_EMAIL": "root@example.com"})
    yield proc, {**env, "CORRAL_DATA_DIR": str(data)}
    assert proc.stop() == 0, proc.log_text()[-3000:]


def _api(base: str) -> Any:
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    csrf = [""]

    def call(method: str, path: str, body: object = None) -> Any:
        req = urllib.request.Request(base + path, data=None if body is None else json.dumps(body).encode(),
                                     method=method, headers={"Content-Type": "application/json",
                                                             "X-CSRF-Token": csrf[0]})
        with opener.open(req, timeout=20) as resp:
            return json.loads(resp.read())

    csrf[0] = call("POST", "/api/v1/auth/login", {"name": ADMIN[0], "password": ADMIN[1]})["csrf_token"]
    return call


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("CORRAL_")}
    full.update(env)
    full["PYTHONPATH"] = str(ROOT)
    return subprocess.run([sys.executable, "-m", "corral", "deploy", *args], capture_output=True, text=True,
                          env=full, cwd=ROOT, timeout=120, check=False)


async def test_render_and_diff_from_the_command_line(server: tuple[CorralProcess, dict[str, str]],
                                                     tmp_path: Path) -> None:
    proc, env = server
    call = _api(proc.base_url)
    token = call("POST", "/api/v1/tokens", {"name": "t", "scopes": ["project:read", "project:write"]})["token"]
    call("POST", "/api/v1/projects", {"name": "ops", "visibility": "private"})
    call("POST", "/api/v1/projects", {"name": "web", "visibility": "private"})
    work = tmp_path / "ops"
    genv = git_env(tmp_path / "home")
    await git(tmp_path, "init", "-q", "-b", "main", str(work), env=genv)
    write(work / "apps/web/deployment.yaml", DEPLOYMENT_YAML)
    write(work / "apps/web/service.yaml", SERVICE_YAML)
    write(work / "apps/web/values.yaml", VALUES_YAML)
    write(work / "apps/web/secret.yaml", SECRET_YAML)
    await git(work, "add", ".", env=genv)
    await git(work, "commit", "-q", "-m", "ops", env=genv)
    await git(work, "push", "-q", f"{proc.base_url}/root/ops.git", "main", token=token, env=genv)
    call("PUT", "/api/v1/projects/root/web/secrets/DB", {"value": "hunter2-very-secret", "scope": "deploy"})
    call("POST", "/api/v1/ops-repos", {"name": "ops", "project": "root/ops", "branch": "main", "path": ""})
    call("PUT", "/api/v1/projects/root/web/deployments/staging",
         {"ops_repo": "ops", "app_path": "apps/web", "image_ref": "registry.example/web:3", "namespace": "web"})

    rendered = _cli(env, "render", "root/web", "staging", "--json")
    assert rendered.returncode == 0, rendered.stderr
    report = json.loads(rendered.stdout)
    assert report["cluster"] == "not configured" and report["project"] == "root/web"
    assert [o["ref"] for o in report["objects"]] == ["Secret web/db", "Service web/web", "Deployment web/web"]
    assert report["objects"][0]["object"]["stringData"] == {"password": "***"}
    image = report["objects"][2]["object"]["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == "registry.example/web:3"
    text = _cli(env, "render", "root/web", "staging")
    assert text.returncode == 0 and "image: registry.example/web:3" in text.stdout
    assert "hunter2" not in text.stdout + rendered.stdout

    diff = _cli(env, "diff", "root/web", "staging")
    assert diff.returncode == 0, diff.stderr
    assert "cluster: not configured" in diff.stdout and "unknown   Deployment web/web" in diff.stdout

    missing = _cli(env, "diff", "root/web", "production")
    assert missing.returncode == 1 and missing.stderr.strip() == "corral: root/web has no deployment in production"
    usage = _cli(env, "render", "web", "staging")
    assert usage.returncode == 2 and len(usage.stderr.strip().splitlines()) == 1
