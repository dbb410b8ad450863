"""Agent sessions end to end: a real ``corral serve`` (PostgreSQL, Valkey, the local executor) runs a stand-in
``claude`` (``tests/e2e/claude_standin.py``, speaking stream-json) that clones, commits and pushes with the
injected credentials, calls the API with ``CORRAL_TOKEN``, sends OTLP with the injected ``OTEL_*`` variables and
tries things outside its delegation.

Checked: the session's result, cost, turns and milestones; the pushed branch and the merge request the agent user
opened; refusals outside the delegation; the token dead afterwards; audit rows naming the agent user and the
session id with the requester as delegator; the session timeline in observe; the events API, SSE resume and the
WebSocket; a follow-up resume; a provider that fails; stop; and a server restart mid-session.
"""

from __future__ import annotations

import asyncio
import http.cookiejar
import json
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.e2e.corral_process import CorralProcess
from tests.e2e.gitkit import git, git_env, write

pytestmark = pytest.mark.e2e

ADMIN = ("root", "agents-password-123456")
WAIT = 60.0
STANDIN = Path(__file__).with_name("claude_standin.py")


class Api:
    def __init__(self, base: str) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        self.csrf = ""
        self.token = ""

    def call(self, method: str, path: str, body: object = None, *, token: str | None = None,
             expect: int | None = None) -> Any:
        headers = {"Content-Type": "application/json"}
        if token or self.token:
            headers["Authorization"] = f"Bearer {token or self.token}"
        else:
            headers["X-CSRF-Token"] = self.csrf
        req = urllib.request.Request(self.base + path, data=None if body is None else json.dumps(body).encode(),
                                     method=method, headers=headers)
        try:
            with self.opener.open(req, timeout=20) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        if expect is not None:
            assert status == expect, (status, raw[:2000])
        return json.loads(raw) if raw else None

    def setup(self) -> None:
        self.csrf = self.call("POST", "/api/v1/auth/login", {"name": ADMIN[0], "password": ADMIN[1]})["csrf_token"]
        scopes = [p["name"] for p in self.call("GET", "/api/v1/permissions")["items"]]
        self.token = self.call("POST", "/api/v1/tokens", {"name": "e2e", "scopes": scopes})["token"]

    def until(self, path: str, done: Any, timeout: float = WAIT) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = self.call("GET", path)
            if done(value):
                return value
            assert time.monotonic() < deadline, f"gave up waiting on {path}: {json.dumps(value)[:3000]}"
            time.sleep(0.2)


def _start(data: Path, db_dsn: str, valkey_url: str, standin: Path) -> CorralProcess:
    return CorralProcess.start(data, {
        "CORRAL_DATABASE_URL": db_dsn, "CORRAL_VALKEY_URL": valkey_url, "CORRAL_LOG_LEVEL": "warning",
        "CORRAL_BOOTSTRAP_ADMIN_NAME": ADMIN[0], "CORRAL_BOOTSTRAP_ADMIN_PASSWORD": ADMIN[1],
        "CORRAL_BOOTSTRAP_ADMIN_EMAIL": "root@example.com", "CORRAL_AGENT_CLAUDE_COMMAND": str(standin),
        "CORRAL_OBSERVE_SELF": "false", "CORRAL_OTLP_DECODE_PROCESSES": "0",
    })


@pytest.fixture
def standin(tmp_path: Path) -> Path:
    """The stand-in with this interpreter as its #! and a report file next to it."""
    path = tmp_path / "bin" / "claude"
    report = tmp_path / "report.json"
    text = STANDIN.read_text().replace('REPORT = os.environ.get("STANDIN_REPORT", "")', f"REPORT = {str(report)!r}")
    write(path, f"#!{sys.executable}\n{text}")
    path.chmod(0o755)
    return path


@pytest.fixture
def server(tmp_path: Path, db_dsn: str, valkey_url: str, standin: Path) -> Iterator[tuple[CorralProcess, Api]]:
    data = tmp_path / "data"
    data.mkdir()
    proc = _start(data, db_dsn, valkey_url, standin)
    api = Api(proc.base_url)
    api.setup()
    try:
        yield proc, api
    finally:
        proc.stop()


