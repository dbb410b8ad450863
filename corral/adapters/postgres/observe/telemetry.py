"""The hot tier in PostgreSQL: COPY in, indexed reads out."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta
from typing import Any

import asyncpg

from corral.adapters.postgres.pool import no_session_reset
from corral.core.errors import Unavailable
from corral.core.observe.model import (
    LOG_COLUMNS,
    POINT_COLUMNS,
    SERIES_COLUMNS,
    SPAN_COLUMNS,
    LogItem,
    LogQuery,
    MetricName,
    MetricQuery,
    MetricSeries,
    SpanItem,
    TelemetryBatch,
    clean_batch,
    clean_rows,
)

__all__ = ["PostgresTelemetryStore", "create_telemetry_pool", "log_from_record", "span_from_record"]

_LOG_SELECT = (
    "SELECT id, ts, trace_id, span_id, project_id, session_id, user_id, service, level, message, attributes "
    "FROM log_entries"
)
_SPAN_SELECT = (
    "SELECT id, ts, trace_id, span_id, parent_span_id, project_id, session_id, user_id, service, name, kind, "
    "status, duration_ms, attributes, events FROM spans"
)
# a trace's spans: every one has the trace's id, which is not read back (span_from_record takes it)
_TRACE_SELECT = (
    "SELECT id, ts, span_id, parent_span_id, project_id, session_id, user_id, service, name, kind, status, "
    "duration_ms, attributes, events FROM spans"
)
_DRIVER_ERRORS = (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError, asyncpg.CannotConnectNowError)
# a value PostgreSQL refuses (SQLSTATE class 22: NUL in text, a bad escape in jsonb, out of range...), or one
# asyncpg cannot encode (a lone surrogate): the fault of some records, never of the whole batch
_DATA_ERRORS = (asyncpg.DataError, asyncpg.InvalidTextRepresentationError, UnicodeError, ValueError)
log = logging.getLogger(__name__)


async def create_telemetry_pool(dsn: str, *, min_size: int = 1, max_size: int = 6) -> asyncpg.Pool:
    """A pool without JSON codecs (attributes travel as JSON text).

    Its sessions plan every statement for its own parameters: a generic plan of a query over the
    day partitions cannot prune them by the time range at plan time and misjudges the rows, and a
    full-text scan of a day went from a parallel to a serial plan (p50 540 → 850 ms over 1M
    records, tests/bench/bench_query.py); planning costs well under a millisecond. No JIT either:
    such a scan costs enough to trigger it, and compiling costs ~80 ms it never wins back."""
    try:
        pool = await asyncpg.create_pool(
            dsn,
            min_size=min_size,
            max_size=max_size,
            command_timeout=60,
            server_settings={"jit": "off", "plan_cache_mode": "force_custom_plan"},
            reset=no_session_reset,  # as the main pool (corral.adapters.postgres.pool): no session state to undo
        )
    except _DRIVER_ERRORS as exc:
        raise Unavailable(f"cannot connect to PostgreSQL for telemetry ({type(exc).__name__})") from exc
    assert pool is not None
    return pool


def _hex(value: Any) -> str | None:
    return None if value is None else value.hex


def log_from_record(r: Any) -> LogItem:
    return LogItem(
        id=r[0],
        timestamp=r[1],
        trace_id=_hex(r[2]),
        span_id=r[3],
        project_id=r[4],
        session_id=r[5],
        user_id=r[6],
        service=r[7],
        level=r[8],
        message=r[9],
        attributes=json.loads(r[10]),  # a json column (044): its text as written, white space and all
    )


# PostgreSQL writes jsonb out in one canonical form (no surrounding white space): the decoder's raw_decode reads it
# without json.loads's wrapper and white-space checks, ~2.5x faster (4.5 -> 1.6 µs for a span's attributes).
_raw_decode = json.JSONDecoder().raw_decode


def _jsonb(text: str) -> Any:
    """A jsonb column's text (as the telemetry pool hands it, without a codec) as Python values; the usual empty
    list and object without parsing (a new one each time: callers may change it)."""
    if text == "[]":
        return []
    if text == "{}":
        return {}
    return _raw_decode(text)[0]


def span_from_record(r: Any, trace_id: str | None = None) -> SpanItem:
    """A span from a row of ``_SPAN_SELECT``'s columns; with ``trace_id`` (canonical hex) from a row without its
    trace_id (``_TRACE_SELECT``: all of them are the trace's), one column fewer to decode."""
    if trace_id is None:
        return SpanItem(
            id=r[0],
            start=r[1],
            trace_id=r[2].hex,
            span_id=r[3],
            parent_span_id=r[4],
            project_id=r[5],
            session_id=r[6],
            user_id=r[7],
            service=r[8],
            name=r[9],
            kind=r[10],
            status=r[11],
            duration_ms=float(r[12]),
            attributes=_jsonb(r[13]),
            events=_jsonb(r[14]),
        )
    return SpanItem(
        id=r[0],
        start=r[1],
        trace_id=trace_id,
        span_id=r[2],
        parent_span_id=r[3],
        project_id=r[4],
        session_id=r[5],
        user_id=r[6],
        service=r[7],
        name=r[8],
        kind=r[9],
        status=r[10],
        duration_ms=float(r[11]),
        attributes=_jsonb(r[12]),
        events=_jsonb(r[13]),
    )


_TABLES = {
    "logs": ("log_entries", LOG_COLUMNS),
    "spans": ("spans", SPAN_COLUMNS),
    "points": ("metric_samples", POINT_COLUMNS),
}
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags, header extension length
_COPY_TRAILER = b"\xff\xff"


async def _copy_stream(chunks: list[bytes]) -> AsyncIterator[bytes]:
    """Binary COPY rows encoded by the decoder processes, framed as one COPY stream."""
    yield _COPY_HEADER
    for chunk in chunks:
        yield chunk
    yield _COPY_TRAILER


class _Where:
    def __init__(self) -> None:
        self.parts: list[str] = []
        self.args: list[Any] = []

    def add(self, sql: str, *values: Any) -> None:
        for v in values:
            self.args.append(v)
            sql = sql.replace("?", f"${len(self.args)}", 1)
        self.parts.append(sql)

    def sql(self) -> str:
        return (" WHERE " + " AND ".join(self.parts)) if self.parts else ""


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


class PostgresTelemetryStore:
    """TelemetryWriter + TelemetryReader over the partitioned hot tables."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def ensure_partitions(self, today: date, *, back: int = 2, ahead: int = 3) -> int:
        """Create the day partitions around ``today`` (idempotent); returns how many were made."""
        async with self._pool.acquire() as conn:
            made = await conn.fetchval(
                "SELECT observe_ensure_partitions($1, $2)", today - timedelta(days=back), today + timedelta(days=ahead)
            )
        return int(made or 0)

    async def write(self, batch: TelemetryBatch) -> None:
        """One transaction for the whole batch. When PostgreSQL refuses some value of it, the batch is written
        again with its text cleaned (NUL and lone surrogates become U+FFFD) and each part isolated: only the
        records still refused are dropped (and counted in the log), never the batch."""
        try:
            try:
                async with self._pool.acquire() as conn, conn.transaction():
                    await self._insert_series(conn, clean_rows(batch.series, SERIES_COLUMNS))
                    for table, columns, rows in self._record_groups(batch):
                        await conn.copy_records_to_table(table, records=rows, columns=columns)
                    for signal, chunks in batch.encoded.items():
                        table, columns = _TABLES[signal]
                        await conn.copy_to_table(table, source=_copy_stream(chunks), columns=columns, format="binary")
            except _DATA_ERRORS as exc:
                log.warning("a telemetry batch of %d records held a value PostgreSQL refused (%s); writing it "
                            "again record by record", len(batch), type(exc).__name__)
                await self._write_isolated(clean_batch(batch))
        except _DRIVER_ERRORS as exc:
            raise Unavailable(f"telemetry storage is unreachable ({type(exc).__name__})", retry_after=2) from exc

    @staticmethod
    def _record_groups(batch: TelemetryBatch) -> list[tuple[str, tuple[str, ...], list[tuple[Any, ...]]]]:
        groups = [("log_entries", LOG_COLUMNS, batch.logs), ("spans", SPAN_COLUMNS, batch.spans),
                  ("metric_samples", POINT_COLUMNS, batch.points)]
        return [g for g in groups if g[2]]

    @staticmethod
    async def _insert_series(conn: Any, series: list[tuple[Any, ...]]) -> None:
        if not series:
            return
        cols = list(zip(*series, strict=True))
        await conn.execute(
            "INSERT INTO metric_series (id, name, labels, metric_type, unit, project_id, service, "
            "session_id, user_id) SELECT * FROM unnest($1::uuid[], $2::text[], $3::jsonb[], "
            "$4::text[], $5::text[], $6::uuid[], $7::text[], $8::text[], $9::uuid[]) "
            "ON CONFLICT (id) DO NOTHING",
            *[list(c) for c in cols],
        )

    async def _write_isolated(self, batch: TelemetryBatch) -> None:
        """``batch`` (already cleaned) in one transaction, each part under its own savepoint: a part refused
        again is split until the refused records are alone, and only they are dropped."""
        dropped = 0

        async def rows(conn: Any, insert: Any, items: list[Any]) -> None:
            nonlocal dropped
            try:
                async with conn.transaction():  # a savepoint
                    await insert(conn, items)
            except _DATA_ERRORS as exc:
                if len(items) == 1:
                    dropped += 1
                    log.warning("dropped a telemetry record PostgreSQL refuses: %s", exc)
                    return
                half = len(items) // 2
                await rows(conn, insert, items[:half])
                await rows(conn, insert, items[half:])

        async with self._pool.acquire() as conn, conn.transaction():
            if batch.series:
                await rows(conn, self._insert_series, batch.series)
            for table, columns, records in self._record_groups(batch):
                async def copy(c: Any, items: list[Any], table: str = table,
                               columns: tuple[str, ...] = columns) -> None:
                    await c.copy_records_to_table(table, records=items, columns=columns)

                await rows(conn, copy, records)
            for signal, chunks in batch.encoded.items():
                table, columns = _TABLES[signal]
                for chunk in chunks:  # the rows of one request, encoded by a decoder process
                    async def copy_encoded(c: Any, items: list[bytes], table: str = table,
                                           columns: tuple[str, ...] = columns) -> None:
                        await c.copy_to_table(table, source=_copy_stream(items), columns=columns, format="binary")

                    await rows(conn, copy_encoded, [chunk])
        if dropped:
            log.warning("telemetry batch written without %d refused part(s)", dropped)

    # ---------------------------------------------------------------- reads
    @staticmethod
    def _project(where: _Where, project_ids: tuple[uuid.UUID, ...] | None) -> None:
        if project_ids is None:
            return
        if len(project_ids) == 1:  # plain equality keeps the (project_id, ts, id) index order: no sort
            where.add("project_id = ?", project_ids[0])
        else:
            where.add("project_id = ANY(?::uuid[])", list(project_ids))

    async def search_logs(self, query: LogQuery) -> list[LogItem]:
        w = _Where()
        self._project(w, query.project_ids)
        if query.trace_id:
            w.add("trace_id = ?::uuid", query.trace_id)
        if query.session_id:
            w.add("session_id = ?", query.session_id)
        if query.service:
            w.add("service = ?", query.service)
        if query.levels:
            w.add("level = ANY(?::text[])", list(query.levels))
        if query.since:
            w.add("ts >= ?", query.since)
        if query.until:
            w.add("ts < ?", query.until)
        if query.cursor:
            w.add("(ts, id) < (?, ?)", query.cursor[0], query.cursor[1])
        if query.q:
            # ILIKE under the database's locale lowercases every message through wide characters
            # (~1 µs a row: 1.1 s for a day of 1M records, tests/bench/bench_query.py). For an ASCII
            # search text the "C" collation's ASCII-only folding finds the same rows ~3x faster: a
            # UTF-8 multibyte character never contains an ASCII byte, so only ASCII letters of the
            # message can match it either way.
            w.add('message ILIKE ? COLLATE "C"' if query.q.isascii() else "message ILIKE ?", _like(query.q))
        for key, value in query.attributes:
            w.add("attributes #>> ?::text[] = ?", key.split("/"), value)
        w.args.append(query.limit)
        sql = f"{_LOG_SELECT}{w.sql()} ORDER BY ts DESC, id DESC LIMIT ${len(w.args)}"
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(sql, *w.args)
        return [log_from_record(r) for r in rows]

    async def trace_spans(self, trace_id: str, project_ids: tuple[uuid.UUID, ...] | None) -> list[SpanItem]:
        w = _Where()
        w.add("trace_id = ?::uuid", trace_id)
        self._project(w, project_ids)
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(f"{_TRACE_SELECT}{w.sql()}", *w.args)
        if not rows:
            return []
        canonical = uuid.UUID(trace_id).hex  # as PostgreSQL read it (``?::uuid``): any case, with or without dashes
        return [span_from_record(r, canonical) for r in rows]

    async def session_logs(
        self, session_id: str, project_ids: tuple[uuid.UUID, ...] | None, limit: int
    ) -> list[LogItem]:
        w = _Where()
        w.add("session_id = ?", session_id)
        self._project(w, project_ids)
        w.args.append(limit)
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(f"{_LOG_SELECT}{w.sql()} ORDER BY ts, id LIMIT ${len(w.args)}", *w.args)
        return [log_from_record(r) for r in rows]

    async def session_spans(
        self, session_id: str, project_ids: tuple[uuid.UUID, ...] | None, limit: int
    ) -> list[SpanItem]:
        w = _Where()
        w.add("session_id = ?", session_id)
        self._project(w, project_ids)
        w.args.append(limit)
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(f"{_SPAN_SELECT}{w.sql()} ORDER BY ts, id LIMIT ${len(w.args)}", *w.args)
        return [span_from_record(r) for r in rows]

    async def metric_series(self, query: MetricQuery) -> dict[uuid.UUID, MetricSeries]:
        """The catalog entries named ``query.name`` with the labels (shared with the cold reader)."""
        w = _Where()
        w.add("name = ?", query.name)
        self._project(w, query.project_ids)
        if query.labels:
            w.add("labels @> ?::jsonb", json.dumps(dict(query.labels)))
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                f"SELECT id, name, labels, metric_type, project_id FROM metric_series{w.sql()}", *w.args
            )
        return {
            r[0]: MetricSeries(
                id=r[0],
                name=r[1],
                labels={k: str(v) for k, v in json.loads(r[2]).items()},
                metric_type=r[3],
                project_id=r[4],
            )
            for r in rows
        }

    async def metric_names(self, project_ids: tuple[uuid.UUID, ...] | None, limit: int) -> list[MetricName]:
        w = _Where()
        self._project(w, project_ids)
        w.args.append(limit)
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                f"SELECT name, min(metric_type), min(unit) FROM metric_series{w.sql()} GROUP BY name ORDER BY name "
                f"LIMIT ${len(w.args)}", *w.args)
        return [MetricName(name=r[0], metric_type=r[1], unit=r[2] or None) for r in rows]

    async def metric_points(self, query: MetricQuery) -> list[tuple[MetricSeries, list[tuple[datetime, float]]]]:
        wanted = await self.metric_series(query)
        if not wanted:
            return []
        w = _Where()
        w.add("series_id = ANY(?::uuid[])", list(wanted))
        if query.since:
            w.add("ts >= ?", query.since)
        if query.until:
            w.add("ts < ?", query.until)
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(f"SELECT series_id, ts, value FROM metric_samples{w.sql()} ORDER BY ts", *w.args)
        points: dict[uuid.UUID, list[tuple[datetime, float]]] = {}
        for r in rows:
            points.setdefault(r[0], []).append((r[1], r[2]))
        return [(wanted[sid], pts) for sid, pts in points.items()]
