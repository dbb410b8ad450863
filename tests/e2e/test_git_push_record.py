"""A push through the real git client is recorded exactly once even when Corral fails between git moving the
refs and the recording transaction: the intent written before git ran lets the recovery record it later."""

from __future__ import annotations

import asyncio
import os
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest

from corral.core.errors import Unavailable
from corral.core.git.recovery import recover_pushes
from corral.entrypoints.web import git_pushes
from tests.e2e.gitkit import git, write
from tests.helpers import wait_until

pytestmark = pytest.mark.e2e


async def _commit(work: Path, name: str) -> str:
    write(work / f"{name}.txt", name)
    await git(work, "add", ".")
    await git(work, "commit", "-qm", name)
    return (await git(work, "rev-parse", "HEAD")).stdout.strip()


async def _repository(corral, work: Path, first: str = "a") -> tuple[str, str, Path, str]:
    """alice (a token), her new project's remote URL, a local repository at ``work`` with one commit (its sha)."""
    alice = await corral.user("alice", admin=True)
    url = await corral.project(alice)
    await git(work.parent, "init", "-q", "-b", "main", str(work))
    return alice, url, work, await _commit(work, first)


async def _intents(corral) -> list:
    async with corral.memory() as uow:
        return await uow.push_intents.older_than(corral.kit.clock.now() + timedelta(days=1), 100)


def _pushes(corral) -> list[dict]:
    return [e.payload for e in corral.memory.events if e.topic == "push"]


