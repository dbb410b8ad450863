"""git's probe before a large chunked request ("0000" when the body exceeds http.postBuffer) is answered by
Corral without starting git, exactly as the pack programs answer it; the real git client pushes and fetches
through it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import subprocess
from pathlib import Path

import aiohttp
import pytest

from corral.fakes.projects import InMemoryProjectStore
from tests.e2e.gitkit import git, write

pytestmark = pytest.mark.e2e


def _spawns(corral) -> list[tuple[str, bool]]:
    """Record (service, advertise) of every git service process Corral starts from now on."""
    seen: list[tuple[str, bool]] = []
    original = corral.kit.git.open_exchange

    async def spy(repo, service, **kw):  # type: ignore[no-untyped-def]
        seen.append((service, kw["advertise"]))
        return await original(repo, service, **kw)

    corral.kit.git.open_exchange = spy
    return seen


async def test_large_push_probe_answered_without_git(corral, tmp_path: Path, monkeypatch) -> None:
    alice = await corral.user("alice", admin=True)
    url = await corral.project(alice)
    work = tmp_path / "w"
    await git(tmp_path, "init", "-q", "-b", "main", str(work))
    write(work / "big.bin", os.urandom(3 * 1024 * 1024))  # incompressible: the pack exceeds http.postBuffer
    await git(work, "add", ".")
    await git(work, "commit", "-qm", "big")
    spawned = _spawns(corral)
    reads: list[str] = []
    slug_read = InMemoryProjectStore.get_by_slug
    rules_read = type(corral.kit.protections).list

    async def get_by_slug(self, owner, name):  # type: ignore[no-untyped-def]
        reads.append("project")
        return await slug_read(self, owner, name)

    async def rules(self, project):  # type: ignore[no-untyped-def]
        reads.append("protections")
        return await rules_read(self, project)

    monkeypatch.setattr(InMemoryProjectStore, "get_by_slug", get_by_slug)
    monkeypatch.setattr(type(corral.kit.protections), "list", rules)
    corral.requests.clear()
    await git(work, "push", url, "main", token=alice)
    posts = [p for m, p in corral.requests if m == "POST"]
    assert posts == ["/alice/app.git/git-receive-pack"] * 2  # the probe, then the pack
    # no git for the probe, nor for discovery (the refs are read from the ref files): one receive-pack
    assert spawned == [("receive-pack", False)]
    # one git operation, one connection: the project and the branch protection are read once (at discovery)
    assert sorted(reads) == ["project", "protections"], reads
    pushes = [e.payload for e in corral.memory.events if e.topic == "push"]
    head = (await git(work, "rev-parse", "HEAD")).stdout.strip()
    assert [(p["ref"], p["after"]) for p in pushes] == [("refs/heads/main", head)]
    # a clone with a large fetch request (many haves would do the same) still works through the short-cut path
    await git(tmp_path, "clone", "-q", url, "c", token=alice)
    assert (tmp_path / "c" / "big.bin").read_bytes() == (work / "big.bin").read_bytes()


async def _post(url: str, service: str, body: bytes, token: str, protocol: str | None) -> tuple[int, str, bytes]:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": f"application/x-git-{service}-request"}
    if protocol:
        headers["Git-Protocol"] = protocol
    async with aiohttp.ClientSession() as s, s.post(f"{url}/git-{service}", data=body, headers=headers) as r:
        return r.status, r.headers.get("Content-Type", ""), await r.read()


def _real_git(repo: Path, service: str, body: bytes, protocol: str | None) -> bytes:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(repo)}
    if protocol:
        env["GIT_PROTOCOL"] = protocol
    done = subprocess.run(["git", service, "--stateless-rpc", str(repo)], input=body, capture_output=True, env=env,
                          timeout=30, check=False)
    return done.stdout


@pytest.mark.parametrize(("service", "protocol"), [
    ("receive-pack", None), ("receive-pack", "version=1"), ("upload-pack", None), ("upload-pack", "version=2"),
])
async def test_probe_answer_is_byte_for_byte_what_git_answers(corral, tmp_path: Path, service: str,
                                                              protocol: str | None) -> None:
    alice = await corral.user("alice", admin=True)
    url = await corral.project(alice)
    work = tmp_path / "w"
    await git(tmp_path, "clone", "-q", url, "w", token=alice)
    write(work / "a.txt", "a\n")
    await git(work, "add", ".")
    await git(work, "commit", "-qm", "a")
    await git(work, "push", "-q", "origin", "main", token=alice)
    async with corral.kit.uow_factory() as uow:
        project = await uow.projects.get_by_slug("alice", "app")
    repo = corral.kit.git.path(project.repo_path)
    spawned = _spawns(corral)
    status, content_type, body = await _post(url, service, b"0000", alice, protocol)
    expected = await asyncio.to_thread(_real_git, repo, service, b"0000", protocol)
    assert (status, content_type, body) == (200, f"application/x-git-{service}-result", expected)
    assert spawned == []
    # four bytes that are not a lone flush still go to git, unchanged
    status, _, body = await _post(url, service, b"0001", alice, protocol)
    assert status == 200 and spawned == [(service, False)]
    assert body == await asyncio.to_thread(_real_git, repo, service, b"0001", protocol)


async def test_hook_runs_only_for_pushes_a_rule_can_refuse(corral, tmp_path: Path) -> None:
    """With 'main' protected, a push of a feature branch starts receive-pack without the pre-receive hook;
    a push to main still gets it, and a force-push there is still refused with git's reason."""
    alice = await corral.user("alice", admin=True)
    url = await corral.project(alice)
    async with aiohttp.ClientSession() as s, s.post(
        f"{corral.base}/api/v1/projects/alice/app/branch-protections", json={"pattern": "main"},
        headers={"Authorization": f"Bearer {alice}"},
    ) as r:
        assert r.status == 201, await r.text()
    work = tmp_path / "w"
    await git(tmp_path, "init", "-q", "-b", "main", str(work))
    for name in ("a", "b"):
        write(work / f"{name}.txt", name)
        await git(work, "add", ".")
        await git(work, "commit", "-qm", name)
    rules_seen: list[list[str]] = []
    original = corral.kit.git.open_exchange

    async def spy(repo, service, **kw):  # type: ignore[no-untyped-def]
        if service == "receive-pack" and not kw["advertise"]:
            rules_seen.append([r.pattern for r in kw["push_rules"]])
        return await original(repo, service, **kw)

    corral.kit.git.open_exchange = spy
    await git(work, "push", url, "main", token=alice)
    await git(work, "push", url, "main:feature/x", token=alice)
    await git(work, "reset", "-q", "--hard", "HEAD~1")
    refused = await git(work, "push", "--force", url, "main", token=alice, check=False)
    assert refused.returncode != 0 and "force-push" in refused.stderr, refused.stderr
    assert rules_seen == [["main"], [], ["main"]]
    await git(work, "push", "--force", url, "main:feature/x", token=alice)  # no rule: nothing refuses it
    assert rules_seen[-1] == []


