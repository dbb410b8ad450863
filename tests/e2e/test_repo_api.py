"""Gitea-like repository API against real git repositories, driven by the real git CLI: the contents API (a file
written through it is in the next pull; a protected branch refuses it with the push's words; a stale sha is a
409), branches and tags, archives (the same tree as ``git archive``), and merge requests (mergeable and
conflicting paths, drafts, "Closes #N", commits and files). Every JSON answer is checked against the OpenAPI
document."""

from __future__ import annotations

import base64
import io
import subprocess
import tarfile
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.e2e.gitkit import Corral, git, start_corral, stop_corral, write

pytestmark = pytest.mark.e2e

API = "/api/v1/projects/alice/app"


@pytest.fixture
async def corral(tmp_path: Path) -> AsyncIterator[Corral]:
    c = await start_corral(tmp_path, validate_responses=True)
    yield c
    await stop_corral(c)


async def api(c: Corral, method: str, path: str, token: str | None = None, **kw):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as s, s.request(method, c.base + path, headers=headers, **kw) as r:
        if r.content_type.endswith("json"):
            return r.status, await r.json()
        return r.status, await r.read()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def _seeded(corral: Corral, tmp_path: Path) -> tuple[str, Path]:
    alice = await corral.user("alice", admin=True)
    url = await corral.project(alice)
    work = tmp_path / "w"
    await git(tmp_path, "clone", url, "w", token=alice)
    write(work / "README.md", "hello\n")
    write(work / "src/app.py", "print('hi')\n")
    write(work / "run.sh", "#!/bin/sh\necho run\n")
    (work / "run.sh").chmod(0o755)
    await git(work, "add", ".")
    await git(work, "commit", "-qm", "first")
    await git(work, "push", "origin", "main", token=alice)
    return alice, work


def _pushes(corral: Corral) -> list[dict]:
    return [e.payload for e in corral.memory.events if e.topic == "push"]


async def test_contents_api_round_trip_with_git(corral: Corral, tmp_path: Path) -> None:
    alice, work = await _seeded(corral, tmp_path)
    readme_sha = (await git(work, "rev-parse", "HEAD:README.md")).stdout.strip()
    status, got = await api(corral, "GET", f"{API}/contents/README.md", alice)
    assert status == 200, got
    assert (got["type"], got["sha"], got["size"], base64.b64decode(got["content"])) == (
        "file", readme_sha, 6, b"hello\n")
    status, folder = await api(corral, "GET", f"{API}/contents/src?ref=main", alice)
    assert status == 200 and folder["type"] == "dir" and [e["name"] for e in folder["entries"]] == ["app.py"]
    status, root = await api(corral, "GET", f"{API}/contents", alice)
    assert status == 200 and {e["name"] for e in root["entries"]} == {"README.md", "run.sh", "src"}

    # create: 201, then the next pull has it
    status, created = await api(corral, "PUT", f"{API}/contents/docs/new.md", alice, json={
        "content": b64(b"# New\n"), "message": "Add docs", "branch": "main", "new_branch": None, "sha": None,
        "author": {"name": "Ann Agent", "email": "ann@example.com"}})
    assert status == 201, created
    await git(work, "pull", "-q", "origin", "main", token=alice)
    assert (work / "docs/new.md").read_text() == "# New\n"
    assert (await git(work, "rev-parse", "HEAD")).stdout.strip() == created["commit"]["sha"]
    assert (await git(work, "rev-parse", "HEAD:docs/new.md")).stdout.strip() == created["content"]["sha"]
    log = (await git(work, "log", "-1", "--format=%an <%ae>|%cn|%s")).stdout.strip()
    assert log == "Ann Agent <ann@example.com>|alice|Add docs"

    # update with the current sha: 200; with the old one again: 409 (the file changed meanwhile)
    status, updated = await api(corral, "PUT", f"{API}/contents/README.md", alice, json={
        "content": b64(b"hello again\n"), "message": "Update readme", "sha": readme_sha})
    assert status == 200, updated
    status, stale = await api(corral, "PUT", f"{API}/contents/README.md", alice, json={
        "content": b64(b"lost update\n"), "message": "x", "sha": readme_sha})
    assert status == 409 and stale["reason"] == "stale_sha", stale
    assert stale["sha"] == (await api(corral, "GET", f"{API}/contents/README.md", alice))[1]["sha"]
    # several files in one commit, on a new branch; the executable bit of run.sh is kept
    status, multi = await api(corral, "POST", f"{API}/contents", alice, json={
        "message": "Three at once", "branch": "main", "new_branch": "multi", "files": [
            {"operation": "create", "path": "a/b.txt", "content": b64(b"b\n")},
            {"operation": "update", "path": "run.sh", "content": b64(b"#!/bin/sh\necho ran\n"),
             "sha": (await git(work, "rev-parse", "HEAD:run.sh")).stdout.strip()},
            {"operation": "delete", "path": "src/app.py",
             "sha": (await git(work, "rev-parse", "HEAD:src/app.py")).stdout.strip()},
        ]})
    assert status == 201, multi
    await git(work, "fetch", "-q", "origin", token=alice)
    tree = (await git(work, "ls-tree", "-r", "origin/multi")).stdout
    assert "100755 blob" in next(line for line in tree.splitlines() if line.endswith("run.sh"))
    assert "a/b.txt" in tree and "src/app.py" not in tree
    assert (await git(work, "rev-list", "--count", "origin/main..origin/multi")).stdout.strip() == "1"
    # delete
    status, deleted = await api(corral, "DELETE", f"{API}/contents/docs/new.md", alice, json={
        "message": "Drop docs", "sha": created["content"]["sha"]})
    assert status == 200 and deleted["content"] is None, deleted
    await git(work, "pull", "-q", "origin", "main", token=alice)
    assert not (work / "docs/new.md").exists() and (work / "README.md").read_text() == "hello again\n"

    # every write was recorded once, like a push, and audited
    pushes = _pushes(corral)
    api_pushes = [p for p in pushes if p["via"] == "api"]
    assert [p["branch"] for p in api_pushes] == ["main", "main", "multi", "main"]
    assert api_pushes[0]["after"] == created["commit"]["sha"]
    assert len([a for a in corral.memory.audit if a.action == "repo.push"]) == len(pushes)
    async with corral.memory() as uow:
        assert await uow.push_intents.older_than(corral.kit.clock.now(), 10) == []
    # readers may read, not write
    bob = await corral.user("bob", "viewer")
    status, _ = await api(corral, "PUT", f"{API}/contents/x.txt", bob, json={"content": b64(b"x")})
    assert status in (403, 404)


