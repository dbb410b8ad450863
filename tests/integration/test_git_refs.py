"""receive-pack's ref advertisement written by Corral (corral.adapters.git_refs) is byte for byte what
``git receive-pack --advertise-refs`` writes, in every ref layout the files backend has; what it does not
model is left to git (None)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from corral.adapters.git_cli import GitCli
from corral.adapters.git_refs import advertisement

ENV = {**os.environ, "GIT_AUTHOR_NAME": "T", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "T",
       "GIT_COMMITTER_EMAIL": "t@example.com", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}


def sh(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, env=ENV, check=True, capture_output=True, text=True).stdout.strip()


def git_says(repo: Path) -> bytes:
    """What git itself advertises to a push, started as Corral starts it."""
    return subprocess.run(
        ["git", "-c", "receive.advertisePushOptions=false", "receive-pack", "--stateless-rpc", "--advertise-refs",
         str(repo)], env=ENV, check=True, capture_output=True,
    ).stdout


@pytest.fixture
async def cli(tmp_path: Path) -> GitCli:
    git = GitCli(tmp_path / "repos")
    await git.create("r.git", "main")
    return git


@pytest.fixture
def work(cli: GitCli, tmp_path: Path) -> Path:
    """A clone of r.git with one commit on main, pushed."""
    work = tmp_path / "work"
    sh(tmp_path, "clone", "-q", str(cli.path("r.git")), str(work))
    (work / "a.txt").write_text("a\n")
    sh(work, "add", ".")
    sh(work, "commit", "-qm", "first")
    sh(work, "push", "-q", "origin", "main")
    return work


def _count_git_runs(cli: GitCli, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, ...]]:
    """From now on, every git command ``cli`` runs is appended to the returned list."""
    runs: list[tuple[str, ...]] = []
    original = cli._run

    async def counting(*args, **kw):  # type: ignore[no-untyped-def]
        runs.append(args)
        return await original(*args, **kw)

    monkeypatch.setattr(cli, "_run", counting)
    return runs


async def same_as_git(cli: GitCli) -> bytes:
    ours = await cli.receive_advertisement("r.git")
    assert ours is not None
    assert ours == git_says(cli.path("r.git"))
    return ours


async def test_empty_repository(cli: GitCli) -> None:
    ours = await same_as_git(cli)
    assert b"capabilities^{}\x00" in ours and b"report-status" in ours


async def test_branches_and_tags_loose_then_packed_then_overridden(cli: GitCli, work: Path) -> None:
    sh(work, "tag", "-a", "v1", "-m", "release")  # annotated: advertised unpeeled, as receive-pack does
    sh(work, "tag", "light")
    for branch in ("zz", "a/b", "a-b", "Upper", "caf\u00e9"):  # byte order, not locale order
        sh(work, "push", "-q", "origin", f"HEAD:refs/heads/{branch}")
    sh(work, "push", "-q", "origin", "--tags")
    await same_as_git(cli)
    repo = cli.path("r.git")
    sh(repo, "pack-refs", "--all")
    assert not (repo / "refs" / "heads" / "main").exists()
    await same_as_git(cli)
    (work / "b.txt").write_text("b\n")  # a loose value newer than the packed one wins
    sh(work, "add", ".")
    sh(work, "commit", "-qm", "second")
    sh(work, "push", "-q", "origin", "main")
    sh(work, "push", "-q", "origin", ":refs/heads/zz")  # deleted: gone from packed-refs as well
    ours = await same_as_git(cli)
    assert b"refs/heads/zz" not in ours


async def test_lock_files_and_stray_names_are_not_refs(cli: GitCli, work: Path) -> None:
    heads = cli.path("r.git") / "refs" / "heads"
    (heads / "main.lock").write_text("0" * 40 + "\n")  # an update in progress
    (heads / ".hidden").write_text((heads / "main").read_text())
    await same_as_git(cli)


async def test_what_is_not_modelled_is_left_to_git(cli: GitCli, work: Path) -> None:
    repo = cli.path("r.git")
    sh(repo, "symbolic-ref", "refs/heads/alias", "refs/heads/main")
    assert await cli.receive_advertisement("r.git") is None  # git resolves symbolic refs itself
    sh(repo, "symbolic-ref", "--delete", "refs/heads/alias")
    await same_as_git(cli)
    sh(repo, "config", "receive.hideRefs", "refs/heads/secret")
    assert advertisement(repo, b"report-status") is None


async def test_missing_repository_is_not_found(cli: GitCli) -> None:
    from corral.core.errors import NotFound

    with pytest.raises(NotFound):
        await cli.receive_advertisement("nope.git")


async def test_v2_fetch_discovery_is_gits_own_answer_kept_per_config(cli: GitCli, work: Path, monkeypatch) -> None:
    repo = cli.path("r.git")

    def git_v2() -> bytes:
        return subprocess.run(["git", "upload-pack", "--stateless-rpc", "--advertise-refs", str(repo)],
                              env={**ENV, "GIT_PROTOCOL": "version=2"}, check=True, capture_output=True).stdout

    first = await cli.upload_v2_advertisement("r.git", "version=2")
    assert first == git_v2() and first.startswith(b"000eversion 2\n") and b"fetch=" in first
    runs = _count_git_runs(cli, monkeypatch)
    sh(work, "commit", "-q", "--allow-empty", "-m", "more")
    sh(work, "push", "-q", "origin", "main")  # refs are not part of a v2 advertisement
    assert await cli.upload_v2_advertisement("r.git", "version=2") == first
    assert runs == []  # answered without starting git
    sh(repo, "config", "uploadpack.allowFilter", "false")  # a changed configuration is asked anew
    changed = await cli.upload_v2_advertisement("r.git", "version=2")
    assert len(runs) == 1 and changed == git_v2() and changed != first


def _pkt(line: bytes) -> bytes:
    return b"%04x" % (len(line) + 4) + line


LS_REFS = (_pkt(b"command=ls-refs\n") + _pkt(b"agent=git/2.39.5\n") + _pkt(b"object-format=sha1\n") + b"0001"
           + _pkt(b"peel\n") + _pkt(b"symrefs\n") + _pkt(b"unborn\n") + _pkt(b"ref-prefix refs/heads/\n")
           + _pkt(b"ref-prefix refs/tags/\n") + _pkt(b"ref-prefix HEAD\n") + b"0000")


async def test_ls_refs_is_gits_answer_kept_while_the_refs_stay(cli: GitCli, work: Path, monkeypatch) -> None:
    repo = cli.path("r.git")
    sh(work, "tag", "-a", "v1", "-m", "release")
    sh(work, "push", "-q", "origin", "--tags")

    def git_ls_refs() -> bytes:
        return subprocess.run(["git", "upload-pack", "--stateless-rpc", str(repo)], input=LS_REFS,
                              env={**ENV, "GIT_PROTOCOL": "version=2"}, check=True, capture_output=True).stdout

    first = await cli.ls_refs("r.git", "version=2", LS_REFS)
    assert first == git_ls_refs()
    assert b"symref-target:refs/heads/main" in first and b"peeled:" in first and b"refs/tags/v1" in first
    runs = _count_git_runs(cli, monkeypatch)
    assert await cli.ls_refs("r.git", "version=2", LS_REFS) == first
    assert runs == []  # the same refs: git's earlier answer
    sh(work, "commit", "-q", "--allow-empty", "-m", "more")
    sh(work, "push", "-q", "origin", "main")  # a ref moved: asked anew
    moved = await cli.ls_refs("r.git", "version=2", LS_REFS)
    assert len(runs) == 1 and moved == git_ls_refs() and moved != first
    sh(repo, "pack-refs", "--all")  # the same refs, packed: same answer (and git agrees)
    assert await cli.ls_refs("r.git", "version=2", LS_REFS) == moved == git_ls_refs()
    sh(repo, "symbolic-ref", "refs/heads/alias", "refs/heads/main")
    assert await cli.ls_refs("r.git", "version=2", LS_REFS) is None  # not modelled: the caller starts git
