"""The `corral` API client: commands generated from the OpenAPI document, requests, output and exit codes."""

from __future__ import annotations

import io
import json
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from aiohttp import web

from corral.entrypoints import cli
from corral.entrypoints.client import client_main
from corral.entrypoints.client.commands import local_document
from corral.entrypoints.client.operations import operations_of
from corral.entrypoints.client.transport import HttpResponse, Unreachable
from corral.entrypoints.config import ConfigError, load_settings
from corral.entrypoints.web.jsonio import json_response
from corral.entrypoints.web.openapi import build_openapi
from corral.entrypoints.web.operation import query_param
from corral.entrypoints.web.routes import ROUTE_TABLES
from corral.entrypoints.web.routing import RouteTable

Handler = Callable[[str, str, dict[str, str], bytes | None], HttpResponse]


def ok(payload: Any, status: int = 200) -> HttpResponse:
    return HttpResponse(status, {"content-type": "application/json"}, json.dumps(payload).encode())


def problem(status: int, detail: str) -> HttpResponse:
    body = {"type": "about:blank", "title": "Error", "status": status, "detail": detail}
    return HttpResponse(status, {"content-type": "application/problem+json"}, json.dumps(body).encode())


@attrs.define
class FakeTransport:
    """Answers with ``handler`` and records every request (method, url, headers, body)."""

    handler: Handler
    calls: list[tuple[str, str, dict[str, str], bytes | None]] = attrs.field(factory=list)
    stream_lines: list[bytes] = attrs.field(factory=list)

    def request(self, method: str, url: str, headers: dict[str, str], body: bytes | None) -> HttpResponse:
        self.calls.append((method, url, headers, body))
        return self.handler(method, url, headers, body)

    def stream(self, method: str, url: str, headers: dict[str, str]) -> tuple[HttpResponse, Iterator[bytes]]:
        self.calls.append((method, url, headers, None))
        return HttpResponse(200, {"content-type": "text/event-stream"}, b""), iter(self.stream_lines)


@attrs.define
class Run:
    code: int
    out: str
    err: str


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"XDG_CONFIG_HOME": str(tmp_path / "config"), "XDG_CACHE_HOME": str(tmp_path / "cache"),
            "CORRAL_URL": "http://corral.test", "CORRAL_TOKEN": "crl_secret"}


def run(argv: list[str], env: dict[str, str], transport: Any, document: dict[str, Any] | None = None,
        stdin: str = "") -> Run:
    out, err = io.StringIO(), io.StringIO()
    code = client_main(argv, env=env, transport=transport, document=document, stdin=io.StringIO(stdin),
                       stdout=out, stderr=err)
    return Run(code, out.getvalue(), err.getvalue())


DOC = local_document()


# --- a route added to the registry is a command ----------------------------------------------------------------
@attrs.frozen
class FrobQuery:
    level: int | None = query_param(doc="how hard")
    dry_run: bool | None = query_param(doc="only pretend")


@attrs.frozen
class FrobBody:
    color: str
    tags: list[str] = attrs.field(factory=list)
    force: bool = False
    extra: dict[str, int] | None = None


def _widget_table() -> RouteTable:
    table = RouteTable(tag="widgets")

    @table.post("/api/v1/projects/{owner}/{name}/widgets/{number}/frobnicate", summary="Frobnicate a widget",
                permission="project:read", project="path", params=FrobQuery, body=FrobBody,
                response={"type": "object"})
    async def frobnicate_widget(request: web.Request) -> web.StreamResponse:
        return json_response({})

    return table