async def test_a_push_whose_recording_failed_is_recovered_once(corral, tmp_path: Path, monkeypatch) -> None:
    alice, url, work, first = await _repository(corral, tmp_path / "w")
    await git(work, "push", url, "main", token=alice)
    assert [p["after"] for p in _pushes(corral)] == [first]
    assert await _intents(corral) == []  # a recorded push leaves no intent

    async def database_gone(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise Unavailable("the database is unavailable")

    monkeypatch.setattr(git_pushes, "record_push", database_gone)  # git moves the ref; recording it fails
    second = await _commit(work, "b")
    await git(work, "push", url, "main", token=alice)
    assert len(_pushes(corral)) == 1
    (intent,) = await _intents(corral)
    assert [(u.ref, u.old, u.new) for u in intent.updates] == [("refs/heads/main", first, second)]
    assert corral.kit.pushes_in_flight == set()  # over: the recovery may take it
    monkeypatch.undo()
    settled = await recover_pushes(corral.memory, corral.kit.git, corral.kit.clock, older_than=timedelta(0),
                                   abandon_after=timedelta(hours=24))
    assert settled == 1
    assert [(p["before"], p["after"], p["pusher"]["name"]) for p in _pushes(corral)][1:] == [(first, second, "alice")]
    assert await _intents(corral) == []
    assert await recover_pushes(corral.memory, corral.kit.git, corral.kit.clock, older_than=timedelta(0),
                                abandon_after=timedelta(hours=24)) == 0


async def test_no_intent_no_push(corral, tmp_path: Path, monkeypatch) -> None:
    """If the intent cannot be written, git never gets the commands: the push fails, no ref moves."""
    alice, url, work, _ = await _repository(corral, tmp_path / "w")
    original = git_pushes.announce

    async def database_gone(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise Unavailable("the database is unavailable")

    monkeypatch.setattr("corral.entrypoints.web.routes.git_http.announce", database_gone)
    refused = await git(work, "push", url, "main", token=alice, check=False)
    assert refused.returncode != 0, refused.stderr
    assert (await git(tmp_path, "ls-remote", url, token=alice)).stdout.strip() == ""
    assert _pushes(corral) == []
    monkeypatch.setattr("corral.entrypoints.web.routes.git_http.announce", original)
    await git(work, "push", url, "main", token=alice)
    assert len(_pushes(corral)) == 1


async def test_a_merge_request_merged_with_git_and_pushed_is_marked_merged(corral, tmp_path: Path) -> None:
    """An agent merges the source branch itself and pushes the target: the open merge request becomes merged
    by the pusher (Gitea's "manually merged"); one whose source is not in the pushed target stays open."""
    alice, url, work, _ = await _repository(corral, tmp_path / "w", "base")
    await git(work, "push", url, "main", token=alice)
    for branch in ("feature", "other"):
        await git(work, "checkout", "-qb", branch, "main")
        await _commit(work, branch)
        await git(work, "push", url, branch, token=alice)
    base = f"{corral.base}/api/v1/projects/alice/app/merge-requests"
    headers = {"Authorization": f"Bearer {alice}"}
    async with aiohttp.ClientSession(headers=headers) as s:
        for number, branch in ((1, "feature"), (2, "other")):
            async with s.post(base, json={"source_branch": branch, "target_branch": "main", "title": branch}) as r:
                assert r.status == 201 and (await r.json())["number"] == number
        await git(work, "checkout", "-q", "main")
        await git(work, "merge", "-q", "--ff-only", "feature")
        head = (await git(work, "rev-parse", "HEAD")).stdout.strip()
        await git(work, "push", url, "main", token=alice)
        for _ in range(500):  # the background relay (or this one) hands the push to the consumer
            await corral.relay()
            async with s.get(f"{base}/1") as r:
                merged = await r.json()
            if merged["status"] == "merged":
                break
            await asyncio.sleep(0.01)
        async with s.get(f"{base}/2") as r:
            other = await r.json()
    assert (merged["status"], merged["merge_commit_sha"]) == ("merged", head), merged
    assert other["status"] == "open"
    events = [e.payload for e in corral.memory.events if e.topic == "merge_request"]
    assert [(e["action"], e["merge_request"]["number"], e.get("manually_merged")) for e in events][-1] == (
        "merged", 1, True)
    assert [a.detail["strategy"] for a in corral.memory.audit if a.action == "merge_request.merge"] == ["push"]
    await corral.relay()  # handled once: nothing new
    assert len([e for e in corral.memory.events if e.topic == "merge_request"]) == len(events)


async def test_push_variants_are_recorded_as_git_reports_them(corral, tmp_path: Path) -> None:
    """Atomic multi-ref pushes, tags, deletions, protocol v1 and a push from a shallow clone all work through
    the in-process ref advertisement and the commands read before git starts, each recorded once."""
    alice, url, work, first = await _repository(corral, tmp_path / "w")
    await git(work, "tag", "-a", "v1", "-m", "release")
    await git(work, "branch", "b1")
    await git(work, "branch", "b2")
    await git(work, "push", "--atomic", url, "main", "b1", "b2", "--tags", token=alice)
    ls = (await git(tmp_path, "ls-remote", url, token=alice)).stdout
    assert {line.split("\t")[1] for line in ls.splitlines()} >= {"refs/heads/main", "refs/heads/b1", "refs/heads/b2",
                                                                  "refs/tags/v1", "refs/tags/v1^{}"}
    await git(work, "push", url, "--delete", "b2", token=alice)
    second = await _commit(work, "b")
    await git(work, "-c", "protocol.version=1", "push", url, "main", token=alice)
    shallow = tmp_path / "shallow"
    await git(tmp_path, "clone", "-q", "--depth", "1", url, str(shallow), token=alice)
    third = await _commit(shallow, "c")
    await git(shallow, "push", "origin", "main", token=alice)
    moves = [(p["ref"], p["before"][:7], p["after"][:7]) for p in _pushes(corral)]
    zero = "0" * 7
    tag = (await git(work, "rev-parse", "v1")).stdout.strip()
    assert sorted(moves[:4]) == sorted([("refs/heads/main", zero, first[:7]), ("refs/heads/b1", zero, first[:7]),
                                        ("refs/heads/b2", zero, first[:7]), ("refs/tags/v1", zero, tag[:7])])
    assert moves[4:] == [("refs/heads/b2", first[:7], zero), ("refs/heads/main", first[:7], second[:7]),
                         ("refs/heads/main", second[:7], third[:7])]
    assert await _intents(corral) == []


async def test_no_ref_moves_before_the_intent_is_written(corral, tmp_path: Path, monkeypatch) -> None:
    """The body streams to git while the intent is written, but its last bytes wait for it: a slow intent
    write holds the ref where it is (for a push with a pack and for one with only a deletion)."""
    import time

    alice, url, work, _ = await _repository(corral, tmp_path / "w")
    await git(work, "branch", "gone")
    await git(work, "push", url, "main", "gone", token=alice)
    async with corral.memory() as uow:
        project = await uow.projects.get_by_slug("alice", "app")
    original = git_pushes.announce
    written: list[float] = []

    async def slow(*args, **kwargs):  # type: ignore[no-untyped-def]
        await asyncio.sleep(0.5)
        intent = await original(*args, **kwargs)
        written.append(time.monotonic())
        return intent

    monkeypatch.setattr("corral.entrypoints.web.routes.git_http.announce", slow)
    second = await _commit(work, "b")
    for refspec, ref, expect in (("main", "refs/heads/main", second), (":gone", "refs/heads/gone", None)):
        written.clear()
        push = asyncio.ensure_future(git(work, "push", url, refspec, token=alice))

        async def moved(ref: str = ref, expect: str | None = expect) -> bool:
            return (await corral.kit.git.ref_values(project.repo_path, [ref])).get(ref) == expect

        await wait_until(moved, timeout=60, interval=0.01, what=f"git to move {ref}")
        moved_at = time.monotonic()
        await push
        assert written and moved_at >= written[0], (refspec, moved_at, written)


async def test_concurrent_pushes_are_each_recorded_once(corral, tmp_path: Path) -> None:
    """Eight agents push their own branches (packs over 1 MiB, so probe and chunked bodies) at the same time, and
    race each other on one branch: every ref that moved is recorded exactly once and no intent is left."""

    alice, url, base, _ = await _repository(corral, tmp_path / "base", "base")
    await git(base, "push", url, "main", token=alice)

    async def agent(n: int) -> list[str]:
        work = tmp_path / f"agent{n}"
        await git(tmp_path, "clone", "-q", url, str(work), token=alice)
        await git(work, "checkout", "-qb", f"agent-{n}")
        write(work / "blob.bin", os.urandom(1536 * 1024))
        mine = await _commit(work, f"agent {n}")
        await git(work, "push", "origin", f"agent-{n}", token=alice)
        raced = await git(work, "push", "origin", f"agent-{n}:shared", token=alice, check=False)
        return [mine, "won" if raced.returncode == 0 else "lost"]

    results = await asyncio.gather(*(agent(n) for n in range(8)))
    pushes = [(p["ref"], p["after"]) for p in _pushes(corral)]
    for n, (sha, _) in enumerate(results):
        assert pushes.count((f"refs/heads/agent-{n}", sha)) == 1
    winners = [sha for sha, outcome in results if outcome == "won"]
    shared = [after for ref, after in pushes if ref == "refs/heads/shared"]
    assert sorted(shared) == sorted(winners) and len(winners) >= 1  # a loser's rejected update is not recorded
    assert await _intents(corral) == []
    assert corral.kit.pushes_in_flight == set()
