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



async def _record(world, clock, project, actor, intent: PushIntent) -> bool:
    """The push's own recording of all its updates (as the route does once git reported them moved)."""
    async with world() as uow:
        done = await record_push(uow, project, actor, list(intent.updates), clock=clock, intent_id=intent.id,
                                 since=intent.created_at)
        await uow.commit()
    return done


def _set(repos, project, branch: str, sha: str | None) -> None:
    """git moving (or deleting) a branch."""
    branches = repos.repos[project.repo_path].branches
    if sha is None:
        del branches[branch]
    else:
        branches[branch] = sha


async def test_an_abandoned_intent_whose_retry_was_recorded_is_not_recorded_again(world, repos, clock, alice) -> None:
    """A crash cut a push off before git moved its ref; the client retried (same old -> new), the retry was
    recorded; the abandoned intent, found moved by the recovery, is covered by that record: one push event.
    Also when a later push moved the ref on from there (the 'moved on' reading of the ref would count it)."""
    project = await ProjectService(world, repos, clock).create(alice, NewProject(name="todo"))
    base = repos.commit(project.repo_path, "main", {"a": b"1"}, "one")
    pushed = repos.commit(project.repo_path, "topic", {"a": b"2"}, "two", parent=base)
    later = repos.commit(project.repo_path, "topic", {"a": b"3"}, "three")
    main = [RefUpdate(base, pushed, "refs/heads/main")]
    await _intent(world, clock, project, alice, main)  # the process died: git never moved main
    clock.advance(30)
    retry = await _intent(world, clock, project, alice, main)
    _set(repos, project, "main", pushed)  # git moves main for the retry ...
    assert await _record(world, clock, project, alice, retry)  # ... and the retry is recorded
    clock.advance(1)
    moved_on = await _intent(world, clock, project, alice, [RefUpdate(pushed, later, "refs/heads/main")])
    _set(repos, project, "main", later)
    assert await _record(world, clock, project, alice, moved_on)
    clock.advance(GRACE.total_seconds() + 1)
    assert await _recover(world, repos, clock) == 1  # settled: dropped, nothing recorded
    assert [(p["before"], p["after"]) for p in _pushes(world)] == [(base, pushed), (pushed, later)]
    assert len([a for a in world.audit if a.action == "repo.push"]) == 2
    async with world() as uow:
        assert await uow.push_intents.older_than(clock.now() + timedelta(days=1), 10) == []


async def test_a_retry_recorded_after_the_recovery_recorded_its_move_is_not_recorded_again(
    world, repos, clock, alice,
) -> None:
    """The other order: the retry's git moved the ref, but before the retry was recorded a recovery found the
    ref moved as the abandoned intent asked and recorded it: the retry's own record writes no second event."""
    project = await ProjectService(world, repos, clock).create(alice, NewProject(name="todo"))
    base = repos.commit(project.repo_path, "main", {"a": b"1"}, "one")
    pushed = repos.commit(project.repo_path, "topic", {"a": b"2"}, "two", parent=base)
    main = [RefUpdate(base, pushed, "refs/heads/main")]
    await _intent(world, clock, project, alice, main)
    clock.advance(GRACE.total_seconds() + 1)
    retry = await _intent(world, clock, project, alice, main)
    _set(repos, project, "main", pushed)  # the retry's git moves main
    assert await _recover(world, repos, clock, in_flight={retry.id}) == 1  # the recovery records the move
    assert [(p["before"], p["after"]) for p in _pushes(world)] == [(base, pushed)]
    assert await _record(world, clock, project, alice, retry)  # the retry's own record: claimed, nothing new
    assert [(p["before"], p["after"]) for p in _pushes(world)] == [(base, pushed)]
    assert len([a for a in world.audit if a.action == "repo.push"]) == 1


async def test_a_repeated_move_after_the_intent_is_recorded_again_by_a_new_push(world, repos, clock, alice) -> None:
    """The memory of recorded moves covers only what a push announced earlier could have done: the same
    old -> new pushed again later (after a force push back) is a new push and is recorded."""
    project = await ProjectService(world, repos, clock).create(alice, NewProject(name="todo"))
    base = repos.commit(project.repo_path, "main", {"a": b"1"}, "one")
    pushed = repos.commit(project.repo_path, "topic", {"a": b"2"}, "two", parent=base)
    for old, new in ((base, pushed), (pushed, base), (base, pushed)):
        clock.advance(1)
        intent = await _intent(world, clock, project, alice, [RefUpdate(old, new, "refs/heads/main")])
        _set(repos, project, "main", new)
        assert await _record(world, clock, project, alice, intent)
    assert [(p["before"], p["after"]) for p in _pushes(world)] == [(base, pushed), (pushed, base), (base, pushed)]


async def test_a_move_that_happened_is_still_recovered_after_later_pushes(world, repos, clock, alice) -> None:
    """The recorded moves also tell that an interrupted push did happen: the next recorded push of the ref
    started where it left it (here a deletion, which the ref itself can no longer show)."""
    project = await ProjectService(world, repos, clock).create(alice, NewProject(name="todo"))
    base = repos.commit(project.repo_path, "main", {"a": b"1"}, "one")
    gone = repos.commit(project.repo_path, "gone", {"b": b"1"}, "gone", parent=base)
    await _intent(world, clock, project, alice, [RefUpdate(gone, ZERO_SHA, "refs/heads/gone")])
    _set(repos, project, "gone", None)  # git deleted it, then the process died
    again = repos.commit(project.repo_path, "gone", {"c": b"1"}, "again", parent=base)
    clock.advance(1)
    recreate = await _intent(world, clock, project, alice, [RefUpdate(ZERO_SHA, again, "refs/heads/gone")])
    assert await _record(world, clock, project, alice, recreate)
    clock.advance(GRACE.total_seconds() + 1)
    assert await _recover(world, repos, clock) == 1
    assert [(p["before"], p["after"]) for p in _pushes(world)] == [(ZERO_SHA, again), (gone, ZERO_SHA)]
