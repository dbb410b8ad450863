"""Merge requests, reviews and branch protection on fakes."""

from __future__ import annotations

import pytest

from corral.core.errors import Conflict, InvalidInput, InvalidTransition
from corral.core.projects.commands import (
    BranchProtectionChanges,
    MergeOptions,
    MergeRequestChanges,
    NewBranchProtection,
    NewComment,
    NewMergeRequest,
    NewProject,
    NewReview,
)
from corral.core.projects.merge_requests import MergeRequestService
from corral.core.projects.model import MrStatus
from corral.core.projects.protections import BranchProtectionService
from corral.core.projects.service import ProjectService


@pytest.fixture
def projects(world, repos, clock) -> ProjectService:
    return ProjectService(world, repos, clock)


@pytest.fixture
def mrs(world, repos, users, clock) -> MergeRequestService:
    return MergeRequestService(world, repos, users, clock)


@pytest.fixture
async def project(projects, repos, alice):
    p = await projects.create(alice, NewProject(name="todo"))
    repos.commit(p.repo_path, "main", {"README.md": b"hello\n", "a.txt": b"a\n"})
    repos.commit(p.repo_path, "feature", {"b.txt": b"b\n"}, parent=repos.repos[p.repo_path].branches["main"])
    return p


async def test_create_validates_branches(mrs, project, alice) -> None:
    with pytest.raises(InvalidInput) as err:
        await mrs.create(alice, project, NewMergeRequest(source_branch="nope", target_branch="main", title="x"))
    assert err.value.field == "source_branch"
    with pytest.raises(InvalidInput):
        await mrs.create(alice, project, NewMergeRequest(source_branch="main", target_branch="main", title="x"))
    mr = await mrs.create(alice, project, NewMergeRequest(source_branch="feature", title="Add b"))
    assert (mr.number, mr.status, mr.target_branch) == (1, MrStatus.OPEN, "main")


@pytest.mark.parametrize("strategy", ["merge", "squash"])
async def test_merge_moves_target_and_records_push(mrs, project, repos, world, alice, bob, strategy) -> None:
    mr = await mrs.create(alice, project, NewMergeRequest(source_branch="feature", title="Add b"))
    before = repos.repos[project.repo_path].branches["main"]
    merged = await mrs.merge(bob, project, mr.number, MergeOptions(strategy=strategy))
    after = repos.repos[project.repo_path].branches["main"]
    assert merged.status is MrStatus.MERGED
    assert merged.merge_commit_sha == after
    assert merged.merged_by == bob.id
    commit = repos.repos[project.repo_path].commits[after]
    assert len(commit.parents) == (2 if strategy == "merge" else 1)
    assert repos.repos[project.repo_path].files[after]["b.txt"] == b"b\n"
    push = [e for e in world.events if e.topic == "push"][-1]
    assert (push.payload["before"], push.payload["after"], push.payload["ref"]) == (before, after, "refs/heads/main")
    assert push.payload["pusher"]["name"] == "bob"
    with pytest.raises(InvalidTransition):
        await mrs.merge(bob, project, mr.number)
    with pytest.raises(InvalidTransition):
        await mrs.update(bob, project, mr.number, MergeRequestChanges(status="closed"))


async def test_fast_forward_and_its_refusal(mrs, project, repos, alice) -> None:
    r = repos.repos[project.repo_path]
    mr = await mrs.create(alice, project, NewMergeRequest(source_branch="feature", title="ff"))
    merged = await mrs.merge(alice, project, mr.number, MergeOptions(strategy="fast-forward"))
    assert r.branches["main"] == r.branches["feature"] == merged.merge_commit_sha
    repos.commit(project.repo_path, "main", {"c.txt": b"c"})
    repos.commit(project.repo_path, "other", {"d.txt": b"d"}, parent=r.commits[r.branches["feature"]].sha)
    mr2 = await mrs.create(alice, project, NewMergeRequest(source_branch="other", title="not ff"))
    before = dict(r.branches)
    with pytest.raises(Conflict):
        await mrs.merge(alice, project, mr2.number, MergeOptions(strategy="fast-forward"))
    assert r.branches == before
    assert (await mrs.get(project, mr2.number)).status is MrStatus.OPEN


async def test_conflict_names_paths_and_leaves_repo_untouched(mrs, project, repos, alice) -> None:
    r = repos.repos[project.repo_path]
    base = r.branches["main"]
    repos.commit(project.repo_path, "main", {"a.txt": b"ours\n"})
    repos.commit(project.repo_path, "clash", {"a.txt": b"theirs\n"}, parent=base)
    mr = await mrs.create(alice, project, NewMergeRequest(source_branch="clash", title="clash"))
    before = dict(r.branches)
    with pytest.raises(Conflict) as err:
        await mrs.merge(alice, project, mr.number)
    assert err.value.detail["paths"] == ["a.txt"]
    assert r.branches == before


async def test_close_reopen_and_state_machine(mrs, project, alice) -> None:
    mr = await mrs.create(alice, project, NewMergeRequest(source_branch="feature", title="x"))
    assert (await mrs.update(alice, project, mr.number, MergeRequestChanges(status="closed"))).status is MrStatus.CLOSED
    with pytest.raises(InvalidTransition):
        await mrs.merge(alice, project, mr.number)
    with pytest.raises(InvalidTransition):
        await mrs.update(alice, project, mr.number, MergeRequestChanges(status="closed"))
    with pytest.raises(InvalidInput):
        await mrs.update(alice, project, mr.number, MergeRequestChanges(status="merged"))
    assert (await mrs.update(alice, project, mr.number, MergeRequestChanges(status="open"))).status is MrStatus.OPEN


