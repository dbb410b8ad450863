"""Cold-tier compaction: files and bytes before/after, merge throughput, cold query p95 before/after.

Run: ./dev bench bench_compaction [--rows 1000000] [--projects 20] [--window 25000] [--target 1000000] [--s3]

1. Load ~``--rows`` rows (log records plus ~0.3 spans per record, tests/bench/querydata.py: agent
   sessions over two days that ended three days ago) through the hot store's COPY path, and rotate
   them with the server's ``ColdRotation`` in windows of ``--window`` rows: one small Parquet file
   per (signal, project, window), as a busy platform's rotation leaves them.
2. Cold queries before: p95 over ``--queries`` runs of a trace waterfall (a different trace each
   run) and of a one-day log search (level error + the word "deploy" over every project, 100 newest), all files
   already in the local cache.
3. Baseline, same run, same files: the least any compaction must do: for each group the compaction
   will merge, read its Parquet files with pyarrow, concatenate, sort by (ts, id) and write zstd
   Parquet of ``--target`` rows into memory (no object store write, no manifest, no lookup keys),
   reading each file where the compaction does (the local cached copy, else the object store).
4. The real ``ColdCompaction.run_once`` with the adapters the server wires (``ParquetColdTier`` over
   ``LocalFsObjectStore``, or SeaweedFS with ``--s3``, ``PostgresColdCompactionManifest``), timed;
   then files and bytes after, the same queries again (p95), and a check that every query answers
   exactly as before and that a second pass is a no-op.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import signal
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import asyncpg
import pyarrow as pa
import pyarrow.parquet as pq

from corral.adapters.coldtier import ParquetColdTier
from corral.adapters.localfs import LocalFsObjectStore
from corral.adapters.postgres.observe import (
    PostgresColdCompactionManifest,
    PostgresHotArchive,
    create_telemetry_pool,
)
from corral.core.observe.compaction import ColdCompaction
from corral.core.observe.model import LogQuery
from corral.core.observe.query import ObserveQueries
from corral.core.observe.rotation import SIGNALS, ColdRotation
from tests.bench.bench_ingest import pct
from tests.bench.bench_query import load, start_pg
from tests.bench.bench_rotation import WallClock, s3_store
from tests.servicekit.process import terminate


class NoHot:
    """The hot tier holds none of these rows: ask only the cold one."""

    async def search_logs(self, query: Any) -> list[Any]:
        return []

    async def trace_spans(self, trace_id: str, project_ids: Any) -> list[Any]:
        return []


async def listed(pool: asyncpg.Pool) -> tuple[int, int]:
    async with pool.acquire() as conn:
        files, size = await conn.fetchrow(
            "SELECT count(*), coalesce(sum(bytes), 0) FROM observe_cold_files WHERE retired_at IS NULL")
    return files, size


async def measure(
    queries: ObserveQueries, traces: list[str], days: list[datetime]
) -> tuple[dict[str, float], list[Any]]:
    """p95 ms of each query kind, and every answer (to compare before and after)."""
    answers: list[Any] = []
    times: dict[str, list[float]] = {"trace waterfall": [], "1-day log search": []}
    for i, trace in enumerate(traces):
        t0 = time.perf_counter()
        view = await queries.trace(trace, None)
        times["trace waterfall"].append((time.perf_counter() - t0) * 1000)
        answers.append([(w.span.span_id, w.depth) for w in view.spans])
        day = days[i % len(days)]
        t0 = time.perf_counter()
        page = await queries.search_logs(
            LogQuery(since=day, until=day + timedelta(days=1), levels=("error",), q="deploy", limit=100))
        times["1-day log search"].append((time.perf_counter() - t0) * 1000)
        answers.append([i.id for i in page.items])
    return {name: pct(ms, 0.95) for name, ms in times.items()}, answers


def _merge_group(blobs: list[bytes], tiebreak: str, target: int) -> tuple[int, int]:
    table = pa.concat_tables([pq.ParquetFile(pa.BufferReader(b)).read() for b in blobs])
    table = table.sort_by([("ts", "ascending"), (tiebreak, "ascending")])
    size = 0
    for start in range(0, table.num_rows, target):
        sink = pa.BufferOutputStream()
        pq.write_table(table.slice(start, target), sink, compression="zstd", row_group_size=64_000)
        size += sink.tell()
    return table.num_rows, size


async def baseline(store: Any, cache: Path, groups: list[Any], target: int) -> tuple[int, float]:
    """(rows, seconds) of raw pyarrow read + sort + zstd write of the groups' files, each read where
    the compaction reads it: the local cached copy when there is one (the queries before fetched
    them), else the object store."""
    rows = 0
    t0 = time.perf_counter()
    for g in groups:
        blobs = [(cache / f.key).read_bytes() if (cache / f.key).exists() else await store.read(f.key)
                 for f in g.files]
        n, _ = await asyncio.to_thread(_merge_group, blobs, "series_id" if g.signal == "points" else "id", target)
        rows += n
    return rows, time.perf_counter() - t0


async def run(dsn: str, work: Path, args: argparse.Namespace) -> bool:
    server = None
    if args.s3:
        server, store = await s3_store()
    else:
        store = LocalFsObjectStore(work / "objects", signing_key=b"k" * 32, base_url="http://x", fsync=False)
    pool = await create_telemetry_pool(dsn, min_size=1, max_size=4)
    executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="observe")
    archive = PostgresHotArchive(pool, executor)
    cold = ParquetColdTier(store, work / "cache", executor)
    rotation = ColdRotation(hot=archive, manifest=archive, writer=cold, clock=WallClock(), rows_per_window=args.window)
    t0 = time.perf_counter()
    rotated = await rotation.run_once()
    print(f"rotation: {rotated.rows:,} rows into {rotated.files:,} files in {time.perf_counter() - t0:.1f} s",
          flush=True)
    manifest = PostgresColdCompactionManifest(pool)
    compaction = ColdCompaction(manifest=manifest, merger=cold, writer=cold, clock=WallClock(),
                                target_rows=args.target, max_groups=100_000)
    now = datetime.now(UTC)
    complete = rotation.complete_days(now)

    async with pool.acquire() as conn:
        rnd_traces = [r[0] for r in await conn.fetch(
            "SELECT value FROM observe_cold_keys WHERE kind = 't' ORDER BY md5(value) LIMIT $1", args.queries)]
        days = [datetime.combine(r[0], datetime.min.time(), UTC) for r in await conn.fetch(
            "SELECT DISTINCT day FROM observe_cold_files WHERE signal = 'logs' ORDER BY day")]
    queries = ObserveQueries(hot=NoHot(), clock=WallClock(), cold_manifest=archive, cold_reader=cold)  # type: ignore[arg-type]
    await measure(queries, rnd_traces[:3], days)  # every file fetched into the cache, DuckDB warm
    files_before, bytes_before = await listed(pool)
    p95_before, answers_before = await measure(queries, rnd_traces, days)

    groups = [g for s in SIGNALS if s in complete
              for g in await manifest.compactable(s, complete[s], args.target, compaction.min_files, 100_000)]
    base_rows, base_s = await baseline(store, work / "cache", groups, args.target)
    print(f"baseline: {base_rows:,} rows of {sum(len(g.files) for g in groups):,} files in {base_s:.1f} s", flush=True)

    spent = {"commit": 0.0, "write": 0.0}

    def timed(name: str, fn: Any) -> Any:
        async def call(*a: Any, **kw: Any) -> Any:
            t = time.perf_counter()
            try:
                return await fn(*a, **kw)
            finally:
                spent[name] += time.perf_counter() - t
        return call

    manifest.replace = timed("commit", manifest.replace)  # type: ignore[method-assign]
    cold.write = timed("write", cold.write)  # type: ignore[method-assign]
    t0 = time.perf_counter()
    report = await compaction.run_once(complete)
    seconds = time.perf_counter() - t0
    files_after, bytes_after = await listed(pool)
    await measure(queries, rnd_traces[:3], days)
    p95_after, answers_after = await measure(queries, rnd_traces, days)
    again = await compaction.run_once(complete)
    ok = answers_after == answers_before and report.rows == base_rows and again.groups == 0 and not report.abandoned

    print(f"\n== compaction of {report.rows:,} rows ({args.projects} projects, 2 days, rotation windows of "
          f"{args.window:,} rows, target {args.target:,} rows, objects in {'S3' if args.s3 else 'the local disk'})")
    print(f"files     {files_before:8,} -> {files_after:8,}   ({report.files_in:,} merged into {report.files_out:,})")
    print(f"bytes     {bytes_before:14,} -> {bytes_after:14,}   ({bytes_after / bytes_before:.2f}x)")
    print(f"compaction {report.rows / seconds:10,.0f} rows/s  ({seconds:.1f} s, {report.groups} groups; of which "
          f"encode + put {spent['write']:.1f} s, manifest commits with lookup keys {spent['commit']:.1f} s)")
    print(f"baseline   {base_rows / base_s:10,.0f} rows/s  (raw pyarrow read + sort + zstd write of the same files, "
          f"{base_s:.1f} s)   compaction/baseline = {base_s / seconds:.2f}")
    for name in p95_before:
        print(f"p95 {name:18s} before {p95_before[name]:7.1f} ms   after {p95_after[name]:7.1f} ms   "
              f"({p95_after[name] / p95_before[name]:.2f}x)")
    print(f"checks: {'ok' if ok else 'FAILED'} (same answers: {answers_after == answers_before}, "
          f"rows {report.rows:,} = baseline {base_rows:,}, second pass groups {again.groups})")
    await pool.close()
    executor.shutdown()
    if server is not None:
        await store.close()
        server.stop()
    return ok


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000, help="rows to load (logs + ~0.3 spans per log)")
    ap.add_argument("--projects", type=int, default=20)
    ap.add_argument("--window", type=int, default=25_000, help="rotation window rows (small: many small files)")
    ap.add_argument("--target", type=int, default=1_000_000, help="compaction target rows per file")
    ap.add_argument("--queries", type=int, default=40, help="runs of each query kind before and after")
    ap.add_argument("--s3", action="store_true", help="objects in S3 (SeaweedFS) instead of the local disk")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="corral-bench-compaction-", dir="/tmp"))
    print(f"data in {work} (PostgreSQL 15, fsync off)", flush=True)
    pg_proc, root_dsn = start_pg(work)
    ok = False
    try:
        admin = await asyncpg.connect(root_dsn + "/postgres")
        await admin.execute("CREATE DATABASE run")
        await admin.close()
        end = datetime.now(UTC) - timedelta(days=3)
        rnd = random.Random(3)
        projects = [uuid.UUID(int=rnd.getrandbits(128)) for _ in range(args.projects)]
        logs_n, spans_n, load_s = await load(root_dsn + "/run", round(args.rows / 1.3), 2, projects, end)
        print(f"loaded {logs_n:,} logs + {spans_n:,} spans in {load_s:.0f} s", flush=True)
        ok = await run(root_dsn + "/run", work, args)
    finally:
        terminate(pg_proc, signal.SIGINT, timeout=120)
        shutil.rmtree(work, ignore_errors=True)
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    asyncio.run(main())
