"""The projects and repository API as typed operations, over fakes with responses checked against their schemas:
bodies and queries are parsed into their classes (wrong types, unknown fields and unknown query parameters are
400s naming them) and every answer matches its documented class."""

from __future__ import annotations

import attrs
import pytest
from aiohttp.test_utils import TestClient

from corral.core.identity.commands import NewToken, NewUser
from corral.core.identity.service import SYSTEM
from corral.fakes.git import InMemoryGitRepositories
from tests.unit.identity.webkit import projects_app

PW = "correct horse battery"


@attrs.define
class Api:
    client: TestClient
    alice: dict[str, str]
    repos: InMemoryGitRepositories


@pytest.fixture
async def api():
    app = await projects_app()
    client, ids = app.client, app.ids
    for name in ("alice", "bob"):  # bob is only named in push allowlists
        await ids.users.create(SYSTEM, NewUser(name=name, email=f"{name}@example.com", password=PW,
                                               admin=name == "alice"))
    user = await ids.users.get("alice")
    held = await ids.authorizer.user_permissions(user.id, None)
    issued = await ids.tokens.create(SYSTEM, NewToken(name="t", scopes=sorted(held), user="alice"))
    yield Api(client, {"Authorization": f"Bearer {issued.secret}"}, app.repos)
    await client.close()


async def _problem(resp) -> dict:
    assert resp.content_type == "application/problem+json", await resp.text()
    return await resp.json()


async def _new_project(api: Api, name: str = "app") -> dict:
    resp = await api.client.post("/api/v1/projects", headers=api.alice,
                                 json={"name": name, "visibility": "internal", "description": "d"})
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def test_project_lifecycle_answers_match_their_schemas(api: Api) -> None:
    made = await _new_project(api)
    assert made["full_name"] == "alice/app" and made["visibility"] == "internal" and made["display_name"] is None
    c = api.client
    assert (await (await c.get("/api/v1/projects/alice/app", headers=api.alice)).json())["id"] == made["id"]
    listing = await (await c.get("/api/v1/projects?limit=1", headers=api.alice)).json()
    assert [p["name"] for p in listing["items"]] == ["app"]
    resp = await c.patch("/api/v1/projects/alice/app", headers=api.alice,
                         json={"description": None, "display_name": "App", "archived": True})
    changed = await resp.json()
    assert resp.status == 200 and changed["description"] is None and changed["display_name"] == "App"
    assert changed["archived"] is True and changed["visibility"] == "internal"  # unsent fields stay

    resp = await c.post("/api/v1/projects/alice/app/branch-protections", headers=api.alice,
                        json={"pattern": "main", "require_merge_request": True, "push_allowlist": ["bob"]})
    rule = await resp.json()
    assert resp.status == 201 and rule["push_allowlist"] == ["bob"] and rule["required_approvals"] == 0
    resp = await c.patch(f"/api/v1/projects/alice/app/branch-protections/{rule['id']}", headers=api.alice,
                         json={"required_approvals": 2})
    assert resp.status == 200 and (await resp.json())["required_approvals"] == 2
    rules = await (await c.get("/api/v1/projects/alice/app/branch-protections", headers=api.alice)).json()
    assert [r["pattern"] for r in rules["items"]] == ["main"] and rules["next_cursor"] is None

    resp = await c.post("/api/v1/projects/alice/app/webhooks", headers=api.alice,
                        json={"url": "https://hooks.example.com/x"})
    hook = await resp.json()
    assert resp.status == 201 and hook["events"] == ["push"] and hook["active"] is True
    resp = await c.patch(f"/api/v1/projects/alice/app/webhooks/{hook['id']}", headers=api.alice,
                         json={"events": ["issue", "review"], "active": False})
    assert (await resp.json())["events"] == ["issue", "review"]
    got = await (await c.get(f"/api/v1/projects/alice/app/webhooks/{hook['id']}", headers=api.alice)).json()
    assert got["active"] is False and got["has_secret"] is False
    deliveries = await c.get(f"/api/v1/projects/alice/app/webhooks/{hook['id']}/deliveries", headers=api.alice)
    assert deliveries.status == 200 and (await deliveries.json()) == {"items": [], "next_cursor": None}
    resp = await c.delete(f"/api/v1/projects/alice/app/webhooks/{hook['id']}", headers=api.alice)
    assert resp.status == 204
    resp = await c.delete(f"/api/v1/projects/alice/app/branch-protections/{rule['id']}", headers=api.alice)
    assert resp.status == 204


