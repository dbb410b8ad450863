"""Projects, issues and comments on fakes."""

from __future__ import annotations

import asyncio

import pytest

from corral.core.errors import Conflict, InvalidInput, InvalidTransition, NotFound
from corral.core.projects.commands import IssueChanges, NewComment, NewIssue, NewLabel, NewProject, ProjectChanges
from corral.core.projects.issues import IssueService
from corral.core.projects.labels import LabelService
from corral.core.projects.model import IssueStatus, Visibility, check_branch_name, check_project_name
from corral.core.projects.service import ProjectService, StoreProjectResolver


@pytest.fixture
def projects(world, repos, clock) -> ProjectService:
    return ProjectService(world, repos, clock)


@pytest.fixture
def issues(world, users, clock) -> IssueService:
    return IssueService(world, users, clock)


@pytest.mark.parametrize("name", ["../x", "a/b", "", ".hidden", "x.git", "api", "a..b", "-x", "x" * 101, 5, None])
def test_bad_project_names_are_refused(name) -> None:
    with pytest.raises(InvalidInput) as err:
        check_project_name(name)
    assert err.value.field == "name"


@pytest.mark.parametrize("name", ["todo", "my-app", "A.b_c", "x" * 100])
def test_good_project_names(name) -> None:
    assert check_project_name(name) == name


@pytest.mark.parametrize("branch", ["", "a..b", "-x", "a b", "x.lock", "a//b", "/a", "a/", "@", "a~1", "a:b"])
def test_bad_branch_names(branch) -> None:
    with pytest.raises(InvalidInput):
        check_branch_name(branch)


async def test_create_project_makes_repo_and_audits(projects, repos, world, alice) -> None:
    p = await projects.create(alice, NewProject(name="todo", visibility="public", default_branch="trunk"))
    assert p.full_name == "alice/todo"
    assert p.visibility is Visibility.PUBLIC
    assert repos.repos[p.repo_path].head == "trunk"
    assert [a.action for a in world.audit] == ["project.create"]
    assert (await projects.get("alice", "todo")).id == p.id
    resolver = StoreProjectResolver(world)
    assert await resolver.project_id("alice", "todo.git") == p.id
    assert await resolver.project_ref(str(p.id)) == p.id
    with pytest.raises(NotFound):
        await resolver.project_id("alice", "nope")


async def test_duplicate_and_invalid_create_change_nothing(projects, repos, world, alice) -> None:
    await projects.create(alice, NewProject(name="todo"))
    with pytest.raises(Conflict):
        await projects.create(alice, NewProject(name="todo"))
    with pytest.raises(InvalidInput) as err:
        await projects.create(alice, NewProject(name="ok", visibility="secret"))
    assert err.value.field == "visibility"
    assert len(world.data.projects) == 1
    assert len(repos.repos) == 1


async def test_list_filters_and_paginates(projects, alice, bob) -> None:
    for i in range(7):
        await projects.create(alice if i % 2 else bob, NewProject(name=f"p{i}"))

    async def only_alice(p):
        return p.owner_name == "alice"

    first = await projects.list(only_alice, limit=2)
    assert [p.name for p in first.items] == ["p1", "p3"]
    assert first.next_cursor
    second = await projects.list(only_alice, limit=2, cursor=first.next_cursor)
    assert [p.name for p in second.items] == ["p5"]
    assert second.next_cursor is None


async def test_update_archive_and_delete(projects, repos, world, alice) -> None:
    p = await projects.create(alice, NewProject(name="todo"))
    p2 = await projects.update(alice, p, ProjectChanges(name="done", visibility="internal", archived=True,
                                                        default_branch="dev"))
    assert p2.name == "done"
    assert p2.archived
    assert repos.repos[p.repo_path].head == "dev"
    assert world.audit[-1].action == "project.archive"
    with pytest.raises(InvalidInput) as err:
        await projects.update(alice, p2, ProjectChanges(default_branch="bad..name"))
    assert err.value.field == "default_branch"
    await projects.delete(alice, p2)
    assert p.repo_path not in repos.repos
    with pytest.raises(NotFound):
        await projects.get("alice", "done")


