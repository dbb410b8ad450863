"""Server time of the web UI's heaviest pages beside the JSON API call that fetches the same data (issue #18).

Run: ./dev bench bench_ui [--rounds 20] [--per-round 5] [--logs 100000] [--spans 2000] [--diff-lines 5000]
     [--database-url postgresql://...]

A real ``corral serve`` (tests/e2e/corral_process.py) on PostgreSQL: the embedded default (or an external one
with ``--database-url``), seeded through its own front doors:

- git: a project whose branch ``big`` holds one commit changing 20 files, ~``--diff-lines`` lines of unified diff
  (hunks with context, additions and deletions), and a merge request from ``big`` to ``main``;
- OTLP/HTTP JSON: one trace of ``--spans`` spans (a tree four levels deep, a few errors) and ``--logs`` log records
  from six services at realistic levels, some with attributes and trace ids.

Pages and their baselines (one client, keep-alive connection, the full body read; a page and its API call alternate
``--per-round`` requests each per round so both see the same machine state):

- commit with its diff  ``/ui/{o}/{n}/commit/{sha}``  vs  ``/api/v1/projects/{o}/{n}/repo/commits/{sha}``
- merge request (files changed)  ``/ui/{o}/{n}/merge-requests/1``  vs  ``…/merge-requests/1/diff``
- trace waterfall  ``/ui/observe/traces/{id}``  vs  ``/api/v1/observe/traces/{id}`` (every span's bar, the details
  of the first 500), and the same page with ``?spans=all`` (every span's details)
- log search, a filter, first page  ``/ui/observe/logs?service=api&level=error``  vs  ``/api/v1/observe/logs?…``

Prints p50/p95 of each page and its API call, the ratio, and whether the page meets the goal (p95 < 200 ms).
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.e2e.corral_process import AdminApi, CorralProcess, admin_env

ADMIN = ("root", "bench-password-123456")
GOAL_MS = 200.0
SERVICES = ("api", "agent-runner", "git", "ci-runner", "deployer", "llm-gateway")
LEVELS = ((9, "INFO"),) * 12 + ((5, "DEBUG"),) * 5 + ((13, "WARN"),) * 2 + ((17, "ERROR"),)
WORDS = ("build", "deploy", "cache", "compile", "lint", "format", "refactor", "migrate", "fixture", "retry")


class Client:
    """One keep-alive HTTP connection with the admin's token."""

    def __init__(self, base: str, token: str) -> None:
        url = urllib.parse.urlsplit(base)
        self.conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=300)
        self.headers = {"Authorization": f"Bearer {token}"}

    def request(self, method: str, path: str, body: bytes | None = None,
                content_type: str = "application/json") -> tuple[float, int, bytes]:
        headers = dict(self.headers)
        if body is not None:
            headers["Content-Type"] = content_type
        started = time.perf_counter()
        self.conn.request(method, path, body=body, headers=headers)
        r = self.conn.getresponse()
        data = r.read()
        return (time.perf_counter() - started) * 1000, r.status, data

    def get(self, path: str) -> tuple[float, bytes]:
        ms, status, data = self.request("GET", path)
        if status != 200:
            raise RuntimeError(f"GET {path}: {status} {data[:500]!r}")
        return ms, data

    def json(self, method: str, path: str, body: object = None) -> Any:
        _, status, data = self.request(method, path, None if body is None else json.dumps(body).encode())
        if status >= 300:
            raise RuntimeError(f"{method} {path}: {status} {data[:500]!r}")
        return json.loads(data) if data else None


# ---------------------------------------------------------------------------------------- seeding
def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=Bench", "-c", "user.email=bench@example.com", *args], cwd=cwd,
                          check=True, capture_output=True, text=True, timeout=300).stdout


def _source(rnd: random.Random, n: int, tag: str) -> list[str]:
    out = []
    for i in range(n):
        word = rnd.choice(WORDS)
        if i % 25 == 0:
            out.append(f"def {word}_{tag}_{i}(items: list[str], limit: int = {i}) -> dict[str, int]:")
        else:
            out.append(f"    total_{i} = sum(len(x) for x in items if x.startswith({word!r}))  # {tag} {i}")
    return out


