"""Query latencies over a large telemetry dataset spread across the hot and cold tiers.

Run: ./dev bench bench_query [--records 10000000] [--days 10] [--projects 20] [--runs 60] [--dir D --keep]

1. Load: ``--records`` log records (plus ~0.3 spans per record) of agent sessions over ``--days``
   days (tests/bench/querydata.py) are written into PostgreSQL through the hot store's COPY path
   (``PostgresTelemetryStore.write``; fsync off: loading is setup, not the figure).
2. Rotation: the real app (tests/e2e/observe/harness.py: ``create_app`` with the real query
   routes, observe wiring, PostgreSQL, Valkey and the local-disk object store
   ``LocalFsObjectStore``) starts; its leader-only rotation loop moves everything older than the
   hot retention (48 h) into zstd Parquet files plus the trace/session lookup table, exactly as
   in production. Progress is printed from the manifest.
3. Queries: p50/p95 over ``--runs`` queries per kind on random existing ids, over HTTP against
   the app (keep-alive connection), checked against issue #5's goals (p95 < 100 ms; full text in
   one day < 1 s), each beside a baseline measured in the same run, interleaved
   query by query: the same question as raw SQL on one asyncpg connection (hot) or, for the cold
   tier, one SQL query on the manifest / lookup table for the files and raw DuckDB on one
   connection over them, without Corral's layers (HTTP, auth, both tiers asked and merged, JSON).

``--dir D --keep`` keeps the PostgreSQL cluster and the object store in D; a later run with the
same ``--dir`` reuses them (load and rotation skipped). Without ``--keep`` everything is deleted.

Figures (2-core machine, 10M logs + 3.07M spans, 20% hot; p50/p95 ms, baseline in brackets):
trace waterfall hot 1.8/3.2 (0.3/0.6), cold 7.0/8.9 (4.3/5.6); logs by trace id hot 2.1/2.9
(0.3/0.6), cold 13.1/17.8 (9.7/12.6); session timeline hot 13.1/20.7 (3.0/5.4), cold 31.7/52.1
(18.4/23.8); project + 1 h window hot 5.9/7.3 (1.0/1.5), cold 22.5/33.2 (12.0/17.2); full text in
one day hot 492/608 (plain ILIKE 1395/1863), cold 243/317 (270/343). Load 299 s, rotation 318 s.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import asyncpg
import duckdb

from corral.adapters.localfs import LocalFsObjectStore
from corral.adapters.postgres.migrator import apply_migrations
from corral.adapters.postgres.observe import PostgresTelemetryStore, create_telemetry_pool
from corral.core.observe.model import LOG_COLUMNS, SPAN_COLUMNS, TelemetryBatch
from tests.bench.bench_ingest import pct, start_server
from tests.bench.querydata import generate
from tests.e2e.observe.conftest import TOKEN
from tests.servicekit import ValkeyServer
from tests.servicekit.process import free_port, spawn, terminate, wait_until

PG_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "100",
    "shared_buffers": "1GB",
    "work_mem": "16MB",
    "max_wal_size": "4GB",
    "log_min_messages": "warning",
}
_REQ = re.compile(r"req=([0-9a-f]{12})")


# ---------------------------------------------------------------------------------------- PostgreSQL
def start_pg(base: Path) -> tuple[subprocess.Popen[bytes], str]:
    """A PostgreSQL 15 cluster in ``base/pg`` (made on first use, kept across runs)."""
    import pwd

    bindir = Path("/usr/lib/postgresql/15/bin")
    run_as = "postgres" if os.geteuid() == 0 else None
    pg = base / "pg"
    if not (pg / "data" / "PG_VERSION").exists():
        pg.mkdir(parents=True, exist_ok=True)
        if run_as:
            pw = pwd.getpwnam(run_as)
            for p in (base, pg):
                os.chown(p, pw.pw_uid, pw.pw_gid)
                p.chmod(0o755)
        subprocess.run(
            [str(bindir / "initdb"), "-D", str(pg / "data"), "-A", "trust", "-U", "postgres", "-E", "UTF8",
             "--locale=C.UTF-8", "--no-sync", "--no-instructions"],
            check=True, capture_output=True, user=run_as,
        )
    port = free_port()
    args = [str(bindir / "postgres"), "-D", str(pg / "data"), "-p", str(port), "-c", f"unix_socket_directories={pg}"]
    for k, v in PG_SETTINGS.items():
        args += ["-c", f"{k}={v}"]
    proc = spawn(args, log_path=pg / "log", user=run_as)

    def ready() -> bool:
        return subprocess.run([str(bindir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(port), "-t", "1"],
                              check=False).returncode == 0

    wait_until(ready, proc, what="PostgreSQL", log=pg / "log", timeout=120)
    return proc, f"postgresql://postgres@127.0.0.1:{port}"


# ---------------------------------------------------------------------------------------- load
async def load(dsn: str, n: int, days: float, projects: list[uuid.UUID], now: datetime) -> tuple[int, int, float]:
    conn = await asyncpg.connect(dsn)
    await apply_migrations(conn)
    await conn.execute("SELECT observe_ensure_partitions($1, $2)", (now - timedelta(days=days + 1)).date(),
                       (now + timedelta(days=3)).date())
    await conn.close()
    pool = await create_telemetry_pool(dsn, min_size=2, max_size=2)
    store = PostgresTelemetryStore(pool)
    logs_n = spans_n = 0
    t0 = last = time.perf_counter()
    pending: set[asyncio.Task[None]] = set()
    for logs, spans in generate(n, days, projects, now):
        for i in range(0, max(len(logs), len(spans)), 20_000):
            batch = TelemetryBatch(logs=logs[i : i + 20_000], spans=spans[i : i + 20_000])
            if len(pending) >= 2:
                _, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            pending.add(asyncio.create_task(store.write(batch)))
        logs_n += len(logs)
        spans_n += len(spans)
        await asyncio.sleep(0)
        if time.perf_counter() - last > 10:
            last = time.perf_counter()
            rate = (logs_n + spans_n) / (last - t0)
            eta = (n * 1.3 - logs_n - spans_n) / rate
            print(f"  load: {logs_n:,} logs + {spans_n:,} spans, {rate:,.0f} rows/s, ~{eta:.0f} s left", flush=True)
    await asyncio.gather(*pending)
    await pool.close()
    conn = await asyncpg.connect(dsn)
    await conn.execute("ANALYZE log_entries")
    await conn.execute("ANALYZE spans")
    await conn.close()
    return logs_n, spans_n, time.perf_counter() - t0


def post(base: str, path: str) -> int:
    req = urllib.request.Request(base + path, data=b"", method="POST", headers={"Authorization": f"Bearer {TOKEN}"})
    try:
        with urllib.request.urlopen(req, timeout=7200) as r:
            r.read()
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code


async def rotate(base: str, dsn: str) -> float:
    """Wait for the server's rotation loop (it starts as leader) to move everything past 48 h."""
    conn = await asyncpg.connect(dsn)
    t0 = time.perf_counter()
    loop = asyncio.get_running_loop()
    last = t0
    while True:
        done = loop.run_in_executor(None, post, base, "/api/v1/observe/rotate")
        while not done.done():
            await asyncio.wait([done], timeout=10)
            if time.perf_counter() - last >= 10:
                last = time.perf_counter()
                files, rows = await conn.fetchrow("SELECT count(*), coalesce(sum(rows), 0) FROM observe_cold_files")
                print(f"  rotation: {rows:,} rows in {files:,} Parquet files, {last - t0:.0f} s", flush=True)
        if done.result() != 409:  # 409: the server's own loop holds the leader lock
            break
        await asyncio.sleep(1)
    await conn.close()
    return time.perf_counter() - t0


