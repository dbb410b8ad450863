"""Compaction of the cold tier: many small Parquet files of one (signal, day, project) into few.

A rotation writes one file per (signal, project, window); a busy platform ends a day with
hundreds of small files, and every cold query pays per file (a manifest row, an object fetch,
DuckDB opening it). Once a day is complete (before the rotation's cutoff day: no new file will
arrive for it), the files of each (signal, day, project) below ``target_rows`` are merged, in
time order, into files of exactly ``target_rows`` rows but the last (so a second pass finds at
most one small file and does nothing), sorted by time as the rotation sorts them.

Crash and query safety, from the order of steps:
1. every merged file is written under a new key (derived from its rows and from the files it
   replaces: re-running after a crash rewrites the same keys);
2. ONE manifest transaction locks the old files, records the new ones with the union of the old
   files' lookup keys for the rows each holds, and RETIRES the old ones: queries stop listing
   them at once, and if any of them vanished meanwhile (retention expired the day) nothing
   changes and the group is abandoned, its new objects left as orphans for the sweep;
3. a retired file's object is deleted (with its manifest row) only once it has been retired
   longer than ``retired_grace``: a query that listed it just before step 2 can still read it.
A crash before 2 leaves the old files listed (and orphan objects, deleted by the rotation's
orphan sweep after its grace); a crash after 2 leaves retired files that a later pass deletes.
Only the leader runs this, right after a rotation pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from datetime import date, datetime, timedelta

import attrs

from corral.core.clock import Clock
from corral.core.errors import InvalidInput, NotFound
from corral.core.observe.ports import (
    SIGNALS,
    ColdCache,
    ColdCompactionManifest,
    ColdFile,
    ColdGroup,
    ColdManifest,
    ColdMerger,
    ColdWriter,
)
from corral.core.observe.rotation import COLD_KEY_NS, CompactionReport, cold_key, new_cold_file

__all__ = ["ColdCompaction", "CompactionReport", "compacted_key", "prune_cache"]

log = logging.getLogger(__name__)


def compacted_key(group: ColdGroup, first: tuple[datetime, int], last: tuple[datetime, int], rows: int) -> str:
    """The key of a merged file: a rotation's key for its rows, marked with a digest of the files it
    replaces (a merged file may hold exactly the rows of one of them: the keys must differ)."""
    digest = uuid.uuid5(COLD_KEY_NS, "\n".join(sorted(f.key for f in group.files))).hex[:12]
    base = cold_key(group.signal, group.day, group.project_id, first, last, rows)
    return base.removesuffix(".parquet") + f".c{digest}.parquet"


async def prune_cache(cache: ColdCache, manifest: ColdManifest, batch: int = 1000) -> int:
    """Drop this replica's local copies of objects the manifest no longer records (retired files
    purged after their grace, expired days), which only the leader's own copies lost with the
    objects. Every replica runs it; a copy of a recorded file (even a retired one) is kept."""
    keys = await cache.cached()
    gone: list[str] = []
    for start in range(0, len(keys), batch):
        chunk = keys[start : start + batch]
        known = await manifest.recorded(chunk)
        gone.extend(k for k in chunk if k not in known)
    if gone:
        await cache.evict(gone)
        log.info("cold tier cache: dropped %d local copies of deleted files", len(gone))
    return len(gone)


def _check_settings(instance: ColdCompaction, attribute: attrs.Attribute[int], value: int) -> None:
    del instance
    if attribute.name == "min_files" and value == 1:
        raise InvalidInput("min_files must be 0 (compaction off) or at least 2", field="min_files")
    if value < 0 or (attribute.name != "min_files" and value == 0):
        raise InvalidInput(f"{attribute.name} must be positive", field=attribute.name)


@attrs.define
class ColdCompaction:
    """One pass: merge up to ``max_groups`` groups of small files, then delete retired files."""

    manifest: ColdCompactionManifest
    merger: ColdMerger
    writer: ColdWriter
    clock: Clock
    min_files: int = attrs.field(default=4, validator=_check_settings)  # 0: no merging (retired files still go)
    target_rows: int = attrs.field(default=1_000_000, validator=_check_settings)
    max_groups: int = attrs.field(default=8, validator=_check_settings)  # bounds one pass's duration
    retired_grace: timedelta = timedelta(hours=1)  # longer than any query that may have listed a retired file

    async def run_once(self, complete: dict[str, date], *, now: datetime | None = None) -> CompactionReport:
        """One pass. ``complete[signal]``: the first day of ``signal`` that may still get files
        (the rotation's cutoff day); only days before it are merged."""
        now = now or self.clock.now()
        report = CompactionReport()
        groups: list[ColdGroup] = []
        for signal in SIGNALS if self.min_files else ():
            left = self.max_groups - len(groups)
            if signal in complete and left > 0:
                groups += await self.manifest.compactable(
                    signal, complete[signal], self.target_rows, self.min_files, left
                )
        # a group's commit (PostgreSQL: mostly its lookup keys) runs while the next group is merged
        commit: asyncio.Future[None] | None = None
        try:
            for group in groups:
                merged = await self._prepare(group, report)
                if commit is not None:
                    await commit
                    commit = None
                if merged is not None:
                    commit = asyncio.ensure_future(self._commit(group, *merged, now, report))
            if commit is not None:
                await commit
                commit = None
        finally:
            if commit is not None:  # preparing failed: the commit in flight still finishes (or not)
                with contextlib.suppress(Exception):
                    await commit
        retired = await self.manifest.purge_retired(now - self.retired_grace)
        for f in retired:
            await self.writer.delete(f.key)
        report.retired_deleted = len(retired)
        if report.groups or report.abandoned or report.retired_deleted:
            log.info(
                "cold tier compaction: %d groups, %d files (%d bytes) into %d files (%d bytes), %d rows; "
                "%d groups abandoned, %d retired files deleted",
                report.groups,
                report.files_in,
                report.bytes_in,
                report.files_out,
                report.bytes_out,
                report.rows,
                report.abandoned,
                report.retired_deleted,
            )
        return report

    async def _prepare(
        self, group: ColdGroup, report: CompactionReport
    ) -> tuple[list[ColdFile], list[frozenset[tuple[str, str]]]] | None:
        """Write the group's merged files; their manifest rows and lookup keys (None: abandoned)."""
        new: list[ColdFile] = []
        keys: list[frozenset[tuple[str, str]]] = []
        try:
            await self._merge(group, new, keys)
        except NotFound:  # retention deleted an object meanwhile: its row went first, nothing to swap
            log.warning("cold tier compaction of %s %s abandoned: a file is gone", group.signal, group.day)
            report.abandoned += 1
            return None
        if sum(f.rows for f in new) != sum(f.rows for f in group.files):  # manifest and objects disagree
            log.error("cold tier compaction: %s files of %s read back a different row count", group.signal, group.day)
            report.abandoned += 1
            return None
        return new, keys

    async def _commit(
        self,
        group: ColdGroup,
        new: list[ColdFile],
        keys: list[frozenset[tuple[str, str]]],
        now: datetime,
        report: CompactionReport,
    ) -> None:
        old = list(group.files)
        if not await self.manifest.replace(old, new, keys, now):
            log.warning(
                "cold tier compaction of %s %s abandoned: a file was expired or retired meanwhile",
                group.signal,
                group.day,
            )
            report.abandoned += 1
            return
        report.groups += 1
        report.files_in += len(old)
        report.files_out += len(new)
        report.rows += sum(f.rows for f in old)
        report.bytes_in += sum(f.bytes for f in old)
        report.bytes_out += sum(f.bytes for f in new)

    async def _merge(self, group: ColdGroup, new: list[ColdFile], keys: list[frozenset[tuple[str, str]]]) -> None:
        """Write the group's merged files, appending them (and their lookup keys) to ``new``/``keys``."""
        async with contextlib.aclosing(self.merger.merge(group.signal, list(group.files), self.target_rows)) as parts:
            async for part in parts:
                key = compacted_key(group, part.first, part.last, part.rows)
                size = await self.writer.write(key, group.signal, part.data)
                new.append(
                    new_cold_file(
                        key, group.signal, group.day, group.project_id, part.rows, part.first, part.last, size
                    )
                )
                keys.append(part.keys)
