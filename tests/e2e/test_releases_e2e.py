"""Releases against a real git repository, driven by the real git CLI: a release of a pushed tag (its commit is
the tag's), an asset uploaded and downloaded byte for byte, a release of a missing tag creates the tag (the next
fetch has it), and the release webhook event. Every JSON answer is checked against the OpenAPI document."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.e2e.gitkit import Corral, git
from tests.e2e.test_repo_api import API, _seeded, api, corral  # noqa: F401 (the fixture)

pytestmark = pytest.mark.e2e


async def test_release_on_a_pushed_tag_with_an_asset(corral: Corral, tmp_path: Path) -> None:  # noqa: F811
    alice, work = await _seeded(corral, tmp_path)
    await git(work, "tag", "v1.0")
    await git(work, "push", "origin", "v1.0", token=alice)
    tagged = (await git(work, "rev-parse", "v1.0^{commit}")).stdout.strip()

    status, rel = await api(corral, "POST", f"{API}/releases", alice,
                            json={"tag": "v1.0", "title": "One", "notes": "## Changes\n- first"})
    assert status == 201, rel
    assert (rel["tag"], rel["target"], rel["draft"]) == ("v1.0", tagged, False)

    blob = os.urandom(70_000) + b"\x00end"
    status, asset = await api(corral, "POST", f"{API}/releases/{rel['id']}/assets?name=app-1.0.bin", alice,
                              data=blob)  # aiohttp sends bytes as application/octet-stream
    assert status == 201, asset
    assert asset["size"] == len(blob)
    status, got = await api(corral, "GET", f"{API}/releases/{rel['id']}/assets/app-1.0.bin", alice)
    assert status == 200 and got == blob
    status, listed = await api(corral, "GET", f"{API}/releases", alice)
    assert [(r["tag"], [a["name"] for a in r["assets"]]) for r in listed["items"]] == [("v1.0", ["app-1.0.bin"])]

    # a release of a tag that does not exist creates it, like a push: the next fetch has it
    status, rel2 = await api(corral, "POST", f"{API}/releases", alice,
                             json={"tag": "v1.1", "target": "main", "prerelease": True})
    assert status == 201, rel2
    await git(work, "fetch", "--tags", "origin", token=alice)
    assert (await git(work, "rev-parse", "v1.1^{commit}")).stdout.strip() == rel2["target"] == tagged
    events = [e.payload for e in corral.memory.events if e.topic == "release"]
    assert [(e["action"], e["release"]["tag"]) for e in events] == [("published", "v1.0"), ("published", "v1.1")]