# ---------------------------------------------------------------------------------------- measuring
class Api:
    def __init__(self, port: int) -> None:
        self.c = http.client.HTTPConnection("127.0.0.1", port, timeout=300)

    def get(self, path: str) -> tuple[float, Any]:
        t0 = time.perf_counter()
        self.c.request("GET", path, headers={"Authorization": f"Bearer {TOKEN}"})
        r = self.c.getresponse()
        body = r.read()
        ms = (time.perf_counter() - t0) * 1000
        if r.status != 200:
            raise RuntimeError(f"GET {path}: {r.status} {body[:300]!r}")
        return ms, json.loads(body)


def _z(ts: datetime) -> str:
    return urllib.parse.quote(ts.astimezone(UTC).isoformat().replace("+00:00", "Z"))


def _naive(ts: datetime) -> datetime:
    return ts.astimezone(UTC).replace(tzinfo=None)


LOG_COLS = ", ".join(LOG_COLUMNS)
SPAN_COLS = ", ".join(SPAN_COLUMNS)
BY_KEY = (  # the cold files holding a trace ('t') or session ('s') id, from the lookup table
    "SELECT f.key FROM observe_cold_files f JOIN observe_cold_keys k ON k.file_id = f.id "
    "WHERE k.value = $1 AND k.kind = $2 AND f.signal = $3"
)


