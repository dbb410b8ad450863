"""Files, branches and tags written through the API (fakes): recorded like a push, protected like a push."""

from __future__ import annotations

from datetime import timedelta

import pytest

from corral.contracts.git import git_blob_sha
from corral.core.errors import Conflict, InvalidTransition, NotFound, PermissionDenied
from corral.core.git.model import ZERO_SHA
from corral.core.projects.archives import ArchiveService, archive_prefix
from corral.core.projects.commands import (
    MergeOptions,
    MergeRequestChanges,
    NewBranchProtection,
    NewIssue,
    NewMergeRequest,
    NewProject,
)
from corral.core.projects.issues import IssueService
from corral.core.projects.merge_requests import MergeRequestService, closed_issue_numbers
from corral.core.projects.model import IssueStatus, MrStatus
from corral.core.projects.protections import BranchProtectionService
from corral.core.projects.repo_writes import FileEdit, RepoWriter
from corral.core.projects.service import ProjectService
from corral.fakes.git import InMemoryGitRepositories
from corral.fakes.objectstore import InMemoryObjectStore


@pytest.fixture
async def project(world, repos, clock, alice):
    p = await ProjectService(world, repos, clock).create(alice, NewProject(name="todo"))
    repos.commit(p.repo_path, "main", {"README.md": b"hello\n", "a.txt": b"a\n"})
    return p


@pytest.fixture
def writer(world, repos, clock, users) -> RepoWriter:
    return RepoWriter(world, repos, clock, users)


def _pushes(world) -> list[dict]:
    return [e.payload for e in world.events if e.topic == "push"]


async def _intents(world, clock) -> list:
    async with world() as uow:
        return await uow.push_intents.older_than(clock.now() + timedelta(days=1), 10)


async def test_a_file_write_is_one_commit_recorded_once_like_a_push(writer, project, repos, world, clock, alice):
    before = repos.repos[project.repo_path].branches["main"]
    done = await writer.write_files(alice, project, [FileEdit("upsert", "src/new.txt", b"new\n")], branch=None,
                                    new_branch=None, message=None, author=("Ann", "ann@example.com"), is_admin=False)
    assert done.created and done.files == (("src/new.txt", git_blob_sha(b"new\n")),)
    assert repos.repos[project.repo_path].branches["main"] == done.commit
    commit = repos.repos[project.repo_path].commits[done.commit]
    assert commit.parents == (before,) and commit.message == "Add src/new.txt\n"
    assert (commit.author.name, commit.author.email) == ("Ann", "ann@example.com")
    pushes = _pushes(world)
    assert len(pushes) == 1 and pushes[0]["before"] == before and pushes[0]["after"] == done.commit
    assert pushes[0]["via"] == "api" and pushes[0]["pusher"]["name"] == "alice"
    assert [a.action for a in world.audit].count("repo.push") == 1
    assert await _intents(world, clock) == []  # the intent was claimed by the record


async def test_update_needs_the_current_sha_and_a_stale_one_is_409(writer, project, repos, world, alice):
    kw = {"branch": "main", "new_branch": None, "message": "m", "author": None, "is_admin": False}
    with pytest.raises(Conflict) as missing:
        await writer.write_files(alice, project, [FileEdit("upsert", "a.txt", b"b\n")], **kw)
    assert missing.value.detail["reason"] == "sha_required" and missing.value.detail["sha"] == git_blob_sha(b"a\n")
    done = await writer.write_files(alice, project, [FileEdit("upsert", "a.txt", b"b\n", git_blob_sha(b"a\n"))],
                                    **kw)
    assert not done.created
    head = repos.repos[project.repo_path].branches["main"]
    with pytest.raises(Conflict) as stale:  # the same sha again: the file changed meanwhile
        await writer.write_files(alice, project, [FileEdit("update", "a.txt", b"c\n", git_blob_sha(b"a\n"))], **kw)
    assert stale.value.detail["reason"] == "stale_sha"
    with pytest.raises(Conflict):
        await writer.write_files(alice, project, [FileEdit("create", "a.txt", b"c\n")], **kw)
    with pytest.raises(NotFound):
        await writer.write_files(alice, project, [FileEdit("delete", "zzz", None, "0" * 40)], **kw)
    assert repos.repos[project.repo_path].branches["main"] == head  # refusals changed nothing
    assert len(_pushes(world)) == 1


