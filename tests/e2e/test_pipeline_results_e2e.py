"""Caches, artifacts, commit status, required checks and cron schedules with the real git CLI and the real
local executor: a push saves a cache and uploads artifacts (listed and downloaded through the API), a push of
another branch restores the default branch's cache, a failing merge request's merge is refused naming the
check, and a due schedule runs a ``cron`` pipeline that sees ``CI_PIPELINE_CRON``."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from corral.adapters.cron import CroniterRules
from corral.adapters.pipeline_yaml import PyYamlPipelineFileParser
from corral.core.pipelines.schedules import ScheduleRunner, ScheduleService
from corral.fakes.clock import FakeClock
from tests.e2e.gitkit import Corral, git, stop_corral, write
from tests.e2e.pipelinekit import api_call, start_pipeline_corral, until_done

pytestmark = pytest.mark.e2e

PIPELINE = """\
steps:
  build:
    image: busybox
    commands:
      - cat deps/stamp 2>/dev/null || echo cold cache
      - mkdir -p deps dist && echo "warm from $CI_COMMIT_BRANCH" > deps/stamp
      - echo "artifact of $CI_PIPELINE_NUMBER" > dist/app.txt
      - echo "cron=$CI_PIPELINE_CRON"
      - test "$FAIL" != yes
    cache:
      key: deps
      paths: [deps]
    artifacts:
      paths: ["dist/**"]
      expire_in: 1h
