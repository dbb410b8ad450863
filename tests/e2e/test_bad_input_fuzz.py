"""Hand-made, deterministic fuzzing of every route of the OpenAPI document with the input an attacker sends
first: NUL bytes (path, query, JSON keys and values), JSON nested 100,000 deep, wrong types, bodies that do not
match their Content-Encoding, and tampered cursors. Anonymous and authenticated, on the memory profile and on
PostgreSQL (NUL in text only fails there): never a 5xx, every 4xx a problem+json naming what is wrong, and
Corral's own log of the attack is stored (a request path holding NUL once failed a whole self-telemetry batch).
"""

from __future__ import annotations

import base64
import gzip
import http.client
import json
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.corral_process import CorralProcess
from tests.e2e.test_api_fuzz import ADMIN, _admin_token

pytestmark = pytest.mark.e2e

DEEP = b"[" * 100_000
NUL = "a\x00b"
# raw wire bodies for the OTLP receiver and friends: a Content-Encoding that does not match the bytes
PLAIN = b'{"name": "x"}'


@pytest.fixture(params=["memory", "postgres"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CorralProcess]:
    env = {
        "CORRAL_LOG_LEVEL": "info",  # the access log lines are what self-telemetry must store
        "CORRAL_BOOTSTRAP_ADMIN_NAME": ADMIN[0],
        "CORRAL_BOOTSTRAP_ADMIN_PASSWORD": ADMIN[1],
        "CORRAL_BOOTSTRAP_ADMIN_EMAIL": "root@example.com",
    }
    if request.param == "memory":
        env["CORRAL_PROFILE"] = "memory"
    else:
        env["CORRAL_DATABASE_URL"] = request.getfixturevalue("db_dsn")
        env["CORRAL_VALKEY_URL"] = request.getfixturevalue("valkey_url")
    proc = CorralProcess.start(tmp_path, env)
    yield proc
    assert proc.stop() == 0, proc.log_text()[-3000:]


class Client:
    """Raw HTTP (no client-side quoting or re-encoding), one connection per request: a server that stops
    reading a bad body may answer and close, and the next request must not land on that connection."""

    def __init__(self, base: str) -> None:
        parts = urllib.parse.urlsplit(base)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80

    def send(self, method: str, target: str, body: bytes | None = None,
             headers: dict[str, str] | None = None) -> tuple[int, str, bytes]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            conn.request(method, target, body=body, headers={"Connection": "close", **(headers or {})})
            resp = conn.getresponse()
            return resp.status, resp.getheader("Content-Type", ""), resp.read()
        finally:
            conn.close()

    def json(self, method: str, target: str, body: object, token: str | None = None) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        status, _, data = self.send(method, target, json.dumps(body).encode(), headers)
        return status, json.loads(data) if data else None


def _problem_field(ctype: str, data: bytes) -> str | None:
    assert ctype.startswith("application/problem+json"), (ctype, data[:300])
    problem = json.loads(data)
    assert problem["status"] >= 400 and problem["detail"], problem
    return problem.get("field")


def _own_format(path: str) -> bool:
    """Routes whose errors follow their protocol, not problem+json: OTLP (google.rpc.Status), git, Git LFS, and
    MCP (JSON-RPC error objects)."""
    return path.startswith("/v1/") or path.startswith("/{owner}/{name}/") or path == "/mcp"


def _fill(path: str, known: dict[str, str], junk: str | None = None) -> str:
    out = []
    for segment in path.split("/"):
        if segment.startswith("{") and segment.endswith("}"):
            name = segment[1:-1]
            segment = junk if junk is not None else known.get(name, "zz-unknown")
        out.append(segment)
    return "/".join(out)


def _schema_props(doc: dict[str, Any], op: dict[str, Any]) -> dict[str, Any]:
    schema = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
    ref = schema.get("$ref")
    if ref:
        schema = doc["components"]["schemas"][ref.rsplit("/", 1)[1]]
    return dict(schema.get("properties") or {})


def _forged(values: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def _bad_inputs(doc: dict[str, Any], path: str, method: str, op: dict[str, Any],
                known: dict[str, str]) -> Iterator[tuple[str, str, bytes | None, dict[str, str]]]:
    """(label, target, body, headers) of every kind of bad input for one operation."""
    real = _fill(path, known)
    query = [p["name"] for p in op.get("parameters", []) if p["in"] == "query"]
    if "{" in path:
        yield "nul-path", _fill(path, known, junk="a%00b"), None, {}
    yield "nul-query", real + "?" + "&".join(f"{q}=x%00y" for q in [*query, "q"]), None, {}
    yield "nul-query-name", real + "?a%00b=1", None, {}
    if "cursor" in query:
        for label, cursor in (("cursor-type", _forged({"name": 123, "id": 123, "after": 123, "before": "x",
                                                       "t": 5, "i": "9" * 400, "skip": "x"})),
                              ("cursor-huge", _forged({"t": "2026-01-01T00:00:00+00:00", "i": int("9" * 400)})),
                              ("cursor-junk", "!!!"), ("cursor-long", "A" * 6000)):
            yield label, f"{real}?cursor={cursor}", None, {}
    if method not in ("post", "put", "patch"):
        return
    props = _schema_props(doc, op) or {"name": {}, "title": {}, "description": {}}
    js = {"Content-Type": "application/json"}
    yield "deep", real, DEEP, js
    yield "deep-object", real, b'{"a":' * 50_000 + b"1" + b"}" * 50_000, js
    yield "nul-values", real, json.dumps({k: NUL for k in props}).encode(), js
    yield "nul-key", real, json.dumps({NUL: "x"}).encode(), js
    yield "nul-nested", real, json.dumps({k: [{"x": NUL}] for k in props}).encode(), js
    for label, wrong in (("type-int", 123), ("type-str", "x"), ("type-obj", {"a": 1}), ("type-list", [1, [2]]),
                         ("type-bool", True), ("type-float", 1e308)):
        yield label, real, json.dumps({k: wrong for k in props}).encode(), js
    yield "not-object", real, b'"just a string"', js
    yield "bad-utf8", real, b'{"name": "\xff\xfe"}', js
    yield "gzip-plain", real, PLAIN, {**js, "Content-Encoding": "gzip"}
    yield "deflate-plain", real, PLAIN, {**js, "Content-Encoding": "deflate"}
    yield "gzip-truncated", real, gzip.compress(PLAIN * 100)[:40], {**js, "Content-Encoding": "gzip"}
    yield "gzip-deep", real, gzip.compress(DEEP), {**js, "Content-Encoding": "gzip"}


def _setup(client: Client, base: str) -> tuple[str, dict[str, str]]:
    token = _admin_token(base)
    status, _ = client.json("POST", "/api/v1/projects", {"name": "demo", "visibility": "public",
                                                         "default_branch": "main", "description": "fuzzed"}, token)
    assert status == 201
    status, issue = client.json("POST", "/api/v1/projects/root/demo/issues", {"title": "first", "body": "x"}, token)
    assert status == 201, issue
    status, rule = client.json("POST", "/api/v1/alert-rules", {"name": "r", "query": "logs: level=error",
                                                               "condition": "gt", "threshold": 1}, token)
    assert status == 201, rule
    known = {"owner": "root", "name": "demo", "number": str(issue["number"]), "rule_id": rule["id"],
             "user": "root", "secret": "S1", "key": "k1", "oid": "0" * 64, "id": rule["id"]}
    return token, known


def _check_targeted(client: Client, token: str) -> None:
    """The findings of the black-box attack, one by one, with the field each answer must name."""
    auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    anon = {"Content-Type": "application/json"}
    cases: list[tuple[str, str, bytes | None, dict[str, str], str]] = [
        ("GET", "/api/v1/nothing%00x", None, anon, "path"),
        ("GET", "/api/v1/users?cursor=" + _forged({"name": 123}), None, auth, "cursor"),
        ("GET", "/api/v1/observe/logs?cursor=" + _forged({"t": "2026-01-01T00:00:00+00:00", "i": int("9" * 400)}),
         None, auth, "cursor"),
        ("GET", "/api/v1/observe/logs?service=a%00b", None, auth, "service"),
        ("POST", "/api/v1/auth/login", DEEP, anon, "body"),
        ("POST", "/api/v1/auth/login", json.dumps({"name": NUL, "password": "x"}).encode(), anon, "name"),
        ("POST", "/api/v1/auth/login", PLAIN, {**anon, "Content-Encoding": "gzip"}, "Content-Encoding"),
        ("POST", "/api/v1/projects/root/demo/issues", PLAIN, {**auth, "Content-Encoding": "deflate"},
         "Content-Encoding"),
        ("POST", "/api/v1/tokens", json.dumps({"name": NUL, "scopes": ["project:read"]}).encode(), auth, "name"),
        ("PATCH", "/api/v1/projects/root/demo", json.dumps({"description": NUL}).encode(), auth, "description"),
        ("POST", "/api/v1/alert-rules", json.dumps({"name": "n", "query": "logs:", "condition": "gt",
                                                   "threshold": 1, "notify_channels": 123}).encode(), auth,
         "notify_channels"),
        ("POST", "/api/v1/alert-rules", json.dumps({"name": "n", "query": "logs:", "condition": "gt",
                                                   "threshold": "x"}).encode(), auth, "threshold"),
        ("POST", "/api/v1/alert-rules", json.dumps({"name": "n", "query": "logs:", "condition": "gt",
                                                   "threshold": 1, "enabled": "x"}).encode(), auth, "enabled"),
        ("POST", "/api/v1/alert-rules", json.dumps({"name": "n", "query": "logs:", "condition": "gt",
                                                   "threshold": 1, "extra": 1}).encode(), auth, "extra"),
    ]
    for method, target, body, headers, field in cases:
        status, ctype, data = client.send(method, target, body, headers)
        assert 400 <= status < 500, (method, target, status, data[:300])
        assert _problem_field(ctype, data) == field, (method, target, data[:300])
    # a PATCH of an alert rule is typed too: {"name": {"a": 1}} was stored as the text "{'a': 1}"
    status, ctype, data = client.send("GET", "/api/v1/alert-rules", None, auth)
    rule_id = json.loads(data)["items"][0]["id"]
    for bad, field in (({"name": {"a": 1}}, "name"), ({"for_seconds": "60"}, "for_seconds"),
                       ({"name": None}, "name"), ({"severity": "loud"}, "severity")):
        status, ctype, data = client.send("PATCH", f"/api/v1/alert-rules/{rule_id}", json.dumps(bad).encode(), auth)
        assert status == 400 and _problem_field(ctype, data) == field, (bad, data[:300])
    status, ctype, data = client.send("GET", f"/api/v1/alert-rules/{rule_id}", None, auth)
    assert json.loads(data)["name"] == "r"
    # the OTLP receiver answers in its own format (google.rpc.Status), 400 all the same
    for body, headers in ((DEEP, {"Content-Type": "application/json"}),
                          (PLAIN, {"Content-Type": "application/json", "Content-Encoding": "gzip"})):
        status, _, data = client.send("POST", "/v1/logs", body, {**headers, "Authorization": f"Bearer {token}"})
        assert status == 400, data[:300]


def test_bad_input_on_every_route_is_a_4xx_naming_the_problem(server: CorralProcess) -> None:
    client = Client(server.base_url)
    token, known = _setup(client, server.base_url)
    _check_targeted(client, token)
    status, _, data = client.send("GET", "/api/v1/openapi.json")
    doc = json.loads(data)
    failures: list[str] = []
    sent = 0
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            if path.endswith("/observe/tail"):
                continue  # a WebSocket: its bad input is covered by its own tests
            for label, target, body, headers in _bad_inputs(doc, path, method, op, known):
                for who in ("anonymous", "authenticated"):
                    hdrs = dict(headers)
                    if who == "authenticated":
                        hdrs["Authorization"] = f"Bearer {token}"
                    sent += 1
                    try:
                        status, ctype, data = client.send(method.upper(), target, body, hdrs)
                    except http.client.HTTPException as exc:
                        failures.append(f"broken response: {who} {method.upper()} {path} [{label}]: {exc!r}")
                        continue
                    where = f"{who} {method.upper()} {path} [{label}] -> {status}: {data[:200]!r}"
                    if status >= 500:
                        failures.append(where)
                    elif status >= 400 and method != "head" and not _own_format(path):
                        try:
                            _problem_field(ctype, data)
                        except (AssertionError, ValueError, KeyError):
                            failures.append("not problem+json: " + where)
    assert sent > 1000
    assert not failures, f"{len(failures)} of {sent} requests failed:\n" + "\n".join(failures[:60])
    # Corral's own record of all this (request paths with NUL included) was stored, every batch of it
    time.sleep(2.5)  # self-telemetry flushes every second
    log = server.log_text()
    assert "telemetry batch of" not in log, log[-3000:]
    status, ctype, data = client.send("GET", "/api/v1/observe/logs?q=nothing&limit=5",
                                      None, {"Authorization": f"Bearer {token}"})
    assert status == 200, data[:300]
    assert any("/api/v1/nothing\ufffdx" in item["message"] for item in json.loads(data)["items"]), data[:1000]