async def test_several_files_in_one_commit_on_a_new_branch(writer, project, repos, world, alice):
    done = await writer.write_files(alice, project, [
        FileEdit("create", "b.txt", b"b"), FileEdit("delete", "a.txt", None, git_blob_sha(b"a\n")),
        FileEdit("update", "README.md", b"hi\n", git_blob_sha(b"hello\n")),
    ], branch="main", new_branch="topic", message="three files", author=None, is_admin=False)
    r = repos.repos[project.repo_path]
    assert r.branches["topic"] == done.commit and r.files[done.commit] == {"README.md": b"hi\n", "b.txt": b"b"}
    assert dict(done.files)["a.txt"] is None
    assert _pushes(world)[-1]["created"] is True and _pushes(world)[-1]["branch"] == "topic"
    with pytest.raises(Conflict):  # the new branch exists now
        await writer.write_files(alice, project, [FileEdit("create", "c.txt", b"c")], branch="main",
                                 new_branch="topic", message=None, author=None, is_admin=False)


async def test_a_merge_request_only_branch_refuses_with_the_hooks_words(writer, project, repos, world, clock, alice):
    await BranchProtectionService(world, clock).create(alice, project, NewBranchProtection(
        pattern="main", require_merge_request=True))
    head = repos.repos[project.repo_path].branches["main"]
    with pytest.raises(PermissionDenied) as refused:
        await writer.write_files(alice, project, [FileEdit("create", "x", b"x")], branch=None, new_branch=None,
                                 message=None, author=None, is_admin=False)
    assert str(refused.value) == "Corral: branch 'main' is protected: changes must go through a merge request"
    assert repos.repos[project.repo_path].branches["main"] == head and _pushes(world) == []
    assert await _intents(world, clock) == []


async def test_branches_and_tags(writer, project, repos, world, clock, alice):
    head = repos.repos[project.repo_path].branches["main"]
    assert await writer.create_ref(alice, project, "branch", "dev", None, is_admin=False) == head
    assert await writer.create_ref(alice, project, "tag", "v1", "dev", is_admin=False) == head
    with pytest.raises(Conflict):
        await writer.create_ref(alice, project, "branch", "dev", None, is_admin=False)
    with pytest.raises(NotFound):
        await writer.create_ref(alice, project, "branch", "x", "no-such", is_admin=False)
    with pytest.raises(Conflict):
        await writer.delete_ref(alice, project, "branch", "main", is_admin=False)  # the default branch
    await BranchProtectionService(world, clock).create(alice, project, NewBranchProtection(pattern="dev"))
    with pytest.raises(PermissionDenied) as refused:
        await writer.delete_ref(alice, project, "branch", "dev", is_admin=False)
    assert "cannot be deleted" in str(refused.value)
    assert await writer.delete_ref(alice, project, "tag", "v1", is_admin=False) == head
    assert [(p["ref"], p["before"], p["after"]) for p in _pushes(world)] == [
        ("refs/heads/dev", ZERO_SHA, head), ("refs/tags/v1", ZERO_SHA, head), ("refs/tags/v1", head, ZERO_SHA)]


async def test_archives_are_cached_by_tree(project, repos, alice):
    objects = InMemoryObjectStore()
    service = ArchiveService(repos, objects)
    first = await service.prepare(project, "main", "zip")
    assert not first.cached and first.filename == "todo-main.zip"
    again = await service.prepare(project, "main", "zip")
    assert again.cached and again.key == first.key
    assert archive_prefix(project, "feature/x y") == "todo-feature-x-y/"
    data = b"".join([c async for c in service.chunks(again)])
    assert data.startswith(b"PK")


def test_closing_keywords() -> None:
    assert closed_issue_numbers("Fixes #2 and closes #3", "resolved: #4; see #5", "Close #2, fixes#6") == [2, 3, 4]