"""


def _schedules(c: Corral, platform: Any) -> None:
    platform.register(ScheduleService, ScheduleService(c.memory, c.kit.git, CroniterRules(), c.kit.clock))


@pytest.fixture
async def corral(tmp_path: Path) -> AsyncIterator[Corral]:
    c = await start_pipeline_corral(tmp_path, objects=True, extra=_schedules)
    yield c
    await stop_corral(c)


async def _newest(s: aiohttp.ClientSession, api: str, token: str, after: int, timeout: float = 10) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, page = await api_call(s, "GET", api, token)
        assert status == 200, page
        numbers = [i["number"] for i in page["items"] if i["number"] > after]  # type: ignore[index]
        if numbers:
            return max(numbers)
        await asyncio.sleep(0.05)
    raise AssertionError(f"no pipeline after #{after} within {timeout} s")


async def test_cache_artifacts_status_checks_and_schedules(corral: Corral, tmp_path: Path) -> None:
    alice = await corral.user("alice", admin=True)
    remote = await corral.project(alice)
    work = tmp_path / "work"
    await git(tmp_path, "init", "-q", "-b", "main", str(work))
    write(work / ".woodpecker.yaml", PIPELINE)
    await git(work, "add", ".")
    await git(work, "commit", "-qm", "a pipeline with a cache and artifacts")
    main_sha = (await git(work, "rev-parse", "HEAD")).stdout.strip()
    await git(work, "push", remote, "main", token=alice)
    project = f"{corral.base}/api/v1/projects/alice/app"
    api = f"{project}/pipelines"
    async with aiohttp.ClientSession() as s:
        first = await _newest(s, api, alice, 0)
        done = await until_done(s, f"{api}/{first}", alice)
        assert done["status"] == "success", done
        status, log = await api_call(s, "GET", f"{api}/{first}/logs/build", alice)
        assert "cache deps: nothing to restore yet" in log and "cold cache" in log  # type: ignore[operator]
        assert "cache deps: saved (" in log  # type: ignore[operator]

        status, listed = await api_call(s, "GET", f"{api}/{first}/artifacts", alice)
        assert status == 200, listed
        [item] = listed["items"]  # type: ignore[index]
        assert (item["name"], item["step"], item["size"]) == ("dist/app.txt", "build", len(f"artifact of {first}\n"))
        assert item["expires_at"] is not None
        async with s.get(f"{api}/{first}/artifacts/dist/app.txt", headers={"Authorization": f"Bearer {alice}"}) as r:
            assert r.status == 200
            assert await r.read() == f"artifact of {first}\n".encode()
        status, missing = await api_call(s, "GET", f"{api}/{first}/artifacts/dist/nope.txt", alice)
        assert status == 404, missing

        status, commit = await api_call(s, "GET", f"{project}/commits/{main_sha}/status", alice)
        assert status == 200, commit
        assert commit["state"] == "success" and commit["sha"] == main_sha  # type: ignore[index]
        assert commit["pipelines"][0]["workflows"] == [{"name": "woodpecker", "status": "success"}]  # type: ignore[index]

        # another branch restores the default branch's cache; a failing branch fails its required check
        await git(work, "checkout", "-qb", "feature")
        write(work / "feature.txt", "f")
        await git(work, "add", ".")
        await git(work, "commit", "-qm", "feature")
        await git(work, "push", remote, "feature", token=alice)
        second = await _newest(s, api, alice, first)
        assert (await until_done(s, f"{api}/{second}", alice))["status"] == "success"
        status, log = await api_call(s, "GET", f"{api}/{second}/logs/build", alice)
        assert "cache deps: restored (from the default branch main)" in log, log  # type: ignore[operator]
        assert "warm from main" in log  # type: ignore[operator]

        status, rule = await api_call(s, "POST", f"{project}/branch-protections", alice,
                                  json={"pattern": "main", "required_checks": ["woodpecker"]})
        assert status == 201 and rule["required_checks"] == ["woodpecker"], rule  # type: ignore[index]
        await git(work, "checkout", "-qb", "broken", "main")
        write(work / ".woodpecker.yaml", PIPELINE.replace('test "$FAIL" != yes', "exit 4"))
        await git(work, "commit", "-qam", "breaks the build")
        await git(work, "push", remote, "broken", token=alice)
        third = await _newest(s, api, alice, second)
        assert (await until_done(s, f"{api}/{third}", alice))["status"] == "failure"
        status, mr = await api_call(s, "POST", f"{project}/merge-requests", alice,
                                json={"source_branch": "broken", "title": "broken"})
        assert status == 201, mr
        status, refused = await api_call(s, "POST", f"{project}/merge-requests/{mr['number']}/merge", alice,  # type: ignore[index]
                                     json={})
        assert status == 409, refused
        problem = json.loads(refused)  # type: ignore[arg-type]  # application/problem+json
        assert f"woodpecker: failed (failure in pipeline #{third})" in problem["detail"], problem
        deadline = time.monotonic() + 30
        while True:  # the merge request's source head: its own pull_request run may still be going
            status, got = await api_call(s, "GET", f"{project}/merge-requests/{mr['number']}", alice)  # type: ignore[index]
            assert status == 200, got
            if got["pipeline_status"] not in ("pending", "running"):  # type: ignore[index]
                break
            assert time.monotonic() < deadline, got
            await asyncio.sleep(0.1)
        assert got["pipeline_status"] == "failure", got  # type: ignore[index]
        status, listed = await api_call(s, "GET", f"{project}/merge-requests", alice)
        assert [m["pipeline_status"] for m in listed["items"]] == [None]  # type: ignore[index]  # GET of one only
        status, mr = await api_call(s, "POST", f"{project}/merge-requests", alice,
                                json={"source_branch": "feature", "title": "feature"})
        assert status == 201, mr
        # the merge request's own pipeline_request run may still be running: wait for the commit's status
        feature_sha = (await git(work, "rev-parse", "feature")).stdout.strip()
        deadline = time.monotonic() + 30
        while True:
            status, commit = await api_call(s, "GET", f"{project}/commits/feature/status", alice)
            assert status == 200 and commit["sha"] == feature_sha, commit  # type: ignore[index]
            if commit["state"] not in ("pending", "running"):  # type: ignore[index]
                break
            assert time.monotonic() < deadline, commit
            await asyncio.sleep(0.1)
        status, got = await api_call(s, "GET", f"{project}/merge-requests/{mr['number']}", alice)  # type: ignore[index]
        assert status == 200 and got["pipeline_status"] == commit["state"] == "success", got  # type: ignore[index]
        status, merged = await api_call(s, "POST", f"{project}/merge-requests/{mr['number']}/merge", alice,  # type: ignore[index]
                                    json={})
        assert status == 200 and merged["status"] == "merged", merged  # type: ignore[index]

        # schedules: created through the API, fired by the runner at their due time
        status, made = await api_call(s, "POST", f"{project}/pipeline-schedules", alice,
                                  json={"name": "nightly", "cron": "0 3 * * *", "variables": {"MODE": "full"}})
        assert status == 201, made
        assert made["branch"] == "main" and made["next_run_at"].endswith("03:00:00+00:00")  # type: ignore[index]
        status, bad = await api_call(s, "POST", f"{project}/pipeline-schedules", alice,
                                 json={"name": "bad", "cron": "every night"})
        assert status == 400 and "cron" in str(bad), bad
        status, listed = await api_call(s, "GET", f"{project}/pipeline-schedules", alice)
        assert [i["name"] for i in listed["items"]] == ["nightly"]  # type: ignore[index]
        clock = FakeClock.real_time()
        clock.set(datetime.fromisoformat(made["next_run_at"]))  # type: ignore[index]
        runner = ScheduleRunner(corral.memory, corral.kit.git, PyYamlPipelineFileParser(), CroniterRules(), clock,
                                corral.base)
        assert await runner.run_once() == 1
        assert await runner.run_once() == 0  # once per due time
        deadline = time.monotonic() + 10
        while True:
            status, page = await api_call(s, "GET", api, alice)
            crons = [i["number"] for i in page["items"] if i["event"] == "cron"]  # type: ignore[index]
            if crons:
                break
            assert time.monotonic() < deadline, page
            await asyncio.sleep(0.05)
        [cron] = crons
        done = await until_done(s, f"{api}/{cron}", alice)
        assert done["event"] == "cron" and done["status"] == "success", done
        status, log = await api_call(s, "GET", f"{api}/{cron}/logs/build", alice)
        assert "cron=nightly" in log, log  # type: ignore[operator]
        status, _ = await api_call(s, "DELETE", f"{project}/pipeline-schedules/nightly", alice)
        assert status == 204
        status, listed = await api_call(s, "GET", f"{project}/pipeline-schedules", alice)
        assert listed["items"] == []  # type: ignore[index]