async def test_a_protected_branch_refuses_an_api_write_like_a_push(corral: Corral, tmp_path: Path) -> None:
    alice, work = await _seeded(corral, tmp_path)
    status, _ = await api(corral, "POST", f"{API}/branch-protections", alice,
                          json={"pattern": "main", "require_merge_request": True})
    assert status == 201
    head = (await git(work, "rev-parse", "HEAD")).stdout.strip()
    write(work / "x.txt", "x")
    await git(work, "add", ".")
    await git(work, "commit", "-qm", "direct")
    pushed = await git(work, "push", "origin", "main", token=alice, check=False)
    assert pushed.returncode != 0
    status, refused = await api(corral, "PUT", f"{API}/contents/x.txt", alice, json={"content": b64(b"x")})
    assert status == 403, refused
    assert refused["detail"] in pushed.stderr  # the pre-receive hook's very words
    assert "changes must go through a merge request" in refused["detail"]
    status, _ = await api(corral, "DELETE", f"{API}/repo/branches/main", alice)
    assert status == 409  # the default branch
    status, branches = await api(corral, "GET", f"{API}/repo/branches", alice)
    assert branches["items"][0]["commit"]["sha"] == head
    assert [p for p in _pushes(corral) if p["via"] == "api"] == []


async def test_branches_tags_and_compare(corral: Corral, tmp_path: Path) -> None:
    alice, work = await _seeded(corral, tmp_path)
    head = (await git(work, "rev-parse", "HEAD")).stdout.strip()
    status, branch = await api(corral, "POST", f"{API}/repo/branches", alice, json={"name": "dev", "from": "main"})
    assert status == 201 and branch["commit"]["sha"] == head, branch
    status, _ = await api(corral, "POST", f"{API}/repo/branches", alice, json={"name": "dev"})
    assert status == 409
    status, bad = await api(corral, "POST", f"{API}/repo/branches", alice, json={"name": "x", "form": "main"})
    assert status == 400 and bad["field"] == "form"
    status, tag = await api(corral, "POST", f"{API}/repo/tags", alice, json={"name": "v1.0", "target": "dev"})
    assert status == 201 and tag["sha"] == head
    await api(corral, "PUT", f"{API}/contents/dev.txt", alice, json={"content": b64(b"d"), "branch": "dev"})
    await api(corral, "PUT", f"{API}/contents/main.txt", alice, json={"content": b64(b"m")})
    status, cmp = await api(corral, "GET", f"{API}/repo/compare/main...dev", alice)
    assert status == 200 and (cmp["ahead_by"], cmp["behind_by"]) == (1, 1), cmp
    listed = (await git(work, "ls-remote", "origin", token=alice)).stdout
    assert "refs/heads/dev" in listed and "refs/tags/v1.0" in listed
    status, _ = await api(corral, "DELETE", f"{API}/repo/tags/v1.0", alice)
    assert status == 204
    status, _ = await api(corral, "DELETE", f"{API}/repo/branches/dev", alice)
    assert status == 204
    listed = (await git(work, "ls-remote", "origin", token=alice)).stdout
    assert "refs/heads/dev" not in listed and "refs/tags/v1.0" not in listed
    status, _ = await api(corral, "DELETE", f"{API}/repo/branches/dev", alice)
    assert status == 404
    refs = [(p["ref"], p["deleted"]) for p in _pushes(corral) if p["via"] == "api"]
    assert refs == [("refs/heads/dev", False), ("refs/tags/v1.0", False), ("refs/heads/dev", False),
                    ("refs/heads/main", False), ("refs/tags/v1.0", True), ("refs/heads/dev", True)]


