"""Pipelines pushed through the real git CLI, the rest of issue 13's e2e: a service running beside the steps
(in the same workspace, stopped at the end), a matrix (one workflow per value), and a secret masked in the
stored log and in the SSE stream (plain and base64-encoded).

Same wiring as ``tests/e2e/test_pipelines_e2e.py`` (the in-process Corral of ``tests/e2e/gitkit.py``, the real
``LocalExecutor``), plus a fixed ``SecretValues`` port: the engine reads the secrets through it and masks them.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import time
import uuid
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from urllib.parse import quote

import aiohttp
import pytest

from tests.e2e.gitkit import Corral, git, stop_corral, write
from tests.e2e.pipelinekit import api_call, start_pipeline_corral

pytestmark = pytest.mark.e2e

SECRET = "s3cr3t-Value-42"


class FixedSecrets:
    """The scheduler's ``SecretValues`` port: ``token`` is ``SECRET``; what it was asked is recorded."""

    def __init__(self) -> None:
        self.reads: list[tuple[str, list[str]]] = []

    async def read(self, user_id: uuid.UUID, user_name: str, project_id: uuid.UUID, names: Iterable[str],
                   reason: str) -> dict[str, str]:
        wanted = list(names)
        self.reads.append((user_name, wanted))
        return {n: SECRET for n in wanted if n == "token"}


@pytest.fixture
def secrets() -> FixedSecrets:
    return FixedSecrets()


@pytest.fixture
async def corral(tmp_path: Path, secrets: FixedSecrets) -> AsyncIterator[Corral]:
    c = await start_pipeline_corral(tmp_path, secrets=secrets)
    yield c
    await stop_corral(c)


async def _push_and_finish(corral: Corral, tmp_path: Path, s: aiohttp.ClientSession, pipeline: str,
                           timeout: float = 30) -> tuple[str, str, dict]:
    """Push ``pipeline`` as .woodpecker.yaml with the real git CLI; (token, pipeline API url, finished detail)."""
    alice = await corral.user("alice", admin=True)
    remote = await corral.project(alice)
    work = tmp_path / "work"
    await git(tmp_path, "init", "-q", "-b", "main", str(work))
    write(work / ".woodpecker.yaml", pipeline)
    await git(work, "add", ".")
    await git(work, "commit", "-qm", "add a pipeline")
    await git(work, "push", remote, "main", token=alice)
    api = f"{corral.base}/api/v1/projects/alice/app/pipelines"
    deadline = time.monotonic() + 10
    while True:
        status, page = await api_call(s, "GET", api, alice)
        assert status == 200, page
        if page["items"]:  # type: ignore[index]
            break
        assert time.monotonic() < deadline, "the push made no pipeline"
        await asyncio.sleep(0.05)
    [item] = page["items"]  # type: ignore[index]
    url = f"{api}/{item['number']}"
    deadline = time.monotonic() + timeout
    while True:
        status, body = await api_call(s, "GET", url, alice)
        assert status == 200, body
        if body["finished_at"] is not None:  # type: ignore[index]
            return alice, url, body  # type: ignore[return-value]
        assert time.monotonic() < deadline, f"pipeline not finished within {timeout} s: {body}"
        await asyncio.sleep(0.1)


async def _sse(s: aiohttp.ClientSession, url: str, token: str, timeout: float = 10) -> str:
    async with s.get(url, headers={"Authorization": f"Bearer {token}", "Accept": "text/event-stream"},
                     timeout=aiohttp.ClientTimeout(total=timeout)) as r:
        assert r.status == 200 and r.headers["Content-Type"].startswith("text/event-stream")
        return await r.text()


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


# The service writes the pid of its long-running process and a ready marker into the workspace; the step (in
# the same workspace) waits for the marker (bounded), checks that process is alive and prints its pid.
SERVICE_PIPELINE = """\
services:
  db:
    image: postgres:16
    commands:
      - sleep 60 & echo $! > svc.pid
      - echo up > svc.ready
      - wait
steps:
  probe:
    image: busybox
    commands:
      - for n in $(seq 100); do [ -s svc.ready ] && break; sleep 0.1; done
      - test -s svc.ready
      - kill -0 "$(cat svc.pid)"
      - echo "service pid $(cat svc.pid) alive"
"""


