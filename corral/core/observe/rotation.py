"""Moving old telemetry from the hot tier into Parquet files, and expiring the cold tier.

Crash safety comes from the order of steps and deterministic names:
1. take the oldest rows of one (signal, day, project) partition, up to a file's worth;
2. write them as one object whose key is derived from those rows (re-running writes the
   same key with the same bytes);
3. in ONE database transaction record the file in the manifest and delete exactly those
   hot rows.
A crash before 3 leaves the rows hot (and maybe an orphan object that no query reads); a
crash after 3 leaves nothing to redo. So no row is lost or duplicated, and a second run
is a no-op. Only the leader (advisory lock) runs this.

Orphans (an object written just before a crash, or one whose manifest row expired before the
object was deleted) are deleted by each pass once they are older than ``orphan_grace``: the
grace covers a rotation between its step 2 and step 3.
"""

from __future__ import annotations

import logging
import uuid
from datetime import date, datetime, timedelta
from typing import Any

import attrs

from corral.core.clock import Clock
from corral.core.observe.ports import SIGNALS, ColdFile, ColdManifest, ColdWriter, HotArchive

__all__ = ["COLD_PREFIX", "ColdRotation", "RotationReport", "cold_key"]

log = logging.getLogger(__name__)
COLD_PREFIX = "telemetry/"  # every cold-tier object key starts so
_KEY_NS = uuid.UUID("0b5e0c8e-9d4f-4a57-8c61-7a1f3f0f2e11")


def _ts_us(ts: datetime) -> int:
    return int(ts.timestamp() * 1_000_000)


def cold_key(signal: str, day: date, project_id: uuid.UUID | None, rows: list[dict[str, Any]]) -> str:
    """The deterministic object key of a file holding exactly ``rows`` (sorted by time)."""
    first, last = rows[0], rows[-1]
    if signal == "points":
        span = f"{_ts_us(first['ts'])}-{_ts_us(last['ts'])}"
    else:
        span = f"{_ts_us(first['ts'])}.{first['id']:x}-{_ts_us(last['ts'])}.{last['id']:x}"
    project = str(project_id) if project_id else "none"
    return f"{COLD_PREFIX}{signal}/day={day.isoformat()}/project={project}/{span}-{len(rows)}.parquet"


@attrs.define
class RotationReport:
    files: int = 0
    rows: int = 0
    expired_files: int = 0
    dropped_partitions: int = 0
    orphans_deleted: int = 0


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
    rows_per_file: int = 100_000  # bounds the rotation's memory (rows are held as dicts while encoded)
    orphan_grace: timedelta = timedelta(hours=1)  # an unlisted object younger than this may be mid-rotation

    async def run_once(self, *, now: datetime | None = None, older_than: timedelta | None = None) -> RotationReport:
        """One pass. ``older_than`` overrides every hot retention (an operator forcing a rotation)."""
        now = now or self.clock.now()
        report = RotationReport()
        for signal in SIGNALS:
            cutoff = now - (self.hot_retention[signal] if older_than is None else older_than)
            for day, project_id in await self.hot.old_partitions(signal, cutoff):
                await self._partition(signal, day, project_id, cutoff, report)
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

    async def _partition(
        self, signal: str, day: date, project_id: uuid.UUID | None, cutoff: datetime, report: RotationReport
    ) -> None:
        while True:
            rows = await self.hot.take(signal, day, project_id, cutoff, self.rows_per_file)
            if not rows:
                return
            key = cold_key(signal, day, project_id, rows)
            size = await self.writer.write(key, signal, rows)
            file = ColdFile(
                id=uuid.uuid5(_KEY_NS, key),
                signal=signal,
                day=day,
                project_id=project_id,
                key=key,
                rows=len(rows),
                min_ts=rows[0]["ts"],
                max_ts=rows[-1]["ts"],
                bytes=size,
            )
            if not await self.hot.commit_rotation(file, rows):
                log.warning("cold file %s was already recorded; leaving its rows alone", key)
                return
            report.files += 1
            report.rows += len(rows)
            if len(rows) < self.rows_per_file:
                return