async def test_repository_answers_match_their_schemas(api: Api) -> None:
    made = await _new_project(api)
    repo = f"{made['id']}.git"
    api.repos.commit(repo, "main", {"README.md": b"hi", "docs/guide.md": b"# Guide", "bin": b"\xff\x00"}, "one")
    c = api.client
    branches = await (await c.get("/api/v1/projects/alice/app/repo/branches", headers=api.alice)).json()
    assert [b["name"] for b in branches["items"]] == ["main"]
    assert branches["items"][0]["commit"]["message"].startswith("one")
    log = await (await c.get("/api/v1/projects/alice/app/repo/commits?ref=main&limit=5", headers=api.alice)).json()
    sha = log["items"][0]["sha"]
    resp = await c.get(f"/api/v1/projects/alice/app/repo/commits/{sha}", headers=api.alice)
    assert resp.status == 200, await resp.text()
    assert "README.md" in [f["path"] for f in (await resp.json())["files"]]
    tree = await (await c.get("/api/v1/projects/alice/app/repo/tree/main", headers=api.alice)).json()
    assert {e["name"] for e in tree["items"]} >= {"README.md", "docs"}
    blob = await (await c.get("/api/v1/projects/alice/app/repo/blob/main/bin", headers=api.alice)).json()
    assert blob["encoding"] == "base64"
    docs = await (await c.get("/api/v1/projects/alice/app/docs", headers=api.alice)).json()
    assert [d["path"] for d in docs["items"]] == ["guide.md"]
    doc = await (await c.get("/api/v1/projects/alice/app/docs/guide.md", headers=api.alice)).json()
    assert doc["content"] == "# Guide"


@pytest.mark.parametrize(("method", "path", "body", "field", "words"), [
    ("post", "/api/v1/projects", {"name": 1}, "name", "expected a string"),
    ("post", "/api/v1/projects", {"name": "x", "colour": "red"}, "colour", "unknown field"),
    ("post", "/api/v1/projects", {"name": "x", "visibility": "secret"}, "visibility", "'private'"),
    ("patch", "/api/v1/projects/alice/app", {"archived": "yes"}, "archived", "true or false"),
    ("patch", "/api/v1/projects/alice/app", {"owner": "bob"}, "owner", "unknown field"),
    ("patch", "/api/v1/projects/alice/app", {"name": None}, "name", "expected a string"),
    ("post", "/api/v1/projects/alice/app/branch-protections", {"pattern": "main", "push_allowlist": "bob"},
     "push_allowlist", "expected a JSON array"),
    ("post", "/api/v1/projects/alice/app/branch-protections", {"pattern": "main", "required_approvals": "2"},
     "required_approvals", "integer"),
    ("post", "/api/v1/projects/alice/app/branch-protections", {"pattern": "main", "when": "always"}, "when",
     "unknown field"),
    ("post", "/api/v1/projects/alice/app/webhooks", {"url": "https://h.example.com", "events": "push"}, "events",
     "expected a JSON array"),
    ("post", "/api/v1/projects/alice/app/webhooks", {"url": "https://h.example.com", "events": ["nope"]}, "events",
     "'push'"),
    ("post", "/api/v1/projects/alice/app/webhooks", {"url": "https://h.example.com", "color": "red"}, "color",
     "unknown field"),
])
async def test_bad_bodies_name_the_field(api: Api, method: str, path: str, body: dict, field: str,
                                         words: str) -> None:
    await _new_project(api)
    resp = await getattr(api.client, method)(path, headers=api.alice, json=body)
    assert resp.status == 400
    problem = await _problem(resp)
    assert problem["field"].split("[")[0].split(".")[0] == field, problem
    assert words in problem["detail"], problem


async def test_value_rules_stay_in_core(api: Api) -> None:
    await _new_project(api)
    for path, body, field in [
        ("/api/v1/projects", {"name": "../x"}, "name"),
        ("/api/v1/projects/alice/app/branch-protections", {"pattern": "main", "push_allowlist": ["nobody"]},
         "push_allowlist"),
        ("/api/v1/projects/alice/app/webhooks", {"url": "http://127.0.0.1/hook"}, "url"),
        ("/api/v1/projects/alice/app/webhooks", {"url": "https://h.example.com", "events": []}, "events"),
    ]:
        resp = await api.client.post(path, headers=api.alice, json=body)
        assert resp.status == 400, (path, body)
        assert (await _problem(resp))["field"] == field


@pytest.mark.parametrize(("path", "field"), [
    ("/api/v1/projects?state=open", "state"),
    ("/api/v1/projects?limit=many", "limit"),
    ("/api/v1/projects/alice/app/repo/branches?sort=desc", "sort"),
    ("/api/v1/projects/alice/app/repo/commits?author=bob", "author"),
    ("/api/v1/projects/alice/app/webhooks?limit=5", "limit"),  # not paginated: takes no parameter
    ("/api/v1/projects/alice/app?expand=all", "expand"),
])
async def test_unknown_query_parameters_are_refused(api: Api, path: str, field: str) -> None:
    await _new_project(api)
    resp = await api.client.get(path, headers=api.alice)
    assert resp.status == 400
    assert (await _problem(resp))["field"] == field