async def test_a_service_runs_beside_the_steps_and_is_stopped_at_the_end(corral: Corral, tmp_path: Path) -> None:
    async with aiohttp.ClientSession() as s:
        alice, url, detail = await _push_and_finish(corral, tmp_path, s, SERVICE_PIPELINE)
        assert detail["status"] == "success", (detail["errors"], detail["workflows"])
        [workflow] = detail["workflows"]
        steps = {st["name"]: st for st in workflow["steps"]}
        assert steps["probe"]["status"] == "success", steps
        assert "db" in steps, steps  # the service is a row of the workflow, with its own log
        assert steps["db"]["status"] == "success", steps["db"]  # stopped at the end as planned, not killed
        # it started before the step and finished after it
        assert steps["db"]["started_at"] <= steps["probe"]["started_at"]
        assert steps["db"]["finished_at"] >= steps["probe"]["finished_at"]
        status, text = await api_call(s, "GET", f"{url}/logs/probe", alice)
        assert status == 200, text
        found = re.search(r"^service pid (\d+) alive$", text, re.MULTILINE)  # type: ignore[arg-type]
        assert found, text
        pid = int(found.group(1))
        status, service_log = await api_call(s, "GET", f"{url}/logs/db", alice)
        assert status == 200 and "+ echo up > svc.ready" in service_log, service_log  # type: ignore[operator]
    deadline = time.monotonic() + 5
    while not _gone(pid):  # the service's process group was stopped with the workflow
        assert time.monotonic() < deadline, f"the service's process {pid} survived the end of the pipeline"
        await asyncio.sleep(0.05)


MATRIX_PIPELINE = """\
matrix:
  FLAVOUR:
    - vanilla
    - pistachio
steps:
  show:
    image: busybox
    commands:
      - echo "flavour=${FLAVOUR}"
"""


async def test_a_matrix_of_two_values_runs_two_workflows(corral: Corral, tmp_path: Path) -> None:
    async with aiohttp.ClientSession() as s:
        alice, url, detail = await _push_and_finish(corral, tmp_path, s, MATRIX_PIPELINE)
        assert detail["status"] == "success", (detail["errors"], detail["workflows"])
        workflows = detail["workflows"]
        assert len(workflows) == 2, workflows
        by_flavour: dict[str, dict] = {}
        for wf in workflows:
            found = re.search(r"FLAVOUR=(\w+)", wf["name"])
            assert found, wf["name"]
            by_flavour[found.group(1)] = wf
        assert set(by_flavour) == {"vanilla", "pistachio"}
        for flavour, wf in by_flavour.items():
            assert wf["status"] == "success", wf
            assert {st["name"]: st["status"] for st in wf["steps"]} == {"clone": "success", "show": "success"}
            status, text = await api_call(s, "GET", f"{url}/logs/show?workflow={quote(wf['name'], safe='')}", alice)
            assert status == 200, text
            lines = text.splitlines()  # type: ignore[union-attr]
            assert f"flavour={flavour}" in lines, (flavour, lines)
            other = ({"vanilla", "pistachio"} - {flavour}).pop()
            assert f"flavour={other}" not in lines, (flavour, lines)


SECRET_PIPELINE = """\
steps:
  leak:
    image: busybox
    environment:
      TOKEN:
        from_secret: token
    commands:
      - echo "plain=$${TOKEN}"
      - echo "b64=$(printf %s "$${TOKEN}" | base64)"
      - echo "done"
"""


async def test_a_secret_is_masked_in_the_log_and_the_stream(corral: Corral, tmp_path: Path,
                                                            secrets: FixedSecrets) -> None:
    encoded = base64.b64encode(SECRET.encode()).decode()
    async with aiohttp.ClientSession() as s:
        alice, url, detail = await _push_and_finish(corral, tmp_path, s, SECRET_PIPELINE)
        assert detail["status"] == "success", (detail["errors"], detail["workflows"])
        assert secrets.reads == [("alice", ["token"])]  # read once, as the user who pushed
        status, text = await api_call(s, "GET", f"{url}/logs/leak", alice)
        assert status == 200, text
        lines = text.splitlines()  # type: ignore[union-attr]
        assert "plain=***" in lines and "b64=***" in lines and "done" in lines, lines
        sse = await _sse(s, f"{url}/logs/leak", alice)
        assert "data: plain=***\n" in sse and "data: b64=***\n" in sse and sse.endswith("event: eof\ndata: \n\n")
        status, raw = await api_call(s, "GET", url, alice)
        for where, body in (("text log", text), ("SSE stream", sse), ("pipeline detail", str(raw))):
            assert SECRET not in body, where  # type: ignore[operator]
            assert encoded not in body and encoded.rstrip("=") not in body, where  # type: ignore[operator]