async def _project(api: Api, tmp_path: Path, name: str) -> dict[str, Any]:
    project = api.call("POST", "/api/v1/projects", {"name": name}, expect=201)
    env = git_env(tmp_path / "home")
    work = tmp_path / f"work-{name}"
    await git(tmp_path, "clone", project["clone_url"], str(work), token=api.token, env=env)
    write(work / "README.md", "# app\n")
    await git(work, "add", ".", env=env)
    await git(work, "commit", "-m", "first", env=env)
    await git(work, "push", "origin", "HEAD:main", token=api.token, env=env)
    return project


def _report(tmp_path: Path) -> dict[str, Any]:
    return json.loads((tmp_path / "report.json").read_text())


def _finished(value: dict[str, Any]) -> bool:
    return value["status"] in ("completed", "failed", "stopped")


async def test_a_session_works_under_its_delegation_and_leaves_a_trace(
        server: tuple[CorralProcess, Api], tmp_path: Path) -> None:
    proc, api = server
    await _project(api, tmp_path, "app")
    created = api.call("POST", "/api/v1/projects/root/app/agent-sessions", {
        "prompt": "work: fix the app", "provider": "claude-code",
        "permissions": ["project:read", "project:write", "observe:write"], "max_turns": 20, "max_cost_usd": 1.0,
        "timeout_seconds": 300, "branch": None, "open_merge_request": True}, expect=201)
    assert set(created) == {"id", "status", "branch", "agent_user", "expires_at"}
    sid, branch, agent = created["id"], created["branch"], created["agent_user"]
    assert created["status"] == "pending" and branch == f"agent/{sid.replace('-', '')[-8:]}"

    done = api.until(f"/api/v1/agent-sessions/{sid}", _finished)
    assert done["status"] == "completed", (done, proc.log_text()[-3000:])
    assert done["cost_usd"] == pytest.approx(0.0421) and done["turns"] == 6 and done["error"] is None
    assert done["project"] == "root/app" and done["agent_user"] == agent and done["finished_at"]
    assert done["merge_request"] == 1

    report = _report(tmp_path)
    # the environment the agent got
    env = report["env"]
    assert env["CORRAL_URL"] == proc.base_url and env["CORRAL_SESSION_ID"] == sid
    assert env["CORRAL_PROJECT"] == "root/app" and env["OTEL_EXPORTER_OTLP_ENDPOINT"] == proc.base_url
    assert env["OTEL_RESOURCE_ATTRIBUTES"] == f"corral.session_id={sid},corral.project=root/app"
    assert env["OTEL_SERVICE_NAME"] == "agent-claude-code"
    assert f"--session-id={sid}" in report["argv"] and report["branch"] == branch
    # what it did: pushed with the injected credentials, allowed API calls worked, the rest was refused
    assert report["push"][0] == 0, report["push"]
    assert report["api_get"] == 200 and report["api_issue"] == 201 and report["otlp"] == 200
    assert report["api_secrets"] == 403 and report["api_delete"] == 403 and report["api_admin"] == 403

    # the pushed branch and the merge request the agent user opened
    mrs = api.call("GET", "/api/v1/projects/root/app/merge-requests")["items"]
    assert [(m["number"], m["source_branch"], m["target_branch"], m["author"]["name"]) for m in mrs] == [
        (1, branch, "main", agent)]
    assert mrs[0]["title"] == "Agent: work: fix the app" and sid in (mrs[0]["body"] or "")
    issues = api.call("GET", "/api/v1/projects/root/app/issues")["items"]
    assert [(i["title"], i["author"]["name"]) for i in issues] == [("Found while fixing", agent)]

    # the token is dead, and so is the delegation
    api.call("GET", "/api/v1/projects/root/app", token=report["token"], expect=401)
    delegations = api.call("GET", "/api/v1/delegations?limit=100")["items"]  # the requester gave them
    mine = [d for d in delegations if d["reason"] == f"agent session {sid}"]
    assert sorted(d["permission"] for d in mine) == ["observe:write", "project:read", "project:write"]
    assert all(d["revoked_at"] and d["project"] == "root/app" for d in mine), mine

    # events, milestones
    events = api.call("GET", f"/api/v1/agent-sessions/{sid}/events")["items"]
    assert [e["id"] for e in events] == list(range(1, len(events) + 1))
    assert set(events[0]) == {"id", "type", "role", "content", "metadata", "created_at"}
    milestones = [e["content"] for e in events if e["type"] == "milestone"]
    assert milestones == [f"cloned root/app on {branch}", "read 1 file", "edited src/app.py", "ran tests: failed",
                          "committed 2 files", f"pushed {branch}", "opened merge request !1"], milestones
    result = next(e for e in events if e["type"] == "result")
    assert result["metadata"]["total_cost_usd"] == 0.0421 and result["metadata"]["is_error"] is False
    later = api.call("GET", f"/api/v1/agent-sessions/{sid}/events?after={len(events) - 2}")["items"]
    assert [e["id"] for e in later] == [len(events) - 1, len(events)]
    listed = api.call("GET", "/api/v1/projects/root/app/agent-sessions")["items"]
    assert [s["id"] for s in listed] == [sid]

    # audit: the agent's own actions are attributed to the agent user and carry the session id
    rows = api.call("GET", f"/api/v1/audit?actor={agent}&limit=200")["items"]
    actions = {r["action"] for r in rows}
    assert {"repo.push", "issue.create", "merge_request.create", "token.create"} <= actions, actions
    assert all(r["detail"].get("session_id") == sid for r in rows), [r for r in rows
                                                                     if r["detail"].get("session_id") != sid]
    delegated = [r for r in api.call("GET", "/api/v1/audit?action=delegation.create&limit=50")["items"]
                 if r["detail"].get("delegate") == agent]
    assert len(delegated) == 3  # the requester is the delegator, and the rows name the session
    assert all(r["actor"] == ADMIN[0] and r["detail"]["session_id"] == sid for r in delegated), delegated

    # the session timeline in observe holds what the agent sent over OTLP, next to the session's messages
    timeline = api.until(f"/api/v1/observe/sessions/{sid}/timeline",
                         lambda v: any("stand-in agent working" in json.dumps(i) for i in v.get("items", [])))
    assert timeline["items"]
    said = timeline["messages"]
    assert [m["id"] for m in said] == [e["id"] for e in events]  # the finished session: all of them
    assert said[0]["role"] == "user" and said[0]["type"] == "message"  # the prompt opens the timeline
    assert any(m["type"] == "milestone" for m in said) and said[-1]["type"] == "status"

    # the requester is told
    api.until("/api/v1/notifications", lambda v: any(n["type"] == "agent_completed" for n in v["items"]))

    # live view: SSE resumes after Last-Event-ID and ends; the WebSocket sends the same events
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {api.token}"}) as http:
        async with http.get(f"{proc.base_url}/api/v1/agent-sessions/{sid}/stream",
                            headers={"Accept": "text/event-stream", "Last-Event-ID": str(len(events) - 3)}) as r:
            assert r.status == 200
            text = await asyncio.wait_for(r.text(), WAIT)
        ids = [int(line[4:]) for line in text.splitlines() if line.startswith("id: ")]
        assert ids == [len(events) - 2, len(events) - 1, len(events)] and "event: end" in text
        async with http.ws_connect(f"{proc.base_url}/api/v1/agent-sessions/{sid}/stream?after=0") as ws:
            received = []
            async with asyncio.timeout(WAIT):
                async for message in ws:
                    item = json.loads(message.data)
                    if item.get("type") == "end":
                        break
                    received.append(item["id"])
        assert received == [e["id"] for e in events]

    # a message to the finished session resumes it (--resume=) under a new token; the branch is kept
    resumed = api.call("POST", f"/api/v1/agent-sessions/{sid}/messages", {"content": "thanks, also add notes"},
                       expect=202)
    assert resumed["status"] == "pending"
    again = api.until(f"/api/v1/agent-sessions/{sid}", lambda v: _finished(v) and v["finished_at"] != done[
        "finished_at"])
    assert again["status"] == "completed" and again["cost_usd"] == pytest.approx(0.0842)
    report2 = _report(tmp_path)
    assert f"--resume={sid}" in report2["argv"] and report2["messages"] == ["thanks, also add notes"]
    assert report2["token"] != report["token"]
    api.call("GET", "/api/v1/projects/root/app", token=report2["token"], expect=401)


