"""Authenticated GET /api/v1/me (bearer token, permissions cached) vs the same app answering one asyncpg SELECT 1.

Run: ./dev bench bench_auth [--duration 10] [--connections 64]

Both routes are served by one Corral app built by the production bootstrap (PostgreSQL + Valkey, real
argon2, the Valkey authz cache with its in-process LRU), driven by the same load generator in a separate
process: wrk when installed (./dev bench installs it from apt), otherwise an aiohttp client process.
Prints requests/s of both and their ratio (goal >= 0.8), then the permission-check p99 with a warm cache
(goal < 1 ms), measured in-process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from aiohttp import web

from corral.core.identity.commands import NewToken, NewUser
from corral.core.identity.kit import IdentityServices
from corral.core.identity.model import AuthMethod
from corral.core.identity.service import SYSTEM
from corral.entrypoints.bootstrap import start_platform
from corral.entrypoints.config import Settings
from corral.entrypoints.web.app import create_app
from corral.entrypoints.web.routing import RouteTable
from tests.servicekit import PostgresServer, ValkeyServer

baseline = RouteTable(tag="bench")


@baseline.get("/bench/select1", summary="baseline: one asyncpg SELECT 1", public=True, include_in_schema=False)
async def select1(request: web.Request) -> web.StreamResponse:
    pool = request.app["bench_pool"]
    value = await pool.fetchval("SELECT 1")
    return web.json_response({"value": value})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- load generators (separate processes) ------------------------------------------------------------------
def run_wrk(url: str, token: str | None, duration: int, connections: int) -> float:
    cmd = ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency"]
    if token:
        cmd += ["-H", f"Authorization: Bearer {token}"]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        raise SystemExit(f"{url}: {non2xx.group(1)} non-2xx responses")
    assert m, out
    return float(m.group(1))


CLIENT = r"""
import asyncio, sys, time, aiohttp
url, token, duration, conns = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
async def main():
    headers = {"Authorization": f"Bearer {token}"} if token != "-" else {}
    done = 0
    bad = 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=conns)) as s:
        end = time.perf_counter() + duration
        async def worker():
            nonlocal done, bad
            while time.perf_counter() < end:
                async with s.get(url, headers=headers) as r:
                    await r.read()
                    done += 1
                    bad += r.status != 200
        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(conns)))
        print(done / (time.perf_counter() - start), bad)
asyncio.run(main())
"""


def run_client(url: str, token: str | None, duration: int, connections: int) -> float:
    out = subprocess.run([sys.executable, "-c", CLIENT, url, token or "-", str(duration), str(connections)],
                         capture_output=True, text=True, check=True).stdout.split()
    if int(out[1]):
        raise SystemExit(f"{url}: {out[1]} non-200 responses")
    return float(out[0])


# --- the bench ---------------------------------------------------------------------------------------------
async def bench(args: argparse.Namespace, dsn: str, valkey_url: str) -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="corral-bench-"))
    settings = Settings(database_url=dsn, valkey_url=valkey_url, data_dir=data_dir, log_level="error",
                        port=free_port())
    platform = await start_platform(settings)
    try:
        ids: IdentityServices = platform.resolve(IdentityServices)
        await ids.users.create(SYSTEM, NewUser(name="bench", email="bench@example.com", password="bench password 1",
                                               admin=True))
        issued = await ids.tokens.create(SYSTEM, NewToken(name="bench", scopes=["project:read", "observe:read"],
                                                          user="bench"))
        app = create_app(platform)
        baseline.mount(app)
        app["bench_pool"] = platform.pg_pool
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", settings.port)
        await site.start()
        base = f"http://127.0.0.1:{settings.port}"
        load = run_wrk if shutil.which("wrk") and not args.python_client else run_client
        loop = asyncio.get_running_loop()

        async def measure(path: str, token: str | None) -> float:
            await loop.run_in_executor(None, load, base + path, token, 2, args.connections)  # warm-up
            return await loop.run_in_executor(None, load, base + path, token, args.duration, args.connections)

        me_rps, sel_rps = [], []
        for _ in range(args.rounds):  # interleaved so drift hits both alike
            sel_rps.append(await measure("/bench/select1", None))
            me_rps.append(await measure("/api/v1/me", issued.secret))
        me, sel = statistics.median(me_rps), statistics.median(sel_rps)
        # each round measures both back to back: its ratio is robust to the machine's load drifting
        ratios = [m / b for m, b in zip(me_rps, sel_rps, strict=True)]

        # permission check with a warm cache, in-process: authenticate the token + authorize one permission
        principal = await ids.tokens.authenticate(issued.secret, method=AuthMethod.TOKEN)
        await ids.authorizer.authorize(principal, "project:read", None)
        samples_check, samples_full = [], []
        for _ in range(20_000):
            t0 = time.perf_counter()
            await ids.authorizer.authorize(principal, "project:read", None)
            t1 = time.perf_counter()
            p = await ids.tokens.authenticate(issued.secret, method=AuthMethod.TOKEN)
            await ids.authorizer.authorize(p, "project:read", None)
            t2 = time.perf_counter()
            samples_check.append(t1 - t0)
            samples_full.append(t2 - t1)

        def p99(xs: list[float]) -> float:
            return sorted(xs)[int(len(xs) * 0.99)] * 1000

        result = {
            "load_generator": "wrk" if load is run_wrk else "aiohttp client process",
            "connections": args.connections, "duration_s": args.duration, "rounds": args.rounds,
            "me_bearer_rps": round(me, 1), "baseline_select1_rps": round(sel, 1),
            "ratio": round(statistics.median(ratios), 3), "round_ratios": [round(r, 3) for r in ratios],
            "goal_ratio": 0.8,
            "permission_check_p99_ms": round(p99(samples_check), 4),
            "authenticate_plus_check_p99_ms": round(p99(samples_full), 4), "goal_p99_ms": 1.0,
        }
        print(f"GET /api/v1/me (bearer, cached):    {me:9.1f} req/s   (rounds: {[round(x) for x in me_rps]})")
        print(f"baseline GET with one SELECT 1:     {sel:9.1f} req/s   (rounds: {[round(x) for x in sel_rps]})")
        print(f"ratio me/baseline (median round):   {statistics.median(ratios):9.3f}     (goal >= 0.8; "
              f"rounds: {[round(r, 2) for r in ratios]})")
        print(f"permission check p99, warm cache:   {p99(samples_check):9.4f} ms  (goal < 1 ms)")
        print(f"token auth + check p99, warm cache: {p99(samples_full):9.4f} ms")
        print(json.dumps(result))
        await runner.cleanup()
    finally:
        await platform.aclose()
        shutil.rmtree(data_dir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--python-client", action="store_true", help="use the aiohttp client even if wrk exists")
    args = parser.parse_args()
    pg = valkey = None
    try:
        pg = PostgresServer.start()
        valkey = ValkeyServer.start()
        os.environ.pop("CORRAL_DATABASE_URL", None)
        asyncio.run(bench(args, pg.dsn(), valkey.url()))
    finally:
        if valkey is not None:
            valkey.stop()
        if pg is not None:
            pg.stop()


if __name__ == "__main__":
    main()
