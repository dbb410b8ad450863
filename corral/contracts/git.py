"""GitRepositoriesContract: what every GitRepositories does.

Needs a fixture ``git_repos`` (the GitRepositories under test, with no repositories yet) and two methods on the
test class that build history the port itself cannot write (pushes do that in production):

- ``async write_commit(repos, repo, branch, files, message, parent=None) -> str``: commit ``files``
  (path -> bytes, None deletes) on top of ``branch`` (or of ``parent`` when given; a root commit when neither
  exists), move ``branch`` to it and return its sha. Successive commits must get increasing dates.
- ``async write_tag(repos, repo, name, sha) -> None``: a lightweight tag ``name`` on ``sha``.

The patch text of comparisons, rename detection and annotated tags are not part of the contract (the
in-memory fake does not model them).
"""

from __future__ import annotations

import hashlib
import io
import tarfile
import zipfile
from datetime import UTC, datetime
from typing import Any

import pytest

from corral.core.errors import Conflict, InvalidInput, NotFound
from corral.core.git.model import ZERO_SHA, FileWrite, MergeStrategy, Signature

__all__ = ["GitRepositoriesContract", "git_blob_sha"]

SIG = Signature("Merger", "merger@example.com", datetime(2026, 11, 26, 12, 0, tzinfo=UTC))


def git_blob_sha(data: bytes) -> str:
    """The object id git gives a blob with ``data``."""
    return hashlib.sha1(b"blob %d\x00" % len(data) + data).hexdigest()  # noqa: S324