async def test_failure_stop_permissions_and_a_restart(
        tmp_path: Path, db_dsn: str, valkey_url: str, standin: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    proc = _start(data, db_dsn, valkey_url, standin)
    try:
        api = Api(proc.base_url)
        api.setup()
        await _project(api, tmp_path, "app")
        base = "/api/v1/projects/root/app/agent-sessions"
        body = {"prompt": "fail please", "permissions": ["project:read"], "timeout_seconds": 120}

        # a provider that reports an error and exits non-zero
        failed = api.call("POST", base, body, expect=201)
        end = api.until(f"/api/v1/agent-sessions/{failed['id']}", _finished)
        assert end["status"] == "failed" and end["error"].startswith("the provider exited with code 2"), end

        # a permission the requester does not hold in the project: refused, nothing made
        api.call("POST", "/api/v1/users", {"name": "dev", "email": "dev@example.com", "password": "dev-password-1"},
                 expect=201)
        api.call("POST", "/api/v1/role-bindings", {"user": "dev", "role": "developer", "project": "root/app"},
                 expect=201)
        dev = api.call("POST", "/api/v1/tokens", {"name": "dev", "scopes": ["project:read", "agent:run"],
                                                  "user": "dev", "project": "root/app"}, expect=201)["token"]
        api.call("POST", base, {"prompt": "x", "permissions": ["secret:write"]}, token=dev, expect=403)
        users = {u["name"] for u in api.call("GET", "/api/v1/users?limit=500")["items"]}
        assert len([u for u in users if u.startswith("agent-")]) == 1  # only the failed session's agent

        # stop: the process ends, the session is stopped, its token is dead
        waiting = api.call("POST", base, {"prompt": "wait for me", "permissions": ["project:read"],
                                          "timeout_seconds": 120}, expect=201)
        api.until(f"/api/v1/agent-sessions/{waiting['id']}/events",
                  lambda v: any(e["type"] == "text" for e in v["items"]))
        stopped = api.call("POST", f"/api/v1/agent-sessions/{waiting['id']}/stop", expect=200)
        assert stopped["status"] == "stopped" and stopped["error"] == f"stopped by {ADMIN[0]}"
        token = _report(tmp_path)["token"]
        api.call("GET", "/api/v1/projects/root/app", token=token, expect=401)

        # a server restart mid-session: found on start and marked failed, its process ended
        lost = api.call("POST", base, {"prompt": "wait again", "permissions": ["project:read"],
                                       "timeout_seconds": 120}, expect=201)
        api.until(f"/api/v1/agent-sessions/{lost['id']}/events",
                  lambda v: any(e["type"] == "text" for e in v["items"]))
        lost_token = _report(tmp_path)["token"]
        proc.kill()
        proc = _start(data, db_dsn, valkey_url, standin)
        api = Api(proc.base_url)
        api.setup()
        after = api.until(f"/api/v1/agent-sessions/{lost['id']}", _finished)
        assert after["status"] == "failed" and "restart or crash" in after["error"], after
        api.call("GET", "/api/v1/projects/root/app", token=lost_token, expect=401)
        workloads = list((data / "workloads" / "workloads").glob("*.json"))
        assert workloads == [], workloads
    finally:
        proc.stop()