class Bench:
    def __init__(self, api: Api, pg: asyncpg.Connection, objects: Path, runs: int) -> None:
        self.api, self.pg, self.objects, self.runs = api, pg, objects, runs
        self.store = LocalFsObjectStore(objects, signing_key=b"k" * 32, base_url="http://x")  # its key -> path map
        self.duck = duckdb.connect(":memory:", config={"threads": "2"})
        self.rnd = random.Random(11)
        self.results: list[tuple[str, list[float], list[float], float]] = []

    async def cold_files(self, sql: str, *args: Any) -> str:
        keys = [r[0] for r in await self.pg.fetch(sql, *args)]
        paths = ", ".join("'" + str(self.store._path(k)) + "'" for k in keys)
        return f"read_parquet([{paths}])" if keys else ""

    def duck_q(self, source: str, sql: str, args: list[Any]) -> list[Any]:
        if not source:
            return []
        return self.duck.execute(sql.replace("{files}", source), args).fetchall()

    async def measure(self, name: str, cases: list[tuple[str, Callable[[], Any]]], check: Callable[[Any], int]) -> None:
        """``cases``: (API path, async baseline) pairs; one warm-up, then alternate the two."""
        ours: list[float] = []
        base: list[float] = []
        found = 0
        self.api.get(cases[0][0])
        for path, baseline in cases:
            ms, body = self.api.get(path)
            ours.append(ms)
            found += check(body) > 0
            t0 = time.perf_counter()
            await baseline()
            base.append((time.perf_counter() - t0) * 1000)
        self.results.append((name, ours, base, found / len(cases)))
        goal = 1000 if name.startswith("full text") else 100  # issue #5: p95 goals
        verdict = "ok" if pct(ours, 0.95) < goal else "MISSED"
        print(f"{name:40s} p50 {statistics.median(ours):7.1f} ms  p95 {pct(ours, 0.95):7.1f} ms "
              f"(goal < {goal} ms: {verdict})  |  baseline p50 {statistics.median(base):7.1f} ms  "
              f"p95 {pct(base, 0.95):7.1f} ms   (found {found}/{len(cases)})", flush=True)