async def test_merge_closes_issues_deletes_the_source_and_refuses_drafts(world, repos, users, clock, project, alice,
                                                                         bob):
    repos.commit(project.repo_path, "feature", {"b.txt": b"b\n"}, "Add b\n\nResolves #2",
                 parent=repos.repos[project.repo_path].branches["main"])
    issues = IssueService(world, users, clock)
    for title in ("one", "two", "three"):
        await issues.create(alice, project, NewIssue(title=title))
    mrs = MergeRequestService(world, repos, users, clock)
    mr = await mrs.create(alice, project, NewMergeRequest(source_branch="feature", title="Add b", body="Closes #1",
                                                          draft=True))
    assert mr.title == "Draft: Add b"
    assert await mrs.mergeability(project, mr) == (True, [])
    with pytest.raises(InvalidTransition) as draft:
        await mrs.merge(bob, project, mr.number)
    assert draft.value.detail["reason"] == "draft"
    mr = await mrs.update(alice, project, mr.number, MergeRequestChanges(draft=False))
    assert mr.title == "Add b"
    merged = await mrs.merge(bob, project, mr.number, MergeOptions(delete_source_branch=True))
    assert merged.status is MrStatus.MERGED
    assert "feature" not in repos.repos[project.repo_path].branches
    states = [(await issues.get(project, n)).status for n in (1, 2, 3)]
    assert states == [IssueStatus.CLOSED, IssueStatus.CLOSED, IssueStatus.OPEN]
    assert [a.detail["number"] for a in world.audit if a.action == "issue.close_by_merge"] == [1, 2]
    assert [p["ref"] for p in _pushes(world)] == ["refs/heads/main", "refs/heads/feature"]
    assert await mrs.mergeability(project, merged) == (None, [])


async def test_mergeability_names_conflicting_paths(world, repos, users, clock, project, alice):
    base = repos.repos[project.repo_path].branches["main"]
    repos.commit(project.repo_path, "feature", {"a.txt": b"feature\n"}, parent=base)
    repos.commit(project.repo_path, "main", {"a.txt": b"main\n"})
    mrs = MergeRequestService(world, repos, users, clock)
    mr = await mrs.create(alice, project, NewMergeRequest(source_branch="feature", title="WIP: clash"))
    assert await mrs.mergeability(project, mr) == (False, ["a.txt"])
    assert len(mrs._mergeability) == 1
    commits = await mrs.commits(project, mr.number)
    assert [c.sha for c in commits] == [repos.repos[project.repo_path].branches["feature"]]


async def test_the_first_file_of_an_empty_repository_is_the_root_commit(world, repos, clock, users, alice):
    p = await ProjectService(world, repos, clock).create(alice, NewProject(name="empty"))
    writer = RepoWriter(world, repos, clock, users)
    kw = {"new_branch": None, "message": None, "author": None, "is_admin": False}
    with pytest.raises(NotFound):  # only the default branch can be born
        await writer.write_files(alice, p, [FileEdit("upsert", "README.md", b"x")], branch="dev", **kw)
    done = await writer.write_files(alice, p, [FileEdit("upsert", "README.md", b"x")], branch=None, **kw)
    assert repos.repos[p.repo_path].commits[done.commit].parents == ()
    assert _pushes(world)[-1]["created"] is True and _pushes(world)[-1]["before"] == ZERO_SHA


class RacingRepositories(InMemoryGitRepositories):
    """Someone pushes to the branch between the write's read and its compare-and-swap (once)."""

    raced: bool = False

    async def update_ref(self, repo: str, ref: str, *, new: str, old: str) -> None:
        if not self.raced:
            type(self).raced = True
            self.commit(repo, "main", {"other.txt": b"o"}, "pushed meanwhile")
        await super().update_ref(repo, ref, new=new, old=old)


async def test_a_branch_moving_during_the_write_is_read_again_and_the_sha_decides(world, clock, users, alice):
    repos = RacingRepositories()
    p = await ProjectService(world, repos, clock).create(alice, NewProject(name="busy"))
    repos.commit(p.repo_path, "main", {"a.txt": b"a\n"})
    writer = RepoWriter(world, repos, clock, users)
    done = await writer.write_files(alice, p, [FileEdit("update", "a.txt", b"b\n", git_blob_sha(b"a\n"))],
                                    branch=None, new_branch=None, message=None, author=None, is_admin=False)
    files = repos.repos[p.repo_path].files[done.commit]
    assert files == {"a.txt": b"b\n", "other.txt": b"o"}  # on top of what was pushed meanwhile
    assert len(_pushes(world)) == 1 and await _intents(world, clock) == []  # the lost swap left no intent
