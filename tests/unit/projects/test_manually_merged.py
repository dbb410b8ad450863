"""A push that merged an open merge request outside Corral's merge marks it merged (Gitea's "manually merged")."""

from __future__ import annotations

from corral.core.ids import uuid7
from corral.core.outbox import topics
from corral.core.outbox.model import OutboxEvent
from corral.core.projects.commands import NewMergeRequest, NewProject
from corral.core.projects.merge_requests import MergeRequestService
from corral.core.projects.model import MrStatus
from corral.core.projects.service import ProjectService


def _push(project, branch: str, after: str, pusher, clock, **extra) -> OutboxEvent:
    payload = {"branch": branch, "ref": f"refs/heads/{branch}", "after": after, "deleted": False, "via": "push",
               "pusher": {"id": str(pusher.id), "name": pusher.name}, **extra}
    return OutboxEvent(uuid7(), topics.PUSH, payload, clock.now(), project_id=project.id)


async def test_only_a_push_containing_the_source_head_merges(world, repos, users, clock, alice, bob) -> None:
    project = await ProjectService(world, repos, clock).create(alice, NewProject(name="todo"))
    base = repos.commit(project.repo_path, "main", {"a": b"1"}, "base")
    feature = repos.commit(project.repo_path, "feature", {"b": b"1"}, "feature", parent=base)
    repos.commit(project.repo_path, "gone", {"c": b"1"}, "gone", parent=base)
    service = MergeRequestService(world, repos, users, clock)
    mr = await service.create(alice, project, NewMergeRequest(source_branch="feature", target_branch="main", title="f"))
    unrelated = repos.commit(project.repo_path, "main", {"d": b"1"}, "unrelated")

    async def consume(event: OutboxEvent) -> int:
        async with world() as uow:
            merged = await service.on_push(uow, event)
            await uow.commit()
        return merged

    assert await consume(_push(project, "main", unrelated, bob, clock)) == 0  # feature's head not in main
    assert await consume(_push(project, "main", feature, bob, clock, via="merge")) == 0  # Corral's own merge
    assert await consume(_push(project, "other", feature, bob, clock)) == 0  # not the target branch
    assert (await service.get(project, mr.number)).status is MrStatus.OPEN
    assert await consume(_push(project, "main", feature, bob, clock)) == 1
    done = await service.get(project, mr.number)
    assert (done.status, done.merged_by, done.merge_commit_sha) == (MrStatus.MERGED, bob.id, feature)
    assert await consume(_push(project, "main", feature, bob, clock)) == 0  # handed out again: no change
