"""A realistic telemetry dataset for the query benchmark (tests/bench/bench_query.py).

Agent sessions start at random times over ``days`` days, last 10-60 minutes and emit about 200
log records each (50-350), grouped in traces of 5-15 records; every trace has a root span and two
child spans. Sessions belong to one of ``projects`` projects and one of 200 users; records come
from several services, at realistic levels, with messages an agent platform writes (tool calls,
HTTP requests, model calls, git pushes) carrying request ids, and a few attributes.

Rows are produced hour by hour in time order (as ingest would write them), in the column orders of
``corral.core.observe.model`` (LOG_COLUMNS, SPAN_COLUMNS), ready for the store's COPY.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta

_EPOCH_MS = 1_577_836_800_000
SERVICES = ("agent-runner", "api", "git", "ci-runner", "deployer", "llm-gateway")
TOOLS = ("bash", "edit_file", "read_file", "grep", "run_tests", "git_commit", "web_fetch")
PATHS = ("/api/v1/projects", "/api/v1/pipelines", "/api/v1/issues", "/api/v1/observe/logs", "/git/info/refs")
LEVELS = ("info",) * 12 + ("debug",) * 5 + ("warn",) * 2 + ("error",)
WORDS = ("build", "deploy", "cache", "compile", "lint", "format", "refactor", "migrate", "fixture", "retry")


def _msg(rnd: random.Random, req: str) -> tuple[str, str]:
    """(message, attributes JSON)."""
    k = rnd.randrange(6)
    ms = rnd.randrange(1, 5000)
    if k == 0:
        tool = rnd.choice(TOOLS)
        cmd = " ".join(rnd.choice(WORDS) for _ in range(3))
        return f"tool {tool} started: {cmd} req={req}", f'{{"tool_name": "{tool}", "step": {rnd.randrange(90)}}}'
    if k == 1:
        tool = rnd.choice(TOOLS)
        code = rnd.choice((0, 0, 0, 1, 2))
        return (
            f"tool {tool} finished exit={code} in {ms} ms req={req}",
            f'{{"tool_name": "{tool}", "exit_code": {code}, "duration_ms": {ms}}}',
        )
    if k == 2:
        method = rnd.choice(("GET", "GET", "POST", "PATCH"))
        status = rnd.choice((200, 200, 200, 201, 404, 409, 500))
        path = rnd.choice(PATHS)
        return (
            f"{method} {path} {status} {ms}ms req={req}",
            f'{{"http.method": "{method}", "http.status_code": {status}, "http.route": "{path}"}}',
        )
    if k == 3:
        tokens = rnd.randrange(50, 8000)
        return (
            f"model response tokens={tokens} stop={rnd.choice(('end_turn', 'tool_use', 'max_tokens'))} req={req}",
            f'{{"gen_ai.usage.output_tokens": {tokens}, "gen_ai.request.model": "m-{rnd.randrange(4)}"}}',
        )
    if k == 4:
        a, b = rnd.getrandbits(28), rnd.getrandbits(28)
        return f"git push refs/heads/agent/{rnd.choice(WORDS)} {a:07x}..{b:07x} req={req}", '{"git.ref": "push"}'
    word = rnd.choice(WORDS)
    return f"cache miss {word} key={rnd.getrandbits(40):010x} req={req}", f'{{"cache": "{word}"}}'


def _hex(rnd: random.Random, bits: int) -> str:
    return f"{rnd.getrandbits(bits):0{bits // 4}x}"


def generate(
    n_logs: int, days: float, projects: list[uuid.UUID], end: datetime, seed: int = 7
) -> Iterator[tuple[list[tuple], list[tuple]]]:
    """(log rows, span rows) per hour, oldest hour first, about ``n_logs`` log rows in all."""
    rnd = random.Random(seed)
    users = [uuid.UUID(int=rnd.getrandbits(128)) for _ in range(200)]
    start = end - timedelta(days=days)
    span_s = days * 86400 - 3600  # sessions end before ``end``
    n_sessions = max(1, n_logs // 200)
    starts = sorted(rnd.random() * span_s for _ in range(n_sessions))
    seq = 0
    buckets: dict[int, tuple[list[tuple], list[tuple]]] = {}
    flushed = 0

    def rid(ts_ms: int) -> int:
        nonlocal seq
        seq += 1
        return ((ts_ms - _EPOCH_MS) << 22) | (seq & 0x3FFFFF)

    for s0 in starts:
        hour = int(s0 // 3600)
        while flushed < hour:  # later sessions start at or after ``hour``: earlier hours are complete
            logs, spans = buckets.pop(flushed, ([], []))
            logs.sort(key=lambda r: r[1])
            spans.sort(key=lambda r: r[1])
            yield logs, spans
            flushed += 1
        project = projects[rnd.randrange(len(projects))]
        user = users[rnd.randrange(len(users))]
        session = str(uuid.UUID(int=rnd.getrandbits(128)))
        n = rnd.randrange(50, 351)
        duration = rnd.uniform(600, 3600)
        t0 = start + timedelta(seconds=s0)
        step = duration / n
        i = 0
        while i < n:
            size = min(n - i, rnd.randrange(5, 16))
            trace = _hex(rnd, 128)
            root, child1, child2 = _hex(rnd, 64), _hex(rnd, 64), _hex(rnd, 64)
            service = rnd.choice(SERVICES)
            first = t0 + timedelta(seconds=i * step)
            last = t0 + timedelta(seconds=(i + size - 1) * step + rnd.random() * step)
            total_ms = max((last - first).total_seconds() * 1000, 1.0)
            for j in range(size):
                ts = first + timedelta(seconds=j * step + rnd.random() * step * 0.9)
                ms = int(ts.timestamp() * 1000)
                message, attrs = _msg(rnd, _hex(rnd, 48))
                h = int((ts - start).total_seconds() // 3600)
                buckets.setdefault(h, ([], []))[0].append(
                    (
                        rid(ms),
                        ts,
                        trace,
                        (root, child1, child2)[j % 3],
                        project,
                        session,
                        user,
                        service,
                        LEVELS[rnd.randrange(len(LEVELS))],
                        message,
                        attrs,
                    )
                )
            half = total_ms / 2
            for span_id, parent, s_ts, dur, name in (
                (root, None, first, total_ms, f"agent.step {rnd.choice(TOOLS)}"),
                (child1, root, first, half, f"tool.{rnd.choice(TOOLS)}"),
                (child2, root, first + timedelta(milliseconds=half), half, f"http {rnd.choice(PATHS)}"),
            ):
                h = int((s_ts - start).total_seconds() // 3600)
                buckets.setdefault(h, ([], []))[1].append(
                    (
                        rid(int(s_ts.timestamp() * 1000)),
                        s_ts,
                        trace,
                        span_id,
                        parent,
                        project,
                        session,
                        user,
                        service,
                        name,
                        "server" if parent is None else "internal",
                        "error" if rnd.random() < 0.02 else "ok",
                        dur,
                        f'{{"session.step": {i}, "agent.model": "m-{rnd.randrange(4)}"}}',
                        "[]",
                    )
                )
            i += size
    for h in sorted(buckets):
        logs, spans = buckets[h]
        logs.sort(key=lambda r: r[1])
        spans.sort(key=lambda r: r[1])
        yield logs, spans
