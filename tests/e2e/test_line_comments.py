"""Line comments on a merge request's diff against a real repository driven by the real git CLI: a comment on a
line a later push changes is outdated, one on an unchanged line is not. Every JSON answer is checked against the
OpenAPI document."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.e2e.gitkit import Corral, git, start_corral, stop_corral, write
from tests.e2e.test_repo_api import API, _seeded, api

pytestmark = pytest.mark.e2e


@pytest.fixture
async def corral(tmp_path: Path) -> AsyncIterator[Corral]:
    c = await start_corral(tmp_path, validate_responses=True)
    yield c
    await stop_corral(c)


async def test_a_pushed_change_outdates_the_comment_on_its_line(corral: Corral, tmp_path: Path) -> None:
    alice, work = await _seeded(corral, tmp_path)
    await git(work, "checkout", "-qb", "feature")
    write(work / "src/app.py", "import sys\nprint('hi')\nprint('bye')\n")
    await git(work, "commit", "-qam", "more")
    await git(work, "push", "origin", "feature", token=alice)
    first_head = (await git(work, "rev-parse", "HEAD")).stdout.strip()
    status, mr = await api(corral, "POST", f"{API}/merge-requests", alice,
                           json={"source_branch": "feature", "title": "More output"})
    assert status == 201, mr
    comments = f"{API}/merge-requests/{mr['number']}/comments"

    status, on_bye = await api(corral, "POST", comments, alice,
                               json={"body": "say goodbye properly", "path": "src/app.py", "line": 3})
    assert status == 201, on_bye
    assert (on_bye["path"], on_bye["line"], on_bye["side"], on_bye["commit_sha"], on_bye["outdated"]) == (
        "src/app.py", 3, "new", first_head, False)
    status, on_import = await api(corral, "POST", comments, alice, json={
        "body": "needed?", "path": "src/app.py", "line": 1, "side": "new", "commit_sha": first_head})
    assert status == 201, on_import
    status, on_old = await api(corral, "POST", comments, alice,
                               json={"body": "the old line", "path": "src/app.py", "line": 1, "side": "old"})
    assert status == 201 and on_old["side"] == "old", on_old
    status, plain = await api(corral, "POST", comments, alice, json={"body": "looks good overall"})
    assert status == 201 and (plain["path"], plain["line"], plain["outdated"]) == (None, None, False), plain
    status, bad = await api(corral, "POST", comments, alice, json={"body": "x", "path": "src/app.py", "line": 99})
    assert status == 400 and "line" in str(bad), bad

    # the line 3 changes in a new push; line 1 stays as it was
    write(work / "src/app.py", "import sys\nprint('hi')\nprint('goodbye')\n")
    await git(work, "commit", "-qam", "goodbye")
    await git(work, "push", "origin", "feature", token=alice)

    status, listed = await api(corral, "GET", comments, alice)
    assert status == 200, listed
    by_body = {c["body"]: c for c in listed["items"]}
    assert by_body["say goodbye properly"]["outdated"] is True
    assert by_body["say goodbye properly"]["commit_sha"] == first_head
    assert by_body["needed?"]["outdated"] is False
    assert by_body["the old line"]["outdated"] is False
    assert by_body["looks good overall"]["outdated"] is False

    # anonymous readers of a private project see nothing
    status, _ = await api(corral, "GET", comments)
    assert status in (401, 404)
