"""Line comments on a merge request's diff (fakes): anchoring, validation and outdated marking."""

from __future__ import annotations

import pytest

from corral.core.errors import InvalidInput
from corral.core.projects.commands import NewMergeRequest, NewMergeRequestComment, NewProject
from corral.core.projects.merge_requests import MergeRequestService
from corral.core.projects.service import ProjectService


@pytest.fixture
def mrs(world, repos, users, clock) -> MergeRequestService:
    return MergeRequestService(world, repos, users, clock)


@pytest.fixture
async def project(world, repos, clock, alice):
    p = await ProjectService(world, repos, clock).create(alice, NewProject(name="lines"))
    repos.commit(p.repo_path, "main", {"a.txt": b"one\ntwo\nthree\n"})
    repos.commit(p.repo_path, "feature", {"a.txt": b"one\nTWO\nthree\nfour\n", "b.txt": b"b1\nb2\n"},
                 parent=repos.repos[p.repo_path].branches["main"])
    return p


async def _listed(mrs, project, number):
    page = await mrs.comments(project, number)
    outdated = await mrs.outdated(project, number, page.items)
    return {c.body: (c.path, c.line, c.side, c.id in outdated) for c in page.items}


async def test_line_comment_is_anchored_to_the_head(mrs, project, repos, alice) -> None:
    mr = await mrs.create(alice, project, NewMergeRequest(source_branch="feature", title="f"))
    head = repos.repos[project.repo_path].branches["feature"]
    c = await mrs.comment(alice, project, mr.number, NewMergeRequestComment(body="why caps?", path="a.txt", line=2))
    assert (c.path, c.line, c.side, c.commit_sha, c.line_content) == ("a.txt", 2, "new", head, "TWO")
    old = await mrs.comment(alice, project, mr.number,
                            NewMergeRequestComment(body="was fine", path="a.txt", line=2, side="old"))
    assert old.line_content == "two"
    plain = await mrs.comment(alice, project, mr.number, NewMergeRequestComment(body="overall"))
    assert (plain.path, plain.line, plain.commit_sha) == (None, None, None)


async def test_outdated_when_a_later_head_changes_the_line(mrs, project, repos, alice) -> None:
    mr = await mrs.create(alice, project, NewMergeRequest(source_branch="feature", title="f"))
    for body, line in (("on two", 2), ("on three", 3)):
        await mrs.comment(alice, project, mr.number, NewMergeRequestComment(body=body, path="a.txt", line=line))
    await mrs.comment(alice, project, mr.number, NewMergeRequestComment(body="on b", path="b.txt", line=1))
    assert {k: v[3] for k, v in (await _listed(mrs, project, mr.number)).items()} == {
        "on two": False, "on three": False, "on b": False}
    repos.commit(project.repo_path, "feature", {"a.txt": b"one\nTwo!\nthree\nfour\n", "b.txt": None})
    listed = await _listed(mrs, project, mr.number)
    assert listed["on two"] == ("a.txt", 2, "new", True)
    assert listed["on three"] == ("a.txt", 3, "new", False)
    assert listed["on b"][3] is True  # the file is gone


async def test_comment_at_an_older_commit_compares_with_the_head(mrs, project, repos, alice) -> None:
    mr = await mrs.create(alice, project, NewMergeRequest(source_branch="feature", title="f"))
    first = repos.repos[project.repo_path].branches["feature"]
    repos.commit(project.repo_path, "feature", {"a.txt": b"one\nTWO\nthree\nFOUR\n"})
    await mrs.comment(alice, project, mr.number,
                      NewMergeRequestComment(body="four", path="a.txt", line=4, commit_sha=first[:10]))
    await mrs.comment(alice, project, mr.number,
                      NewMergeRequestComment(body="one", path="a.txt", line=1, commit_sha=first))
    listed = await _listed(mrs, project, mr.number)
    assert (listed["four"][3], listed["one"][3]) == (True, False)


@pytest.mark.parametrize(("fields", "field"), [
    ({"path": "a.txt"}, "line"),
    ({"line": 1}, "path"),
    ({"path": "a.txt", "line": 9}, "line"),
    ({"path": "a.txt", "line": 0}, "line"),
    ({"path": "nope.txt", "line": 1}, "path"),
    ({"path": "../a.txt", "line": 1}, "path"),
    ({"path": "b.txt", "line": 1, "side": "old"}, "path"),  # b.txt is new: no old side
    ({"path": "a.txt", "line": 1, "commit_sha": "0123456789"}, "commit_sha"),
    ({"path": "a.txt", "line": 1, "commit_sha": "HEAD~1"}, "commit_sha"),
    ({"commit_sha": "0123456789"}, "commit_sha"),
])
async def test_bad_anchors_name_the_field(mrs, project, alice, fields, field) -> None:
    mr = await mrs.create(alice, project, NewMergeRequest(source_branch="feature", title="f"))
    with pytest.raises(InvalidInput) as err:
        await mrs.comment(alice, project, mr.number, NewMergeRequestComment(body="x", **fields))
    assert err.value.field == field
    assert (await mrs.comments(project, mr.number)).items == []
