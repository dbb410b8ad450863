"""Recording pushes a crash left unrecorded: the intent written before git ran, the refs as git left them."""

from __future__ import annotations

from datetime import timedelta

from corral.core.git.model import ZERO_SHA, PushIntent, RefUpdate
from corral.core.git.recovery import recover_pushes
from corral.core.git.service import record_push
from corral.core.ids import uuid7
from corral.core.projects.commands import NewBranchProtection, NewProject
from corral.core.projects.protections import BranchProtectionService
from corral.core.projects.service import ProjectService

GRACE = timedelta(minutes=2)
ABANDON = timedelta(hours=24)


async def _intent(world, clock, project, actor, updates, bypassed=()) -> PushIntent:
    intent = PushIntent(uuid7(), project.id, actor.id, actor.name, tuple(updates), clock.now(), bypassed=bypassed)
    async with world() as uow:
        await uow.push_intents.add(intent)
        await uow.commit()
    return intent


async def _recover(world, repos, clock, **kw) -> int:
    return await recover_pushes(world, repos, clock, older_than=GRACE, abandon_after=ABANDON, **kw)


def _pushes(world) -> list[dict]:
    return [e.payload for e in world.events if e.topic == "push"]


async def test_a_push_whose_refs_moved_is_recorded_once_with_its_pusher(world, repos, clock, alice) -> None:
    project = await ProjectService(world, repos, clock).create(alice, NewProject(name="todo"))
    first = repos.commit(project.repo_path, "main", {"a": b"1"}, "one")
    intent = await _intent(world, clock, project, alice, [RefUpdate(ZERO_SHA, first, "refs/heads/main")])
    assert await _recover(world, repos, clock) == 0  # within the grace: the push may still be recording
    clock.advance(GRACE.total_seconds() + 1)
    assert await _recover(world, repos, clock, in_flight={intent.id}) == 0  # this process's own push: left alone
    assert await _recover(world, repos, clock) == 1
    (event,) = _pushes(world)
    assert (event["ref"], event["after"], event["pusher"]["name"]) == ("refs/heads/main", first, "alice")
    assert [a.action for a in world.audit if a.action == "repo.push"] == ["repo.push"]
    assert await _recover(world, repos, clock) == 0  # settled: nothing left
    async with world() as uow:  # the push's own recording, late: it finds the intent taken and writes nothing
        assert not await record_push(uow, project, alice, list(intent.updates), clock=clock,
                                     intent_id=intent.id)
        await uow.commit()
    assert len(_pushes(world)) == 1


async def test_refs_that_did_not_move_are_kept_then_dropped(world, repos, clock, alice) -> None:
    project = await ProjectService(world, repos, clock).create(alice, NewProject(name="todo"))
    base = repos.commit(project.repo_path, "main", {"a": b"1"}, "one")
    other = repos.commit(project.repo_path, "topic", {"b": b"1"}, "elsewhere", parent=base)
    # the push asked main to go base -> other, but git refused it (or never ran): main is still at base
    await _intent(world, clock, project, alice, [RefUpdate(base, other, "refs/heads/main")])
    clock.advance(GRACE.total_seconds() + 1)
    assert await _recover(world, repos, clock) == 0  # maybe still running on another replica
    clock.advance(ABANDON.total_seconds())
    assert await _recover(world, repos, clock) == 1  # dropped
    assert _pushes(world) == []
    async with world() as uow:
        assert await uow.push_intents.older_than(clock.now() + timedelta(days=1), 10) == []


async def test_a_ref_moved_on_by_a_later_push_counts_and_bypasses_are_audited(world, repos, clock, alice) -> None:
    project = await ProjectService(world, repos, clock).create(alice, NewProject(name="todo"))
    base = repos.commit(project.repo_path, "main", {"a": b"1"}, "one")
    rule = await BranchProtectionService(world, clock).create(alice, project, NewBranchProtection(
        pattern="main", require_merge_request=True))
    pushed = repos.commit(project.repo_path, "main", {"a": b"2"}, "two")
    repos.commit(project.repo_path, "main", {"a": b"3"}, "three")  # a later push moved main on
    await _intent(world, clock, project, alice, [RefUpdate(base, pushed, "refs/heads/main"),
                                                 RefUpdate(ZERO_SHA, base, "refs/heads/never")],
                  bypassed=((rule.id, "admin"),))
    clock.advance(GRACE.total_seconds() + 1)
    assert await _recover(world, repos, clock) == 1
    (event,) = _pushes(world)  # only the ref that moved
    assert (event["ref"], event["before"], event["after"]) == ("refs/heads/main", base, pushed)
    bypass = [a.detail for a in world.audit if a.action == "branch_protection.bypass"]
    assert [(b["ref"], b["reason"]) for b in bypass] == [("refs/heads/main", "admin")]