def seed_git(api: Client, base: str, token: str, tmp: Path, diff_lines: int) -> str:
    """A project ``root/app``: ``main`` with 20 source files, ``big`` changing a third of their lines; MR !1."""
    api.json("POST", "/api/v1/projects", {"name": "app"})
    rnd = random.Random(5)
    work = tmp / "work"
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    files = 20
    # 2 changed lines in every 8 (each shown twice, - and +) with the 6 between as context: 10 diff lines per 8
    per_file = max(16, diff_lines // files * 8 // 10)
    (work / "src").mkdir()
    originals = {}
    for f in range(files):
        lines = _source(rnd, per_file, f"v1f{f}")
        originals[f] = lines
        (work / "src" / f"module_{f:02d}.py").write_text("\n".join(lines) + "\n")
    git(work, "add", "-A")
    git(work, "commit", "-qm", "twenty modules")
    git(work, "checkout", "-qb", "big")
    for f, lines in originals.items():
        changed = list(lines)
        for i in range(0, len(changed), 8):  # a run of 2 changed lines every 8: hunks with context between
            for j in (i, i + 1):
                if j < len(changed):
                    changed[j] = changed[j].replace("v1", "v2").replace("sum(", "max(")
        (work / "src" / f"module_{f:02d}.py").write_text("\n".join(changed) + "\n")
    git(work, "commit", "-qam", "rework every module")
    sha = git(work, "rev-parse", "HEAD").strip()
    remote = base.replace("http://", f"http://{ADMIN[0]}:{token}@") + f"/{ADMIN[0]}/app.git"
    git(work, "push", "-q", remote, "main", "big")
    api.json("POST", f"/api/v1/projects/{ADMIN[0]}/app/merge-requests",
             {"title": "Rework every module", "source_branch": "big", "target_branch": "main",
              "body": "Touches all twenty modules."})
    return sha


def _attr(key: str, value: object) -> dict[str, Any]:
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    return {"key": key, "value": {"stringValue": str(value)}}


def seed_trace(api: Client, n: int) -> str:
    """One trace of ``n`` spans: a root, 20 requests under it, each with steps and their calls (depth 4)."""
    rnd = random.Random(9)
    trace_id = uuid.uuid4().hex
    start = time.time_ns() - 60_000_000_000
    spans: list[dict[str, Any]] = []

    def add(parent: str | None, name: str, service: str, t0: int, dur: int) -> str:
        span_id = f"{len(spans) + 1:016x}"
        attributes = [_attr("http.route", rnd.choice(("/api/v1/projects", "/api/v1/pipelines"))),
                      _attr("step", len(spans)), _attr("tool_name", rnd.choice(WORDS))]
        spans.append({"traceId": trace_id, "spanId": span_id, **({"parentSpanId": parent} if parent else {}),
                      "name": name, "kind": 2 if parent is None else 3,
                      "startTimeUnixNano": str(t0), "endTimeUnixNano": str(t0 + dur),
                      "status": {"code": 2 if rnd.random() < 0.02 else 1}, "attributes": attributes})
        return span_id

    root = add(None, "agent session turn", "agent-runner", start, 50_000_000_000)
    t = start
    while len(spans) < n:
        req = add(root, f"POST /api/v1/tools/{rnd.choice(WORDS)}", "api", t, 2_000_000_000)
        s = t
        for _ in range(8):
            if len(spans) >= n:
                break
            step = add(req, f"tool {rnd.choice(WORDS)}", "agent-runner", s, 200_000_000)
            for k in range(rnd.randrange(1, 4)):
                if len(spans) >= n:
                    break
                add(step, f"SELECT {rnd.choice(WORDS)} #{k}", "api", s + k * 50_000_000, 40_000_000)
            s += 220_000_000
        t += 2_400_000_000
    for i in range(0, len(spans), 1000):
        resource = {"attributes": [_attr("service.name", "agent-runner")]}
        body = {"resourceSpans": [{"resource": resource, "scopeSpans": [{"spans": spans[i : i + 1000]}]}]}
        api.json("POST", "/v1/traces", body)
    return trace_id


def seed_logs(api: Client, n: int, trace_id: str) -> int:
    """``n`` log records over the last hour from six services; returns how many match service=api level=error."""
    rnd = random.Random(13)
    now = time.time_ns()
    matching = 0
    batch = 5000
    for i in range(0, n, batch):
        by_service: dict[str, list[dict[str, Any]]] = {s: [] for s in SERVICES}
        for j in range(i, min(n, i + batch)):
            service = rnd.choice(SERVICES)
            number, text = rnd.choice(LEVELS)
            matching += service == "api" and text == "ERROR"
            req = f"{rnd.getrandbits(48):012x}"
            record: dict[str, Any] = {
                "timeUnixNano": str(now - (n - j) * 36_000_000), "severityNumber": number, "severityText": text,
                "body": {"stringValue": f"tool {rnd.choice(WORDS)} finished exit={rnd.choice((0, 0, 1))} in "
                                        f"{rnd.randrange(1, 5000)} ms req={req}"},
            }
            if j % 3 == 0:
                record["attributes"] = [_attr("http.status_code", rnd.choice((200, 201, 404, 500))),
                                        _attr("tool_name", rnd.choice(WORDS))]
            if j % 50 == 0:
                record["traceId"] = trace_id
            by_service[service].append(record)
        body = {"resourceLogs": [{"resource": {"attributes": [_attr("service.name", s)]},
                                  "scopeLogs": [{"logRecords": records}]} for s, records in by_service.items()]}
        api.json("POST", "/v1/logs", body)
    return matching


# ---------------------------------------------------------------------------------------- measuring
def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure(client: Client, name: str, page: str, baseline: str, rounds: int, per_round: int,
            check: Callable[[bytes], bool]) -> tuple[str, list[float], list[float], int]:
    _, first = client.get(page)
    assert check(first), f"{page} does not show what it should"
    client.get(baseline)
    ui: list[float] = []
    api: list[float] = []
    size = len(first)
    for _ in range(rounds):
        ui += [client.get(page)[0] for _ in range(per_round)]
        api += [client.get(baseline)[0] for _ in range(per_round)]
    u50, u95, a50, a95 = statistics.median(ui), pct(ui, 0.95), statistics.median(api), pct(api, 0.95)
    verdict = "ok" if u95 < GOAL_MS else "MISSED"
    print(f"{name:40s} page p50 {u50:7.1f} ms  p95 {u95:7.1f} ms (goal < {GOAL_MS:.0f} ms: {verdict:6s}) | "
          f"API p50 {a50:6.1f} ms  p95 {a95:6.1f} ms | page/API p50 {u50 / a50:4.1f}x p95 {u95 / a95:4.1f}x | "
          f"HTML {size / 1024:,.0f} KiB", flush=True)
    return name, ui, api, size


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--per-round", type=int, default=5)
    ap.add_argument("--logs", type=int, default=100_000)
    ap.add_argument("--spans", type=int, default=2000)
    ap.add_argument("--diff-lines", type=int, default=5000)
    ap.add_argument("--database-url", default=None, help="an external PostgreSQL (default: the embedded one)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="corral-bench-ui-") as tmp_name:
        tmp = Path(tmp_name)
        data = tmp / "data"
        data.mkdir()
        env = {**admin_env(ADMIN), "CORRAL_LOG_LEVEL": "warning", "CORRAL_VALIDATE_RESPONSES": "false",
               "CORRAL_DEPLOY_CLUSTER": "none"}
        if args.database_url:
            env["CORRAL_DATABASE_URL"] = args.database_url
        t0 = time.perf_counter()
        server = CorralProcess.start(data, env, timeout=180)
        try:
            admin = AdminApi(server.base_url, ADMIN)
            admin.login()
            token = admin.token(name="bench")
            client = Client(server.base_url, token)
            print(f"server ready on {'an external' if args.database_url else 'the embedded'} PostgreSQL in "
                  f"{time.perf_counter() - t0:.1f} s; seeding ...", flush=True)
            t0 = time.perf_counter()
            sha = seed_git(client, server.base_url, token, tmp, args.diff_lines)
            trace_id = seed_trace(client, args.spans)
            matching = seed_logs(client, args.logs, trace_id)
            o = f"{ADMIN[0]}/app"
            commit = client.json("GET", f"/api/v1/projects/{o}/repo/commits/{sha}")
            diff_lines = sum(1 for line in commit["patch"].splitlines()
                             if line[:1] in "+- @\\" and not line.startswith(("+++ ", "--- ")))
            deadline = time.monotonic() + 120
            while True:  # OTLP acknowledges queued records; wait until every one is searchable
                spans = len(client.json("GET", f"/api/v1/observe/traces/{trace_id}")["spans"])
                if spans >= args.spans or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            filt = "service=api&level=error"
            print(f"seeded in {time.perf_counter() - t0:.1f} s: a commit of {len(commit['files'])} files and "
                  f"{diff_lines:,} diff lines (patch {len(commit['patch']) / 1024:,.0f} KiB, truncated: "
                  f"{commit['patch_truncated']}), a trace of {spans:,} spans, {args.logs:,} log records "
                  f"({matching:,} match {filt})", flush=True)
            print(f"{args.rounds} rounds of {args.per_round} page + {args.per_round} API requests each, one "
                  "keep-alive connection, bearer token\n", flush=True)
            measure(client, "commit diff", f"/ui/{o}/commit/{sha}", f"/api/v1/projects/{o}/repo/commits/{sha}",
                    args.rounds, args.per_round, lambda b: b"module_19.py" in b)
            measure(client, "merge request, files changed", f"/ui/{o}/merge-requests/1",
                    f"/api/v1/projects/{o}/merge-requests/1/diff", args.rounds, args.per_round,
                    lambda b: b"module_19.py" in b)
            measure(client, "trace waterfall", f"/ui/observe/traces/{trace_id}", f"/api/v1/observe/traces/{trace_id}",
                    args.rounds, args.per_round, lambda b: b"agent session turn" in b)
            last = f'id="span-{spans - 1}"'.encode()
            measure(client, "trace waterfall, every span's details", f"/ui/observe/traces/{trace_id}?spans=all",
                    f"/api/v1/observe/traces/{trace_id}", args.rounds, args.per_round, lambda b: last in b)
            measure(client, f"logs {filt}, first page", f"/ui/observe/logs?{filt}", f"/api/v1/observe/logs?{filt}",
                    args.rounds, args.per_round, lambda b: b"log-table" in b)
        finally:
            code = server.stop(60)
            if code != 0:
                print(server.log_text()[-3000:], file=sys.stderr)


if __name__ == "__main__":
    main()