def _tree_of_tar(data: bytes) -> dict[str, tuple[bytes, bool]]:
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        return {m.name: (t.extractfile(m).read(), bool(m.mode & 0o100))  # type: ignore[union-attr]
                for m in t.getmembers() if m.isfile()}


async def test_archives_unpack_to_the_tree_git_archive_makes(corral: Corral, tmp_path: Path) -> None:
    alice, work = await _seeded(corral, tmp_path)
    await git(work, "checkout", "-qb", "feature/x")
    write(work / "f.txt", "f\n")
    await git(work, "add", ".")
    await git(work, "commit", "-qm", "f")
    await git(work, "push", "origin", "feature/x", token=alice)
    for ref, prefix in (("main", "app-main/"), ("feature/x", "app-feature-x/")):
        status, tgz = await api(corral, "GET", f"{API}/archive/{ref}.tar.gz", alice)
        assert status == 200, tgz
        expected = subprocess.run(["git", "archive", f"--prefix={prefix}", f"origin/{ref}" if ref != "main" else
                                   "main"], cwd=work, capture_output=True, check=True).stdout
        assert _tree_of_tar(tgz) == _tree_of_tar(expected)
        status, raw = await api(corral, "GET", f"{API}/archive/{ref}.zip", alice)
        assert status == 200
        with zipfile.ZipFile(io.BytesIO(raw)) as z:
            assert {n: z.read(n) for n in z.namelist() if not n.endswith("/")} == {
                k: v for k, (v, _) in _tree_of_tar(expected).items()}
    async with aiohttp.ClientSession() as s, s.get(f"{corral.base}{API}/archive/main.tar.gz",
                                                   headers={"Authorization": f"Bearer {alice}"}) as r:
        assert r.status == 200 and r.headers["X-Corral-Archive-Cache"] == "hit"
        assert r.headers["Content-Disposition"] == 'attachment; filename="app-main.tar.gz"'
    status, _ = await api(corral, "GET", f"{API}/archive/no-such.zip", alice)
    assert status == 404


