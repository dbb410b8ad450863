"""Moving old telemetry from the hot tier into Parquet files, and expiring the cold tier.

Crash safety comes from the order of steps, one snapshot and deterministic names:
1. read every row of one signal in a time window (within one UTC day) in ONE database snapshot,
   grouped by project; the window adapts its width to hold about ``rows_per_window`` rows;
2. write each project's rows as one object whose key is derived from those rows (re-running
   writes the same key with the same bytes);
3. in the snapshot's transaction record the files in the manifest and delete exactly the rows
   read (rows arriving in the window meanwhile are not in the snapshot: they stay hot for the
   next pass).
A crash before 3 leaves the rows hot (and maybe orphan objects that no query reads); a
crash after 3 leaves nothing to redo. So no row is lost or duplicated, and a second run
is a no-op. Only the leader (advisory lock) runs this.

Throughput (tests/bench/bench_rotation.py): one sequential read per window instead of one
per (day, project) file, and no row ever becomes a Python object on the PostgreSQL path.

Orphans (an object written just before a crash, or one whose manifest row expired before the
object was deleted) are deleted by each pass once they are older than ``orphan_grace``: the
grace covers a rotation between its step 2 and step 3.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from datetime import UTC, date, datetime, time, timedelta

import attrs

from corral.core.audit.model import AuditEntry
from corral.core.clock import Clock
from corral.core.ids import uuid7
from corral.core.observe.alerts import Actor
from corral.core.observe.ports import SIGNALS, ColdFile, ColdManifest, ColdWriter, HotArchive, HotWindow

__all__ = ["COLD_KEY_NS", "COLD_PREFIX", "ColdRotation", "RotationReport", "cold_key", "forced_rotation_entry",
           "new_cold_file"]

log = logging.getLogger(__name__)
COLD_PREFIX = "telemetry/"  # every cold-tier object key starts so
COLD_KEY_NS = uuid.UUID("0b5e0c8e-9d4f-4a57-8c61-7a1f3f0f2e11")
_MIN_WIDTH = timedelta(milliseconds=10)
_Opened = tuple[HotWindow, datetime, datetime, timedelta]  # a window, its start and end, its width


def _ts_us(ts: datetime) -> int:
    return int(ts.timestamp() * 1_000_000)


def cold_key(
    signal: str, day: date, project_id: uuid.UUID | None, first: tuple[datetime, int], last: tuple[datetime, int],
    rows: int,
) -> str:
    """The deterministic object key of a file holding exactly ``rows`` rows from ``first`` to
    ``last`` ((ts, id) of the first and last row, sorted by time)."""
    if signal == "points":
        span = f"{_ts_us(first[0])}-{_ts_us(last[0])}"
    else:
        span = f"{_ts_us(first[0])}.{first[1]:x}-{_ts_us(last[0])}.{last[1]:x}"
    project = str(project_id) if project_id else "none"
    return f"{COLD_PREFIX}{signal}/day={day.isoformat()}/project={project}/{span}-{rows}.parquet"


def new_cold_file(
    key: str,
    signal: str,
    day: date,
    project_id: uuid.UUID | None,
    rows: int,
    first: tuple[datetime, int],
    last: tuple[datetime, int],
    size: int,
) -> ColdFile:
    """The manifest row of a file just written under ``key`` (its id derives from the key)."""
    return ColdFile(
        id=uuid.uuid5(COLD_KEY_NS, key), signal=signal, day=day, project_id=project_id, key=key, rows=rows,
        min_ts=first[0], max_ts=last[0], bytes=size,
    )


@attrs.define
class CompactionReport:
    """What one cold-tier compaction pass did (corral.core.observe.compaction; here so that a rotation
    report can carry it without an import cycle)."""

    groups: int = 0  # groups merged
    files_in: int = 0
    files_out: int = 0
    rows: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    abandoned: int = 0  # groups left alone because a file vanished meanwhile
    retired_deleted: int = 0  # retired files deleted after the grace


@attrs.define
class RotationReport:
    files: int = 0
    rows: int = 0
    expired_files: int = 0
    dropped_partitions: int = 0
    orphans_deleted: int = 0
    compaction: CompactionReport | None = None  # the compaction pass run after this one, if any


def forced_rotation_entry(actor: Actor, report: RotationReport, older_than: timedelta | None,
                          now: datetime) -> AuditEntry:
    """The audit row of a rotation an operator forced (what it moved and dropped)."""
    return AuditEntry(
        id=uuid7(), actor_id=actor.user_id, actor_name=actor.name, action="observe.rotate", resource="cold_tier",
        created_at=now, ip_addr=actor.ip_addr,
        detail={"older_than_seconds": None if older_than is None else older_than.total_seconds(),
                "files": report.files, "rows": report.rows, "expired_files": report.expired_files,
                "dropped_partitions": report.dropped_partitions},
    )


@attrs.define
class ColdRotation:
    """One pass: rotate every signal older than its hot retention, then expire old cold days."""

    hot: HotArchive
    manifest: ColdManifest
    writer: ColdWriter
    clock: Clock
    hot_retention: dict[str, timedelta] = attrs.Factory(
        lambda: {"logs": timedelta(hours=48), "spans": timedelta(hours=48), "points": timedelta(hours=1)}
    )
    cold_retention: timedelta = timedelta(days=90)
    # Rows read per window (each project's rows of a window become one file). A window holding more
    # than twice this is read again narrower, which bounds the rotation's memory.
    rows_per_window: int = 200_000
    orphan_grace: timedelta = timedelta(hours=1)  # an unlisted object younger than this may be mid-rotation

    async def run_once(self, *, now: datetime | None = None, older_than: timedelta | None = None) -> RotationReport:
        """One pass. ``older_than`` overrides every hot retention (an operator forcing a rotation)."""
        now = now or self.clock.now()
        report = RotationReport()
        for signal in SIGNALS:
            cutoff = now - (self.hot_retention[signal] if older_than is None else older_than)
            for day in await self.hot.old_days(signal, cutoff):
                await self._day(signal, day, cutoff, report)
        report.dropped_partitions = await self.hot.drop_empty_partitions(now - max(self.hot_retention.values()))
        expired = await self.manifest.expire((now - self.cold_retention).date())
        for f in expired:
            await self.writer.delete(f.key)
        report.expired_files = len(expired)
        report.orphans_deleted = await self._delete_orphans(now - self.orphan_grace)
        if report.files or report.expired_files or report.orphans_deleted:
            log.info(
                "cold tier rotation: %d rows into %d files, %d files expired, %d orphan objects deleted",
                report.rows,
                report.files,
                report.expired_files,
                report.orphans_deleted,
            )
        return report

    def complete_days(self, now: datetime) -> dict[str, date]:
        """Per signal, the first day that may still get new files: every earlier day was wholly
        older than the hot retention when this pass rotated it."""
        return {signal: (now - self.hot_retention[signal]).date() for signal in SIGNALS}

    async def _delete_orphans(self, written_before: datetime) -> int:
        """Delete the objects older than ``written_before`` that the manifest does not list
        (collected over the whole listing first: deleting while paging could skip keys)."""
        orphans: list[str] = []
        token: str | None = None
        while True:
            page, token = await self.writer.list_objects(token)
            old = [key for key, modified in page if modified < written_before]
            if old:
                known = await self.manifest.recorded(old)
                orphans.extend(key for key in old if key not in known)
            if token is None:
                break
        for key in orphans:
            log.warning("deleting cold-tier object %s: no manifest entry (left by a crash)", key)
            await self.writer.delete(key)
        return len(orphans)

    async def _day(self, signal: str, day: date, cutoff: datetime, report: RotationReport) -> None:
        """Window after window through the day; the next window is read while this one's files are
        written and committed (PostgreSQL's COPY overlaps pyarrow's work: their ranges are disjoint)."""
        start = datetime.combine(day, time(), tzinfo=UTC)
        stop = min(start + timedelta(days=1), cutoff)
        opened: _Opened | None = await self._open(signal, start, stop, timedelta(hours=1))
        while opened is not None:
            window, w_start, w_end, width = opened
            rows = sum(p.rows for p in window.parts)
            # the next window's width, from this one's density (a sparse day ends in one window; a
            # denser stretch than estimated costs one read over, LIMITed, and a narrower window)
            width = max(width * 8 if rows == 0 else (w_end - w_start) * self.rows_per_window / rows, _MIN_WIDTH)
            ahead = asyncio.ensure_future(self._open(signal, w_end, stop, width)) if w_end < stop else None
            try:
                await self._window(signal, day, window, report)
            except BaseException:
                if ahead is not None:
                    ahead.cancel()
                    with contextlib.suppress(BaseException):
                        late = await ahead
                        if late is not None:
                            await late[0].close()
                raise
            finally:
                await window.close()
            opened = await ahead if ahead is not None else None

    async def _open(self, signal: str, start: datetime, stop: datetime, width: timedelta) -> _Opened:
        """The window from ``start``, narrowed until it holds at most twice ``rows_per_window``."""
        while True:
            end = min(start + width, stop)
            narrowest = width <= _MIN_WIDTH  # a window this narrow is read whatever it holds
            window = await self.hot.window(signal, start, end, None if narrowest else 2 * self.rows_per_window)
            if window is not None:
                return window, start, end, width
            width = max(width / 4, _MIN_WIDTH)

    async def _window(self, signal: str, day: date, window: HotWindow, report: RotationReport) -> None:
        parts = window.parts
        if not parts:
            return
        keys = [cold_key(signal, day, p.project_id, p.first, p.last, p.rows) for p in parts]
        sizes = await asyncio.gather(*(self.writer.write(k, signal, p.data) for k, p in zip(keys, parts, strict=True)))
        files = [
            new_cold_file(key, signal, day, p.project_id, p.rows, p.first, p.last, size)
            for key, p, size in zip(keys, parts, sizes, strict=True)
        ]
        if not await window.commit(files):
            log.warning("a cold file of %s was already recorded; leaving the window's rows alone", keys[0])
            return
        report.files += len(files)
        report.rows += sum(p.rows for p in parts)