class GitRepositoriesContract:
    async def write_commit(
        self, repos: Any, repo: str, branch: str, files: dict[str, bytes | None], message: str,
        parent: str | None = None,
    ) -> str:
        raise NotImplementedError

    async def write_tag(self, repos: Any, repo: str, name: str, sha: str) -> None:
        raise NotImplementedError

    async def _seeded(self, repos: Any, repo: str = "team/r.git") -> dict[str, str]:
        """main: c1 (README.md, docs/intro.md, a.txt) <- c2 (a.txt changed); feature off c2 adds b.txt."""
        await repos.create(repo, "main")
        c1 = await self.write_commit(repos, repo, "main", {
            "README.md": b"hello\n", "docs/intro.md": b"# Intro\n", "a.txt": b"one\ntwo\nthree\n",
        }, "first")
        c2 = await self.write_commit(repos, repo, "main", {"a.txt": b"one\nTWO\nthree\n"}, "second\n\nbody text")
        f1 = await self.write_commit(repos, repo, "feature", {"b.txt": b"b\n"}, "add b", parent=c2)
        return {"c1": c1, "c2": c2, "f1": f1}

    # ---- lifecycle ---------------------------------------------------------------------------------------
    async def test_a_new_repository_is_empty_and_cannot_be_created_twice(self, git_repos: Any) -> None:
        await git_repos.create("x.git", "trunk")
        assert await git_repos.list_branches("x.git") == []
        assert await git_repos.list_tags("x.git") == []
        assert await git_repos.resolve("x.git", "trunk") is None
        with pytest.raises(Conflict):
            await git_repos.create("x.git", "main")

    async def test_a_deleted_or_unknown_repository_is_not_found(self, git_repos: Any) -> None:
        await self._seeded(git_repos, "gone.git")
        await git_repos.delete("gone.git")
        await git_repos.delete("gone.git")  # deleting a missing repository is not an error
        for call in (git_repos.list_branches("gone.git"), git_repos.list_tags("nope.git"),
                     git_repos.resolve("nope.git", "main"), git_repos.set_default_branch("nope.git", "main")):
            with pytest.raises(NotFound):
                await call
        await git_repos.create("gone.git", "main")  # the path is free again
        assert await git_repos.list_branches("gone.git") == []

    # ---- refs ----------------------------------------------------------------------------------------------
    async def test_resolve_accepts_branches_tags_and_shas(self, git_repos: Any) -> None:
        s = await self._seeded(git_repos)
        await self.write_tag(git_repos, "team/r.git", "v1.0", s["c1"])
        repo = "team/r.git"
        assert await git_repos.resolve(repo, "main") == s["c2"]
        assert await git_repos.resolve(repo, "refs/heads/feature") == s["f1"]
        assert await git_repos.resolve(repo, "v1.0") == s["c1"]
        assert await git_repos.resolve(repo, "refs/tags/v1.0") == s["c1"]
        assert await git_repos.resolve(repo, s["c1"]) == s["c1"]
        assert await git_repos.resolve(repo, s["f1"][:12]) == s["f1"]
        assert await git_repos.resolve(repo, "no-such-branch") is None
        assert await git_repos.resolve(repo, "0" * 40) is None

    @pytest.mark.parametrize("rev", ["-main", "--upload-pack=x", "main..feature", "ma\x00in", "a\nb", "main@{1}"])
    async def test_a_malformed_rev_is_invalid_input(self, git_repos: Any, rev: str) -> None:
        await self._seeded(git_repos)
        with pytest.raises(InvalidInput):
            await git_repos.resolve("team/r.git", rev)

    async def test_branches_are_listed_in_byte_order_with_their_heads_and_paged(self, git_repos: Any) -> None:
        s = await self._seeded(git_repos)
        repo = "team/r.git"
        for name in ("Zeta", "alpha", "release/1"):
            await self.write_commit(git_repos, repo, name, {"n.txt": name.encode()}, f"on {name}", parent=s["c1"])
        branches = await git_repos.list_branches(repo)
        assert [b.name for b in branches] == ["Zeta", "alpha", "feature", "main", "release/1"]
        heads = {b.name: b.commit for b in branches}
        assert heads["main"].sha == s["c2"] and heads["main"].subject == "second"
        assert heads["feature"].parents == (s["c2"],) and heads["alpha"].subject == "on alpha"
        page = await git_repos.list_branches(repo, after="alpha", limit=2)
        assert [b.name for b in page] == ["feature", "main"]
        assert [b.name for b in await git_repos.list_branches(repo, after="release/1")] == []

    async def test_tags_are_listed_in_byte_order_peeled_to_their_commit(self, git_repos: Any) -> None:
        s = await self._seeded(git_repos)
        repo = "team/r.git"
        for name, sha in (("v2", s["c2"]), ("v1", s["c1"]), ("beta", s["f1"])):
            await self.write_tag(git_repos, repo, name, sha)
        tags = await git_repos.list_tags(repo)
        assert [(t.name, t.target) for t in tags] == [("beta", s["f1"]), ("v1", s["c1"]), ("v2", s["c2"])]
        assert tags[1].commit is not None and tags[1].commit.subject == "first"
        assert [t.name for t in await git_repos.list_tags(repo, after="beta", limit=1)] == ["v1"]

    async def test_ref_values_and_merged_into(self, git_repos: Any) -> None:
        s = await self._seeded(git_repos)
        repo = "team/r.git"
        await self.write_tag(git_repos, repo, "v1", s["c1"])
        refs = ["refs/heads/main", "refs/heads/feature", "refs/tags/v1", "refs/heads/absent"]
        assert await git_repos.ref_values(repo, refs) == {
            "refs/heads/main": s["c2"], "refs/heads/feature": s["f1"], "refs/tags/v1": s["c1"],
        }
        assert await git_repos.ref_values(repo, []) == {}
        assert await git_repos.merged_into(repo, refs, s["c2"]) == {"refs/heads/main": s["c2"], "refs/tags/v1": s["c1"]}
        assert await git_repos.merged_into(repo, refs, s["f1"]) == {
            "refs/heads/main": s["c2"], "refs/heads/feature": s["f1"], "refs/tags/v1": s["c1"],
        }

    async def test_ancestry(self, git_repos: Any) -> None:
        s = await self._seeded(git_repos)
        repo = "team/r.git"
        assert await git_repos.is_ancestor(repo, s["c1"], s["f1"])
        assert await git_repos.is_ancestor(repo, s["c2"], s["c2"])
        assert not await git_repos.is_ancestor(repo, s["f1"], s["c2"])
        between = await git_repos.commits_between(repo, s["c1"], s["f1"], limit=10)
        assert [c.sha for c in between] == [s["f1"], s["c2"]]
        assert [c.sha for c in await git_repos.commits_between(repo, None, s["f1"], limit=10)] == [
            s["f1"], s["c2"], s["c1"]]
        assert [c.sha for c in await git_repos.commits_between(repo, None, s["f1"], limit=1)] == [s["f1"]]
        assert await git_repos.commits_between(repo, s["f1"], s["c2"], limit=10) == []

    # ---- browsing ------------------------------------------------------------------------------------------
    async def test_tree_lists_directories_first_then_files_by_name(self, git_repos: Any) -> None:
        s = await self._seeded(git_repos)
        repo = "team/r.git"
        root = await git_repos.tree(repo, "main", "")
        assert [(e.name, e.path, e.type) for e in root] == [
            ("docs", "docs", "tree"), ("README.md", "README.md", "blob"), ("a.txt", "a.txt", "blob")]
        readme = root[1]
        assert (readme.sha, readme.size, readme.mode) == (git_blob_sha(b"hello\n"), 6, "100644")
        assert [(e.path, e.type) for e in await git_repos.tree(repo, s["f1"], "docs")] == [("docs/intro.md", "blob")]
        with pytest.raises(NotFound):
            await git_repos.tree(repo, "main", "nowhere")
        with pytest.raises(NotFound):
            await git_repos.tree(repo, "no-such-branch", "")
        with pytest.raises(InvalidInput):
            await git_repos.tree(repo, "main", "docs/../..")

    async def test_blob_is_cut_at_the_limit_and_streams_whole(self, git_repos: Any) -> None:
        s = await self._seeded(git_repos)
        repo = "team/r.git"
        blob = await git_repos.blob(repo, "main", "README.md", limit=3)
        assert (blob.path, blob.size, blob.data, blob.truncated) == ("README.md", 6, b"hel", True)
        assert blob.sha == git_blob_sha(b"hello\n")
        whole = await git_repos.blob(repo, s["c1"], "a.txt", limit=1000)
        assert (whole.data, whole.truncated) == (b"one\ntwo\nthree\n", False)
        assert b"".join([c async for c in git_repos.blob_stream(repo, "main", "docs/intro.md")]) == b"# Intro\n"
        with pytest.raises(NotFound):
            await git_repos.blob(repo, "main", "b.txt", limit=10)  # only on feature
        with pytest.raises(NotFound):
            _ = [c async for c in git_repos.blob_stream(repo, "main", "nope.txt")]
        with pytest.raises(InvalidInput):
            await git_repos.blob(repo, "main", "docs", limit=10)  # a directory
        with pytest.raises(InvalidInput):
            await git_repos.blob(repo, "main", "../etc/passwd", limit=10)

    async def test_log_is_newest_first_paged_and_filtered_by_path(self, git_repos: Any) -> None:
        s = await self._seeded(git_repos)
        repo = "team/r.git"
        log = await git_repos.log(repo, "feature")
        assert [c.sha for c in log] == [s["f1"], s["c2"], s["c1"]]
        assert log[1].message.rstrip("\n") == "second\n\nbody text" and log[1].subject == "second"
        assert log[2].parents == () and log[1].parents == (s["c1"],)
        assert [c.sha for c in await git_repos.log(repo, "feature", skip=1, limit=1)] == [s["c2"]]
        assert [c.sha for c in await git_repos.log(repo, "feature", path="a.txt")] == [s["c2"], s["c1"]]
        assert [c.sha for c in await git_repos.log(repo, "feature", path="docs")] == [s["c1"]]
        assert await git_repos.log(repo, "feature", path="missing.txt") == []
        with pytest.raises(NotFound):
            await git_repos.log(repo, "no-such-branch")

    async def test_show_gives_a_commit_and_its_changes(self, git_repos: Any) -> None:
        s = await self._seeded(git_repos)
        repo = "team/r.git"
        commit, change = await git_repos.show(repo, s["c2"], max_patch_bytes=10_000)
        assert commit.sha == s["c2"] and change.head == s["c2"]
        assert [c.sha for c in change.commits] == [s["c2"]]
        assert [(f.path, f.status, f.additions, f.deletions) for f in change.files] == [("a.txt", "modified", 1, 1)]
        root, first = await git_repos.show(repo, s["c1"], max_patch_bytes=10_000)
        assert root.parents == ()
        assert [(f.path, f.status, f.additions, f.deletions) for f in first.files] == [
            ("README.md", "added", 1, 0), ("a.txt", "added", 3, 0), ("docs/intro.md", "added", 1, 0)]
        with pytest.raises(NotFound):
            await git_repos.show(repo, "f" * 40, max_patch_bytes=100)

    async def test_compare_diffs_head_against_the_merge_base(self, git_repos: Any) -> None:
        s = await self._seeded(git_repos)
        repo = "team/r.git"
        c3 = await self.write_commit(git_repos, repo, "main", {"README.md": None}, "drop readme")
        comparison = await git_repos.compare(repo, "main", "feature", max_patch_bytes=10_000)
        assert (comparison.base, comparison.head, comparison.merge_base) == (c3, s["f1"], s["c2"])
        assert [c.sha for c in comparison.commits] == [s["f1"]]
        assert [(f.path, f.status) for f in comparison.files] == [("b.txt", "added")]  # not main's deletion
        back = await git_repos.compare(repo, "feature", "main", max_patch_bytes=10_000)
        assert [c.sha for c in back.commits] == [c3]
        assert [(f.path, f.status, f.deletions) for f in back.files] == [("README.md", "deleted", 1)]
        same = await git_repos.compare(repo, "main", "main", max_patch_bytes=10_000)
        assert (same.commits, same.files) == ((), ())
        with pytest.raises(NotFound):
            await git_repos.compare(repo, "main", "no-such-branch", max_patch_bytes=100)

    # ---- merges --------------------------------------------------------------------------------------------
    async def test_fast_forward_moves_the_target_to_the_source(self, git_repos: Any) -> None:
        s = await self._seeded(git_repos)
        repo = "team/r.git"
        announced: list[str] = []

        async def announce(sha: str) -> None:
            announced.append(sha)
            assert await git_repos.resolve(repo, "main") == s["c2"]  # not moved yet

        head = await git_repos.merge(repo, target="main", source="feature", strategy=MergeStrategy.FAST_FORWARD,
                                     author=SIG, message="ff", expected_target=s["c2"], announce=announce)
        assert head == s["f1"] and announced == [s["f1"]]
        assert await git_repos.resolve(repo, "main") == s["f1"]

    async def test_fast_forward_is_refused_when_the_target_diverged(self, git_repos: Any) -> None:
        s = await self._seeded(git_repos)
        repo = "team/r.git"
        c3 = await self.write_commit(git_repos, repo, "main", {"c.txt": b"c\n"}, "main moves on")
        with pytest.raises(Conflict) as refused:
            await git_repos.merge(repo, target="main", source="feature", strategy=MergeStrategy.FAST_FORWARD,
                                  author=SIG, message="ff")
        assert refused.value.detail["reason"] == "not_fast_forward"
        assert await git_repos.resolve(repo, "main") == c3
        assert await git_repos.resolve(repo, "feature") == s["f1"]

    async def test_merge_commit_has_both_parents_and_both_changes(self, git_repos: Any) -> None:
        s = await self._seeded(git_repos)
        repo = "team/r.git"
        c3 = await self.write_commit(git_repos, repo, "main", {"c.txt": b"c\n"}, "main moves on")
        head = await git_repos.merge(repo, target="main", source="feature", strategy=MergeStrategy.MERGE,
                                     author=SIG, message="Merge feature\n\ninto main")
        assert await git_repos.resolve(repo, "main") == head
        assert await git_repos.resolve(repo, "feature") == s["f1"]
        commit, _ = await git_repos.show(repo, head, max_patch_bytes=100)
        assert commit.parents == (c3, s["f1"])
        assert commit.subject == "Merge feature"
        assert (commit.author.name, commit.author.email) == (SIG.name, SIG.email)
        names = {e.name for e in await git_repos.tree(repo, head, "")}
        assert {"b.txt", "c.txt", "a.txt", "README.md"} <= names
        assert await git_repos.is_ancestor(repo, s["f1"], head)

    async def test_squash_writes_one_commit_with_one_parent(self, git_repos: Any) -> None:
        s = await self._seeded(git_repos)
        repo = "team/r.git"
        await self.write_commit(git_repos, repo, "feature", {"b.txt": b"b2\n", "d.txt": b"d\n"}, "more")
        head = await git_repos.merge(repo, target="main", source="feature", strategy=MergeStrategy.SQUASH,
                                     author=SIG, message="Squashed feature")
        commit, change = await git_repos.show(repo, head, max_patch_bytes=1000)
        assert commit.parents == (s["c2"],) and commit.subject == "Squashed feature"
        assert [(f.path, f.status) for f in change.files] == [("b.txt", "added"), ("d.txt", "added")]
        assert (await git_repos.blob(repo, "main", "b.txt", limit=10)).data == b"b2\n"
        assert not await git_repos.is_ancestor(repo, s["f1"], head)

    async def test_a_conflict_names_the_paths_and_touches_nothing(self, git_repos: Any) -> None:
        s = await self._seeded(git_repos)
        repo = "team/r.git"
        c3 = await self.write_commit(git_repos, repo, "main", {"a.txt": b"one\nmain\nthree\n"}, "main edit")
        f2 = await self.write_commit(git_repos, repo, "feature", {"a.txt": b"one\nfeature\nthree\n", "e.txt": b"e"},
                                     "feature edit")
        for strategy in (MergeStrategy.MERGE, MergeStrategy.SQUASH):
            with pytest.raises(Conflict) as refused:
                await git_repos.merge(repo, target="main", source="feature", strategy=strategy, author=SIG,
                                      message="m")
            assert refused.value.detail["paths"] == ["a.txt"]
        assert await git_repos.ref_values(repo, ["refs/heads/main", "refs/heads/feature"]) == {
            "refs/heads/main": c3, "refs/heads/feature": f2}
        assert [c.sha for c in await git_repos.log(repo, "main")] == [c3, s["c2"], s["c1"]]

    async def test_a_merge_is_refused_when_the_target_moved_or_nothing_is_new(self, git_repos: Any) -> None:
        s = await self._seeded(git_repos)
        repo = "team/r.git"
        with pytest.raises(Conflict):
            await git_repos.merge(repo, target="main", source="feature", strategy=MergeStrategy.MERGE, author=SIG,
                                  message="m", expected_target=s["c1"])
        with pytest.raises(Conflict):  # main is contained in feature already
            await git_repos.merge(repo, target="feature", source="main", strategy=MergeStrategy.MERGE, author=SIG,
                                  message="m")
        with pytest.raises(NotFound):
            await git_repos.merge(repo, target="main", source="no-such-branch", strategy=MergeStrategy.MERGE,
                                  author=SIG, message="m")
        assert await git_repos.resolve(repo, "main") == s["c2"]
        assert await git_repos.resolve(repo, "feature") == s["f1"]

    async def test_a_failing_announce_moves_nothing(self, git_repos: Any) -> None:
        s = await self._seeded(git_repos)
        repo = "team/r.git"
        await self.write_commit(git_repos, repo, "main", {"c.txt": b"c\n"}, "main moves on")
        before = await git_repos.resolve(repo, "main")

        async def announce(sha: str) -> None:
            raise RuntimeError(f"intent store down; {sha} not recorded")

        for strategy in MergeStrategy:
            if strategy is MergeStrategy.FAST_FORWARD:
                continue
            with pytest.raises(RuntimeError):
                await git_repos.merge(repo, target="main", source="feature", strategy=strategy, author=SIG,
                                      message="m", announce=announce)
        assert await git_repos.resolve(repo, "main") == before
        assert await git_repos.resolve(repo, "feature") == s["f1"]

    # ---- writes through the API ----------------------------------------------------------------------------
    async def test_write_commit_applies_changes_on_the_parent_and_moves_no_ref(self, git_repos: Any) -> None:
        s = await self._seeded(git_repos)
        repo = "team/r.git"
        committer = Signature("Corral User", "user@example.com", SIG.date)
        sha = await git_repos.write_commit(repo, parent=s["c2"], changes=[
            FileWrite("a.txt", None), FileWrite("new/dir/n.txt", b"n\n"), FileWrite("README.md", b"hi\n"),
        ], author=SIG, message="api write", committer=committer)
        assert await git_repos.resolve(repo, "main") == s["c2"]  # no ref moved
        commit, change = await git_repos.show(repo, sha, max_patch_bytes=1000)
        assert commit.parents == (s["c2"],) and commit.subject == "api write"
        assert (commit.author.name, commit.author.email) == (SIG.name, SIG.email)
        assert (commit.committer.name, commit.committer.email) == ("Corral User", "user@example.com")
        assert sorted((f.path, f.status) for f in change.files) == [
            ("README.md", "modified"), ("a.txt", "deleted"), ("new/dir/n.txt", "added")]
        blob = await git_repos.blob(repo, sha, "new/dir/n.txt", limit=100)
        assert blob.data == b"n\n" and blob.sha == git_blob_sha(b"n\n")
        root = await git_repos.write_commit(repo, parent=None, changes=[FileWrite("x", b"x")], author=SIG,
                                            message="root")
        assert (await git_repos.show(repo, root, max_patch_bytes=10))[0].parents == ()

    async def test_write_commit_refuses_bad_paths_and_missing_deletions(self, git_repos: Any) -> None:
        s = await self._seeded(git_repos)
        repo = "team/r.git"
        for bad in ([FileWrite("../x", b"")], [FileWrite("docs", b"file over a directory")],
                    [FileWrite("a.txt/inner", b"directory over a file")], [FileWrite("b", b""), FileWrite("b", b"")]):
            with pytest.raises(InvalidInput):
                await git_repos.write_commit(repo, parent=s["c2"], changes=bad, author=SIG, message="m")
        with pytest.raises(NotFound):
            await git_repos.write_commit(repo, parent=s["c2"], changes=[FileWrite("nope.txt", None)], author=SIG,
                                         message="m")

    async def test_update_ref_is_a_compare_and_swap(self, git_repos: Any) -> None:
        s = await self._seeded(git_repos)
        repo = "team/r.git"
        await git_repos.update_ref(repo, "refs/heads/topic", new=s["c1"], old=ZERO_SHA)
        assert await git_repos.resolve(repo, "refs/heads/topic") == s["c1"]
        with pytest.raises(Conflict):  # exists already
            await git_repos.update_ref(repo, "refs/heads/topic", new=s["c2"], old=ZERO_SHA)
        with pytest.raises(Conflict):  # not where the caller read it
            await git_repos.update_ref(repo, "refs/heads/topic", new=s["c2"], old=s["f1"])
        assert await git_repos.resolve(repo, "refs/heads/topic") == s["c1"]
        await git_repos.update_ref(repo, "refs/heads/topic", new=s["c2"], old=s["c1"])
        await git_repos.update_ref(repo, "refs/tags/v9", new=s["c1"], old=ZERO_SHA)
        assert [t.name for t in await git_repos.list_tags(repo)] == ["v9"]
        await git_repos.update_ref(repo, "refs/tags/v9", new=ZERO_SHA, old=s["c1"])
        with pytest.raises(Conflict):
            await git_repos.update_ref(repo, "refs/heads/topic", new=ZERO_SHA, old=s["c1"])
        await git_repos.update_ref(repo, "refs/heads/topic", new=ZERO_SHA, old=s["c2"])
        assert await git_repos.resolve(repo, "refs/heads/topic") is None
        assert await git_repos.list_tags(repo) == []

    async def test_merge_conflicts_and_ahead_behind_leave_the_repository_alone(self, git_repos: Any) -> None:
        s = await self._seeded(git_repos)
        repo = "team/r.git"
        assert await git_repos.merge_conflicts(repo, s["c2"], s["f1"]) == []
        assert await git_repos.ahead_behind(repo, "main", "feature") == (1, 0)
        c3 = await self.write_commit(git_repos, repo, "main", {"a.txt": b"one\nmain\nthree\n"}, "main edit")
        f2 = await self.write_commit(git_repos, repo, "feature", {"a.txt": b"one\nfeat\nthree\n"}, "feature edit")
        assert await git_repos.merge_conflicts(repo, c3, f2) == ["a.txt"]
        assert await git_repos.ahead_behind(repo, "main", "feature") == (2, 1)
        assert await git_repos.ref_values(repo, ["refs/heads/main", "refs/heads/feature"]) == {
            "refs/heads/main": c3, "refs/heads/feature": f2}

    async def test_archives_hold_the_files_under_the_prefix(self, git_repos: Any) -> None:
        s = await self._seeded(git_repos)
        repo = "team/r.git"
        assert await git_repos.tree_id(repo, s["c2"]) == await git_repos.tree_id(repo, "main")
        assert await git_repos.tree_id(repo, s["c1"]) != await git_repos.tree_id(repo, s["c2"])
        expected = {"r-main/README.md": b"hello\n", "r-main/docs/intro.md": b"# Intro\n",
                    "r-main/a.txt": b"one\nTWO\nthree\n"}
        tgz = b"".join([c async for c in git_repos.archive(repo, s["c2"], fmt="tar.gz", prefix="r-main/")])
        with tarfile.open(fileobj=io.BytesIO(tgz), mode="r:gz") as t:
            found = {m.name: t.extractfile(m).read() for m in t.getmembers() if m.isfile()}  # type: ignore[union-attr]
        assert found == expected
        raw = b"".join([c async for c in git_repos.archive(repo, s["c2"], fmt="zip", prefix="r-main/")])
        with zipfile.ZipFile(io.BytesIO(raw)) as z:
            assert {n: z.read(n) for n in z.namelist() if not n.endswith("/")} == expected
        with pytest.raises(NotFound):
            _ = [c async for c in git_repos.archive(repo, "no-such-ref", fmt="zip", prefix="r/")]

    async def test_rebase_replays_the_source_commits_on_the_target(self, git_repos: Any) -> None:
        s = await self._seeded(git_repos)
        repo = "team/r.git"
        f2 = await self.write_commit(git_repos, repo, "feature", {"b.txt": b"b2\n", "d.txt": b"d\n"}, "more\n\nbody")
        c3 = await self.write_commit(git_repos, repo, "main", {"c.txt": b"c\n"}, "main moves on")
        head = await git_repos.merge(repo, target="main", source="feature", strategy=MergeStrategy.REBASE,
                                     author=SIG, message="ignored")
        history = await git_repos.log(repo, "main")
        assert [c.subject for c in history] == ["more", "add b", "main moves on", "second", "first"]
        assert history[0].sha == head and history[2].sha == c3 and history[3].sha == s["c2"]
        assert all(len(c.parents) == 1 for c in history[:2])
        assert history[0].message.startswith("more\n\nbody")
        assert history[0].author.name == "tester" and history[0].committer.name == SIG.name
        assert (await git_repos.blob(repo, "main", "b.txt", limit=10)).data == b"b2\n"
        assert {e.name for e in await git_repos.tree(repo, "main", "")} >= {"c.txt", "d.txt", "b.txt", "a.txt"}
        assert await git_repos.resolve(repo, "feature") == f2  # the source stays where it was
        assert not await git_repos.is_ancestor(repo, f2, head)

    async def test_a_rebase_conflict_names_the_paths_and_touches_nothing(self, git_repos: Any) -> None:
        await self._seeded(git_repos)
        repo = "team/r.git"
        c3 = await self.write_commit(git_repos, repo, "main", {"b.txt": b"main's b\n"}, "main adds b")
        with pytest.raises(Conflict) as refused:
            await git_repos.merge(repo, target="main", source="feature", strategy=MergeStrategy.REBASE, author=SIG,
                                  message="m")
        assert refused.value.detail["paths"] == ["b.txt"]
        assert await git_repos.resolve(repo, "main") == c3
