"""A push of a Woodpecker file through the real git CLI runs as a pipeline: statuses, per-edge DAG order (with
timestamps), failure handling, the clone at the pushed commit, logs (text and SSE), a manual run with
variables, and a cancel that leaves no process behind.

Steps run on the real local executor (``corral.adapters.local_executor.LocalExecutor``: process groups, merged
output), with the engine wired onto the in-process Corral of ``tests/e2e/gitkit.py``.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.e2e.gitkit import Corral, git, stop_corral, write
from tests.e2e.pipelinekit import api_call, start_pipeline_corral, until_done

pytestmark = pytest.mark.e2e


@pytest.fixture
async def corral(tmp_path: Path) -> AsyncIterator[Corral]:
    c = await start_pipeline_corral(tmp_path)
    yield c
    await stop_corral(c)


PIPELINE = """\
steps:
  slow:
    image: alpine:3.20
    commands:
      - sleep 1.5
      - echo slow done
    depends_on: []
  fast:
    image: alpine:3.20
    commands:
      - echo "sha=$CI_COMMIT_SHA branch=$CI_COMMIT_BRANCH event=$CI_PIPELINE_EVENT"
      - cat README.txt
    depends_on: []
  after-fast:
    image: busybox
    commands: [echo after]
    depends_on: [fast]
  broken:
    image: busybox
    commands: [echo breaking, exit 3]
    depends_on: [slow]
  never:
    image: busybox
    commands: [echo never]
    depends_on: [broken]
  tolerated:
    image: busybox
    commands: [exit 1]
    depends_on: [fast]
    failure: ignore
  report:
    image: busybox
    commands: [echo reporting the failure]
    depends_on: [broken]
    when:
      status: [failure]
  docs-only:
    image: busybox
    commands: [echo docs]
    depends_on: []
    when:
      path: "docs/**"
"""


async def test_a_pushed_woodpecker_file_runs(corral: Corral, tmp_path: Path) -> None:
    alice = await corral.user("alice", admin=True)
    remote = await corral.project(alice)
    work = tmp_path / "work"
    await git(tmp_path, "init", "-q", "-b", "main", str(work))
    write(work / ".woodpecker.yaml", PIPELINE)
    write(work / "README.txt", "hello from the pushed commit")
    await git(work, "add", ".")
    await git(work, "commit", "-qm", "add a pipeline")
    sha = (await git(work, "rev-parse", "HEAD")).stdout.strip()
    await git(work, "push", remote, "main", token=alice)
    api = f"{corral.base}/api/v1/projects/alice/app/pipelines"
    async with aiohttp.ClientSession() as s:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            status, page = await api_call(s, "GET", api, alice)
            assert status == 200, page
            if page["items"]:  # type: ignore[index]
                break
            await asyncio.sleep(0.05)
        [item] = page["items"]  # type: ignore[index]
        assert item["event"] == "push" and item["ref"] == "refs/heads/main" and item["commit_sha"] == sha
        detail = await until_done(s, f"{api}/{item['number']}", alice)
        assert detail["status"] == "failure", (detail["errors"], detail["workflows"])
        [workflow] = detail["workflows"]
        steps = {st["name"]: st for st in workflow["steps"]}
        assert {n: st["status"] for n, st in steps.items()} == {
            "clone": "success", "slow": "success", "fast": "success", "after-fast": "success", "broken": "failure",
            "never": "skipped", "tolerated": "failure", "report": "success"}  # docs-only: path filter, not planned
        assert steps["broken"]["exit_code"] == 3
        # per edge: after-fast waited only for fast, not for slow
        assert steps["after-fast"]["started_at"] < steps["slow"]["finished_at"]
        assert steps["broken"]["started_at"] >= steps["slow"]["finished_at"]
        status, text = await api_call(s, "GET", f"{api}/{item['number']}/logs/fast", alice)
        assert status == 200
        assert text.splitlines() == [  # type: ignore[union-attr]
            "image alpine:3.20 is not used by the local executor",
            f'+ echo "sha={sha} branch=main event=push"',  # substituted in the file first, as Woodpecker does
            f"sha={sha} branch=main event=push", "+ cat README.txt", "hello from the pushed commit"]
        async with s.get(f"{api}/{item['number']}/logs/broken",
                         headers={"Authorization": f"Bearer {alice}", "Accept": "text/event-stream",
                                  "Last-Event-ID": "1"}) as r:
            assert r.headers["Content-Type"].startswith("text/event-stream")
            sse = await r.text()
        assert sse == ("id: 2\ndata: + echo breaking\n\nid: 3\ndata: breaking\n\nid: 4\ndata: + exit 3\n\n"
                       "event: eof\ndata: \n\n")
        assert "id: 1\n" not in sse  # resumed after Last-Event-ID

        # a manual run with a variable, cancelled while it sleeps: nothing is left running
        write(work / ".woodpecker.yaml", "steps:\n  wait:\n    image: busybox\n    commands:\n"
                                         "      - sleep 60 & echo $! > \"$PIDFILE\"\n"
                                         "      - wait\n")
        await git(work, "commit", "-qam", "a long step [skip ci]")
        await git(work, "push", remote, "main", token=alice)
        pidfile = tmp_path / "sleep.pid"
        status, run = await api_call(s, "POST", api, alice,
                                     json={"ref": "main", "variables": {"PIDFILE": str(pidfile)}})
        assert status == 201, run
        assert run["status"] == "pending" and run["workflows"][0]["steps"][1]["name"] == "wait"  # type: ignore[index]
        deadline = time.monotonic() + 15
        while not pidfile.exists() or not pidfile.read_text().strip():
            assert time.monotonic() < deadline, "the step did not start"
            await asyncio.sleep(0.05)
        pid = int(pidfile.read_text())
        status, cancelled = await api_call(s, "POST", f"{api}/{run['number']}/cancel", alice)  # type: ignore[index]
        assert status == 200, cancelled
        done = await until_done(s, f"{api}/{run['number']}", alice, timeout=10)  # type: ignore[index]
        assert done["status"] == "killed"
        assert done["workflows"][0]["steps"][1]["status"] == "killed"
        deadline = time.monotonic() + 5
        while True:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            assert time.monotonic() < deadline, "the step's background process survived the cancel"
            await asyncio.sleep(0.05)
        status, page = await api_call(s, "GET", api, alice)
        assert [i["number"] for i in page["items"]] == [run["number"], item["number"]]  # type: ignore[index]
