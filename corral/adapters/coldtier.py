"""The cold tier: zstd Parquet files written with pyarrow and queried with DuckDB.

Objects go through the ObjectStore port (local directory or S3). DuckDB reads
local copies kept in a cache directory: cold files are immutable (a key always
holds the same rows), so a cached copy never goes stale. Encoding and queries
run in a thread pool, never on the event loop.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import uuid
from collections.abc import AsyncGenerator, Callable
from concurrent.futures import Executor
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from corral.adapters.lazy import lazy_module
from corral.core.observe.model import (
    LOG_COLUMNS,
    POINT_COLUMNS,
    SPAN_COLUMNS,
    LogItem,
    LogQuery,
    MetricQuery,
    MetricSeries,
    SpanItem,
)
from corral.core.observe.ports import ColdFile, ColdPart
from corral.core.observe.rotation import COLD_PREFIX
from corral.core.storage.ports import ObjectStore

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
else:  # imported when the cold tier first works: an idle server does not hold them
    duckdb = lazy_module("duckdb")
    pa = lazy_module("pyarrow")
    pc = lazy_module("pyarrow.compute")
    pq = lazy_module("pyarrow.parquet")

__all__ = ["ParquetColdTier"]

T = TypeVar("T")


@cache
def _schemas() -> dict[str, pa.Schema]:
    ts = pa.timestamp("us")  # naive, UTC by convention (no time-zone handling inside DuckDB)
    return {
        "logs": pa.schema(
            [
                ("id", pa.int64()),
                ("ts", ts),
                ("trace_id", pa.string()),
                ("span_id", pa.string()),
                ("project_id", pa.string()),
                ("session_id", pa.string()),
                ("user_id", pa.string()),
                ("service", pa.string()),
                ("level", pa.string()),
                ("message", pa.string()),
                ("attributes", pa.string()),
            ]
        ),
        "spans": pa.schema(
            [
                ("id", pa.int64()),
                ("ts", ts),
                ("trace_id", pa.string()),
                ("span_id", pa.string()),
                ("parent_span_id", pa.string()),
                ("project_id", pa.string()),
                ("session_id", pa.string()),
                ("user_id", pa.string()),
                ("service", pa.string()),
                ("name", pa.string()),
                ("kind", pa.string()),
                ("status", pa.string()),
                ("duration_ms", pa.float64()),
                ("attributes", pa.string()),
                ("events", pa.string()),
            ]
        ),
        "points": pa.schema(
            [
                ("series_id", pa.string()),
                ("ts", ts),
                ("value", pa.float64()),
                ("project_id", pa.string()),
                ("trace_id", pa.string()),
                ("span_id", pa.string()),
            ]
        ),
    }


_COLUMNS = {"logs": LOG_COLUMNS, "spans": SPAN_COLUMNS, "points": POINT_COLUMNS}
_UUID_COLS = {"project_id", "user_id", "series_id"}


def _naive(ts: datetime) -> datetime:
    return ts.astimezone(UTC).replace(tzinfo=None)


def _aware(ts: datetime) -> datetime:
    return ts.replace(tzinfo=UTC)


def _uuid(value: str | None) -> uuid.UUID | None:
    return uuid.UUID(value) if value else None


def _json(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def encode_parquet(signal: str, rows: list[dict[str, Any]] | pa.Table) -> bytes:
    """Rows (sorted by time: dicts, or an Arrow table with the model's column names, ``ts`` a
    timestamp and uuids as text, as the PostgreSQL archive reads them) → zstd Parquet bytes."""
    schema = _schemas()[signal]
    if isinstance(rows, pa.Table):
        return _write(rows.select(schema.names).cast(schema))
    arrays = []
    for field in schema:
        name = field.name
        if name == "ts":
            values: list[Any] = [_naive(r["ts"]) for r in rows]
        elif name in _UUID_COLS:
            values = [str(r[name]) if r[name] is not None else None for r in rows]
        elif name in ("attributes", "events"):
            values = [_json(r[name]) for r in rows]
        else:
            values = [r[name] for r in rows]
        arrays.append(pa.array(values, type=field.type))
    return _write(pa.Table.from_arrays(arrays, schema=schema))


def _write(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd", row_group_size=64_000)
    return bytes(sink.getvalue().to_pybytes())


def _path_expr(key: str) -> str:
    return "$" + "".join('."' + seg.replace('"', '\\"') + '"' for seg in key.split("/"))


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


class ParquetColdTier:
    """ColdWriter + ColdReader + ColdMerger over an ObjectStore, with a local read cache (ColdCache)."""

    def __init__(self, store: ObjectStore, cache_dir: Path, executor: Executor | None = None) -> None:
        self._store = store
        self._cache = cache_dir
        self._executor = executor
        self._fetching: dict[str, asyncio.Future[Path]] = {}

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    # ---------------------------------------------------------------- writer
    async def write(self, key: str, signal: str, rows: list[dict[str, Any]] | pa.Table) -> int:
        data = await self._run(encode_parquet, signal, rows)
        await self._store.put(key, data, content_type="application/vnd.apache.parquet")
        return len(data)

    async def delete(self, key: str) -> None:
        await self._store.delete(key)
        path = self._cache / key
        if path.exists():
            path.unlink()

    async def list_objects(self, token: str | None = None) -> tuple[list[tuple[str, datetime]], str | None]:
        listing = await self._store.list(COLD_PREFIX, limit=1000, token=token)
        return [(o.key, o.modified_at) for o in listing.objects], listing.next_token

    # ---------------------------------------------------------------- merger
    async def merge(self, signal: str, files: list[ColdFile], max_rows: int) -> AsyncGenerator[ColdPart, None]:
        held: list[pa.Table] = []
        count = 0
        batches = _batches(files, max_rows)
        for i, batch in enumerate(batches):  # a batch's files are fetched together, parsed in one worker call
            blobs = await asyncio.gather(*(self._bytes(f.key) for f in batch))
            tables = await self._run(_read_parquets, blobs)
            held.extend(tables)
            count += sum(t.num_rows for t in tables)
            # a part ends before the next file starts, so that parts do not overlap in time, unless
            # overlapping files would make us hold more than twice max_rows
            upcoming = _naive(batches[i + 1][0].min_ts) if i + 1 < len(batches) else None
            while count >= max_rows:
                part, rest = await self._run(_cut, signal, held, max_rows, None if count >= 2 * max_rows else upcoming)
                held = [rest]
                if part is None:
                    break
                yield part
                count = rest.num_rows
        if count:
            part, _ = await self._run(_cut, signal, held, count, None)
            assert part is not None
            yield part

    async def _bytes(self, key: str) -> bytes:
        """A file's bytes: the cached copy when there is one (compaction does not fill the cache with
        files about to be retired)."""
        path = self._cache / key
        try:
            return await self._run(path.read_bytes)
        except FileNotFoundError:
            return await self._store.read(key)

    # ---------------------------------------------------------------- local copies
    async def _local(self, key: str) -> Path:
        path = self._cache / key
        if path.exists():
            return path
        pending = self._fetching.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        fut: asyncio.Future[Path] = asyncio.get_running_loop().create_future()
        self._fetching[key] = fut
        try:
            data = await self._store.read(key)
            await self._run(_write_atomic, path, data)
            fut.set_result(path)
            return path
        except BaseException as exc:
            fut.set_exception(exc)
            fut.exception()  # consumed here; waiters re-raise it
            raise
        finally:
            self._fetching.pop(key, None)

    async def cached(self) -> list[str]:
        return await self._run(_cached_keys, self._cache)

    async def evict(self, keys: list[str]) -> None:
        for key in keys:
            (self._cache / key).unlink(missing_ok=True)

    async def _paths(self, files: list[ColdFile]) -> list[str]:
        return [str(p) for p in await asyncio.gather(*(self._local(f.key) for f in files))]

    async def _query(self, files: list[ColdFile], sql: str, args: list[Any]) -> list[tuple[Any, ...]]:
        paths = await self._paths(files)
        return await self._run(_duck, sql.replace("{files}", _file_list(paths)), args)

    # ---------------------------------------------------------------- reader
    async def search_logs(self, files: list[ColdFile], query: LogQuery) -> list[LogItem]:
        conds: list[str] = []
        args: list[Any] = []

        def add(sql: str, *values: Any) -> None:
            conds.append(sql)
            args.extend(values)

        if query.project_ids is not None:
            if not query.project_ids:
                return []
            add(f"project_id IN ({', '.join('?' * len(query.project_ids))})", *map(str, query.project_ids))
        if query.trace_id:
            add("trace_id = ?", query.trace_id)
        if query.session_id:
            add("session_id = ?", query.session_id)
        if query.service:
            add("service = ?", query.service)
        if query.levels:
            add(f"level IN ({', '.join('?' * len(query.levels))})", *query.levels)
        if query.since:
            add("ts >= ?", _naive(query.since))
        if query.until:
            add("ts < ?", _naive(query.until))
        if query.cursor:
            add("(ts < ? OR (ts = ? AND id < ?))", _naive(query.cursor[0]), _naive(query.cursor[0]), query.cursor[1])
        if query.q:
            add("message ILIKE ? ESCAPE '\\'", _like(query.q))
        for key, value in query.attributes:
            add("json_extract_string(attributes, ?) = ?", _path_expr(key), value)
        where = (" WHERE " + " AND ".join(conds)) if conds else ""
        rows = await self._query(
            files,
            f"SELECT {', '.join(LOG_COLUMNS)} FROM {{files}}{where} ORDER BY ts DESC, id DESC LIMIT ?",
            [*args, query.limit],
        )
        return [_log(r) for r in rows]

    async def trace_spans(self, files: list[ColdFile], trace_id: str) -> list[SpanItem]:
        rows = await self._query(
            files, f"SELECT {', '.join(SPAN_COLUMNS)} FROM {{files}} WHERE trace_id = ?", [trace_id]
        )
        return [_span(r) for r in rows]

    async def session_logs(self, files: list[ColdFile], session_id: str, limit: int) -> list[LogItem]:
        rows = await self._query(
            files,
            f"SELECT {', '.join(LOG_COLUMNS)} FROM {{files}} WHERE session_id = ? ORDER BY ts, id LIMIT ?",
            [session_id, limit],
        )
        return [_log(r) for r in rows]

    async def session_spans(self, files: list[ColdFile], session_id: str, limit: int) -> list[SpanItem]:
        rows = await self._query(
            files,
            f"SELECT {', '.join(SPAN_COLUMNS)} FROM {{files}} WHERE session_id = ? ORDER BY ts, id LIMIT ?",
            [session_id, limit],
        )
        return [_span(r) for r in rows]

    async def metric_points(
        self, files: list[ColdFile], query: MetricQuery, series: dict[uuid.UUID, MetricSeries]
    ) -> dict[uuid.UUID, list[tuple[datetime, float]]]:
        if not series:
            return {}
        ids = [str(s) for s in series]
        conds = [f"series_id IN ({', '.join('?' * len(ids))})"]
        args: list[Any] = list(ids)
        if query.since:
            conds.append("ts >= ?")
            args.append(_naive(query.since))
        if query.until:
            conds.append("ts < ?")
            args.append(_naive(query.until))
        rows = await self._query(
            files, f"SELECT series_id, ts, value FROM {{files}} WHERE {' AND '.join(conds)} ORDER BY ts", args
        )
        out: dict[uuid.UUID, list[tuple[datetime, float]]] = {}
        for sid, ts, value in rows:
            out.setdefault(uuid.UUID(sid), []).append((_aware(ts), value))
        return out


def _batches(files: list[ColdFile], max_rows: int) -> list[list[ColdFile]]:
    """Consecutive files of at most ``max_rows`` rows together (a bigger file alone)."""
    out: list[list[ColdFile]] = []
    rows = 0
    for f in files:
        if not out or rows + f.rows > max_rows:
            out.append([])
            rows = 0
        out[-1].append(f)
        rows += f.rows
    return out


def _read_parquets(blobs: list[bytes]) -> list[pa.Table]:
    # ParquetFile skips the dataset layer of read_table (~1 ms a call: most of a small file's read)
    return [pq.ParquetFile(pa.BufferReader(data)).read() for data in blobs]


def _cut(
    signal: str, tables: list[pa.Table], rows: int, before: datetime | None
) -> tuple[ColdPart | None, pa.Table]:
    """The first ``rows`` rows by (ts, id) of the tables as a part, and the rest; no part (and every
    row, sorted, as the rest) when the part would not end before ``before``."""
    tiebreak = "series_id" if signal == "points" else "id"
    table = pa.concat_tables(tables).sort_by([("ts", "ascending"), (tiebreak, "ascending")])
    head, rest = table.slice(0, rows), table.slice(rows)
    ts = head["ts"]
    if before is not None and ts[-1].as_py() >= before:
        return None, table
    ids = head["id"] if tiebreak == "id" else None
    keys: set[tuple[str, str]] = set()
    for kind, column in (("t", "trace_id"), ("s", "session_id")):
        if column in head.column_names:
            keys.update((kind, v) for v in pc.unique(head[column].drop_null()).to_pylist() if v)
    part = ColdPart(
        rows=head.num_rows,
        first=(_aware(ts[0].as_py()), ids[0].as_py() if ids is not None else 0),
        last=(_aware(ts[-1].as_py()), ids[-1].as_py() if ids is not None else 0),
        keys=frozenset(keys),
        data=head,
    )
    return part, rest


def _file_list(paths: list[str]) -> str:
    quoted = ", ".join("'" + p.replace("'", "''") + "'" for p in paths)
    return f"read_parquet([{quoted}])"


_DUCK: list[duckdb.DuckDBPyConnection] = []
_DUCK_LOCK = threading.Lock()


def _duck(sql: str, args: list[Any]) -> list[tuple[Any, ...]]:
    # one in-memory database per process; a cursor per query is cheap and safe across threads
    with _DUCK_LOCK:
        if not _DUCK:
            _DUCK.append(duckdb.connect(":memory:", config={"threads": "2"}))
        cursor = _DUCK[0].cursor()
    try:
        return cursor.execute(sql, args).fetchall()
    finally:
        cursor.close()


def _cached_keys(root: Path) -> list[str]:
    base = root / COLD_PREFIX
    if not base.is_dir():
        return []
    # a download in progress is a hidden temporary file: not a copy yet
    return [str(p.relative_to(root)) for p in base.rglob("*.parquet") if not p.name.startswith(".")]


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}")
    tmp.write_bytes(data)
    tmp.replace(path)


def _log(r: tuple[Any, ...]) -> LogItem:
    return LogItem(
        id=r[0],
        timestamp=_aware(r[1]),
        trace_id=r[2],
        span_id=r[3],
        project_id=_uuid(r[4]),
        session_id=r[5],
        user_id=_uuid(r[6]),
        service=r[7],
        level=r[8],
        message=r[9],
        attributes=json.loads(r[10] or "{}"),
    )


def _span(r: tuple[Any, ...]) -> SpanItem:
    return SpanItem(
        id=r[0],
        start=_aware(r[1]),
        trace_id=r[2],
        span_id=r[3],
        parent_span_id=r[4],
        project_id=_uuid(r[5]),
        session_id=r[6],
        user_id=_uuid(r[7]),
        service=r[8],
        name=r[9],
        kind=r[10],
        status=r[11],
        duration_ms=float(r[12]),
        attributes=json.loads(r[13] or "{}"),
        events=json.loads(r[14] or "[]"),
    )
