"""Sustained OTLP/HTTP protobuf log ingest, beside raw asyncpg COPY of the same rows; then query
latencies over a dataset spread across the hot (PostgreSQL) and cold (Parquet) tiers.

Run: ./dev bench bench_ingest [--duration 20] [--batch 2000] [--concurrency 8] [--records 2000000]
     [--fsync on|off] [--pg-setting NAME=VALUE ...]

1. A Corral process (tests/e2e/observe/harness.py: the real app, OTLP receiver and ingest
   pipeline over PostgreSQL with fsync, synchronous_commit and full_page_writes ON, as in
   production; ``--fsync off`` turns all three off and labels the figure "not durable") receives
   batches of realistic log records from a load generator running in a separate process.
   Counted: records answered 200 (the 200 is sent only after the COPY transaction holding them
   committed), checked against the table.
2. Baseline, same run, same machine: the same rows (decoded by the same codec) COPYed by
   asyncpg into the same table, 1 and 2 connections, no HTTP, no decoding.
3. Queries: ``--records`` rows spread over 10 days (2 hot, 8 rotated into Parquet by the real
   rotation), then p50/p95 of trace-id, session-timeline, time-window and full-text-in-one-day
   queries through the HTTP API.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import asyncpg

from corral.adapters.otlp.codec import OtlpCodec, decode_request
from corral.core.observe.model import LOG_COLUMNS, Caller
from corral.core.observe.rowids import RowIds
from tests.e2e.observe.conftest import TOKEN
from tests.otlp_payloads import kv, logs_request
from tests.servicekit import PostgresServer, ValkeyServer, free_ports

ROOT = Path(__file__).resolve().parents[2]
MARKER = b"#" * 12  # replaced by a request number in each body the load generator sends


# ---------------------------------------------------------------------------------------- load generator
def _loadgen(url: str, bodies: list[bytes], per_body: int, duration: float, concurrency: int, out: object) -> None:
    import aiohttp

    async def run() -> tuple[int, int, int, float]:
        acked = refused = failed = 0
        stop_at = time.monotonic() + duration
        headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/x-protobuf"}
        conn = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(headers=headers, connector=conn) as http:

            async def worker(i: int) -> None:
                nonlocal acked, refused, failed
                n = i
                while time.monotonic() < stop_at:
                    # every request unique, as real exports are (identical bodies are deduplicated as retries)
                    body = bodies[n % len(bodies)].replace(MARKER, b"%012d" % (n * concurrency + i), 1)
                    n += 1
                    try:
                        async with http.post(url, data=body) as r:
                            await r.read()
                            if r.status == 200:
                                acked += per_body
                            elif r.status in (429, 503):
                                refused += per_body
                                await asyncio.sleep(float(r.headers.get("Retry-After", "1")) / 10)
                            else:
                                failed += per_body
                    except (aiohttp.ClientError, OSError):
                        failed += per_body

            t0 = time.monotonic()
            await asyncio.gather(*(worker(i) for i in range(concurrency)))
            return acked, refused, failed, time.monotonic() - t0

    out.put(asyncio.run(run()))  # type: ignore[attr-defined]


def start_server(
    dsn: str, valkey: str, data_dir: Path, decode_processes: int = -1
) -> tuple[subprocess.Popen[bytes], int, int]:
    port, otlp_port = free_ports(2)
    cmd = [
        sys.executable,
        "-m",
        "tests.e2e.observe.harness",
        "--dsn",
        dsn,
        "--valkey",
        valkey,
        "--data-dir",
        str(data_dir),
        "--port",
        str(port),
        "--otlp-port",
        str(otlp_port),
        "--token",
        TOKEN,
        "--alert-seconds",
        "3600",
        "--decode-processes",
        str(decode_processes),
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORRAL_")}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(600):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                return proc, port, otlp_port
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("server did not start")


# ---------------------------------------------------------------------------------------- CPU accounting
def _proc_table() -> dict[int, tuple[int, float]]:
    """pid -> (parent pid, CPU seconds) of every process (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[int, tuple[int, float]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[int(entry)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick)
    return out


def _tree(table: dict[int, tuple[int, float]], root: int) -> set[int]:
    found = {root}
    grew = True
    while grew:
        grew = False
        for pid, (ppid, _) in table.items():
            if ppid in found and pid not in found:
                found.add(pid)
                grew = True
    return found


def cpu_split(before: dict, after: dict, roots: dict[str, tuple[int, bool]]) -> dict[str, float]:
    """CPU seconds spent between two samples per named root (with its descendants when the flag says so)."""
    result = {}
    for name, (root, descendants) in roots.items():
        pids = _tree(after, root) - ({root} if descendants == "only" else set()) if descendants else {root}
        result[name] = sum(after[p][1] - before.get(p, (0, 0.0))[1] for p in pids if p in after)
    return result


# ---------------------------------------------------------------------------------------- baseline
async def copy_baseline(dsn: str, rows: list[tuple], connections: int) -> float:
    pools = [await asyncpg.connect(dsn) for _ in range(connections)]
    chunks = [rows[i::connections] for i in range(connections)]

    async def one(conn: asyncpg.Connection, part: list[tuple]) -> None:
        for i in range(0, len(part), 10_000):
            async with conn.transaction():
                await conn.copy_records_to_table("log_entries", records=part[i : i + 10_000], columns=LOG_COLUMNS)

    t0 = time.perf_counter()
    await asyncio.gather(*(one(c, p) for c, p in zip(pools, chunks, strict=True)))
    elapsed = time.perf_counter() - t0
    for c in pools:
        await c.close()
    return len(rows) / elapsed


# ---------------------------------------------------------------------------------------- query dataset
def dataset_rows(n: int, now: datetime, projects: list[uuid.UUID], seed: int = 7):
    """``n`` log rows over the last 10 days: traces of 10 records, sessions of 200, 5 projects."""
    rnd = random.Random(seed)
    ids = RowIds()
    words = ["deploy", "build", "cache", "miss", "request", "timeout", "retry", "compile", "test", "push"]
    start = now - timedelta(days=10)
    step = (10 * 86400) / n
    block = ids.ids(n)
    traces = []
    for i in range(n):
        if i % 10 == 0:
            trace = uuid.UUID(int=rnd.getrandbits(128)).hex
            traces.append(trace)
        ts = start + timedelta(seconds=i * step)
        session = f"sess-{i // 200}"
        msg = " ".join(rnd.choice(words) for _ in range(6)) + f" req-{i}"
        attrs = json.dumps({"tool_name": rnd.choice(words), "exit_code": rnd.randrange(3), "n": i})
        yield (
            block[i],
            ts,
            trace,
            f"{i:016x}",
            projects[(i // 200) % len(projects)],
            session,
            None,
            "agent",
            rnd.choice(("info", "info", "info", "debug", "warn", "error")),
            msg,
            attrs,
        )


async def load_dataset(dsn: str, n: int, now: datetime, projects: list[uuid.UUID]) -> list[str]:
    conn = await asyncpg.connect(dsn)
    await conn.execute("SELECT observe_ensure_partitions($1, $2)", (now - timedelta(days=11)).date(), now.date())
    traces: list[str] = []
    chunk: list[tuple] = []
    for row in dataset_rows(n, now, projects):
        if int(row[3], 16) % 1000 == 0:  # one trace in 100, spread over all 10 days
            traces.append(row[2])
        chunk.append(row)
        if len(chunk) == 50_000:
            await conn.copy_records_to_table("log_entries", records=chunk, columns=LOG_COLUMNS)
            chunk = []
    if chunk:
        await conn.copy_records_to_table("log_entries", records=chunk, columns=LOG_COLUMNS)
    await conn.execute("ANALYZE log_entries")
    await conn.close()
    return traces


def timed_get(url: str) -> tuple[float, dict]:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {TOKEN}"})
    t0 = time.perf_counter()
    with urllib.request.urlopen(req, timeout=120) as r:
        body = json.loads(r.read())
    return (time.perf_counter() - t0) * 1000, body


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(p * (len(values) - 1)))]


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=float, default=20.0)
    ap.add_argument("--batch", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--records", type=int, default=2_000_000, help="query dataset size (0: skip queries)")
    ap.add_argument("--runs", type=int, default=30, help="runs per query kind")
    ap.add_argument(
        "--decode-processes", type=int, default=-1, help="OTLP decoder processes (-1: one per core, 0: in the loop)"
    )
    ap.add_argument("--fsync", choices=("on", "off"), default="on",
                    help="on (default): fsync, synchronous_commit and full_page_writes on, the durable figure")
    ap.add_argument("--pg-setting", action="append", default=[], metavar="NAME=VALUE",
                    help="extra PostgreSQL setting for the run (e.g. wal_compression=lz4), printed with the figures")
    args = ap.parse_args()

    durable = args.fsync == "on"
    pg_settings = {
        "fsync": args.fsync,
        "synchronous_commit": args.fsync,
        "full_page_writes": args.fsync,
        **dict(kv.split("=", 1) for kv in args.pg_setting),
    }
    pg = PostgresServer.start(settings=pg_settings)
    vk = ValkeyServer.start()
    work = Path(tempfile.mkdtemp(prefix="corral-bench-ingest-"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        admin = await asyncpg.connect(pg.dsn())
        shown = {
            name: await admin.fetchval(f"SHOW {name}")
            for name in ("fsync", "synchronous_commit", "full_page_writes", "wal_compression", "wal_buffers",
                         "max_wal_size", "shared_buffers")
        }
        if durable:
            assert shown["fsync"] == shown["synchronous_commit"] == shown["full_page_writes"] == "on", shown
        await admin.execute("CREATE DATABASE bench")
        await admin.close()
        fsync = shown["fsync"]
        dsn = pg.dsn("bench")
        proc, port, otlp_port = start_server(dsn, vk.url(), work / "data", args.decode_processes)
        procs.append(proc)

        # ---- 1. sustained ingest through the OTLP receiver
        bodies = []
        for i in range(16):
            req = logs_request(args.batch, seed=i, session_id=f"s{i}")
            req.resource_logs[0].resource.attributes.append(kv("bench.request", MARKER.decode()))
            bodies.append(req.SerializeToString())
        mean_bytes = sum(len(b) for b in bodies) / len(bodies) / args.batch
        ctx = multiprocessing.get_context("spawn")
        out = ctx.Queue()
        gen = ctx.Process(
            target=_loadgen,
            args=(f"http://127.0.0.1:{otlp_port}/v1/logs", bodies, args.batch, args.duration, args.concurrency, out),
        )
        conn = await asyncpg.connect(dsn)
        backend = await conn.fetchval("SELECT pg_backend_pid()")
        postmaster = _proc_table()[backend][0]
        await conn.close()
        gen.start()
        await asyncio.sleep(0.5)
        cpu0 = _proc_table()
        acked, refused, failed, elapsed = out.get(timeout=args.duration + 120)
        cpu1 = _proc_table()
        gen.join()
        cpu = cpu_split(
            cpu0,
            cpu1,
            {
                "server event loop": (proc.pid, False),
                "decoder processes": (proc.pid, "only"),
                "load generator": (gen.pid, True),
                "PostgreSQL": (postmaster, True),
            },
        )
        conn = await asyncpg.connect(dsn)
        stored = await conn.fetchval("SELECT count(*) FROM log_entries WHERE service = 'agent-runner'")
        await conn.close()
        ingest_rate = acked / elapsed

        # ---- 2. baseline: raw COPY of the same rows into the same table
        codec = OtlpCodec()
        rows: list[tuple] = []
        for body in bodies:
            rows += codec.logs(decode_request("logs", body, "application/x-protobuf"), Caller(), lambda p: None).logs
        rows = (rows * (200_000 // len(rows) + 1))[:200_000]
        copy1 = await copy_baseline(dsn, rows, 1)
        copy2 = await copy_baseline(dsn, rows, 2)

        print(
            f"\n== OTLP/HTTP protobuf log ingest ({args.batch} records/request, {mean_bytes:.0f} B/record, "
            f"{args.concurrency} in flight, {elapsed:.1f} s, PostgreSQL fsync={fsync}, "
            f"decode processes {args.decode_processes})"
        )
        print("PostgreSQL: " + ", ".join(f"{k}={v}" for k, v in shown.items()))
        label = "acknowledged + durable" if durable else "acknowledged (fsync OFF: not durable)"
        print(
            f"{label}: {ingest_rate:,.0f} records/s   (acked {acked:,}, stored {stored:,}, "
            f"429/503 {refused:,}, failed {failed:,})"
        )
        print(
            f"baseline raw asyncpg COPY, same rows, same table: {copy1:,.0f} rows/s (1 conn), "
            f"{copy2:,.0f} rows/s (2 conns)"
        )
        print(f"ingest / COPY(2 conns) = {ingest_rate / copy2:.2f}")
        busy = sum(cpu.values())
        print(
            "CPU seconds per 100k acknowledged records: "
            + ", ".join(f"{k} {v * 100_000 / max(acked, 1):.2f}" for k, v in cpu.items())
            + f"; these use {busy / elapsed:.2f} of the 2 cores (the rest: other processes on the machine)"
        )
        assert stored >= acked, "an acknowledged record is missing"

        if args.records <= 0:
            return
        # ---- 3. query latencies over hot + cold
        proc.terminate()
        proc.wait(30)
        procs.clear()
        conn = await asyncpg.connect(dsn)
        await conn.execute("TRUNCATE log_entries")
        await conn.close()
        now = datetime.now(UTC)
        projects = [uuid.uuid4() for _ in range(5)]
        t0 = time.perf_counter()
        traces = await load_dataset(dsn, args.records, now, projects)
        load_s = time.perf_counter() - t0
        proc, port, otlp_port = start_server(dsn, vk.url(), work / "data")
        procs.append(proc)
        base = f"http://127.0.0.1:{port}"
        t0 = time.perf_counter()
        while True:  # the server's own rotation loop may already be the leader: wait for it
            req = urllib.request.Request(f"{base}/api/v1/observe/rotate?older_than=48h", data=b"", method="POST",
                                         headers={"Authorization": f"Bearer {TOKEN}"})
            try:
                with urllib.request.urlopen(req, timeout=3600) as r:
                    r.read()
                break
            except urllib.error.HTTPError as exc:
                if exc.code != 409:
                    raise
                time.sleep(1)
        rotate_s = time.perf_counter() - t0
        conn = await asyncpg.connect(dsn)
        hot = await conn.fetchval("SELECT count(*) FROM log_entries")
        files, cold_rows, cold_bytes = await conn.fetchrow(
            "SELECT count(*), coalesce(sum(rows), 0), coalesce(sum(bytes), 0) FROM observe_cold_files")
        await conn.close()
        print(f"\n== queries over {args.records:,} records: {hot:,} hot (PostgreSQL), {cold_rows:,} cold "
              f"({files} Parquet files, {cold_bytes / max(cold_rows, 1):.0f} B/row); load {load_s:.0f} s, "
              f"rotation {rotate_s:.0f} s ({cold_rows / rotate_s:,.0f} rows/s)")
        rnd = random.Random(1)
        cold_traces = traces[: len(traces) // 2]
        hot_traces = [t for t in traces[len(traces) * 9 // 10 :]]
        project = projects[0]
        kinds = {
            "trace_id (cold)": lambda: f"/api/v1/observe/logs?trace_id={rnd.choice(cold_traces)}",
            "trace_id (hot)": lambda: f"/api/v1/observe/logs?trace_id={rnd.choice(hot_traces)}",
            "session timeline (cold)": lambda: (
                f"/api/v1/observe/sessions/sess-{rnd.randrange(args.records // 400)}/timeline"
            ),
            "session timeline (hot)": lambda: (
                "/api/v1/observe/sessions/"
                f"sess-{args.records // 200 - 1 - rnd.randrange(args.records // 2000)}/timeline"
            ),
            "time window <= 40 h, newest 100 (hot)": lambda: (
                f"/api/v1/observe/logs?project={project}&since="
                f"{(now - timedelta(hours=rnd.randrange(2, 40))).isoformat().replace('+00:00', 'Z')}&until="
                f"{(now - timedelta(hours=1)).isoformat().replace('+00:00', 'Z')}&limit=100"
            ),
            "1 h window, newest 100 (cold)": lambda: (
                lambda d: (
                    f"/api/v1/observe/logs?project={project}&since="
                    f"{(now - timedelta(days=d, hours=1)).isoformat().replace('+00:00', 'Z')}&until="
                    f"{(now - timedelta(days=d)).isoformat().replace('+00:00', 'Z')}&limit=100"
                )
            )(rnd.randrange(3, 9)),
            "full text, one day (cold)": lambda: (
                lambda d: (
                    f"/api/v1/observe/logs?q=req-{rnd.randrange(args.records)}"
                    f"&since={(now - timedelta(days=d + 1)).isoformat().replace('+00:00', 'Z')}"
                    f"&until={(now - timedelta(days=d)).isoformat().replace('+00:00', 'Z')}"
                )
            )(rnd.randrange(3, 9)),
            "full text, one day (hot)": lambda: (
                f"/api/v1/observe/logs?q=req-{rnd.randrange(args.records)}"
                f"&since={(now - timedelta(days=1)).isoformat().replace('+00:00', 'Z')}"
            ),
        }
        for name, make in kinds.items():
            timed_get(base + make())  # warm caches (Parquet copies, plans)
            lat = [timed_get(base + make())[0] for _ in range(args.runs)]
            print(f"{name:32s} p50 {statistics.median(lat):8.1f} ms   p95 {pct(lat, 0.95):8.1f} ms")
        lat = []
        for _ in range(args.runs):
            t = time.perf_counter()
            c = await asyncpg.connect(dsn)
            await c.fetchval("SELECT 1")
            await c.close()
            lat.append((time.perf_counter() - t) * 1000)
        print(
            f"{'baseline: asyncpg connect+SELECT 1':32s} p50 {statistics.median(lat):8.1f} ms   "
            f"p95 {pct(lat, 0.95):8.1f} ms"
        )
    finally:
        for p in procs:
            p.terminate()
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
        vk.stop()
        pg.stop()


if __name__ == "__main__":
    asyncio.run(main())
