"""Branch and tag listings paginate with cursors (in-memory repositories)."""

from __future__ import annotations

import pytest

from corral.core.errors import InvalidInput
from corral.core.git.service import RepoBrowser
from corral.core.projects.commands import NewProject
from corral.core.projects.service import ProjectService


async def test_branches_and_tags_paginate(world, repos, clock, alice) -> None:
    project = await ProjectService(world, repos, clock).create(alice, NewProject(name="app"))
    for name in ("main", "a", "b", "c", "d"):
        repos.commit(project.repo_path, name, {"f": name.encode()}, message=name)
    for name in ("v1", "v2", "v3"):
        repos.repos[project.repo_path].tags[name] = repos.repos[project.repo_path].branches["main"]
    browser = RepoBrowser(repos)
    names, cursor = [], None
    for _ in range(3):
        page = await browser.branches(project, limit=2, cursor=cursor)
        names += [b.name for b in page.items]
        cursor = page.next_cursor
    assert names == ["a", "b", "c", "d", "main"] and cursor is None
    first = await browser.tags(project, limit=2)
    second = await browser.tags(project, limit=2, cursor=first.next_cursor)
    assert [t.name for t in first.items + second.items] == ["v1", "v2", "v3"] and second.next_cursor is None
    assert (await browser.branches(project)).next_cursor is None
    for bad in ({"limit": 0}, {"cursor": "%%%"}):
        with pytest.raises(InvalidInput):
            await browser.branches(project, **bad)