async def run_queries(b: Bench, now: datetime, hot_from: datetime, cold_until: datetime, start: datetime) -> None:
    pg, rnd, n = b.pg, b.rnd, b.runs

    # ---- trace ids: hot from the span table, cold from the lookup table
    hot_traces = [r[0].hex for r in await pg.fetch(
        "SELECT trace_id FROM spans TABLESAMPLE SYSTEM (1) WHERE ts >= $1 AND project_id IS NOT NULL LIMIT $2",
        hot_from + timedelta(hours=1), n * 5)]
    cold_traces = [r[0] for r in await pg.fetch(
        "SELECT value FROM observe_cold_keys TABLESAMPLE SYSTEM (1) WHERE kind = 't' LIMIT $1", n * 5)]
    rnd.shuffle(hot_traces)
    rnd.shuffle(cold_traces)

    def trace_cases(traces: list[str], cold: bool) -> list[tuple[str, Callable[[], Any]]]:
        out = []
        for t in traces[:n]:
            async def base(t: str = t) -> Any:
                if not cold:
                    return await pg.fetch(f"SELECT {SPAN_COLS} FROM spans WHERE trace_id = $1::uuid", t)
                src = await b.cold_files(BY_KEY, t, "t", "spans")
                return b.duck_q(src, f"SELECT {SPAN_COLS} FROM {{files}} WHERE trace_id = ?", [t])
            out.append((f"/api/v1/observe/traces/{t}", base))
        return out

    def logs_trace_cases(traces: list[str], cold: bool) -> list[tuple[str, Callable[[], Any]]]:
        out = []
        for t in traces[n : 2 * n]:
            async def base(t: str = t) -> Any:
                if not cold:
                    return await pg.fetch(f"SELECT {LOG_COLS} FROM log_entries WHERE trace_id = $1::uuid "
                                          "ORDER BY ts DESC, id DESC LIMIT 100", t)
                src = await b.cold_files(BY_KEY, t, "t", "logs")
                return b.duck_q(src, f"SELECT {LOG_COLS} FROM {{files}} WHERE trace_id = ? "
                                "ORDER BY ts DESC, id DESC LIMIT 100", [t])
            out.append((f"/api/v1/observe/logs?trace_id={t}", base))
        return out

    spans_of = lambda body: len(body["spans"])  # noqa: E731
    items_of = lambda body: len(body["items"])  # noqa: E731
    await b.measure("trace waterfall (hot)", trace_cases(hot_traces, False), spans_of)
    await b.measure("trace waterfall (cold)", trace_cases(cold_traces, True), spans_of)
    await b.measure("logs by trace_id (hot)", logs_trace_cases(hot_traces, False), items_of)
    await b.measure("logs by trace_id (cold)", logs_trace_cases(cold_traces, True), items_of)

    # ---- sessions: hot ones started after the cutoff, cold ones from the lookup table
    hot_sessions = [r[0] for r in await pg.fetch(
        "SELECT DISTINCT session_id FROM log_entries TABLESAMPLE SYSTEM (1) WHERE ts >= $1 AND ts < $2 "
        "AND session_id IS NOT NULL LIMIT $3", hot_from + timedelta(hours=2), now - timedelta(hours=2), n * 3)]
    cold_sessions = [r[0] for r in await pg.fetch(
        "SELECT DISTINCT value FROM observe_cold_keys TABLESAMPLE SYSTEM (2) WHERE kind = 's' LIMIT $1", n * 3)]
    rnd.shuffle(hot_sessions)
    rnd.shuffle(cold_sessions)

    def session_cases(sessions: list[str], cold: bool) -> list[tuple[str, Callable[[], Any]]]:
        out = []
        for s in sessions[:n]:
            async def base(s: str = s) -> Any:
                if not cold:
                    a = await pg.fetch(f"SELECT {LOG_COLS} FROM log_entries WHERE session_id = $1 "
                                       "ORDER BY ts, id LIMIT 1000", s)
                    return a + await pg.fetch(f"SELECT {SPAN_COLS} FROM spans WHERE session_id = $1 "
                                              "ORDER BY ts, id LIMIT 1000", s)
                a = b.duck_q(await b.cold_files(BY_KEY, s, "s", "logs"), f"SELECT {LOG_COLS} FROM {{files}} "
                             "WHERE session_id = ? ORDER BY ts, id LIMIT 1000", [s])
                return a + b.duck_q(await b.cold_files(BY_KEY, s, "s", "spans"), f"SELECT {SPAN_COLS} FROM {{files}} "
                                    "WHERE session_id = ? ORDER BY ts, id LIMIT 1000", [s])
            out.append((f"/api/v1/observe/sessions/{s}/timeline", base))
        return out

    await b.measure("session timeline (hot)", session_cases(hot_sessions, False), items_of)
    await b.measure("session timeline (cold)", session_cases(cold_sessions, True), items_of)

    # ---- project + 1 h window, newest 100
    projects = [r[0] for r in await pg.fetch(
        "SELECT DISTINCT project_id FROM observe_cold_files WHERE project_id IS NOT NULL")]

    def window_cases(lo: datetime, hi: datetime, cold: bool) -> list[tuple[str, Callable[[], Any]]]:
        out = []
        for _ in range(n):
            p = rnd.choice(projects)
            until = lo + timedelta(seconds=rnd.uniform(3600, (hi - lo).total_seconds()))
            since = until - timedelta(hours=1)

            async def base(p: uuid.UUID = p, since: datetime = since, until: datetime = until) -> Any:
                if not cold:
                    return await pg.fetch(f"SELECT {LOG_COLS} FROM log_entries WHERE project_id = $1 AND ts >= $2 "
                                          "AND ts < $3 ORDER BY ts DESC, id DESC LIMIT 100", p, since, until)
                src = await b.cold_files("SELECT key FROM observe_cold_files WHERE signal = 'logs' AND "
                                         "project_id = $1 AND max_ts >= $2 AND min_ts < $3", p, since, until)
                return b.duck_q(src, f"SELECT {LOG_COLS} FROM {{files}} WHERE project_id = ? AND ts >= ? AND ts < ? "
                                "ORDER BY ts DESC, id DESC LIMIT 100", [str(p), _naive(since), _naive(until)])
            out.append((f"/api/v1/observe/logs?project={p}&since={_z(since)}&until={_z(until)}&limit=100", base))
        return out

    await b.measure("project + 1 h window, newest 100 (hot)", window_cases(hot_from, now, False), items_of)
    await b.measure("project + 1 h window, newest 100 (cold)", window_cases(start, cold_until, True), items_of)

    # ---- full text within one day (every project): a request id seen once in that day
    hot_msgs = await pg.fetch("SELECT message, ts FROM log_entries TABLESAMPLE SYSTEM (0.2) WHERE ts >= $1 "
                              "AND project_id IS NOT NULL LIMIT $2", hot_from + timedelta(hours=1), n * 3)
    cold_src = await b.cold_files("SELECT key FROM observe_cold_files WHERE signal = 'logs' ORDER BY random() "
                                  "LIMIT 20")
    cold_msgs = b.duck.execute(f"SELECT message, ts FROM {cold_src} USING SAMPLE {n * 3} ROWS").fetchall()
    cold_msgs = [(m, t.replace(tzinfo=UTC)) for m, t in cold_msgs]

    def text_cases(msgs: list[Any], lo: datetime, hi: datetime, cold: bool) -> list[tuple[str, Callable[[], Any]]]:
        out = []
        rnd.shuffle(msgs)
        for message, ts in [m for m in msgs if _REQ.search(m[0])][:n]:
            needle = _REQ.search(message).group(1)  # type: ignore[union-attr]
            since = min(max(ts - timedelta(seconds=rnd.uniform(0, 86400)), lo), hi - timedelta(days=1))
            until = since + timedelta(days=1)
            like = f"%{needle}%"

            async def base(since: datetime = since, until: datetime = until, like: str = like) -> Any:
                if not cold:
                    return await pg.fetch(f"SELECT {LOG_COLS} FROM log_entries WHERE ts >= $1 AND ts < $2 AND "
                                          "message ILIKE $3 ORDER BY ts DESC, id DESC LIMIT 100", since, until, like)
                src = await b.cold_files("SELECT key FROM observe_cold_files WHERE signal = 'logs' AND "
                                         "max_ts >= $1 AND min_ts < $2", since, until)
                return b.duck_q(src, f"SELECT {LOG_COLS} FROM {{files}} WHERE ts >= ? AND ts < ? AND message ILIKE ? "
                                "ORDER BY ts DESC, id DESC LIMIT 100", [_naive(since), _naive(until), like])
            out.append((f"/api/v1/observe/logs?q={needle}&since={_z(since)}&until={_z(until)}", base))
        return out

    await b.measure("full text, one day (hot)", text_cases(hot_msgs, hot_from, now, False), items_of)
    await b.measure("full text, one day (cold)", text_cases(cold_msgs, start, cold_until, True), items_of)


