"""The official MCP Python client (Streamable HTTP) against a real ``corral serve`` on PostgreSQL and Valkey.

It connects with an API token, lists the tools, creates a project and an issue, reads a file pushed with the
real git CLI at a ref, searches logs; a token restricted to one project gets ``isError`` on another project.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.corral_process import AdminApi, CorralProcess, admin_env
from tests.e2e.gitkit import git, git_env, write

mcp = pytest.importorskip("mcp")

ADMIN = ("root", "mcp-password-123456")


@pytest.fixture
def server(tmp_path: Path, db_dsn: str, valkey_url: str) -> Iterator[CorralProcess]:
    data = tmp_path / "data"
    data.mkdir()
    proc = CorralProcess.start(data, {
        "CORRAL_DATABASE_URL": db_dsn,
        "CORRAL_VALKEY_URL": valkey_url,
        "CORRAL_LOG_LEVEL": "warning",
        **admin_env(ADMIN),
    })
    yield proc
    assert proc.stop() == 0, proc.log_text()[-3000:]


def mcp_client(base: str, token: str):  # type: ignore[no-untyped-def]
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    http = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
    return http, Client(streamable_http_client(f"{base}/mcp", http_client=http))


async def all_tools(client: Any) -> dict[str, Any]:
    tools: dict[str, Any] = {}
    cursor = None
    pages = 0
    while True:
        page = await client.list_tools(cursor=cursor, cache_mode="refresh")
        pages += 1
        tools.update({t.name: t for t in page.tools})
        cursor = page.next_cursor
        if cursor is None:
            assert pages >= 2  # the listing is paginated
            return tools


def structured(result: Any) -> Any:
    assert not result.is_error, result.content[0].text
    return result.structured_content


async def test_mcp_client_drives_corral(server: CorralProcess, tmp_path: Path) -> None:
    api = AdminApi(server.base_url, ADMIN)
    api.login()
    token = api.token()
    http, client = mcp_client(server.base_url, token)
    async with http, client:
        tools = await all_tools(client)
        assert {"create_project", "create_issue", "read_file", "search_logs", "merge_merge_request",
                "set_secret"} <= set(tools)
        assert tools["create_issue"].input_schema["type"] == "object"

        project = structured(await client.call_tool("create_project", {"body": {"name": "app"}}))
        assert project["full_name"] == "root/app"
        issue = structured(await client.call_tool("create_issue", {
            "owner": "root", "name": "app", "body": {"title": "Broken build", "body": "it fails"}}))
        assert issue["number"] == 1 and issue["title"] == "Broken build"
        listed = structured(await client.call_tool("list_issues", {"owner": "root", "name": "app"}))
        assert [i["title"] for i in listed["items"]] == ["Broken build"]

        # a file pushed with the real git CLI, read at a ref (a branch) and at the default branch
        env = git_env(tmp_path / "home")
        work = tmp_path / "work"
        await git(tmp_path, "clone", project["clone_url"], str(work), token=token, env=env)
        write(work / "src" / "hello.py", "print('hello')\n")
        await git(work, "add", ".", env=env)
        await git(work, "commit", "-m", "hello", env=env)
        await git(work, "push", "origin", "HEAD:main", token=token, env=env)
        await git(work, "push", "origin", "HEAD:feature/x", token=token, env=env)
        got = structured(await client.call_tool("read_file", {"project": "root/app", "path": "src/hello.py",
                                                              "ref": "feature/x"}))
        assert got["type"] == "file" and got["content"] == "print('hello')\n" and got["ref"] == "feature/x"
        default = structured(await client.call_tool("read_file", {"project": "root/app", "path": "src/hello.py"}))
        assert default["ref"] == "main" and default["content"] == "print('hello')\n"
        folder = structured(await client.call_tool("read_file", {"project": "root/app", "path": "src", "ref": "main"}))
        assert folder["type"] == "directory" and [e["name"] for e in folder["entries"]] == ["hello.py"]
        missing = await client.call_tool("read_file", {"project": "root/app", "path": "nope.txt", "ref": "main"})
        assert missing.is_error and "404" in missing.content[0].text

        logs = structured(await client.call_tool("search_logs", {"project": "root/app", "since": "1h"}))
        assert isinstance(logs["items"], list) and "next_cursor" in logs
        bad = await client.call_tool("search_logs", {"project": "root/app", "since": "yesterday-ish"})
        assert bad.is_error and "since" in bad.content[0].text

        # errors are isError results with the problem's detail, so the agent can correct itself
        conflict = await client.call_tool("create_project", {"body": {"name": "app"}})
        assert conflict.is_error and "409" in conflict.content[0].text

    # a token restricted to root/app: tools on another project come back isError
    structured_other = api.call("POST", "/api/v1/projects", {"name": "other"})
    assert structured_other["full_name"] == "root/other"
    restricted = api.token(project="root/app")
    http, client = mcp_client(server.base_url, restricted)
    async with http, client:
        tools = await all_tools(client)
        assert "list_tokens" not in tools  # account-level: refused to a project-restricted token, so not listed
        assert "list_users" not in tools
        mine = structured(await client.call_tool("list_issues", {"owner": "root", "name": "app"}))
        assert len(mine["items"]) == 1
        other = await client.call_tool("list_issues", {"owner": "root", "name": "other"})
        assert other.is_error
        assert "403" in other.content[0].text or "404" in other.content[0].text
        write_other = await client.call_tool("create_issue", {"owner": "root", "name": "other",
                                                              "body": {"title": "sneaky"}})
        assert write_other.is_error
        read_other = await client.call_tool("read_file", {"project": "root/other", "path": ""})
        assert read_other.is_error
    assert api.call("GET", "/api/v1/projects/root/other/issues")["items"] == []