async def test_required_approvals(mrs, project, world, clock, alice, bob) -> None:
    rules = BranchProtectionService(world, clock)
    await rules.create(alice, project, NewBranchProtection(pattern="main", required_approvals=1))
    with pytest.raises(Conflict):
        await rules.create(alice, project, NewBranchProtection(pattern="main"))
    mr = await mrs.create(alice, project, NewMergeRequest(source_branch="feature", title="x"))
    with pytest.raises(Conflict) as err:
        await mrs.merge(alice, project, mr.number)
    assert err.value.detail["required"] == 1
    with pytest.raises(InvalidInput):
        await mrs.review(alice, project, mr.number, NewReview(verdict="approve"))
    await mrs.review(bob, project, mr.number, NewReview(verdict="approve", body="lgtm"))
    await mrs.review(bob, project, mr.number, NewReview(verdict="request_changes"))
    with pytest.raises(Conflict):
        await mrs.merge(alice, project, mr.number)
    await mrs.review(bob, project, mr.number, NewReview(verdict="approve"))
    assert (await mrs.merge(alice, project, mr.number)).status is MrStatus.MERGED
    assert [r.verdict.value for r in await mrs.reviews(project, mr.number)] == ["approve", "request_changes", "approve"]


async def test_comments_and_diff(mrs, project, alice) -> None:
    mr = await mrs.create(alice, project, NewMergeRequest(source_branch="feature", title="x"))
    await mrs.comment(alice, project, mr.number, NewComment(body="please look"))
    assert [c.body for c in (await mrs.comments(project, mr.number)).items] == ["please look"]
    diff = await mrs.diff(project, mr.number)
    assert [f.path for f in diff.files] == ["b.txt"]


async def test_protection_validation(world, clock, project, alice) -> None:
    rules = BranchProtectionService(world, clock)
    with pytest.raises(InvalidInput):
        await rules.create(alice, project, NewBranchProtection(pattern="../x"))
    with pytest.raises(InvalidInput) as err:
        await rules.create(alice, project, NewBranchProtection(pattern="main", required_approvals=-1))
    assert err.value.field == "required_approvals"
    rule = await rules.create(alice, project, NewBranchProtection(pattern="release/*", allow_deletion=True))
    assert rule.matches("release/1.0")
    assert not rule.matches("main")
    updated = await rules.update(alice, project, rule.id, BranchProtectionChanges(require_merge_request=True))
    assert updated.require_merge_request
    await rules.delete(alice, project, rule.id)
    assert await rules.list(project) == []


async def _intents(world, clock) -> list:
    from datetime import timedelta

    async with world() as uow:
        return await uow.push_intents.older_than(clock.now() + timedelta(days=1), 10)


async def test_a_merge_announces_its_push_and_a_crash_after_the_move_is_recovered(
    mrs, project, repos, world, clock, alice, bob, monkeypatch,
) -> None:
    from datetime import timedelta

    from corral.core.errors import Unavailable
    from corral.core.git.recovery import recover_pushes
    from corral.core.outbox.relay import OutboxRelay
    from corral.core.projects import merge_requests

    first = await mrs.create(alice, project, NewMergeRequest(source_branch="feature", title="Add b"))
    await mrs.merge(bob, project, first.number, MergeOptions(strategy="merge"))
    assert await _intents(world, clock) == []  # written before the move, claimed by the record
    repos.commit(project.repo_path, "second", {"c.txt": b"c\n"}, parent=repos.repos[project.repo_path].branches["main"])
    mr = await mrs.create(alice, project, NewMergeRequest(source_branch="second", title="Add c"))

    async def crash(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise Unavailable("the process died")

    monkeypatch.setattr(merge_requests, "record_push", crash)  # the target moves, nothing is recorded
    with pytest.raises(Unavailable):
        await mrs.merge(bob, project, mr.number, MergeOptions(strategy="fast-forward"))
    monkeypatch.undo()
    head = repos.repos[project.repo_path].branches["main"]
    assert head == repos.repos[project.repo_path].branches["second"]
    assert (await mrs.get(project, mr.number)).status is MrStatus.OPEN
    assert len(await _intents(world, clock)) == 1  # the move is announced, its record is missing
    clock.advance(180)
    assert await recover_pushes(world, repos, clock, older_than=timedelta(minutes=2),
                                abandon_after=timedelta(hours=24)) == 1
    relay = OutboxRelay(world, [mrs.on_push])
    while await relay.run_once():
        pass
    recovered = await mrs.get(project, mr.number)  # the recovered push marks it merged, by the merger
    assert (recovered.status, recovered.merged_by, recovered.merge_commit_sha) == (MrStatus.MERGED, bob.id, head)
    assert await _intents(world, clock) == []


async def test_a_merge_whose_target_moved_leaves_no_intent(
    mrs, project, repos, world, clock, alice, bob, monkeypatch,
) -> None:
    mr = await mrs.create(alice, project, NewMergeRequest(source_branch="feature", title="Add b"))
    original = type(repos).merge

    async def racing(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        announce = kwargs.pop("announce")

        async def then_lose_the_race(head: str) -> None:
            await announce(head)
            raise Conflict("the target branch moved during the merge; nothing was changed, try again")

        return await original(self, *args, announce=then_lose_the_race, **kwargs)

    monkeypatch.setattr(type(repos), "merge", racing)
    with pytest.raises(Conflict):
        await mrs.merge(bob, project, mr.number)
    assert await _intents(world, clock) == []
    assert (await mrs.get(project, mr.number)).status is MrStatus.OPEN