# ---------------------------------------------------------------------------------------- main
async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=10_000_000, help="log records (spans come on top, ~0.3 each)")
    ap.add_argument("--days", type=float, default=10.0)
    ap.add_argument("--projects", type=int, default=20)
    ap.add_argument("--runs", type=int, default=60, help="queries per kind (random existing ids)")
    ap.add_argument("--dir", type=Path, default=None, help="where the data goes (default: a new directory in /tmp)")
    ap.add_argument("--keep", action="store_true", help="keep --dir for a later run (which then skips the load)")
    args = ap.parse_args()
    work = args.dir or Path(tempfile.mkdtemp(prefix="corral-bench-query-", dir="/tmp"))
    work.mkdir(parents=True, exist_ok=True)
    done_marker = work / "loaded.json"
    print(f"data in {work} (PostgreSQL 15 cluster, objects on local disk: LocalFsObjectStore)", flush=True)
    pg_proc, root_dsn = start_pg(work)
    vk = ValkeyServer.start()
    server: subprocess.Popen[bytes] | None = None
    try:
        dsn = root_dsn + "/bench"
        if done_marker.exists():
            meta = json.loads(done_marker.read_text())
            print(f"reusing the dataset loaded {meta['loaded_at']}: {meta['logs']:,} logs, {meta['spans']:,} spans")
            now = datetime.fromisoformat(meta["now"])
        else:
            admin = await asyncpg.connect(root_dsn + "/postgres")
            await admin.execute("DROP DATABASE IF EXISTS bench")
            await admin.execute("CREATE DATABASE bench")
            await admin.close()
            shutil.rmtree(work / "data", ignore_errors=True)
            now = datetime.now(UTC)
            rnd = random.Random(3)
            projects = [uuid.UUID(int=rnd.getrandbits(128)) for _ in range(args.projects)]
            print(f"loading ~{args.records:,} log records over {args.days:g} days, {args.projects} projects ...",
                  flush=True)
            logs_n, spans_n, load_s = await load(dsn, args.records, args.days, projects, now)
            print(f"loaded {logs_n:,} logs + {spans_n:,} spans in {load_s:.0f} s "
                  f"({(logs_n + spans_n) / load_s:,.0f} rows/s)", flush=True)
            meta = {"now": now.isoformat(), "logs": logs_n, "spans": spans_n, "load_s": load_s,
                    "loaded_at": datetime.now(UTC).isoformat()}
        server, port, _ = start_server(dsn, vk.url(), work / "data", 0)
        base_url = f"http://127.0.0.1:{port}"
        if "rotate_s" not in meta:
            print("rotating everything older than 48 h into the cold tier (the server's own loop) ...", flush=True)
            meta["rotate_s"] = await rotate(base_url, dsn)
            done_marker.write_text(json.dumps(meta))
        pg = await asyncpg.connect(dsn)
        hot_logs = await pg.fetchval("SELECT count(*) FROM log_entries")
        hot_spans = await pg.fetchval("SELECT count(*) FROM spans")
        cold = {r[0]: r[1:] for r in await pg.fetch(
            "SELECT signal, count(*), sum(rows)::bigint, sum(bytes)::bigint FROM observe_cold_files GROUP BY signal")}
        keys = await pg.fetchval("SELECT count(*) FROM observe_cold_keys")
        size = await pg.fetchval("SELECT pg_database_size('bench')")
        cl, cs = cold.get("logs", (0, 0, 0)), cold.get("spans", (0, 0, 0))
        print(f"\n== query latencies over {meta['logs']:,} log records + {meta['spans']:,} spans over {args.days:g} "
              f"days (load {meta['load_s']:.0f} s, rotation {meta['rotate_s']:.0f} s)")
        print(f"hot (PostgreSQL, {size / 1e9:.1f} GB): {hot_logs:,} logs, {hot_spans:,} spans; cold (Parquet, "
              f"local disk): {cl[1]:,} logs in {cl[0]} files ({cl[2] / 1e6:.0f} MB), {cs[1]:,} spans in {cs[0]} files "
              f"({cs[2] / 1e6:.0f} MB); lookup table {keys:,} rows")
        print(f"{args.runs} queries per kind over HTTP (keep-alive); baseline: raw SQL (hot) / raw DuckDB over the "
              "same files (cold), one connection, no Corral layers\n", flush=True)
        hot_from = now - timedelta(hours=48)
        b = Bench(Api(port), pg, work / "data" / "objects", args.runs)
        start = now - timedelta(days=args.days)
        await run_queries(b, now, max(hot_from, datetime.now(UTC) - timedelta(hours=47)), hot_from, start)
        await pg.close()
    finally:
        if server is not None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(60)
            except subprocess.TimeoutExpired:
                server.kill()
        vk.stop()
        terminate(pg_proc, signal.SIGINT, timeout=120)  # fast shutdown: a kept cluster stays consistent
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
            print(f"deleted {work}")


if __name__ == "__main__":
    asyncio.run(main())
