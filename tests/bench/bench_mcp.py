"""MCP ``tools/call`` of a read tool vs the same HTTP GET, against a real ``corral serve`` (memory profile).

Run: ./dev bench bench_mcp [--requests 2000] [--profile memory|embedded|both]

One client, sequential requests on a keep-alive connection: GET /api/v1/projects/root/app/issues/1 and
``tools/call get_issue`` (the same route run through the app's middleware chain in-process), interleaved in
rounds so both see the same machine state. Prints p50/p95 of each and their ratio (goal: tools/call p50 <= 1.2x
the GET's).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import aiohttp

from tests.e2e.corral_process import CorralProcess

ADMIN = ("root", "bench-password-123456")


async def setup(session: aiohttp.ClientSession, base: str) -> str:
    async with session.post(f"{base}/api/v1/auth/login", json={"name": ADMIN[0], "password": ADMIN[1]}) as r:
        csrf = (await r.json())["csrf_token"]
    async with session.get(f"{base}/api/v1/permissions") as r:
        scopes = [p["name"] for p in (await r.json())["items"]]
    async with session.post(f"{base}/api/v1/tokens", json={"name": "bench", "scopes": scopes},
                            headers={"X-CSRF-Token": csrf}) as r:
        token = (await r.json())["token"]
    auth = {"Authorization": f"Bearer {token}"}
    async with session.post(f"{base}/api/v1/projects", json={"name": "app"}, headers=auth) as r:
        assert r.status == 201, await r.text()
    async with session.post(f"{base}/api/v1/projects/root/app/issues", json={"title": "t", "body": "b"},
                            headers=auth) as r:
        assert r.status == 201, await r.text()
    return str(token)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(base: str, requests: int) -> None:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as login:
        token = await setup(login, base)
    auth = {"Authorization": f"Bearer {token}"}
    connector = aiohttp.TCPConnector(limit=1)
    async with aiohttp.ClientSession(connector=connector) as http:
        mcp_headers = {**auth, "Accept": "application/json, text/event-stream"}
        init = {"jsonrpc": "2.0", "id": 0, "method": "initialize",
                "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                           "clientInfo": {"name": "bench", "version": "1"}}}
        async with http.post(f"{base}/mcp", json=init, headers=mcp_headers) as r:
            mcp_headers["Mcp-Session-Id"] = r.headers["Mcp-Session-Id"]
            mcp_headers["MCP-Protocol-Version"] = "2025-11-25"
        call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                "params": {"name": "get_issue", "arguments": {"owner": "root", "name": "app", "number": 1}}}
        url = f"{base}/api/v1/projects/root/app/issues/1"

        async def get() -> float:  # decodes its answer as the tool call's client does (an agent reads both)
            started = time.perf_counter()
            async with http.get(url, headers=auth) as r:
                body = await r.json()
                assert r.status == 200 and body["number"] == 1, body
            return time.perf_counter() - started

        async def tool() -> float:
            started = time.perf_counter()
            async with http.post(f"{base}/mcp", json=call, headers=mcp_headers) as r:
                body = await r.json()
                assert not body["result"]["isError"] and body["result"]["structuredContent"]["number"] == 1, body
            return time.perf_counter() - started

        for _ in range(100):  # warm up both paths (caches, JIT-free but allocator and connection warm)
            await get()
            await tool()
        gets: list[float] = []
        tools: list[float] = []
        for _ in range(requests // 50):
            gets += [await get() for _ in range(50)]
            tools += [await tool() for _ in range(50)]
    g50, g95 = pct(gets, 0.5) * 1000, pct(gets, 0.95) * 1000
    t50, t95 = pct(tools, 0.5) * 1000, pct(tools, 0.95) * 1000
    print(f"HTTP GET            p50 {g50:.2f} ms  p95 {g95:.2f} ms  (mean {statistics.mean(gets) * 1000:.2f} ms)")
    print(f"MCP tools/call      p50 {t50:.2f} ms  p95 {t95:.2f} ms  (mean {statistics.mean(tools) * 1000:.2f} ms)")
    print(f"ratio tools/call / GET: p50 {t50 / g50:.2f}x  p95 {t95 / g95:.2f}x  (goal <= 1.2x)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--profile", choices=("memory", "embedded", "both"), default="both",
                        help="memory: in-memory stores (the least work per request, so the largest ratio); "
                             "embedded: the default product (embedded PostgreSQL and Valkey)")
    args = parser.parse_args()
    for profile in ("memory", "embedded") if args.profile == "both" else (args.profile,):
        print(f"-- profile {profile}")
        env = {"CORRAL_LOG_LEVEL": "warning", "CORRAL_VALIDATE_RESPONSES": "false",
               "CORRAL_BOOTSTRAP_ADMIN_NAME": ADMIN[0], "CORRAL_BOOTSTRAP_ADMIN_PASSWORD": ADMIN[1],
               "CORRAL_BOOTSTRAP_ADMIN_EMAIL": "root@example.com"}
        if profile == "memory":
            env["CORRAL_PROFILE"] = "memory"
        with tempfile.TemporaryDirectory() as tmp:
            server = CorralProcess.start(Path(tmp), env, timeout=180)
            try:
                asyncio.run(run(server.base_url, args.requests))
            finally:
                server.stop()


if __name__ == "__main__":
    main()
