"""The real git and git-lfs CLIs against a running Corral: clone, push, fetch, shallow clone, permissions,
branch protection, LFS round trip, merge requests (conflict → 409, repository untouched) and webhooks."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import hmac
import os
import shutil
import socket
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from tests.e2e.gitkit import git, write
from tests.helpers import require_tool

pytestmark = pytest.mark.e2e


async def api(c, method: str, path: str, token: str | None = None, **kw):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as s, s.request(method, c.base + path, headers=headers, **kw) as r:
        body = await r.json() if r.content_type.endswith("json") else await r.text()
        return r.status, body


async def test_clone_push_fetch_shallow_and_push_event(corral, tmp_path: Path) -> None:
    alice = await corral.user("alice", admin=True)
    status, body = await api(corral, "POST", "/api/v1/projects", alice,
                             json={"name": "app", "visibility": "private", "default_branch": "main"})
    assert status == 201, body
    assert body["clone_url"].endswith("/alice/app.git") and body["owner"] == "alice"
    url = corral.url("alice/app")
    # clone the empty repository
    empty = await git(tmp_path, "clone", url, "empty", token=alice)
    assert "empty repository" in empty.stderr
    work = tmp_path / "empty"
    for i in range(3):
        write(work / f"f{i}.txt", f"{i}\n")
        await git(work, "add", ".")
        await git(work, "commit", "-qm", f"commit {i}")
    await git(work, "push", "origin", "main", token=alice)
    # clone the non-empty repository, with and without .git, and shallow
    await git(tmp_path, "clone", url, "full", token=alice)
    assert (tmp_path / "full" / "f2.txt").read_text() == "2\n"
    await git(tmp_path, "clone", f"{corral.base}/alice/app", "nodotgit", token=alice)
    await git(tmp_path, "clone", "--depth", "1", url, "shallow", token=alice)
    log = await git(tmp_path / "shallow", "log", "--oneline")
    assert len(log.stdout.splitlines()) == 1
    # protocol v0 and a gzip-compressed request body work as well
    await git(tmp_path, "-c", "protocol.version=0", "clone", url, "v0", token=alice)
    assert (tmp_path / "v0" / "f2.txt").exists()
    body = b"0014command=ls-refs\n00010009peel\n0000"
    async with aiohttp.ClientSession() as s, s.post(
        f"{url}/git-upload-pack", data=gzip.compress(body),
        headers={"Authorization": f"Bearer {alice}", "Git-Protocol": "version=2", "Content-Encoding": "gzip",
                 "Content-Type": "application/x-git-upload-pack-request"},
    ) as r:
        assert r.status == 200 and b"refs/heads/main" in await r.read()
    write(work / "docs" / "guide.md", "# Guide\n")
    await git(work, "add", ".")
    await git(work, "commit", "-qm", "docs")
    await git(work, "tag", "-a", "v1", "-m", "first release")
    await git(work, "push", "origin", "main", "v1", token=alice)
    status, docs = await api(corral, "GET", "/api/v1/projects/alice/app/docs", alice)
    assert status == 200 and [d["path"] for d in docs["items"]] == ["guide.md"]
    status, doc = await api(corral, "GET", "/api/v1/projects/alice/app/docs/guide.md", alice)
    assert doc["content"] == "# Guide\n"
    status, tags = await api(corral, "GET", "/api/v1/projects/alice/app/repo/tags", alice)
    assert [(t["name"], t["message"]) for t in tags["items"]] == [("v1", "first release")]
    # fetch picks up a new push
    write(work / "f9.txt", "9\n")
    await git(work, "add", ".")
    await git(work, "commit", "-qm", "commit 9")
    await git(work, "push", "origin", "main", token=alice)
    await git(tmp_path / "full", "fetch", "origin", token=alice)
    head = await git(tmp_path / "full", "rev-parse", "origin/main")
    assert head.stdout.strip() == (await git(work, "rev-parse", "HEAD")).stdout.strip()
    pushes = [e.payload for e in corral.memory.events if e.topic == "push"]
    assert [p["after"] for p in pushes][-1] == head.stdout.strip()
    assert pushes[0]["created"] and pushes[0]["pusher"]["name"] == "alice"
    assert any(a.action == "repo.push" for a in corral.memory.audit)
    # the browser sees what was pushed
    status, branches = await api(corral, "GET", "/api/v1/projects/alice/app/repo/branches", alice)
    assert status == 200 and [b["name"] for b in branches["items"]] == ["main"]
    await git(work, "push", "origin", "main:dev", "main:feature/x", token=alice)
    names, cursor = [], ""
    while cursor is not None:
        status, page = await api(corral, "GET", f"/api/v1/projects/alice/app/repo/branches?limit=2&cursor={cursor}",
                                 alice)
        assert status == 200 and set(page) == {"items", "next_cursor"}
        names += [b["name"] for b in page["items"]]
        cursor = page["next_cursor"]
    assert names == ["dev", "feature/x", "main"]
    status, tree = await api(corral, "GET", "/api/v1/projects/alice/app/repo/tree/main", alice)
    assert [e["name"] for e in tree["items"]] == ["docs", "f0.txt", "f1.txt", "f2.txt", "f9.txt"]
    status, raw = await api(corral, "GET", "/api/v1/projects/alice/app/repo/raw/main/f9.txt", alice)
    assert (status, raw) == (200, "9\n")
    status, commits = await api(corral, "GET", "/api/v1/projects/alice/app/repo/commits?limit=2", alice)
    assert [c["message"] for c in commits["items"]] == ["commit 9", "docs"] and commits["next_cursor"]


async def test_permissions_anonymous_viewer_and_public(corral, tmp_path: Path) -> None:
    alice = await corral.user("alice", admin=True)
    vic = await corral.user("vic", "viewer")
    await api(corral, "POST", "/api/v1/projects", alice, json={"name": "app"})
    url = corral.url("alice/app")
    work = tmp_path / "w"
    await git(tmp_path, "clone", url, "w", token=alice)
    write(work / "a.txt", "a\n")
    await git(work, "add", ".")
    await git(work, "commit", "-qm", "a")
    await git(work, "push", "origin", "main", token=alice)
    # anonymous: 401 with a Basic challenge, so git asks for credentials (prompting is off here)
    anon = await git(tmp_path, "clone", url, "anon", check=False)
    assert anon.returncode != 0 and ("Authentication failed" in anon.stderr or "could not read Username" in anon.stderr)
    async with aiohttp.ClientSession() as s, s.get(f"{url}/info/refs?service=git-upload-pack") as r:
        assert r.status == 401 and r.headers["WWW-Authenticate"].startswith("Basic")
    # the REST API does not tell an anonymous caller that the private project exists
    async with aiohttp.ClientSession() as s:
        answers = []
        for slug in ("alice/app", "alice/nothing-here"):
            async with s.get(f"{corral.base}/api/v1/projects/{slug}/issues") as r:
                body = await r.json(content_type=None)
                answers.append((r.status, body["title"], body["detail"].replace(slug, "X"),
                                "WWW-Authenticate" in r.headers))
        assert answers[0] == answers[1] and answers[0][0] == 404, answers
        for slug in ("alice/app", "alice/nothing-here"):
            async with s.get(f"{corral.base}/api/v1/projects/{slug}") as r:
                assert r.status == 404
    # a viewer can clone but not push, and git shows why
    await git(tmp_path, "clone", url, "vic", token=vic)
    write(tmp_path / "vic" / "b.txt", "b\n")
    await git(tmp_path / "vic", "add", ".")
    await git(tmp_path / "vic", "commit", "-qm", "b")
    denied = await git(tmp_path / "vic", "push", "origin", "main", token=vic, check=False)
    assert denied.returncode != 0
    assert "may not push to alice/app" in denied.stderr and "project:write" in denied.stderr
    # public projects are readable anonymously
    status, _ = await api(corral, "PATCH", "/api/v1/projects/alice/app", alice, json={"visibility": "public"})
    assert status == 200
    await git(tmp_path, "clone", url, "anon2")
    assert (tmp_path / "anon2" / "a.txt").exists()


async def test_project_listing_anonymous_and_signed_in(corral) -> None:
    alice = await corral.user("alice", admin=True)
    bob = await corral.user("bob", "ops")  # no project:read of its own
    for name, visibility in (("priv", "private"), ("inner", "internal"), ("pub", "public"), ("pub2", "public")):
        status, _ = await api(corral, "POST", "/api/v1/projects", alice, json={"name": name, "visibility": visibility})
        assert status == 201
    names: list[str] = []
    cursor = ""
    while cursor is not None:  # anonymous, one project per page: only the public ones (Gitea's explore)
        status, page = await api(corral, "GET", f"/api/v1/projects?limit=1&cursor={cursor}")
        assert status == 200, page
        names += [p["full_name"] for p in page["items"]]
        cursor = page["next_cursor"]
    assert names == ["alice/pub", "alice/pub2"]
    status, page = await api(corral, "GET", "/api/v1/projects", bob)
    assert [p["name"] for p in page["items"]] == ["pub", "pub2"]  # internal needs project:read in the token
    status, page = await api(corral, "GET", "/api/v1/projects", alice)
    assert [p["name"] for p in page["items"]] == ["priv", "inner", "pub", "pub2"]
    status, _ = await api(corral, "GET", "/api/v1/projects/alice/pub")
    assert status == 200


async def test_branch_protection_refuses_force_push_and_deletion(corral, tmp_path: Path) -> None:
    alice = await corral.user("alice", admin=True)
    await api(corral, "POST", "/api/v1/projects", alice, json={"name": "app"})
    url = corral.url("alice/app")
    work = tmp_path / "w"
    await git(tmp_path, "clone", url, "w", token=alice)
    for name in ("a", "b"):
        write(work / f"{name}.txt", name)
        await git(work, "add", ".")
        await git(work, "commit", "-qm", name)
    await git(work, "push", "origin", "main", token=alice)
    status, rule = await api(corral, "POST", "/api/v1/projects/alice/app/branch-protections", alice,
                             json={"pattern": "main"})
    assert status == 201, rule
    before = (await git(work, "rev-parse", "HEAD")).stdout.strip()
    await git(work, "reset", "--hard", "HEAD~1")
    write(work / "c.txt", "c")
    await git(work, "add", ".")
    await git(work, "commit", "-qm", "rewritten")
    pushes_before = [e for e in corral.memory.events if e.topic == "push"]
    forced = await git(work, "push", "--force", "origin", "main", token=alice, check=False)
    assert forced.returncode != 0
    assert "force-push" in forced.stderr and "protected" in forced.stderr
    deleted = await git(work, "push", "origin", ":main", token=alice, check=False)
    assert deleted.returncode != 0 and "cannot be deleted" in deleted.stderr
    assert [e for e in corral.memory.events if e.topic == "push"] == pushes_before  # refused: no push event
    status, branches = await api(corral, "GET", "/api/v1/projects/alice/app/repo/branches", alice)
    assert branches["items"][0]["commit"]["sha"] == before
    # a fast-forward of the protected branch is fine (the hook checks ancestry inside git's quarantine)
    await git(work, "reset", "-q", "--hard", before)
    write(work / "d.txt", "d")
    await git(work, "add", ".")
    await git(work, "commit", "-qm", "forward")
    await git(work, "push", "origin", "main", token=alice)
    # merge-request-only: direct pushes are refused with the reason
    status, _ = await api(corral, "PATCH", f"/api/v1/projects/alice/app/branch-protections/{rule['id']}", alice,
                          json={"require_merge_request": True})
    assert status == 200
    write(work / "e.txt", "e")
    await git(work, "add", ".")
    await git(work, "commit", "-qm", "direct")
    direct = await git(work, "push", "origin", "main", token=alice, check=False)
    assert direct.returncode != 0 and "must go through a merge request" in direct.stderr
    assert not [a for a in corral.memory.audit if a.action == "branch_protection.bypass"]
    # an explicit bypass: project admins (the owner here) push directly, audited
    status, changed = await api(corral, "PATCH", f"/api/v1/projects/alice/app/branch-protections/{rule['id']}",
                                alice, json={"bypass_admins": True})
    assert status == 200 and changed["bypass_admins"] and changed["push_allowlist"] == []
    await git(work, "push", "origin", "main", token=alice)
    bypasses = [a.detail for a in corral.memory.audit if a.action == "branch_protection.bypass"]
    assert [(b["ref"], b["reason"], b["pattern"]) for b in bypasses] == [("refs/heads/main", "admin", "main")]
    # a developer is refused until the rule's push allowlist names them
    dev = await corral.user("dev", "developer")
    await git(tmp_path, "clone", url, "dev", token=dev)
    write(tmp_path / "dev" / "f.txt", "f")
    await git(tmp_path / "dev", "add", ".")
    await git(tmp_path / "dev", "commit", "-qm", "from dev")
    refused = await git(tmp_path / "dev", "push", "origin", "main", token=dev, check=False)
    assert refused.returncode != 0 and "must go through a merge request" in refused.stderr
    status, changed = await api(corral, "PATCH", f"/api/v1/projects/alice/app/branch-protections/{rule['id']}",
                                alice, json={"push_allowlist": ["dev"]})
    assert status == 200 and changed["push_allowlist"] == ["dev"]
    await git(tmp_path / "dev", "push", "origin", "main", token=dev)
    bypasses = [a for a in corral.memory.audit if a.action == "branch_protection.bypass"]
    assert (bypasses[-1].actor_name, bypasses[-1].detail["reason"]) == ("dev", "allowlist")
    # the bypass covers the merge-request requirement only: force-pushes stay refused
    await git(tmp_path / "dev", "commit", "--amend", "-qm", "rewritten by dev")
    forced = await git(tmp_path / "dev", "push", "--force", "origin", "main", token=dev, check=False)
    assert forced.returncode != 0 and "force-push" in forced.stderr
    await git(work, "pull", "-q", "--rebase", "origin", "main", token=alice)
    # an unprotected branch can be force-pushed
    await git(work, "push", "origin", "HEAD:topic", token=alice)
    await git(work, "commit", "--amend", "-qm", "amended")
    await git(work, "push", "--force", "origin", "HEAD:topic", token=alice)


async def test_lfs_round_trip(corral, tmp_path: Path) -> None:
    require_tool("git-lfs", "./dev test installs it")
    alice = await corral.user("alice", admin=True)
    await api(corral, "POST", "/api/v1/projects", alice, json={"name": "media"})
    url = corral.url("alice/media")
    work = tmp_path / "w"
    await git(tmp_path, "lfs", "install")  # into this test's HOME: clones get the hooks and filters
    await git(tmp_path, "clone", url, "w", token=alice)
    await git(work, "lfs", "track", "*.bin")
    blob = os.urandom(300_000)
    write(work / "data.bin", blob)
    await git(work, "add", ".")
    await git(work, "commit", "-qm", "lfs")
    await git(work, "push", "origin", "main", token=alice)
    oid = hashlib.sha256(blob).hexdigest()
    project = await corral.kit.projects.get("alice", "media")
    assert [a.detail["oid"] for a in corral.memory.audit if a.action == "lfs.upload"] == [oid]
    assert await corral.kit.objects.exists(f"lfs/{project.id}/{oid[:2]}/{oid[2:4]}/{oid}")
    clone = tmp_path / "c"
    await git(tmp_path, "clone", url, "c", token=alice)
    assert (clone / "data.bin").read_bytes() == blob
    await _lfs_viewer_checks(corral, url, oid, blob)
    status, _ = await api(corral, "DELETE", "/api/v1/projects/alice/media", alice)
    assert status == 204
    assert not await corral.kit.objects.exists(f"lfs/{project.id}/{oid[:2]}/{oid[2:4]}/{oid}")
    assert not corral.kit.git.path(project.repo_path).exists()
    status, _ = await api(corral, "GET", "/api/v1/projects/alice/media", alice)
    assert status == 404


async def _lfs_viewer_checks(corral, url: str, oid: str, blob: bytes) -> None:
    # a viewer may download but not upload; anonymous callers are asked for credentials
    async with aiohttp.ClientSession() as s:
        req = {"operation": "download", "objects": [{"oid": oid, "size": len(blob)}]}
        async with s.post(f"{url}/info/lfs/objects/batch", json=req) as r:
            assert r.status == 401 and r.headers["LFS-Authenticate"].startswith("Basic")
        vic = await corral.user("vic", "viewer")
        req = {"operation": "upload", "transfers": ["basic"], "objects": [{"oid": "a" * 64, "size": 3}]}
        async with s.post(f"{url}/info/lfs/objects/batch", json=req,
                          headers={"Authorization": f"Bearer {vic}", "Accept": "application/vnd.git-lfs+json"}) as r:
            assert r.status == 403
        req = {"operation": "download", "objects": [{"oid": oid, "size": len(blob)}, {"oid": "b" * 64, "size": 1}]}
        async with s.post(f"{url}/info/lfs/objects/batch", json=req, headers={"Authorization": f"Bearer {vic}"}) as r:
            got = await r.json(content_type=None)
            assert r.status == 200
            assert "download" in got["objects"][0]["actions"] and got["objects"][1]["error"]["code"] == 404
            # a store without http(s) links (in memory here): the bytes stream through Corral
            assert got["objects"][0]["actions"]["download"]["href"] == f"{url}/info/lfs/objects/{oid}"


async def _push_branches(corral, tmp_path: Path, token: str) -> Path:
    await api(corral, "POST", "/api/v1/projects", token, json={"name": "app"})
    url = corral.url("alice/app")
    work = tmp_path / "w"
    await git(tmp_path, "clone", url, "w", token=token)
    write(work / "a.txt", "base\n")
    await git(work, "add", ".")
    await git(work, "commit", "-qm", "base")
    await git(work, "push", "origin", "main", token=token)
    await git(work, "checkout", "-qb", "feature")
    write(work / "b.txt", "feature\n")
    await git(work, "add", ".")
    await git(work, "commit", "-qm", "feature")
    await git(work, "push", "origin", "feature", token=token)
    await git(work, "checkout", "-qb", "clash", "main")
    write(work / "a.txt", "clash\n")
    await git(work, "commit", "-qam", "clash")
    await git(work, "push", "origin", "clash", token=token)
    await git(work, "checkout", "-q", "main")
    write(work / "a.txt", "main moved\n")
    await git(work, "commit", "-qam", "main moved")
    await git(work, "push", "origin", "main", token=token)
    return work


async def test_merge_requests_conflict_409_and_merge(corral, tmp_path: Path) -> None:
    alice = await corral.user("alice", admin=True)
    bob = await corral.user("bob", "developer")
    await _push_branches(corral, tmp_path, alice)
    base = "/api/v1/projects/alice/app"
    status, mr = await api(corral, "POST", f"{base}/merge-requests", bob,
                           json={"source_branch": "clash", "target_branch": "main", "title": "Clash"})
    assert status == 201 and mr["number"] == 1 and mr["status"] == "open"
    refs_before = (await git(corral.tmp / "repos", "--git-dir", str(corral.kit.git.path(
        (await corral.kit.projects.get("alice", "app")).repo_path)), "for-each-ref")).stdout
    status, problem = await api(corral, "POST", f"{base}/merge-requests/1/merge", bob, json={"strategy": "merge"})
    assert status == 409
    assert problem["paths"] == ["a.txt"] and "a.txt" in problem["detail"]
    refs_after = (await git(corral.tmp / "repos", "--git-dir", str(corral.kit.git.path(
        (await corral.kit.projects.get("alice", "app")).repo_path)), "for-each-ref")).stdout
    assert refs_after == refs_before
    status, _ = await api(corral, "POST", f"{base}/merge-requests", bob,
                            json={"source_branch": "feature", "target_branch": "main", "title": "Feature"})
    status, problem = await api(corral, "POST", f"{base}/merge-requests/2/merge", bob,
                                json={"strategy": "fast-forward"})
    assert status == 409
    status, review = await api(corral, "POST", f"{base}/merge-requests/2/reviews", alice,
                               json={"verdict": "approve", "body": "ok"})
    assert status == 201 and review["verdict"] == "approve"
    status, diff = await api(corral, "GET", f"{base}/merge-requests/2/diff", bob)
    assert [f["path"] for f in diff["files"]] == ["b.txt"]
    status, merged = await api(corral, "POST", f"{base}/merge-requests/2/merge", bob, json={"strategy": "squash"})
    assert status == 200 and merged["status"] == "merged" and merged["merged_by"]["name"] == "bob"
    status, _ = await api(corral, "POST", f"{base}/merge-requests/2/merge", bob, json={})
    assert status == 409
    status, blob = await api(corral, "GET", f"{base}/repo/blob/main/b.txt", bob)
    assert blob["content"] == "feature\n" and blob["encoding"] == "utf-8"
    await git(tmp_path / "w", "push", "origin", "main:topic/x", token=alice)
    status, tree = await api(corral, "GET", f"{base}/repo/tree/topic/x", bob)
    assert status == 200 and tree["ref"] == "topic/x" and "a.txt" in [e["name"] for e in tree["items"]]
    status, blob = await api(corral, "GET", f"{base}/repo/blob/topic/x/a.txt", bob)
    assert status == 200 and blob["path"] == "a.txt"
    status, one = await api(corral, "GET", f"{base}/repo/commits/{merged['merge_commit_sha']}", bob)
    assert status == 200 and [f["path"] for f in one["files"]] == ["b.txt"] and "+feature" in one["patch"]
    status, cmp = await api(corral, "GET", f"{base}/repo/compare/main...clash", bob)
    assert status == 200 and [c["message"] for c in cmp["commits"]] == ["clash"]
    status, bad = await api(corral, "GET", f"{base}/repo/compare/main..clash", bob)
    assert status == 400 and bad["field"] == "spec"
    status, _ = await api(corral, "GET", f"{base}/repo/blob/main/nope.txt", bob)
    assert status == 404
    push = [e.payload for e in corral.memory.events if e.topic == "push" and e.payload["via"] == "merge"][-1]
    assert push["via"] == "merge" and push["after"] == merged["merge_commit_sha"]


async def test_issues_numbers_and_api(corral) -> None:
    alice = await corral.user("alice", admin=True)
    await api(corral, "POST", "/api/v1/projects", alice, json={"name": "app"})
    await api(corral, "POST", "/api/v1/projects/alice/app/labels", alice, json={"name": "x"})
    base = "/api/v1/projects/alice/app/issues"
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {alice}"}) as s:
        async def create(i: int) -> int:
            async with s.post(corral.base + base, json={"title": f"t{i}", "labels": ["x"]}) as r:
                assert r.status == 201
                return (await r.json())["number"]

        numbers = await asyncio.gather(*(create(i) for i in range(200)))
    assert sorted(numbers) == list(range(1, 201))
    status, page = await api(corral, "GET", f"{base}?limit=5", alice)
    assert [i["number"] for i in page["items"]] == [200, 199, 198, 197, 196] and page["next_cursor"]
    status, closed = await api(corral, "PATCH", f"{base}/7", alice, json={"status": "closed"})
    assert closed["status"] == "closed"
    status, _ = await api(corral, "PATCH", f"{base}/7", alice, json={"status": "closed"})
    assert status == 409
    status, problem = await api(corral, "POST", base, alice, json={"title": ""})
    assert status == 400
    assert problem["field"] == "title"
    status, comment = await api(corral, "POST", f"{base}/7/comments", alice, json={"body": "done"})
    assert status == 201 and comment["author"]["name"] == "alice"


async def _receiver(statuses: list[int]):
    got: list[tuple[dict[str, str], bytes]] = []

    async def hook(request: web.Request) -> web.Response:
        got.append((dict(request.headers), await request.read()))
        return web.Response(status=statuses.pop(0) if statuses else 200)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    return runner, f"http://127.0.0.1:{port}/hook", got


async def _wait(predicate, timeout: float = 20.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


async def test_webhooks_signed_retried_and_logged(corral, tmp_path: Path) -> None:
    alice = await corral.user("alice", admin=True)
    await api(corral, "POST", "/api/v1/projects", alice, json={"name": "app"})
    runner, url, got = await _receiver([500, 503])
    try:
        status, hook = await api(corral, "POST", "/api/v1/projects/alice/app/webhooks", alice,
                                 json={"url": url, "events": ["push", "issue"], "secret": "s3cret"})
        assert status == 201 and "secret" not in hook and hook["has_secret"]
        work = tmp_path / "w"
        await git(tmp_path, "clone", corral.url("alice/app"), "w", token=alice)
        write(work / "a.txt", "a")
        await git(work, "add", ".")
        await git(work, "commit", "-qm", "a")
        await git(work, "push", "origin", "main", token=alice)
        await _wait(lambda: len(got) >= 3)
        for headers, body in got:
            digest = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
            assert headers["X-Gitea-Signature"] == digest
            assert headers["X-Hub-Signature-256"] == f"sha256={digest}"
            assert headers["X-Corral-Event"] == "push" and headers["X-GitHub-Event"] == "push"
        assert len({h["X-Corral-Delivery"] for h, _ in got}) == 1  # retries keep the delivery id
        path = f"/api/v1/projects/alice/app/webhooks/{hook['id']}/deliveries"
        status, log = await api(corral, "GET", path, alice)
        (entry,) = log["items"]
        assert entry["status"] == "delivered" and entry["attempts"] == 3 and entry["status_code"] == 200
        status, _ = await api(corral, "POST", f"{path}/{entry['id']}/redeliver", alice)
        assert status == 201
        await _wait(lambda: len(got) == 4)
        assert got[3][1] == got[0][1] and got[3][0]["X-Corral-Delivery"] != got[0][0]["X-Corral-Delivery"]
    finally:
        await runner.cleanup()


async def test_webhook_to_private_address_refused_by_default(corral) -> None:
    from corral.adapters.webhooks import AiohttpWebhookTransport
    from corral.core.errors import InvalidInput, Unavailable

    guard = AiohttpWebhookTransport()
    for url in ("http://127.0.0.1/x", "http://10.0.0.1/x", "http://169.254.169.254/x", "http://[::1]/x",
                "http://localhost/x", "ftp://example.com/x"):
        with pytest.raises(InvalidInput):
            guard.check_target(url)
    host = socket.gethostname()  # on these machines /etc/hosts maps it to 127.0.0.1
    if socket.getaddrinfo(host, 80)[0][4][0].startswith("127."):
        with pytest.raises(Unavailable) as err:  # a name resolving to loopback is refused when resolved
            await guard.post(f"http://{host}/x", b"{}", {})
        assert err.value.message == "refused: target is not a public address"
    await guard.aclose()


async def test_rename_redirects_old_api_and_git_urls(corral, tmp_path: Path) -> None:
    alice = await corral.user("alice", admin=True)
    outsider = await corral.user("eve", "ops")  # signed in, no project:read
    status, created = await api(corral, "POST", "/api/v1/projects", alice, json={"name": "old"})
    assert status == 201
    work = tmp_path / "w"
    await git(tmp_path, "clone", corral.url("alice/old"), "w", token=alice)
    write(work / "a.txt", "a\n")
    await git(work, "add", ".")
    await git(work, "commit", "-qm", "a")
    await git(work, "push", "origin", "main", token=alice)
    repo_dir = corral.kit.git.path((await corral.kit.projects.get("alice", "old")).repo_path)
    status, renamed = await api(corral, "PATCH", "/api/v1/projects/alice/old", alice, json={"name": "renamed"})
    assert status == 200 and renamed["name"] == "renamed" and renamed["clone_url"].endswith("/alice/renamed.git")
    assert renamed["id"] == created["id"] and repo_dir.is_dir()  # same repository, nothing to move on disk
    assert any(a.action == "project.update" and a.detail["changes"].get("renamed_from") == "alice/old"
               for a in corral.memory.audit)
    # the API: old URLs redirect (301 for reads, 308 keeps the method and body of writes)
    async with aiohttp.ClientSession() as s:
        headers = {"Authorization": f"Bearer {alice}"}
        async with s.get(f"{corral.base}/api/v1/projects/alice/old/repo/commits?limit=1", headers=headers,
                         allow_redirects=False) as r:
            assert r.status == 301
            assert r.headers["Location"] == "/api/v1/projects/alice/renamed/repo/commits?limit=1"
        async with s.get(f"{corral.base}/api/v1/projects/alice/old", headers=headers) as r:
            assert r.status == 200 and (await r.json())["name"] == "renamed"
        async with s.post(f"{corral.base}/api/v1/projects/alice/old/issues", headers=headers,
                          json={"title": "t"}, allow_redirects=False) as r:
            assert r.status == 308 and r.headers["Location"] == "/api/v1/projects/alice/renamed/issues"
        # nobody else learns the new name: anonymous and signed-in outsiders get the plain 404
        for who in ({}, {"Authorization": f"Bearer {outsider}"}):
            async with s.get(f"{corral.base}/api/v1/projects/alice/old", headers=who, allow_redirects=False) as r:
                assert r.status == 404 and "Location" not in r.headers
    # git: cloning, fetching and pushing through the old remote URL follow the redirect
    await git(tmp_path, "clone", corral.url("alice/old"), "c", token=alice)
    assert (tmp_path / "c" / "a.txt").read_text() == "a\n"
    write(work / "b.txt", "b\n")
    await git(work, "add", ".")
    await git(work, "commit", "-qm", "b")
    await git(work, "push", "origin", "main", token=alice)  # origin is still .../alice/old.git
    await git(tmp_path / "c", "pull", "-q", "origin", "main", token=alice)
    assert (tmp_path / "c" / "b.txt").exists()
    if shutil.which("git-lfs") is not None:  # LFS through the old remote: the batch POST follows a 308
        await git(tmp_path, "lfs", "install")
        await git(work, "lfs", "track", "*.bin")
        blob = os.urandom(50_000)
        write(work / "big.bin", blob)
        await git(work, "add", ".")
        await git(work, "commit", "-qm", "lfs")
        await git(work, "push", "origin", "main", token=alice)
        await git(tmp_path, "clone", corral.url("alice/old"), "lfs-clone", token=alice)
        assert (tmp_path / "lfs-clone" / "big.bin").read_bytes() == blob
    # a new project may take the old name: the redirect is gone
    status, _ = await api(corral, "POST", "/api/v1/projects", alice, json={"name": "old"})
    assert status == 201
    status, fresh = await api(corral, "GET", "/api/v1/projects/alice/old/repo/branches", alice)
    assert status == 200 and fresh["items"] == []
