"""GitCli against the real git binary: repositories, browser, merges (repo untouched on refusal), hook."""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from corral.adapters.git_cli import GitCli, rules_env
from corral.core.errors import Conflict, InvalidInput, NotFound
from corral.core.git.model import MergeStrategy, PushRule, Signature

ENV = {**os.environ, "GIT_AUTHOR_NAME": "T", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "T",
       "GIT_COMMITTER_EMAIL": "t@example.com", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
SIG = Signature("Merger", "m@example.com", datetime(2026, 11, 26, tzinfo=UTC))


def sh(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, env=ENV, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def git(tmp_path: Path) -> GitCli:
    return GitCli(tmp_path / "repos")


@pytest.fixture
async def seeded(git: GitCli, tmp_path: Path) -> tuple[GitCli, Path]:
    """Repository 'r.git' with main (README, docs/intro.md, a.txt) and feature (adds b.txt)."""
    await git.create("r.git", "main")
    work = tmp_path / "work"
    sh(tmp_path, "clone", "-q", str(git.path("r.git")), str(work))
    (work / "README.md").write_text("hello\n")
    (work / "docs").mkdir()
    (work / "docs" / "intro.md").write_text("# Intro\n")
    (work / "a.txt").write_text("a\n")
    sh(work, "add", ".")
    sh(work, "commit", "-qm", "first")
    sh(work, "push", "-q", "origin", "main")
    sh(work, "checkout", "-qb", "feature")
    (work / "b.txt").write_text("b\n")
    sh(work, "add", ".")
    sh(work, "commit", "-qm", "add b")
    sh(work, "push", "-q", "origin", "feature")
    sh(work, "checkout", "-q", "main")
    return git, work


async def test_create_twice_conflicts_and_paths_are_confined(git: GitCli) -> None:
    await git.create("x.git", "trunk")
    assert (git.path("x.git") / "HEAD").read_text().strip() == "ref: refs/heads/trunk"
    with pytest.raises(Conflict):
        await git.create("x.git", "main")
    with pytest.raises(InvalidInput):
        git.path("../escape.git")
    assert await git.list_branches("x.git") == []
    assert await git.resolve("x.git", "trunk") is None
    await git.delete("x.git")
    assert not git.path("x.git").exists()


async def test_browser(seeded) -> None:
    git, _ = seeded
    branches = {b.name: b for b in await git.list_branches("r.git")}
    assert set(branches) == {"main", "feature"} and branches["feature"].commit.subject == "add b"
    entries = await git.tree("r.git", "main", "")
    assert [(e.name, e.type) for e in entries] == [("docs", "tree"), ("README.md", "blob"), ("a.txt", "blob")]
    assert [e.path for e in await git.tree("r.git", "main", "docs")] == ["docs/intro.md"]
    blob = await git.blob("r.git", "main", "README.md", limit=3)
    assert (blob.size, blob.data, blob.truncated) == (6, b"hel", True)
    assert b"".join([c async for c in git.blob_stream("r.git", "main", "docs/intro.md")]) == b"# Intro\n"
    with pytest.raises(NotFound):
        await git.blob("r.git", "main", "nope.txt", limit=10)
    with pytest.raises(InvalidInput):
        await git.blob("r.git", "main", "docs", limit=10)
    with pytest.raises(NotFound):
        await git.tree("r.git", "nope", "")
    with pytest.raises(InvalidInput):
        await git.tree("r.git", "--output=/tmp/x", "")
    log = await git.log("r.git", "feature")
    assert [c.subject for c in log] == ["add b", "first"]
    assert [c.subject for c in await git.log("r.git", "feature", skip=1, limit=5)] == ["first"]
    commit, change = await git.show("r.git", log[0].sha, max_patch_bytes=10_000)
    assert commit.sha == log[0].sha
    assert [(f.path, f.status, f.additions) for f in change.files] == [("b.txt", "added", 1)]
    assert "+b" in change.patch
    root, root_change = await git.show("r.git", log[1].sha, max_patch_bytes=10_000)
    assert len(root_change.files) == 3 and root.parents == ()
    cmp = await git.compare("r.git", "main", "feature", max_patch_bytes=10_000)
    assert [c.subject for c in cmp.commits] == ["add b"] and [f.path for f in cmp.files] == ["b.txt"]
    tags = await git.list_tags("r.git")
    assert tags == []


async def test_merge_strategies(seeded) -> None:
    git, work = seeded
    main_before = await git.resolve("r.git", "main")
    new = await git.merge("r.git", target="main", source="feature", strategy=MergeStrategy.FAST_FORWARD, author=SIG,
                          message="ff")
    assert new == await git.resolve("r.git", "feature")
    assert await git.is_ancestor("r.git", main_before, new)
    # diverge: main gets c.txt, feature2 from the old main gets d.txt
    sh(work, "fetch", "-q")
    sh(work, "checkout", "-qb", "feature2", main_before)
    (work / "d.txt").write_text("d\n")
    sh(work, "add", ".")
    sh(work, "commit", "-qm", "add d")
    sh(work, "push", "-q", "origin", "feature2")
    with pytest.raises(Conflict) as err:
        await git.merge("r.git", target="main", source="feature2", strategy=MergeStrategy.FAST_FORWARD, author=SIG,
                        message="x")
    assert err.value.detail["reason"] == "not_fast_forward"
    assert await git.resolve("r.git", "main") == new
    merged = await git.merge("r.git", target="main", source="feature2", strategy=MergeStrategy.MERGE, author=SIG,
                             message="Merge feature2\n")
    (commit, change) = await git.show("r.git", merged, max_patch_bytes=1000)
    assert commit.parents == (new, await git.resolve("r.git", "feature2"))
    assert commit.author.name == "Merger" and commit.subject == "Merge feature2"
    assert [f.path for f in change.files] == ["d.txt"]
    with pytest.raises(Conflict):
        await git.merge("r.git", target="main", source="feature2", strategy=MergeStrategy.MERGE, author=SIG,
                        message="again")


async def test_conflict_leaves_repository_untouched(seeded) -> None:
    git, work = seeded
    base = await git.resolve("r.git", "main")
    (work / "a.txt").write_text("ours\n")
    sh(work, "commit", "-qam", "ours")
    sh(work, "push", "-q", "origin", "main")
    sh(work, "checkout", "-qb", "clash", base)
    (work / "a.txt").write_text("theirs\n")
    sh(work, "commit", "-qam", "theirs")
    sh(work, "push", "-q", "origin", "clash")
    refs_before = sh(git.path("r.git"), "for-each-ref")
    objects_before = sh(git.path("r.git"), "count-objects", "-v")
    for strategy in (MergeStrategy.MERGE, MergeStrategy.SQUASH):
        with pytest.raises(Conflict) as err:
            await git.merge("r.git", target="main", source="clash", strategy=strategy, author=SIG, message="m")
        assert err.value.detail["paths"] == ["a.txt"]
    assert sh(git.path("r.git"), "for-each-ref") == refs_before
    assert sh(git.path("r.git"), "count-objects", "-v") == objects_before


async def test_squash_and_expected_target(seeded) -> None:
    git, _ = seeded
    main = await git.resolve("r.git", "main")
    with pytest.raises(Conflict):
        await git.merge("r.git", target="main", source="feature", strategy=MergeStrategy.SQUASH, author=SIG,
                        message="s", expected_target="0" * 40)
    assert await git.resolve("r.git", "main") == main
    sq = await git.merge("r.git", target="main", source="feature", strategy=MergeStrategy.SQUASH, author=SIG,
                         message="squashed\n")
    commit, change = await git.show("r.git", sq, max_patch_bytes=1000)
    assert commit.parents == (main,) and [f.path for f in change.files] == ["b.txt"]


async def _receive(git: GitCli, rules: list[PushRule], old: str, new: str, ref: str) -> tuple[int, str]:
    """Run the pre-receive hook the way receive-pack does, with the rules in its environment."""
    env = {**git.base_env, "GIT_DIR": str(git.path("r.git"))}
    env["CRL_PROTECTED"] = rules_env(rules)
    proc = await asyncio.create_subprocess_exec(
        str(git.hooks_dir / "pre-receive"), stdin=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        cwd=git.path("r.git"), env=env,
    )
    _, err = await proc.communicate(f"{old} {new} {ref}\n".encode())
    return proc.returncode or 0, err.decode()


async def test_pre_receive_hook_rules(seeded) -> None:
    git, _ = seeded
    main = await git.resolve("r.git", "main")
    feature = await git.resolve("r.git", "feature")
    zero = "0" * 40
    protect = [PushRule("main"), PushRule("release/*", allow_deletion=True)]
    assert (await _receive(git, protect, main, feature, "refs/heads/main"))[0] == 0  # fast-forward
    rc, err = await _receive(git, protect, feature, main, "refs/heads/main")  # rewind = force
    assert rc == 1 and "force-push" in err
    rc, err = await _receive(git, protect, main, zero, "refs/heads/main")
    assert rc == 1 and "cannot be deleted" in err
    assert (await _receive(git, protect, main, zero, "refs/heads/release/1"))[0] == 0
    assert (await _receive(git, protect, feature, main, "refs/heads/feature"))[0] == 0  # unprotected
    rc, err = await _receive(git, [PushRule("ma*", require_merge_request=True)], main, feature, "refs/heads/main")
    assert rc == 1 and "merge request" in err
    assert (await _receive(git, [PushRule("main", allow_force_push=True)], feature, main, "refs/heads/main"))[0] == 0


async def test_tags_docs_and_browser_service(seeded) -> None:
    import uuid

    from corral.core.git.service import RepoBrowser
    from corral.core.projects.model import Project, Visibility

    git, work = seeded
    sh(work, "tag", "v1")
    sh(work, "tag", "-a", "v2", "-m", "release two")
    sh(work, "push", "-q", "origin", "--tags")
    tags = {t.name: t for t in await git.list_tags("r.git")}
    main = await git.resolve("r.git", "main")
    assert tags["v1"].target == main and tags["v2"].target == main
    assert tags["v2"].message == "release two" and tags["v1"].commit is not None
    now = datetime(2026, 11, 26, tzinfo=UTC)
    project = Project(uuid.uuid4(), uuid.uuid4(), "o", "r", Visibility.PRIVATE, "main", "r.git", now, now)
    browser = RepoBrowser(git)
    assert [d.path for d in await browser.docs(project)] == ["docs/intro.md"]
    assert (await browser.doc(project, "intro.md")).data == b"# Intro\n"
    with pytest.raises(NotFound):
        await browser.doc(project, "README.txt")
    with pytest.raises(InvalidInput):
        await browser.doc(project, "../a.md")
    page = await browser.commits(project, None, limit=1)
    assert [c.subject for c in page.items] == ["first"] and page.next_cursor is None
    page = await browser.commits(project, "feature", limit=1)
    assert [c.subject for c in page.items] == ["add b"] and page.next_cursor
    rest = await browser.commits(project, "feature", limit=1, cursor=page.next_cursor)
    assert [c.subject for c in rest.items] == ["first"]


async def test_branches_and_tags_paginate(seeded) -> None:
    from corral.core.git.service import RepoBrowser
    from corral.core.projects.model import Project, Visibility

    git, work = seeded
    for name in ("b-1", "b-2", "b/3", "z"):
        sh(work, "branch", name)
    for name in ("t1", "t2", "t3"):
        sh(work, "tag", "-a", name, "-m", f"tag {name}")
    sh(work, "push", "-q", "origin", "--all")
    sh(work, "push", "-q", "origin", "--tags")
    now = datetime(2026, 11, 26, tzinfo=UTC)
    project = Project(uuid.uuid4(), uuid.uuid4(), "o", "r", Visibility.PRIVATE, "main", "r.git", now, now)
    browser = RepoBrowser(git)
    seen, cursor, pages = [], None, 0
    for _ in range(10):  # bounded: a cursor that never ends fails instead of hanging
        page = await browser.branches(project, limit=2, cursor=cursor)
        seen += [b.name for b in page.items]
        pages += 1
        assert all(b.commit.sha for b in page.items)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == ["b-1", "b-2", "b/3", "feature", "main", "z"] and pages == 3
    first = await browser.tags(project, limit=2)
    assert [t.name for t in first.items] == ["t1", "t2"] and first.next_cursor
    rest = await browser.tags(project, limit=2, cursor=first.next_cursor)
    assert [(t.name, t.message) for t in rest.items] == [("t3", "tag t3")] and rest.next_cursor is None
    with pytest.raises(InvalidInput):
        await browser.branches(project, cursor="garbage!")