def test_a_route_added_to_the_registry_is_a_command_without_touching_the_client(env: dict[str, str]) -> None:
    specs = [s for t in ROUTE_TABLES for s in t.specs] + _widget_table().specs
    doc = build_openapi(specs, server_url="http://corral.test")
    transport = FakeTransport(lambda *_: ok({"frobnicated": True, "widget": 3}))
    result = run(["widgets", "frobnicate", "root/app", "3", "--level", "2", "--dry-run", "--color", "red",
                  "--tags", "a", "--tags", "b", "--force", "--extra", '{"x": 1}', "--json"], env, transport, doc)
    assert result.code == 0, result.err
    method, url, headers, body = transport.calls[-1]
    assert method == "POST"
    assert url == "http://corral.test/api/v1/projects/root/app/widgets/3/frobnicate?level=2&dry_run=true"
    assert headers["Authorization"] == "Bearer crl_secret"
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body or b"") == {"color": "red", "tags": ["a", "b"], "force": True, "extra": {"x": 1}}
    assert json.loads(result.out) == {"frobnicated": True, "widget": 3}


def test_the_local_registry_serves_help_before_login(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("corral.entrypoints.web.routes.ROUTE_TABLES", [*ROUTE_TABLES, _widget_table()])
    no_server = {"XDG_CONFIG_HOME": str(tmp_path / "c"), "XDG_CACHE_HOME": str(tmp_path / "k")}
    result = run(["widgets", "--help"], no_server, FakeTransport(lambda *_: pytest.fail("no server to ask")))
    assert result.code == 0
    assert "frobnicate  Frobnicate a widget  [OWNER/NAME NUMBER]" in result.out
    result = run(["widgets", "frobnicate", "root/app", "3", "--color", "red"], no_server, FakeTransport(
        lambda *_: pytest.fail("no server to ask")))
    assert result.code == 4
    assert "corral login URL" in result.err


def test_every_operation_has_a_unique_resource_and_verb() -> None:
    ops = operations_of(DOC)
    assert {"create", "list", "get", "update", "close", "reopen", "add-comment"} <= set(ops["issues"])
    assert {"merge", "list", "create", "get-diff", "review"} <= set(ops["merge-requests"])
    assert {"list", "get", "cancel", "restart", "logs", "create"} <= set(ops["pipelines"])
    assert {"set", "rollback", "promote", "render", "list-history"} <= set(ops["deployments"])
    assert {"set", "get", "list", "set-global"} <= set(ops["secrets"])
    assert ops["pipelines"]["logs"].streams
    for resource, verbs in ops.items():
        for verb, op in verbs.items():
            assert op.resource == resource and op.verb == verb
            assert resource not in cli.COMMANDS or resource == "secrets", resource  # server commands stay theirs
    generated = sum(len(v) for v in ops.values())
    api_ops = sum(1 for path, item in DOC["paths"].items() if path.startswith("/api/") for m in item
                  if item[m].get("security") != [] and "WebSocket" not in item[m]["summary"])
    assert generated == api_ops  # every operation that needs credentials (public ones need no client)


# --- requests and output -----------------------------------------------------------------------------------------
def test_list_renders_a_table_and_json_prints_the_payload_exactly(env: dict[str, str]) -> None:
    page = {"items": [{"number": 1, "title": "first", "status": "open", "labels": ["bug"]},
                      {"number": 2, "title": "second", "status": "closed", "labels": []}], "next_cursor": "abc"}
    raw = json.dumps(page, indent=1)
    transport = FakeTransport(lambda *_: HttpResponse(200, {"content-type": "application/json"}, raw.encode()))
    result = run(["issues", "list", "root/app", "--status", "open", "--limit", "2"], env, transport, DOC)
    assert result.code == 0, result.err
    assert transport.calls[-1][1] == "http://corral.test/api/v1/projects/root/app/issues?limit=2&status=open"
    lines = result.out.splitlines()
    assert lines[0].split() == ["NUMBER", "TITLE", "STATUS"]
    assert lines[1].split() == ["1", "first", "open"]
    assert "--cursor abc" in result.err
    result = run(["issues", "list", "root/app", "--json"], env, transport, DOC)
    assert result.out == raw + "\n"
    assert result.err == ""


def test_all_follows_the_cursor(env: dict[str, str]) -> None:
    def handler(method: str, url: str, headers: dict[str, str], body: bytes | None) -> HttpResponse:
        if "cursor=p2" in url:
            return ok({"items": [{"name": "b"}], "next_cursor": None})
        return ok({"items": [{"name": "a"}], "next_cursor": "p2"})

    result = run(["projects", "list", "--all", "--json"], env, FakeTransport(handler), DOC)
    assert json.loads(result.out) == {"items": [{"name": "a"}, {"name": "b"}], "next_cursor": None}


def test_object_output_is_key_value(env: dict[str, str]) -> None:
    transport = FakeTransport(lambda *_: ok({"number": 7, "title": "t", "body": "line 1\nline 2", "closed_at": None}))
    result = run(["issues", "get", "root/app", "7"], env, transport, DOC)
    assert result.out.splitlines() == ["number     7", "title      t", "body:", "  line 1", "  line 2",
                                       "closed_at  -"]


def test_data_file_and_flags_make_the_body(env: dict[str, str], tmp_path: Path) -> None:
    body_file = tmp_path / "issue.json"
    body_file.write_text(json.dumps({"title": "from file", "body": "text", "labels": ["x"]}))
    transport = FakeTransport(lambda *_: ok({"number": 1}, 201))
    result = run(["issues", "create", "root/app", "--data", f"@{body_file}", "--title", "flag wins"], env,
                 transport, DOC)
    assert result.code == 0, result.err
    assert json.loads(transport.calls[-1][3] or b"") == {"title": "flag wins", "body": "text", "labels": ["x"]}
    result = run(["issues", "create", "root/app", "--data", "@-"], env, transport, DOC, stdin='{"title": "stdin"}')
    assert json.loads(transport.calls[-1][3] or b"") == {"title": "stdin"}


def test_path_values_are_quoted_and_a_trailing_path_keeps_its_slashes(env: dict[str, str]) -> None:
    transport = FakeTransport(lambda *_: ok({"path": "x"}))
    run(["repo", "get-file", "root/app", "feature/x y", "docs/read me.md"], env, transport, DOC)
    assert transport.calls[-1][1].endswith("/repo/blob/feature%2Fx%20y/docs/read%20me.md")


@pytest.mark.parametrize(("status", "code"), [(404, 3), (410, 3), (401, 4), (403, 4), (409, 5), (400, 6),
                                              (422, 6), (500, 7), (503, 7), (429, 7), (405, 1)])
def test_errors_are_one_stderr_line_and_a_distinct_exit_code(env: dict[str, str], status: int, code: int) -> None:
    result = run(["issues", "get", "root/app", "9", "--json"], env,
                 FakeTransport(lambda *_: problem(status, "issue 9 not\nfound")), DOC)
    assert result.code == code
    assert result.out == ""
    assert result.err == f"corral: {status} Error: issue 9 not found\n"


def test_unreachable_server_is_7(env: dict[str, str]) -> None:
    def refuse(*_: Any) -> HttpResponse:
        raise Unreachable("cannot reach http://corral.test: refused")

    result = run(["projects", "list"], env, FakeTransport(refuse), DOC)
    assert (result.code, result.err) == (7, "corral: cannot reach http://corral.test: refused\n")


@pytest.mark.parametrize("argv", [
    ["issues", "create", "root/app"],  # --title is required
    ["issues", "get", "root/app", "1", "--limit", "x"],  # not an option of get
    ["issues", "list", "root/app", "--limit", "many"],  # not an integer
    ["issues", "list", "rootapp"],  # PROJECT is OWNER/NAME
    ["issues", "frobnicate"],
    ["nonsense", "list"],
    ["issues"],
])
def test_usage_errors_exit_2_without_calling_the_server(env: dict[str, str], argv: list[str]) -> None:
    transport = FakeTransport(lambda *_: pytest.fail("the server must not be called"))
    result = run(argv, env, transport, DOC)
    assert result.code == 2, result
    assert result.err or result.out


def test_follow_streams_sse_lines_until_eof(env: dict[str, str]) -> None:
    transport = FakeTransport(lambda *_: pytest.fail("not a plain request"))
    transport.stream_lines = [b": keep-alive\n", b"\n", b"id: 1\n", b"data: compiling\n", b"\n", b"id: 2\n",
                              b"data: done\n", b"\n", b"event: eof\n", b"data: \n", b"\n", b"data: never\n"]
    result = run(["pipelines", "logs", "root/app", "4", "build", "--follow"], env, transport, DOC)
    assert result.code == 0
    assert result.out == "compiling\ndone\n"
    _method, url, headers, _ = transport.calls[-1]
    assert url == "http://corral.test/api/v1/projects/root/app/pipelines/4/logs/build"
    assert headers["Accept"] == "text/event-stream"


def test_text_answers_print_as_text(env: dict[str, str]) -> None:
    transport = FakeTransport(lambda *_: HttpResponse(200, {"content-type": "text/plain"}, b"line 1\nline 2\n"))
    assert run(["pipelines", "logs", "root/app", "4", "build"], env, transport, DOC).out == "line 1\nline 2\n"
    assert json.loads(run(["pipelines", "logs", "root/app", "4", "build", "--json"], env, transport, DOC).out) \
        == "line 1\nline 2\n"


def test_no_content_is_null_in_json(env: dict[str, str]) -> None:
    transport = FakeTransport(lambda *_: HttpResponse(204, {}, b""))
    result = run(["issues", "close", "root/app", "1", "--json"], env, transport, DOC)
    assert (result.code, result.out) == (0, "null\n")


def test_pipelines_wait_polls_until_the_end(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("time.sleep", lambda _s: None)
    states = iter(["running", "running", "failure"])

    def handler(*_: Any) -> HttpResponse:
        status = next(states)
        return ok({"number": 4, "status": status, "finished_at": None if status == "running" else "2026-01-01T00:00Z",
                   "workflows": [{"steps": [{"status": status, "finished_at": None}]}]})

    result = run(["pipelines", "wait", "root/app", "4"], env, FakeTransport(handler), DOC)
    assert result.code == 1
    assert result.err.splitlines() == ["pipeline #4: running (0/1 steps finished)",
                                       "pipeline #4: failure (1/1 steps finished)"]


# --- login, configuration, document cache ----------------------------------------------------------------------
def test_login_verifies_and_stores_the_token_mode_0600(tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path / "config"), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    seen: list[str] = []

    def handler(method: str, url: str, headers: dict[str, str], body: bytes | None) -> HttpResponse:
        seen.append(headers.get("Authorization", ""))
        return ok({"name": "alice"}) if headers.get("Authorization") == "Bearer crl_good" else problem(401, "bad")

    result = run(["login", "http://corral.test/"], env, FakeTransport(handler), DOC, stdin="crl_bad\n")
    assert result.code == 4
    assert not (tmp_path / "config" / "corral" / "client.json").exists()
    result = run(["login", "http://corral.test/"], env, FakeTransport(handler), DOC, stdin="crl_good\n")
    assert result.code == 0, result.err
    assert "as alice" in result.out
    stored = tmp_path / "config" / "corral" / "client.json"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert json.loads(stored.read_text()) == {"url": "http://corral.test", "token": "crl_good"}
    transport = FakeTransport(lambda *_: ok({"items": [], "next_cursor": None}))
    assert run(["tokens", "list"], env, transport, DOC).code == 0
    assert transport.calls[-1][2]["Authorization"] == "Bearer crl_good"
    # the environment overrides the stored login
    override = {**env, "CORRAL_URL": "http://other.test", "CORRAL_TOKEN": "crl_env"}
    run(["tokens", "list"], override, transport, DOC)
    assert transport.calls[-1][1].startswith("http://other.test/") and \
        transport.calls[-1][2]["Authorization"] == "Bearer crl_env"
    assert run(["logout"], env, transport, DOC).out == "logged out\n"
    assert not stored.exists()
    assert run(["login", "corral.test"], env, transport, DOC, stdin="x\n").code == 2


def test_the_server_document_is_cached_per_version_and_refetched_for_an_unknown_command(
        env: dict[str, str]) -> None:
    specs = [s for t in ROUTE_TABLES for s in t.specs]
    documents = {"v": build_openapi(specs, server_url="http://corral.test")}

    def handler(method: str, url: str, headers: dict[str, str], body: bytes | None) -> HttpResponse:
        if url.endswith("/api/v1/version"):
            return ok({"version": "1.0"})
        if url.endswith("/api/v1/openapi.json"):
            return ok(documents["v"])
        return ok({"frobnicated": True})

    transport = FakeTransport(handler)
    assert run(["projects", "get", "root/app"], env, transport).code == 0
    assert [c[1].rsplit("/", 1)[1] for c in transport.calls] == ["version", "openapi.json", "app"]
    transport.calls.clear()
    assert run(["projects", "get", "root/app"], env, transport).code == 0
    assert [c[1].rsplit("/", 1)[1] for c in transport.calls] == ["version", "app"]  # from the cache
    # the server gained a route (same version): the cached copy misses it, so it is fetched again
    documents["v"] = build_openapi(specs + _widget_table().specs, server_url="http://corral.test")
    transport.calls.clear()
    result = run(["widgets", "frobnicate", "root/app", "1", "--color", "blue"], env, transport)
    assert result.code == 0, result.err
    assert [c[1].rsplit("/", 1)[1] for c in transport.calls] == ["version", "openapi.json", "frobnicate"]


def test_settings_ignore_the_client_variables_only() -> None:
    settings = load_settings({"CORRAL_URL": "http://x", "CORRAL_TOKEN": "crl_x", "CORRAL_PORT": "9000"})
    assert settings.port == 9000
    with pytest.raises(ConfigError, match="CORRAL_TOKENS"):
        load_settings({"CORRAL_TOKENS": "x"})


def test_server_commands_take_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("CORRAL_URL", raising=False)
    cli._load_extensions()
    assert not cli._is_client(["secrets", "status"])
    assert not cli._is_client(["serve", "--port", "1"])
    assert not cli._is_client(["admin", "create-user", "x"])
    assert not cli._is_client(["config", "check"])
    assert not cli._is_client(["secrets", "bogus"])  # neither's: the server command explains its choices
    assert cli._is_client(["secrets", "list", "root/app"])
    assert cli._is_client(["issues", "list", "root/app"])
    assert cli._is_client(["login", "http://x"])


def test_completion_scripts_and_candidates(env: dict[str, str]) -> None:
    transport = FakeTransport(lambda *_: pytest.fail("no request"))
    assert "complete -o default -F _corral_complete corral" in run(["completion", "bash"], env, transport, DOC).out
    assert "compdef _corral_complete corral" in run(["completion", "zsh"], env, transport, DOC).out
    assert run(["completion", "fish"], env, transport, DOC).code == 2
    words = run(["__complete", "merge-r"], env, transport, DOC).out.split()
    assert words == ["merge-requests"]
    assert "serve" in run(["__complete", "se"], env, transport, DOC).out.split()
    assert run(["__complete", "pipelines", "w"], env, transport, DOC).out.split() == ["wait"]
    assert "--title" in run(["__complete", "issues", "create", "--t"], env, transport, DOC).out.split()


def test_the_config_file_is_private(tmp_path: Path) -> None:
    from corral.entrypoints.client.store import save_target

    path = save_target("http://x", "crl_y", {"XDG_CONFIG_HOME": str(tmp_path / "c")})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert not [p for p in os.listdir(path.parent) if p.startswith(".")]  # no temporary file left
