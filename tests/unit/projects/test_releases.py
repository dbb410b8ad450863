"""Releases over the API on fakes: a tag created like a push, drafts for writers only, assets in the object store,
the release webhook event on publish, every change audited; answers checked against their schemas."""

from __future__ import annotations

from typing import Any

import attrs
import pytest

from corral.core.identity.commands import NewToken, NewUser
from corral.core.identity.service import SYSTEM
from tests.unit.identity.webkit import PW, bearer, projects_app

BASE = "/api/v1/projects/alice/app/releases"


@attrs.define
class App:
    client: Any
    db: Any
    repos: Any
    alice: dict[str, str] = attrs.field(factory=dict)
    repo: str = ""
    sha: str = ""


@pytest.fixture
async def app():
    made = await projects_app()
    ids = made.ids
    found = App(made.client, made.db, made.repos)
    await ids.users.create(SYSTEM, NewUser(name="alice", email="alice@example.com", password=PW, admin=True))
    held = await ids.authorizer.user_permissions((await ids.users.get("alice")).id, None)
    issued = await ids.tokens.create(SYSTEM, NewToken(name="t", scopes=sorted(held), user="alice"))
    found.alice = bearer(issued.secret)
    resp = await found.client.post("/api/v1/projects", headers=found.alice,
                                   json={"name": "app", "visibility": "public"})
    assert resp.status == 201
    found.repo = f"{(await resp.json())['id']}.git"
    found.sha = found.repos.commit(found.repo, "main", {"README.md": b"hi"}, "one")
    yield found
    await found.client.close()


def _events(app, topic: str) -> list[dict]:
    return [e.payload for e in app.db.db.outbox.events.values() if e.topic == topic]


def _audited(app) -> list[str]:
    return [e.action for e in app.db.db.audit.entries.values() if e.action.startswith("release")]


async def test_release_on_a_new_tag_with_an_asset(app):
    c = app.client
    resp = await c.post(BASE, headers=app.alice, json={"tag": "v1.0", "title": "First", "notes": "# Hello"})
    assert resp.status == 201, await resp.text()
    rel = await resp.json()
    assert (rel["tag"], rel["target"], rel["draft"], rel["notes"]) == ("v1.0", app.sha, False, "# Hello")
    assert rel["published_at"] is not None
    tags = await (await c.get("/api/v1/projects/alice/app/repo/tags", headers=app.alice)).json()
    assert [t["name"] for t in tags["items"]] == ["v1.0"]  # created through the tag path
    assert [p["action"] for p in _events(app, "release")] == ["published"]
    assert _events(app, "push")  # recorded like a push
    assert (await c.post(BASE, headers=app.alice, json={"tag": "v1.0"})).status == 409

    one = f"{BASE}/{rel['id']}"
    up = await c.post(f"{one}/assets?name=app.tar.gz", headers={**app.alice, "Content-Type": "application/gzip"},
                      data=b"\x1f\x8bbytes")
    assert up.status == 201, await up.text()
    assert (await up.json())["size"] == 7
    assert (await c.post(f"{one}/assets?name=app.tar.gz", headers=app.alice, data=b"x")).status == 409
    assert (await c.post(f"{one}/assets?name=../x", headers=app.alice, data=b"x")).status == 400
    down = await c.get(f"{one}/assets/app.tar.gz")  # public project: anonymous download
    assert down.status == 200 and await down.read() == b"\x1f\x8bbytes"
    assert down.headers["Content-Type"] == "application/gzip"
    got = await (await c.get(one)).json()
    assert [a["name"] for a in got["assets"]] == ["app.tar.gz"]
    assert (await c.delete(f"{one}/assets/app.tar.gz", headers=app.alice)).status == 204
    assert (await c.get(f"{one}/assets/app.tar.gz")).status == 404
    assert (await c.delete(one, headers=app.alice)).status == 204
    assert (await c.get(one)).status == 404
    assert _audited(app) == ["release.create", "release.asset.upload", "release.asset.delete", "release.delete"]


async def test_drafts_are_for_writers_and_publishing_sends_the_event(app):
    c = app.client
    resp = await c.post(BASE, headers=app.alice, json={"tag": "v2.0-rc1", "target": "main", "draft": True,
                                                      "prerelease": True})
    assert resp.status == 201, await resp.text()
    draft = await resp.json()
    assert draft["published_at"] is None and draft["title"] == "v2.0-rc1"
    assert _events(app, "release") == []
    assert (await (await c.get(BASE)).json())["items"] == []  # anonymous: no drafts
    assert (await c.get(f"{BASE}/{draft['id']}")).status == 404
    assert [r["tag"] for r in (await (await c.get(BASE, headers=app.alice)).json())["items"]] == ["v2.0-rc1"]
    resp = await c.patch(f"{BASE}/{draft['id']}", headers=app.alice, json={"draft": False, "notes": "ready"})
    assert resp.status == 200
    assert (await resp.json())["published_at"] is not None
    events = _events(app, "release")
    assert [(e["action"], e["release"]["tag"], e["release"]["prerelease"]) for e in events] == [
        ("published", "v2.0-rc1", True)]
    assert [r["tag"] for r in (await (await c.get(BASE)).json())["items"]] == ["v2.0-rc1"]
    assert (await c.post(BASE, json={"tag": "v3"})).status in (401, 404)  # writes need credentials
    assert (await c.post(BASE, headers=app.alice, json={"tag": "v3", "target": "nope"})).status == 404


async def test_assets_are_size_limited(app, monkeypatch):
    from corral.core.projects import releases

    monkeypatch.setattr(releases, "MAX_ASSET_BYTES", 4)
    c = app.client
    rel = await (await c.post(BASE, headers=app.alice, json={"tag": "v1"})).json()
    resp = await c.post(f"{BASE}/{rel['id']}/assets?name=big.bin", headers=app.alice, data=b"12345")
    assert resp.status == 413
    assert (await (await c.get(f"{BASE}/{rel['id']}")).json())["assets"] == []


async def test_an_archived_project_takes_no_releases(app):
    c = app.client
    rel = await (await c.post(BASE, headers=app.alice, json={"tag": "v1"})).json()
    assert (await c.patch("/api/v1/projects/alice/app", headers=app.alice, json={"archived": True})).status == 200
    assert (await c.post(BASE, headers=app.alice, json={"tag": "v2"})).status == 409
    assert (await c.post(f"{BASE}/{rel['id']}/assets?name=a.txt", headers=app.alice, data=b"x")).status == 409
    assert (await c.get(f"{BASE}/{rel['id']}")).status == 200
