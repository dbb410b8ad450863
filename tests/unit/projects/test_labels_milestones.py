"""Labels, milestones, assignees and reviewers (fakes)."""

from __future__ import annotations

import pytest

from corral.core.errors import Conflict, InvalidInput
from corral.core.projects.commands import (
    IssueChanges,
    LabelChanges,
    MergeRequestChanges,
    MilestoneChanges,
    NewIssue,
    NewLabel,
    NewMergeRequest,
    NewMilestone,
    NewProject,
)
from corral.core.projects.issues import IssueService
from corral.core.projects.labels import LabelService
from corral.core.projects.merge_requests import MergeRequestService
from corral.core.projects.model import IssueStatus
from corral.core.projects.service import ProjectService


@pytest.fixture
def labels(world, clock) -> LabelService:
    return LabelService(world, clock)


@pytest.fixture
def issues(world, users, clock) -> IssueService:
    return IssueService(world, users, clock)


@pytest.fixture
def mrs(world, repos, users, clock) -> MergeRequestService:
    return MergeRequestService(world, repos, users, clock)


@pytest.fixture
async def project(world, repos, clock, alice):
    p = await ProjectService(world, repos, clock).create(alice, NewProject(name="tracker"))
    repos.commit(p.repo_path, "main", {"a.txt": b"a\n"})
    repos.commit(p.repo_path, "feature", {"b.txt": b"b\n"}, parent=repos.repos[p.repo_path].branches["main"])
    return p


async def test_labels_are_required_renamed_and_removed_everywhere(labels, issues, mrs, project, alice) -> None:
    bug = await labels.create_label(alice, project, NewLabel(name="Bug", color="D73A4A", description="broken"))
    assert (bug.name, bug.color) == ("Bug", "#d73a4a")
    await labels.create_label(alice, project, NewLabel(name="ui"))
    with pytest.raises(Conflict):
        await labels.create_label(alice, project, NewLabel(name="bug"))
    with pytest.raises(InvalidInput) as err:
        await labels.create_label(alice, project, NewLabel(name="x", color="red"))
    assert err.value.field == "color"

    with pytest.raises(InvalidInput) as err:
        await issues.create(alice, project, NewIssue(title="t", labels=["bug", "nope"]))
    assert err.value.field == "labels" and "'nope'" in str(err.value) and "'bug'" not in str(err.value)
    issue = await issues.create(alice, project, NewIssue(title="t", labels=["bug", "UI"]))
    assert issue.labels == ("Bug", "ui")  # the project's spelling
    mr = await mrs.create(alice, project, NewMergeRequest(source_branch="feature", title="f", labels=["bug"]))
    assert mr.labels == ("Bug",)

    await labels.update_label(alice, project, bug.id, LabelChanges(name="defect"))
    assert (await issues.get(project, 1)).labels == ("defect", "ui")
    assert (await mrs.get(project, 1)).labels == ("defect",)
    await labels.delete_label(alice, project, bug.id)
    assert (await issues.get(project, 1)).labels == ("ui",)
    assert (await mrs.get(project, 1)).labels == ()
    assert [x.name for x in await labels.labels(project)] == ["ui"]


async def test_milestones_count_issues_and_filter(labels, issues, project, alice) -> None:
    v1 = await labels.create_milestone(alice, project, NewMilestone(title="v1", due_on="2027-01-31"))
    v2 = await labels.create_milestone(alice, project, NewMilestone(title="v2"))
    assert str(v1.due_on) == "2027-01-31"
    with pytest.raises(InvalidInput) as err:
        await labels.create_milestone(alice, project, NewMilestone(title="v3", due_on="soon"))
    assert err.value.field == "due_on"
    await labels.create_label(alice, project, NewLabel(name="bug"))
    await issues.create(alice, project, NewIssue(title="a", milestone="V1", labels=["bug"]))
    await issues.create(alice, project, NewIssue(title="b", milestone=str(v1.id)))
    await issues.create(alice, project, NewIssue(title="c"))
    with pytest.raises(InvalidInput) as err:
        await issues.create(alice, project, NewIssue(title="d", milestone="v9"))
    assert err.value.field == "milestone"
    await issues.update(alice, project, 2, IssueChanges(status="closed"))
    counts = {m.title: c for m, c in await labels.milestones(project)}
    assert counts == {"v1": (1, 1), "v2": (0, 0)}

    assert [i.number for i in (await issues.list(project, milestone="v1")).items] == [2, 1]
    assert [i.number for i in (await issues.list(project, milestone="v1", labels="bug")).items] == [1]
    assert (await issues.list(project, labels="nope")).items == []
    assert [i.number for i in (await issues.list(project, limit=1, page=2)).items] == [2]
    with pytest.raises(InvalidInput):
        await issues.list(project, page=1, cursor="abc")

    await issues.update(alice, project, 1, IssueChanges(milestone=None))
    assert (await issues.get(project, 1)).milestone_id is None
    closed = await labels.update_milestone(alice, project, v2.id, MilestoneChanges(state="closed"))
    assert closed.closed_at is not None
    assert [m.title for m, _ in await labels.milestones(project, "open")] == ["v1"]
    await labels.delete_milestone(alice, project, v1.id)
    assert (await issues.get(project, 2)).milestone_id is None
    assert (await issues.get(project, 2)).status is IssueStatus.CLOSED


async def test_reviewers_are_notified_once(mrs, project, world, alice, bob) -> None:
    with pytest.raises(InvalidInput) as err:
        await mrs.create(alice, project, NewMergeRequest(source_branch="feature", title="f", reviewers=["ghost"]))
    assert err.value.field == "reviewers"
    mr = await mrs.create(alice, project, NewMergeRequest(source_branch="feature", title="f", assignees=["alice"],
                                                          reviewers=["bob"]))
    assert (mr.assignee_ids, mr.reviewer_ids) == ((alice.id,), (bob.id,))

    def requested() -> list[dict]:
        return [e.payload for e in world.events
                if e.topic == "merge_request" and e.payload["action"] == "review_requested"]

    assert [[r["name"] for r in p["reviewers"]] for p in requested()] == [["bob"]]
    await mrs.update(alice, project, mr.number, MergeRequestChanges(reviewers=["bob", "alice"]))
    assert len(requested()) == 1  # bob was already asked; alice asked herself
    await mrs.update(alice, project, mr.number, MergeRequestChanges(reviewers=[], assignees=["bob"]))
    got = await mrs.get(project, mr.number)
    assert (got.reviewer_ids, got.assignee_ids) == ((), (bob.id,))
    assert [m.number for m in (await mrs.list(project, assignee="bob")).items] == [1]
    assert (await mrs.list(project, assignee="alice")).items == []
