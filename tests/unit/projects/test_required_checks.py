"""Branch protection ``required_checks``: a merge is refused (409) naming each check that is missing, pending or
failed on the merge request's head commit; it goes through once they passed."""

from __future__ import annotations

import pytest

from corral.core.errors import Conflict, InvalidInput
from corral.core.ids import uuid7
from corral.core.pipelines.runs import Pipeline, Status, WorkflowRun
from corral.core.projects.commands import BranchProtectionChanges, NewBranchProtection, NewMergeRequest, NewProject
from corral.core.projects.merge_requests import MergeRequestService
from corral.core.projects.model import MrStatus
from corral.core.projects.protections import BranchProtectionService
from corral.core.projects.service import ProjectService


@pytest.fixture
def mrs(world, repos, users, clock) -> MergeRequestService:
    return MergeRequestService(world, repos, users, clock)

@pytest.fixture
async def project(world, repos, clock, alice):
    p = await ProjectService(world, repos, clock).create(alice, NewProject(name="todo"))
    repos.commit(p.repo_path, "main", {"README.md": b"hello\n"})
    repos.commit(p.repo_path, "feature", {"b.txt": b"b\n"}, parent=repos.repos[p.repo_path].branches["main"])
    return p

async def _pipeline(world, clock, project, sha: str, number: int, status: Status,
                    workflows: dict[str, Status]) -> None:
    p = Pipeline(id=uuid7(), project_id=project.id, number=number, event="pull_request", ref="refs/pull/1/head",
                 commit_sha=sha, status=status, created_at=clock.now())
    rows = [WorkflowRun(id=uuid7(), pipeline_id=p.id, project_id=project.id, position=i, name=name, status=s)
            for i, (name, s) in enumerate(workflows.items())]
    async with world() as uow:
        await uow.pipelines.add(p, rows, [])
        await uow.commit()

async def test_a_merge_waits_for_the_required_checks_of_its_head(mrs, project, repos, world, clock, alice) -> None:
    rules = BranchProtectionService(world, clock)
    rule = await rules.create(alice, project, NewBranchProtection(pattern="main", required_checks=["build", "lint"]))
    assert rule.required_checks == ("build", "lint")
    mr = await mrs.create(alice, project, NewMergeRequest(source_branch="feature", title="x"))
    head = repos.repos[project.repo_path].branches["feature"]

    with pytest.raises(Conflict) as err:
        await mrs.merge(alice, project, mr.number)
    assert "build: missing" in err.value.message and "lint: missing" in err.value.message
    assert err.value.detail["reason"] == "checks"

    await _pipeline(world, clock, project, head, 1, Status.FAILURE,
                    {"build (GO=1.22)": Status.SUCCESS, "build (GO=1.23)": Status.FAILURE, "lint": Status.SUCCESS})
    with pytest.raises(Conflict) as err:
        await mrs.merge(alice, project, mr.number)
    assert "build: failed (failure in pipeline #1)" in err.value.message
    assert "lint" not in err.value.message
    assert {c["name"]: c["state"] for c in err.value.detail["checks"]} == {"build": "failed", "lint": "passed"}

    await _pipeline(world, clock, project, head, 2, Status.RUNNING, {"build": Status.RUNNING})
    with pytest.raises(Conflict) as err:
        await mrs.merge(alice, project, mr.number)
    assert "build: pending" in err.value.message

    await rules.update(alice, project, rule.id, BranchProtectionChanges(required_checks=["pipeline"]))
    await _pipeline(world, clock, project, head, 3, Status.SUCCESS, {"build": Status.SUCCESS})
    assert (await mrs.merge(alice, project, mr.number)).status is MrStatus.MERGED

async def test_a_pipeline_of_another_commit_does_not_count(mrs, project, repos, world, clock, alice) -> None:
    await BranchProtectionService(world, clock).create(
        alice, project, NewBranchProtection(pattern="main", required_checks=["pipeline"]))
    mr = await mrs.create(alice, project, NewMergeRequest(source_branch="feature", title="x"))
    await _pipeline(world, clock, project, repos.repos[project.repo_path].branches["main"], 1, Status.SUCCESS, {})
    with pytest.raises(Conflict) as err:
        await mrs.merge(alice, project, mr.number)
    assert "pipeline: missing" in err.value.message

async def test_required_checks_are_validated(world, clock, project, alice) -> None:
    rules = BranchProtectionService(world, clock)
    for bad in (["x"] * 21, [""], [" "]):
        with pytest.raises(InvalidInput) as err:
            await rules.create(alice, project, NewBranchProtection(pattern="main", required_checks=bad))
        assert err.value.field == "required_checks"
    rule = await rules.create(alice, project, NewBranchProtection(pattern="main", required_checks=["a", "a", "b"]))
    assert rule.required_checks == ("a", "b")