async def test_client_gone_mid_pack_stops_git_and_changes_nothing(corral, tmp_path: Path, caplog) -> None:
    """A pusher whose connection drops while its pack streams: receive-pack is stopped, no ref moves, nothing
    is recorded, the pipe's writer thread is freed, nothing is logged as an error, and the next push works."""
    caplog.set_level(logging.INFO)
    alice = await corral.user("alice", admin=True)
    url = await corral.project(alice)
    started: list = []
    original = corral.kit.git.open_exchange

    async def keep(repo, service, **kw):  # type: ignore[no-untyped-def]
        spawned = await original(repo, service, **kw)
        started.append(spawned)
        return spawned

    corral.kit.git.open_exchange = keep
    # a real pack of a 3 MiB commit, cut after 2 MiB: git has read all it got and waits for the rest
    work = tmp_path / "w"
    await git(tmp_path, "init", "-q", "-b", "main", str(work))
    write(work / "big.bin", os.urandom(3 * 1024 * 1024))
    await git(work, "add", ".")
    await git(work, "commit", "-qm", "big")
    tip = (await git(work, "rev-parse", "HEAD")).stdout.strip()
    full = subprocess.run(["git", "pack-objects", "--stdout", "--revs"], cwd=work, input=b"HEAD\n",
                          capture_output=True, check=True).stdout
    pack = full[: 2 * 1024 * 1024]
    zero = "0" * 40
    commands = f"{zero} {tip} refs/heads/main\x00report-status side-band-64k\n".encode()
    head = f"{len(commands) + 4:04x}".encode() + commands + b"0000"
    sent = asyncio.Event()

    async def body():  # type: ignore[no-untyped-def]
        yield head
        for i in range(0, len(pack), 65536):
            yield pack[i:i + 65536]
        sent.set()
        await asyncio.sleep(3600)  # the client hangs, then goes away (cancelled below)

    async with aiohttp.ClientSession() as s:
        post = asyncio.ensure_future(s.post(
            f"{url}/git-receive-pack", data=body(), headers={
                "Authorization": f"Bearer {alice}", "Content-Type": "application/x-git-receive-pack-request"}))
        await asyncio.wait_for(sent.wait(), 30)
        for _ in range(3000):  # git has started and is reading the pack
            if started:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)
        assert started and started[0].process.returncode is None  # git waits for the rest of the pack
        post.cancel()
        with contextlib.suppress(asyncio.CancelledError, aiohttp.ClientError):
            await post
    assert len(started) == 1
    process = started[0].process
    await asyncio.wait_for(process.wait(), 30)  # git was stopped (it would wait for the rest forever)
    for _ in range(300):  # the writer thread returns once git is gone, then the pipe closes
        if started[0].stdin._closed and not _fd_open(started[0].stdin.fd):
            break
        await asyncio.sleep(0.01)
    assert not _fd_open(started[0].stdin.fd)
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("went away" in r.getMessage() for r in caplog.records)
    ls = await git(tmp_path, "ls-remote", url, token=alice)
    assert ls.stdout.strip() == ""  # no ref moved
    assert [e for e in corral.memory.events if e.topic == "push"] == []
    await git(work, "push", url, "main", token=alice)
    assert len([e for e in corral.memory.events if e.topic == "push"]) == 1


def _fd_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True
