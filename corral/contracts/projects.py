"""Behavioural contract of the projects stores (ProjectStore, IssueStore, CommentStore, MergeRequestStore,
ReviewStore, BranchProtectionStore, WebhookStore, WebhookDeliveryStore, PushIntentStore), run against every
adapter.

Subclasses provide two fixtures:
- ``projects_uow_factory``: a UnitOfWorkFactory whose units carry the projects stores;
- ``make_user``: an async callable ``name -> UserRef`` creating a user the stores may reference.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import attrs
import pytest

from corral.core.errors import Conflict
from corral.core.git.model import PushIntent, RefUpdate
from corral.core.identity.model import SealedSecret
from corral.core.ids import uuid7
from corral.core.projects.model import (
    BranchProtection,
    Comment,
    DeliveryStatus,
    Issue,
    IssueFilter,
    IssueStatus,
    Label,
    MergeRequest,
    Milestone,
    MrStatus,
    Project,
    ProjectPurge,
    Release,
    ReleaseAsset,
    Review,
    Verdict,
    Visibility,
    Webhook,
    WebhookDelivery,
)
from corral.core.projects.ports import UserRef
from corral.core.secrets.model import WrappedKey

__all__ = ["ProjectStoresContract"]

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
MakeUser = Callable[[str], Awaitable[UserRef]]


def _project(owner: UserRef, name: str) -> Project:
    pid = uuid7()
    return Project(id=pid, owner_id=owner.id, owner_name=owner.name, name=name, visibility=Visibility.PRIVATE,
                   default_branch="main", repo_path=f"{pid}.git", created_at=T0, updated_at=T0)


class ProjectStoresContract:
    """See the module docstring for the fixtures a subclass provides."""

    async def _setup(self, uow_factory: Any, make_user: MakeUser) -> tuple[UserRef, Project]:
        owner = await make_user(f"u{uuid.uuid4().hex[:8]}")
        project = _project(owner, "todo")
        async with uow_factory() as uow:
            await uow.projects.add(project)
            await uow.commit()
        return owner, project

    async def test_names_are_unique_ignoring_case(self, projects_uow_factory: Any, make_user: MakeUser) -> None:
        owner, _project_todo = await self._setup(projects_uow_factory, make_user)
        async with projects_uow_factory() as uow:
            with pytest.raises(Conflict):
                await uow.projects.add(_project(owner, "TODO"))
        other = _project(owner, "other")
        async with projects_uow_factory() as uow:
            await uow.projects.add(other)
            await uow.commit()
        async with projects_uow_factory() as uow:
            with pytest.raises(Conflict):  # renaming onto another project's name in another case
                await uow.projects.update(attrs.evolve(other, name="Todo"))
        someone = await make_user(f"u{uuid.uuid4().hex[:8]}")
        async with projects_uow_factory() as uow:
            await uow.projects.add(_project(someone, "TODO"))  # another owner: no clash
            await uow.commit()

    async def test_owned_by(self, projects_uow_factory: Any, make_user: MakeUser) -> None:
        owner, project = await self._setup(projects_uow_factory, make_user)
        second = _project(owner, "second")
        someone = await make_user(f"u{uuid.uuid4().hex[:8]}")
        async with projects_uow_factory() as uow:
            await uow.projects.add(second)
            await uow.projects.add(_project(someone, "theirs"))
            await uow.commit()
        async with projects_uow_factory() as uow:
            assert await uow.projects.owned_by(owner.id) == sorted([project.id, second.id])
            await uow.projects.delete(second.id)
            await uow.commit()
        async with projects_uow_factory() as uow:
            assert await uow.projects.owned_by(owner.id) == [project.id]

    async def test_redirects_ignore_case(self, projects_uow_factory: Any, make_user: MakeUser) -> None:
        owner, project = await self._setup(projects_uow_factory, make_user)
        async with projects_uow_factory() as uow:
            await uow.projects.set_redirect(owner.id, "Older", project.id)
            await uow.projects.set_redirect(owner.id, "OLDER", project.id)  # the same name: replaces it
            await uow.commit()
        async with projects_uow_factory() as uow:
            assert await uow.projects.redirect(owner.name.upper(), "older") == project
            await uow.projects.drop_redirect(owner.id, "older")
            await uow.commit()
        async with projects_uow_factory() as uow:
            assert await uow.projects.redirect(owner.name, "Older") is None
            assert await uow.projects.redirect(owner.name, "OLDER") is None

    async def test_redirects_of_old_names(self, projects_uow_factory: Any, make_user: MakeUser) -> None:
        owner, project = await self._setup(projects_uow_factory, make_user)
        async with projects_uow_factory() as uow:
            await uow.projects.set_redirect(owner.id, "older", project.id)
            await uow.projects.set_redirect(owner.id, "oldest", project.id)
            await uow.projects.set_redirect(owner.id, "older", project.id)  # again: replaces, no error
            await uow.commit()
        async with projects_uow_factory() as uow:
            assert await uow.projects.redirect(owner.name, "older") == project
            assert await uow.projects.redirect(owner.name, "todo") is None
            assert await uow.projects.redirect("someone-else", "older") is None
            await uow.projects.drop_redirect(owner.id, "older")
            await uow.projects.drop_redirect(owner.id, "never-was")
            await uow.commit()
        async with projects_uow_factory() as uow:
            assert await uow.projects.redirect(owner.name, "older") is None
            await uow.projects.delete(project.id)
            await uow.commit()
        async with projects_uow_factory() as uow:
            assert await uow.projects.redirect(owner.name, "oldest") is None  # gone with the project

    async def test_push_intents_are_claimed_once(self, projects_uow_factory: Any, make_user: MakeUser) -> None:
        owner, project = await self._setup(projects_uow_factory, make_user)
        updates = (RefUpdate("0" * 40, "a" * 40, "refs/heads/main"), RefUpdate("b" * 40, "0" * 40, "refs/tags/x"))
        rule = uuid7()
        first = PushIntent(uuid7(), project.id, owner.id, owner.name, updates, T0, bypassed=((rule, "admin"),))
        second = PushIntent(uuid7(), project.id, owner.id, owner.name, updates[:1], T0 + timedelta(seconds=5))
        async with projects_uow_factory() as uow:
            await uow.push_intents.add(second)
            await uow.push_intents.add(first)
            await uow.commit()
        async with projects_uow_factory() as uow:
            assert await uow.push_intents.older_than(T0 + timedelta(seconds=1), 10) == [first]
            assert await uow.push_intents.older_than(T0 + timedelta(hours=1), 10) == [first, second]  # oldest first
            assert await uow.push_intents.older_than(T0 + timedelta(hours=1), 1) == [first]
            assert await uow.push_intents.claim(first.id)  # rolled back: still there
        async with projects_uow_factory() as uow:
            assert await uow.push_intents.claim(first.id)
            await uow.commit()
        async with projects_uow_factory() as uow:
            assert not await uow.push_intents.claim(first.id)  # taken: a second claimer records nothing
            assert await uow.push_intents.older_than(T0 + timedelta(hours=1), 10) == [second]

    async def test_recorded_ref_moves(self, projects_uow_factory: Any, make_user: MakeUser) -> None:
        """Moves are found by project, ref and time (recording order), forgotten by age; a unit recording moves
        of a project under its lock waits for another holding it, then sees the moves that one committed."""
        _, project = await self._setup(projects_uow_factory, make_user)
        a, b, c = "a" * 40, "b" * 40, "c" * 40
        async with projects_uow_factory() as uow:
            await uow.push_intents.lock_moves(project.id)
            await uow.push_intents.add_moves(project.id, [RefUpdate(a, b, "refs/heads/main")], T0)
            await uow.push_intents.add_moves(project.id, [RefUpdate(b, c, "refs/heads/main"),
                                                          RefUpdate(a, c, "refs/heads/x")], T0 + timedelta(seconds=5))
            await uow.commit()
        async with projects_uow_factory() as uow:
            assert await uow.push_intents.moves_since(project.id, ["refs/heads/main"], T0) == [
                RefUpdate(a, b, "refs/heads/main"), RefUpdate(b, c, "refs/heads/main")]
            assert await uow.push_intents.moves_since(project.id, ["refs/heads/main", "refs/heads/x"],
                                                      T0 + timedelta(seconds=1)) == [
                RefUpdate(b, c, "refs/heads/main"), RefUpdate(a, c, "refs/heads/x")]
            assert await uow.push_intents.moves_since(uuid7(), ["refs/heads/main"], T0) == []
            assert await uow.push_intents.forget_moves(T0 + timedelta(seconds=1)) == 1
            await uow.commit()
        async with projects_uow_factory() as uow:
            assert len(await uow.push_intents.moves_since(project.id, ["refs/heads/main"], T0)) == 1

        first_locked = asyncio.Event()
        first_done = asyncio.Event()
        later = T0 + timedelta(minutes=1)

        async def first() -> None:
            async with projects_uow_factory() as uow:
                await uow.push_intents.lock_moves(project.id)
                first_locked.set()
                await asyncio.sleep(0.05)
                await uow.push_intents.add_moves(project.id, [RefUpdate(c, a, "refs/heads/main")], later)
                await uow.commit()
            first_done.set()

        async def second() -> str:
            await first_locked.wait()
            try:
                async with projects_uow_factory() as uow:
                    await uow.push_intents.lock_moves(project.id)  # waits until the first unit ended
                    seen = await uow.push_intents.moves_since(project.id, ["refs/heads/main"], later)
                    await uow.push_intents.add_moves(project.id, [RefUpdate(c, a, "refs/heads/main")], later)
                    await uow.commit()
            except Conflict:
                return "conflict"
            assert first_done.is_set()
            return "saw" if seen == [RefUpdate(c, a, "refs/heads/main")] else "blind"

        _, outcome = await asyncio.wait_for(asyncio.gather(first(), second()), 30)
        assert outcome == "saw"

    async def test_project_crud_and_slug(self, projects_uow_factory: Any, make_user: MakeUser) -> None:
        owner, project = await self._setup(projects_uow_factory, make_user)
        async with projects_uow_factory() as uow:
            assert await uow.projects.get(project.id) == project
            assert await uow.projects.get_by_slug(owner.name, "todo") == project
            assert await uow.projects.get_by_slug(owner.name.upper(), "ToDo") == project  # case-insensitive
            assert await uow.projects.get_by_slug(owner.name, "todo2") is None
            try:
                await uow.projects.add(_project(owner, "todo"))
                raise AssertionError("duplicate accepted")
            except Conflict:
                pass
        async with projects_uow_factory() as uow:
            renamed = Project(**{**_fields(project), "name": "done", "archived": True,
                                 "visibility": Visibility.PUBLIC})
            await uow.projects.update(renamed)
            await uow.commit()
        async with projects_uow_factory() as uow:
            got = await uow.projects.get(project.id)
            assert got is not None
            assert (got.name, got.archived, got.visibility) == ("done", True, Visibility.PUBLIC)
            await uow.projects.delete(project.id)
            await uow.commit()
        async with projects_uow_factory() as uow:
            assert await uow.projects.get(project.id) is None

    async def test_rollback_discards(self, projects_uow_factory: Any, make_user: MakeUser) -> None:
        owner = await make_user(f"u{uuid.uuid4().hex[:8]}")
        project = _project(owner, "gone")
        async with projects_uow_factory() as uow:
            await uow.projects.add(project)
        async with projects_uow_factory() as uow:
            assert await uow.projects.get(project.id) is None

    async def test_rollback_keeps_what_other_units_committed(
        self, projects_uow_factory: Any, make_user: MakeUser
    ) -> None:
        owner, project = await self._setup(projects_uow_factory, make_user)
        kept, dropped = _project(owner, "kept"), _project(owner, "dropped")
        async with projects_uow_factory() as a:
            await a.projects.add(dropped)
            async with projects_uow_factory() as b:  # begins and commits while ``a`` is open
                await b.projects.add(kept)
                await b.projects.update(attrs.evolve(project, name="renamed"))
                await b.commit()
            # ``a`` rolls back on exit: only its own write goes
        async with projects_uow_factory() as uow:
            assert await uow.projects.get(dropped.id) is None
            assert await uow.projects.get(kept.id) == kept
            got = await uow.projects.get(project.id)
            assert got is not None
            assert got.name == "renamed"

    async def test_list_pages_by_id(self, projects_uow_factory: Any, make_user: MakeUser) -> None:
        owner = await make_user(f"u{uuid.uuid4().hex[:8]}")
        made = [_project(owner, f"p{i}") for i in range(5)]
        async with projects_uow_factory() as uow:
            for p in made:
                await uow.projects.add(p)
            await uow.commit()
        async with projects_uow_factory() as uow:
            mine = [p for p in await uow.projects.list(after=None, limit=1000) if p.owner_id == owner.id]
            assert [p.name for p in mine] == [f"p{i}" for i in range(5)]
            after = await uow.projects.list(after=made[2].id, limit=1000)
            assert [p.name for p in after if p.owner_id == owner.id] == ["p3", "p4"]

    async def test_numbers_are_atomic(self, projects_uow_factory: Any, make_user: MakeUser) -> None:
        _, project = await self._setup(projects_uow_factory, make_user)

        async def take() -> int:
            async with projects_uow_factory() as uow:
                n: int = await uow.projects.allocate_number(project.id, "issue")
                await uow.commit()
                return n

        numbers = await asyncio.gather(*(take() for _ in range(200)))
        assert sorted(numbers) == list(range(1, 201))
        async with projects_uow_factory() as uow:
            assert await uow.projects.allocate_number(project.id, "mr") == 1

    async def test_issues_and_comments(self, projects_uow_factory: Any, make_user: MakeUser) -> None:
        owner, project = await self._setup(projects_uow_factory, make_user)
        other = await make_user(f"u{uuid.uuid4().hex[:8]}")
        issues = [
            Issue(id=uuid7(), project_id=project.id, number=n, author_id=owner.id, title=f"t{n}",
                  status=IssueStatus.CLOSED if n == 2 else IssueStatus.OPEN, created_at=T0, updated_at=T0,
                  labels=("bug",) if n != 3 else ("feat",), assignee_id=other.id if n == 1 else None)
            for n in (1, 2, 3)
        ]
        async with projects_uow_factory() as uow:
            for i in issues:
                await uow.issues.add(i)
            await uow.comments.add(Comment(uuid7(), project.id, other.id, "hi", T0, T0, issue_id=issues[0].id))
            await uow.comments.add(Comment(uuid7(), project.id, other.id, "yo", T0, T0, issue_id=issues[0].id))
            await uow.commit()
        async with projects_uow_factory() as uow:
            def nums(xs: list[Issue]) -> list[int]:
                return [x.number for x in xs]

            assert nums(await uow.issues.list(project.id, IssueFilter(limit=10))) == [3, 2, 1]
            assert nums(await uow.issues.list(project.id, IssueFilter(status="open", limit=10))) == [3, 1]
            assert nums(await uow.issues.list(project.id, IssueFilter(label="bug", limit=10))) == [2, 1]
            assert nums(await uow.issues.list(project.id, IssueFilter(assignee_id=other.id, limit=10))) == [1]
            assert nums(await uow.issues.list(project.id, IssueFilter(limit=1, before_number=3))) == [2]
            assert nums(await uow.issues.list(project.id, IssueFilter(author_id=owner.id, limit=10))) == [3, 2, 1]
            assert nums(await uow.issues.list(project.id, IssueFilter(author_id=other.id, limit=10))) == []
            got = await uow.issues.get(project.id, 1)
            assert got is not None
            assert (got.labels, got.assignee_id) == (("bug",), other.id)
            await uow.issues.update(Issue(**{**_fields(got), "status": IssueStatus.CLOSED, "labels": ()}))
            comments = await uow.comments.list(project.id, issue_id=issues[0].id)
            assert [c.body for c in comments] == ["hi", "yo"]
            assert [c.body for c in await uow.comments.list(project.id, issue_id=issues[0].id,
                                                             after=comments[0].id)] == ["yo"]
            await uow.commit()
        async with projects_uow_factory() as uow:
            got = await uow.issues.get(project.id, 1)
            assert got is not None
            assert (got.status, got.labels) == (IssueStatus.CLOSED, ())

    async def test_merge_requests_and_reviews(self, projects_uow_factory: Any, make_user: MakeUser) -> None:
        owner, project = await self._setup(projects_uow_factory, make_user)
        mr = MergeRequest(id=uuid7(), project_id=project.id, number=1, author_id=owner.id, source_branch="f",
                          target_branch="main", title="x", status=MrStatus.OPEN, created_at=T0, updated_at=T0)
        async with projects_uow_factory() as uow:
            await uow.merge_requests.add(mr)
            await uow.reviews.add(Review(uuid7(), project.id, mr.id, owner.id, Verdict.COMMENT, T0, "hm"))
            await uow.commit()
        async with projects_uow_factory() as uow:
            locked = await uow.merge_requests.lock(project.id, 1)
            assert locked == mr
            merged = MergeRequest(**{**_fields(mr), "status": MrStatus.MERGED, "merged_by": owner.id,
                                     "merged_at": T0, "merge_commit_sha": "a" * 40})
            await uow.merge_requests.update(merged)
            await uow.commit()
        async with projects_uow_factory() as uow:
            got_mr = await uow.merge_requests.get(project.id, 1)
            assert got_mr is not None
            assert _fields(got_mr) | {"updated_at": T0} == _fields(merged)
            assert await uow.merge_requests.list(project.id, IssueFilter(status="open", limit=5)) == []
            assert [r.body for r in await uow.reviews.list(mr.id)] == ["hm"]

    async def test_project_purges_are_claimed_under_a_lease_and_retried(
        self, projects_uow_factory: Any, make_user: MakeUser,
    ) -> None:
        first, second = uuid7(), uuid7()
        purges = [ProjectPurge(project_id=pid, project_name=f"o/{n}", repo_path=f"{pid}.git",
                               prefixes=(f"cache/{pid}/", f"lfs/{pid}/"), workspaces=(f"ws-{n}",),
                               created_at=T0 + timedelta(seconds=n), next_attempt_at=T0 + timedelta(seconds=n))
                  for n, pid in enumerate((first, second))]
        async with projects_uow_factory() as uow:
            for purge in purges:
                await uow.project_purges.add(purge)
            await uow.commit()
        async with projects_uow_factory() as uow:
            with pytest.raises(Conflict):
                await uow.project_purges.add(purges[0])
        async with projects_uow_factory() as uow:
            assert await uow.project_purges.get(first) == purges[0]
            assert await uow.project_purges.get(uuid7()) is None
            assert await uow.project_purges.claim(T0 - timedelta(seconds=1), T0, 10) == []  # none due yet
            lease = T0 + timedelta(minutes=15)
            claimed = await uow.project_purges.claim(T0 + timedelta(seconds=5), lease, 1)
            assert claimed == [attrs.evolve(purges[0], attempts=1, next_attempt_at=lease)]  # oldest first
            await uow.commit()
        async with projects_uow_factory() as uow:  # leased: only the other one is due
            assert [p.project_id for p in await uow.project_purges.claim(T0 + timedelta(seconds=5), lease, 10,
                                                                          first)] == []
            assert [p.project_id for p in await uow.project_purges.claim(T0 + timedelta(seconds=5), lease, 10)
                    ] == [second]
            await uow.project_purges.fail(second, "the store is down", T0 + timedelta(hours=1))
            await uow.commit()
        async with projects_uow_factory() as uow:
            failed = await uow.project_purges.get(second)
            assert failed is not None and failed.last_error == "the store is down" and failed.attempts == 1
            assert failed.next_attempt_at == T0 + timedelta(hours=1)
            again = await uow.project_purges.claim(lease, lease + timedelta(minutes=15), 10, first)
            assert [(p.project_id, p.attempts) for p in again] == [(first, 2)]  # the lease ran out: taken again
            await uow.project_purges.finish(first)
            await uow.project_purges.finish(first)  # finishing twice is fine
            await uow.commit()
        async with projects_uow_factory() as uow:
            assert await uow.project_purges.get(first) is None
            assert await uow.project_purges.get(second) is not None

    async def test_releases_and_assets(self, projects_uow_factory: Any, make_user: MakeUser) -> None:
        owner, project = await self._setup(projects_uow_factory, make_user)
        v1 = Release(uuid7(), project.id, "v1.0", "a" * 40, "One", "*notes*", False, False, T0, T0,
                     author_id=owner.id, published_at=T0)
        v2 = Release(uuid7(), project.id, "v2.0", "b" * 40, "Two", "", True, True, T0 + timedelta(hours=1),
                     T0 + timedelta(hours=1), author_id=owner.id)
        async with projects_uow_factory() as uow:
            await uow.releases.add(v1)
            await uow.releases.add(v2)
            await uow.commit()
        async with projects_uow_factory() as uow:
            with pytest.raises(Conflict):
                await uow.releases.add(attrs.evolve(v1, id=uuid7()))
        tarball = ReleaseAsset(uuid7(), v1.id, "app.tar.gz", 12, "application/gzip", f"releases/{v1.id}/x", T0,
                               uploader_id=owner.id)
        notes = ReleaseAsset(uuid7(), v1.id, "NOTES.txt", 3, "text/plain", f"releases/{v1.id}/y", T0)
        async with projects_uow_factory() as uow:
            await uow.releases.add_asset(tarball)
            await uow.releases.add_asset(notes)
            await uow.commit()
        async with projects_uow_factory() as uow:
            with pytest.raises(Conflict):
                await uow.releases.add_asset(attrs.evolve(notes, id=uuid7()))
        async with projects_uow_factory() as uow:
            assert [r.tag for r in await uow.releases.list(project.id, drafts=True)] == ["v2.0", "v1.0"]
            public = await uow.releases.list(project.id, drafts=False)
            assert [r.tag for r in public] == ["v1.0"]
            assert [a.name for a in public[0].assets] == ["NOTES.txt", "app.tar.gz"]
            got = await uow.releases.get(project.id, v1.id)
            assert got == attrs.evolve(v1, assets=(notes, tarball))
            assert await uow.releases.get(uuid7(), v1.id) is None
            published = attrs.evolve(v2, draft=False, title="Two!", notes="n", prerelease=False,
                                     updated_at=T0 + timedelta(hours=2), published_at=T0 + timedelta(hours=2))
            await uow.releases.update(published)
            assert await uow.releases.delete_asset(v1.id, "nope") is None
            assert await uow.releases.delete_asset(v1.id, "NOTES.txt") == notes
            await uow.commit()
        async with projects_uow_factory() as uow:
            assert await uow.releases.get(project.id, v2.id) == published
            assert [a.name for a in (await uow.releases.get(project.id, v1.id)).assets] == ["app.tar.gz"]
            assert await uow.releases.delete(project.id, v1.id) == [tarball.object_key]
            assert await uow.releases.delete(project.id, v1.id) == []
            await uow.commit()
        async with projects_uow_factory() as uow:
            assert [r.tag for r in await uow.releases.list(project.id, drafts=True)] == ["v2.0"]

    async def test_labels_rename_and_delete_carry_over(self, projects_uow_factory: Any, make_user: MakeUser) -> None:
        owner, project = await self._setup(projects_uow_factory, make_user)
        bug = Label(uuid7(), project.id, "bug", "#d73a4a", T0, "broken")
        ui = Label(uuid7(), project.id, "ui", "#cccccc", T0)
        issue = Issue(uuid7(), project.id, 1, owner.id, "t", IssueStatus.OPEN, T0, T0, labels=("bug", "ui"))
        mr = MergeRequest(id=uuid7(), project_id=project.id, number=1, author_id=owner.id, source_branch="f",
                          target_branch="main", title="x", status=MrStatus.OPEN, created_at=T0, updated_at=T0,
                          labels=("bug",), assignee_ids=(owner.id,), reviewer_ids=(owner.id,))
        async with projects_uow_factory() as uow:
            await uow.labels.add(bug)
            await uow.labels.add(ui)
            with pytest.raises(Conflict):
                await uow.labels.add(Label(uuid7(), project.id, "BUG", "#000000", T0))
        async with projects_uow_factory() as uow:
            await uow.labels.add(bug)
            await uow.labels.add(ui)
            await uow.issues.add(issue)
            await uow.merge_requests.add(mr)
            await uow.commit()
        async with projects_uow_factory() as uow:
            assert [x.name for x in await uow.labels.list(project.id)] == ["bug", "ui"]
            assert await uow.labels.get(project.id, bug.id) == bug
            with pytest.raises(Conflict):
                await uow.labels.update(attrs.evolve(bug, name="UI"), old_name="bug")
        async with projects_uow_factory() as uow:
            await uow.labels.update(attrs.evolve(bug, name="defect", color="#000000"), old_name="bug")
            await uow.commit()
        async with projects_uow_factory() as uow:
            got_issue, got_mr = await uow.issues.get(project.id, 1), await uow.merge_requests.get(project.id, 1)
            assert got_issue is not None and got_mr is not None
            assert (sorted(got_issue.labels), got_mr.labels) == (["defect", "ui"], ("defect",))
            assert (got_mr.assignee_ids, got_mr.reviewer_ids) == ((owner.id,), (owner.id,))
            assert [i.number for i in await uow.issues.list(project.id, IssueFilter(labels=("defect", "ui")))] == [1]
            assert await uow.issues.list(project.id, IssueFilter(labels=("bug",))) == []
            assert [m.number for m in await uow.merge_requests.list(
                project.id, IssueFilter(labels=("defect",), assignee_id=owner.id))] == [1]
            assert await uow.labels.delete(project.id, bug.id) is True
            assert await uow.labels.delete(project.id, bug.id) is False
            await uow.commit()
        async with projects_uow_factory() as uow:
            got_issue, got_mr = await uow.issues.get(project.id, 1), await uow.merge_requests.get(project.id, 1)
            assert got_issue is not None and got_mr is not None
            assert (got_issue.labels, got_mr.labels) == (("ui",), ())

    async def test_milestones_count_and_detach(self, projects_uow_factory: Any, make_user: MakeUser) -> None:
        owner, project = await self._setup(projects_uow_factory, make_user)
        late = Milestone(uuid7(), project.id, "v2", "open", T0, T0, due_on=date(2027, 6, 1))
        early = Milestone(uuid7(), project.id, "v1", "open", T0, T0, "first", due_on=date(2027, 1, 1))
        someday = Milestone(uuid7(), project.id, "later", "closed", T0, T0, closed_at=T0)
        async with projects_uow_factory() as uow:
            for m in (late, early, someday):
                await uow.milestones.add(m)
            for n, status in ((1, IssueStatus.OPEN), (2, IssueStatus.CLOSED), (3, IssueStatus.OPEN)):
                await uow.issues.add(Issue(uuid7(), project.id, n, owner.id, "t", status, T0, T0,
                                           milestone_id=early.id if n < 3 else None))
            await uow.commit()
        async with projects_uow_factory() as uow:
            with pytest.raises(Conflict):
                await uow.milestones.add(Milestone(uuid7(), project.id, "V1", "open", T0, T0))
        async with projects_uow_factory() as uow:
            assert [m.title for m in await uow.milestones.list(project.id)] == ["v1", "v2", "later"]
            assert [m.title for m in await uow.milestones.list(project.id, "closed")] == ["later"]
            assert await uow.milestones.get(project.id, early.id) == early
            assert await uow.milestones.issue_counts(project.id) == {early.id: (1, 1)}
            assert [i.number for i in await uow.issues.list(project.id, IssueFilter(milestone_id=early.id))] == [2, 1]
            assert [i.number for i in await uow.issues.list(project.id, IssueFilter(limit=1, offset=1))] == [2]
            await uow.milestones.update(attrs.evolve(early, state="closed", closed_at=T0))
            assert await uow.milestones.delete(project.id, early.id) is True
            await uow.commit()
        async with projects_uow_factory() as uow:
            got = await uow.issues.get(project.id, 1)
            assert got is not None and got.milestone_id is None
            assert await uow.milestones.issue_counts(project.id) == {}

    async def test_line_comments_keep_their_anchor(self, projects_uow_factory: Any, make_user: MakeUser) -> None:
        owner, project = await self._setup(projects_uow_factory, make_user)
        mr = MergeRequest(id=uuid7(), project_id=project.id, number=1, author_id=owner.id, source_branch="f",
                          target_branch="main", title="x", status=MrStatus.OPEN, created_at=T0, updated_at=T0)
        line = Comment(uuid7(), project.id, owner.id, "here", T0, T0, mr_id=mr.id, path="src/a.py", line=3,
                       side="old", commit_sha="b" * 40, line_content="    return 1")
        plain = Comment(uuid7(), project.id, owner.id, "overall", T0, T0, mr_id=mr.id)
        async with projects_uow_factory() as uow:
            await uow.merge_requests.add(mr)
            await uow.comments.add(line)
            await uow.comments.add(plain)
            await uow.commit()
        async with projects_uow_factory() as uow:
            got = await uow.comments.list(project.id, mr_id=mr.id)
        assert [(c.path, c.line, c.side, c.commit_sha, c.line_content) for c in got] == [
            ("src/a.py", 3, "old", "b" * 40, "    return 1"), (None, None, None, None, None)]

    async def test_protection_bypass_round_trip(self, projects_uow_factory: Any, make_user: MakeUser) -> None:
        owner, project = await self._setup(projects_uow_factory, make_user)
        other = await make_user("bypasser")
        rule = BranchProtection(uuid7(), project.id, "release/*", T0, require_merge_request=True,
                                bypass_admins=True, push_allowlist=(owner.id, other.id))
        async with projects_uow_factory() as uow:
            await uow.branch_protections.add(rule)
            await uow.commit()
        async with projects_uow_factory() as uow:
            assert await uow.branch_protections.get(project.id, rule.id) == rule
            changed = attrs.evolve(rule, bypass_admins=False, push_allowlist=(other.id,))
            await uow.branch_protections.update(changed)
            await uow.commit()
        async with projects_uow_factory() as uow:
            assert await uow.branch_protections.list(project.id) == [changed]

    async def test_webhook_secrets_sealed_and_rewrapped(self, projects_uow_factory: Any,
                                                        make_user: MakeUser) -> None:
        _, project = await self._setup(projects_uow_factory, make_user)
        hooks = [Webhook(uuid7(), project.id, f"https://example.com/{i}", ("push",), T0,
                         secret=SealedSecret(b"ct%d" % i, WrappedKey(key, b"wk%d" % i)))
                 for i, key in enumerate(("old", "old", "new"))]
        bare = Webhook(uuid7(), project.id, "https://example.com/bare", ("push",), T0)
        async with projects_uow_factory() as uow:
            for hook in [*hooks, bare]:
                await uow.webhooks.add(hook)
            await uow.commit()
        async with projects_uow_factory() as uow:
            assert await uow.webhooks.count_by_key() == {"old": 2, "new": 1}
            claimed = await uow.webhooks.claim_for_rewrap("new", 10)
            assert sorted(h.id for h in claimed) == sorted(h.id for h in hooks[:2])
            assert await uow.webhooks.claim_plaintext(10) == []
            for h in claimed:
                assert h.secret is not None
                await uow.webhooks.update(attrs.evolve(h, secret=attrs.evolve(
                    h.secret, wrapped_key=WrappedKey("new", h.secret.wrapped_key.blob))))
            await uow.commit()
        async with projects_uow_factory() as uow:
            assert await uow.webhooks.count_by_key() == {"new": 3}
            assert await uow.webhooks.claim_for_rewrap("new", 10) == []
            assert await uow.webhooks.get(project.id, bare.id) == bare
            got = await uow.webhooks.get(project.id, hooks[0].id)
            assert got is not None and got.secret == SealedSecret(b"ct0", WrappedKey("new", b"wk0"))

    async def test_protections_webhooks_deliveries(self, projects_uow_factory: Any, make_user: MakeUser) -> None:
        _, project = await self._setup(projects_uow_factory, make_user)
        rule = BranchProtection(uuid7(), project.id, "main", T0, required_approvals=2)
        hook = Webhook(uuid7(), project.id, "https://example.com/h", ("push", "issue"), T0,
                       secret=SealedSecret(b"sealed", WrappedKey("k1", b"wrapped")))
        due = WebhookDelivery(uuid7(), hook.id, project.id, "push", {"a": [1, "x"]}, DeliveryStatus.PENDING, T0,
                              next_attempt_at=T0)
        later = WebhookDelivery(uuid7(), hook.id, project.id, "push", {}, DeliveryStatus.PENDING, T0,
                                next_attempt_at=T0 + timedelta(hours=1))
        async with projects_uow_factory() as uow:
            await uow.branch_protections.add(rule)
            await uow.webhooks.add(hook)
            await uow.webhook_deliveries.add(due)
            await uow.webhook_deliveries.add(later)
            await uow.commit()
        async with projects_uow_factory() as uow:
            try:
                await uow.branch_protections.add(BranchProtection(uuid7(), project.id, "main", T0))
                raise AssertionError("duplicate pattern accepted")
            except Conflict:
                pass
        async with projects_uow_factory() as uow:
            assert await uow.branch_protections.list(project.id) == [rule]
            assert await uow.webhooks.list(project.id) == [hook]
            assert await uow.webhook_deliveries.claim_due(T0, 10) == [due]
            done = WebhookDelivery(**{**_fields(due), "status": DeliveryStatus.DELIVERED, "attempts": 1,
                                      "status_code": 200, "next_attempt_at": None, "delivered_at": T0})
            await uow.webhook_deliveries.update(done)
            await uow.commit()
        async with projects_uow_factory() as uow:
            assert await uow.webhook_deliveries.get(due.id) == done
            assert [d.id for d in await uow.webhook_deliveries.list(hook.id, before=None, limit=10)] == [
                later.id, due.id]
            assert await uow.webhook_deliveries.claim_due(T0, 10) == []
            assert await uow.branch_protections.delete(project.id, rule.id)
            assert not await uow.branch_protections.delete(project.id, rule.id)
            assert await uow.webhooks.delete(project.id, hook.id)
            await uow.commit()
        async with projects_uow_factory() as uow:
            assert await uow.webhook_deliveries.get(due.id) is None


    async def test_purge_finished_deliveries(self, projects_uow_factory: Any, make_user: MakeUser) -> None:
        _, project = await self._setup(projects_uow_factory, make_user)
        hook = Webhook(uuid7(), project.id, "https://example.com/h", ("push",), T0)
        old = T0 - timedelta(days=40)

        def delivery(status: DeliveryStatus, created_at: datetime) -> WebhookDelivery:
            return WebhookDelivery(uuid7(), hook.id, project.id, "push", {}, status, created_at,
                                   next_attempt_at=T0 if status is DeliveryStatus.PENDING else None)

        gone = [delivery(DeliveryStatus.DELIVERED, old), delivery(DeliveryStatus.FAILED, old),
                delivery(DeliveryStatus.DELIVERED, old + timedelta(days=5))]
        kept = [delivery(DeliveryStatus.PENDING, old), delivery(DeliveryStatus.DELIVERED, T0)]
        async with projects_uow_factory() as uow:
            await uow.webhooks.add(hook)
            for d in gone + kept:
                await uow.webhook_deliveries.add(d)
            await uow.commit()
        cutoff = T0 - timedelta(days=30)
        async with projects_uow_factory() as uow:
            assert await uow.webhook_deliveries.purge_finished(cutoff, 2) == 2  # a batch, oldest first
            await uow.commit()
        async with projects_uow_factory() as uow:
            assert await uow.webhook_deliveries.get(gone[2].id) is not None
            assert await uow.webhook_deliveries.purge_finished(cutoff, 2) == 1
            assert await uow.webhook_deliveries.purge_finished(cutoff, 2) == 0
            await uow.commit()
        async with projects_uow_factory() as uow:
            listed = await uow.webhook_deliveries.list(hook.id, before=None, limit=10)
            assert sorted(d.id for d in listed) == sorted(d.id for d in kept)


def _fields(obj: Any) -> dict[str, Any]:
    import attrs

    return attrs.asdict(obj, recurse=False)