async def test_merge_requests_like_gitea(corral: Corral, tmp_path: Path) -> None:
    alice, work = await _seeded(corral, tmp_path)
    for title in ("one", "two"):
        status, _ = await api(corral, "POST", f"{API}/issues", alice, json={"title": title})
        assert status == 201
    # a clean branch and a clashing one, written with git
    await git(work, "checkout", "-qb", "feature")
    write(work / "feature.txt", "f\n")
    await git(work, "add", ".")
    await git(work, "commit", "-qm", "Add feature\n\nFixes #1")
    await git(work, "push", "origin", "feature", token=alice)
    await git(work, "checkout", "-q", "main")
    await git(work, "checkout", "-qb", "clash")
    write(work / "README.md", "clash\n")
    await git(work, "commit", "-qam", "clash")
    await git(work, "push", "origin", "clash", token=alice)
    await api(corral, "PUT", f"{API}/contents/README.md", alice, json={
        "content": b64(b"moved\n"), "sha": (await git(work, "rev-parse", "main:README.md")).stdout.strip()})

    status, clash = await api(corral, "POST", f"{API}/merge-requests", alice,
                              json={"source_branch": "clash", "title": "Clash"})
    assert status == 201 and clash["mergeable"] is None  # only GET computes it
    status, got = await api(corral, "GET", f"{API}/merge-requests/{clash['number']}", alice)
    assert (got["mergeable"], got["conflicting_paths"]) == (False, ["README.md"]), got

    status, mr = await api(corral, "POST", f"{API}/merge-requests", alice, json={
        "source_branch": "feature", "title": "WIP: feature", "body": "Closes #2"})
    assert status == 201 and mr["draft"] is True
    number = mr["number"]
    status, got = await api(corral, "GET", f"{API}/merge-requests/{number}", alice)
    assert (got["mergeable"], got["conflicting_paths"], got["draft"]) == (True, [], True)
    status, refused = await api(corral, "POST", f"{API}/merge-requests/{number}/merge", alice, json={})
    assert status == 409 and "draft" in refused["detail"], refused
    status, commits = await api(corral, "GET", f"{API}/merge-requests/{number}/commits", alice)
    assert status == 200 and [c["message"].splitlines()[0] for c in commits["items"]] == ["Add feature"]
    status, files = await api(corral, "GET", f"{API}/merge-requests/{number}/files", alice)
    assert [(f["path"], f["additions"], f["deletions"]) for f in files["items"]] == [("feature.txt", 1, 0)]
    status, ready = await api(corral, "PATCH", f"{API}/merge-requests/{number}", alice, json={"draft": False})
    assert status == 200 and ready["title"] == "feature" and ready["draft"] is False
    status, merged = await api(corral, "POST", f"{API}/merge-requests/{number}/merge", alice,
                               json={"strategy": "merge", "delete_source_branch": True})
    assert status == 200 and merged["status"] == "merged", merged
    for n in (1, 2):
        status, issue = await api(corral, "GET", f"{API}/issues/{n}", alice)
        assert issue["status"] == "closed", issue
    closes = [a.detail["number"] for a in corral.memory.audit if a.action == "issue.close_by_merge"]
    assert sorted(closes) == [1, 2]
    assert "refs/heads/feature" not in (await git(work, "ls-remote", "origin", token=alice)).stdout
    status, commits = await api(corral, "GET", f"{API}/merge-requests/{number}/commits", alice)
    assert [c["message"].splitlines()[0] for c in commits["items"]] == ["Add feature"]


async def test_rebase_merge_gives_a_linear_history(corral: Corral, tmp_path: Path) -> None:
    alice, work = await _seeded(corral, tmp_path)
    await git(work, "checkout", "-qb", "topic")
    for name in ("t1", "t2"):
        write(work / f"{name}.txt", name)
        await git(work, "add", ".")
        await git(work, "commit", "-qm", name)
    await git(work, "push", "origin", "topic", token=alice)
    await api(corral, "PUT", f"{API}/contents/m.txt", alice, json={"content": b64(b"m")})
    status, mr = await api(corral, "POST", f"{API}/merge-requests", alice, json={"source_branch": "topic",
                                                                                 "title": "Topic"})
    assert status == 201
    status, merged = await api(corral, "POST", f"{API}/merge-requests/{mr['number']}/merge", alice,
                               json={"strategy": "rebase"})
    assert status == 200 and merged["status"] == "merged", merged
    await git(work, "checkout", "-q", "main")
    await git(work, "pull", "-q", "--ff-only", "origin", "main", token=alice)
    log = (await git(work, "log", "--format=%s|%an|%cn|%p")).stdout.splitlines()
    assert [line.split("|")[0] for line in log] == ["t2", "t1", "Add m.txt", "first"]
    assert all(len(line.split("|")[3].split()) <= 1 for line in log)  # no merge commit
    assert log[0].split("|")[1:3] == ["Dev", "alice"]  # the author kept, the merger commits
    assert merged["merge_commit_sha"] == (await git(work, "rev-parse", "HEAD")).stdout.strip()
    status, commits = await api(corral, "GET", f"{API}/merge-requests/{mr['number']}/commits", alice)
    assert [c["message"].strip() for c in commits["items"]] == ["t1", "t2"]  # the replayed commits, oldest first