async def test_issue_numbers_are_dense_under_concurrency(projects, issues, alice) -> None:
    p = await projects.create(alice, NewProject(name="todo"))
    created = await asyncio.gather(*(issues.create(alice, p, NewIssue(title=f"t{i}")) for i in range(200)))
    assert sorted(i.number for i in created) == list(range(1, 201))


async def test_issue_lifecycle_filters_comments_and_events(projects, issues, world, clock, alice, bob) -> None:
    p = await projects.create(alice, NewProject(name="todo"))
    for name in ("bug", "feat"):
        await LabelService(world, clock).create_label(alice, p, NewLabel(name=name))
    a = await issues.create(alice, p, NewIssue(title="bug", labels=["bug"], assignee="bob", body="x"))
    b = await issues.create(alice, p, NewIssue(title="feature", labels=["feat"]))
    assert (a.number, b.number) == (1, 2)
    assert a.assignee_id == bob.id
    with pytest.raises(InvalidInput) as err:
        await issues.create(alice, p, NewIssue(title="  "))
    assert err.value.field == "title"
    with pytest.raises(InvalidInput):
        await issues.create(alice, p, NewIssue(title="x", assignee="nobody"))
    closed = await issues.update(bob, p, 1, IssueChanges(status="closed"))
    assert closed.status is IssueStatus.CLOSED
    with pytest.raises(InvalidTransition):
        await issues.update(bob, p, 1, IssueChanges(status="closed"))
    assert [i.number for i in (await issues.list(p, status="open")).items] == [2]
    assert [i.number for i in (await issues.list(p, status="all")).items] == [2, 1]
    assert [i.number for i in (await issues.list(p, label="bug")).items] == [1]
    assert [i.number for i in (await issues.list(p, assignee="bob")).items] == [1]
    page = await issues.list(p, limit=1)
    assert [i.number for i in page.items] == [2]
    assert [i.number for i in (await issues.list(p, limit=1, cursor=page.next_cursor)).items] == [1]
    await issues.comment(bob, p, 1, NewComment(body="me too"))
    assert [c.body for c in (await issues.comments(p, 1)).items] == ["me too"]
    with pytest.raises(NotFound):
        await issues.comment(bob, p, 99, NewComment(body="x"))
    actions = [(e.topic, e.payload["action"]) for e in world.events if e.topic == "issue"]
    assert actions == [("issue", "opened"), ("issue", "opened"), ("issue", "closed"), ("issue", "commented")]
    assert {e.project_id for e in world.events} == {p.id}


async def test_archived_project_takes_no_new_issues(projects, issues, alice) -> None:
    p = await projects.update(alice, await projects.create(alice, NewProject(name="todo")),
                              ProjectChanges(archived=True))
    with pytest.raises(InvalidTransition):
        await issues.create(alice, p, NewIssue(title="x"))


async def test_rename_keeps_the_old_name_as_a_redirect(world, repos, clock, alice) -> None:
    from corral.core.projects.service import ProjectService

    projects = ProjectService(world, repos, clock)
    project = await projects.create(alice, NewProject(name="first"))
    renamed = await projects.update(alice, project, ProjectChanges(name="second"))
    assert renamed.repo_path == project.repo_path  # the repository is keyed by id: nothing moves
    assert (await projects.redirect("alice", "first")).id == project.id
    await projects.update(alice, renamed, ProjectChanges(name="third"))
    assert (await projects.redirect("alice", "first")).name == "third"  # chains resolve to the current name
    assert (await projects.redirect("alice", "second")).name == "third"
    back = await projects.update(alice, await projects.get("alice", "third"), ProjectChanges(name="first"))
    assert await projects.redirect("alice", "first") is None and back.name == "first"
    await projects.create(alice, NewProject(name="second"))  # a new project takes an old name: its redirect goes
    assert await projects.redirect("alice", "second") is None
    assert await projects.redirect("alice", "../x") is None
