"""ColdMergerContract: reading cold files back merged (ColdMerger, with the tier's ColdWriter/ColdReader).

Subclasses provide an async fixture ``cold_tier``: an empty cold tier that is a ColdWriter, a
ColdReader and a ColdMerger over the same objects.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest

from corral.contracts.telemetry_store import T0, log_row
from corral.core.errors import NotFound
from corral.core.observe.model import LOG_COLUMNS, LogQuery
from corral.core.observe.ports import ColdFile

__all__ = ["ColdMergerContract"]


def _rows(seconds: list[int], **kw: Any) -> list[dict[str, Any]]:
    return [dict(zip(LOG_COLUMNS, log_row(s, **kw), strict=True)) for s in seconds]


async def _file(tier: Any, name: str, rows: list[dict[str, Any]]) -> ColdFile:
    key = f"telemetry/logs/day={T0.date()}/project=none/{name}.parquet"
    size = await tier.write(key, "logs", rows)
    return ColdFile(id=uuid.uuid4(), signal="logs", day=T0.date(), project_id=None, key=key, rows=len(rows),
                    min_ts=rows[0]["ts"], max_ts=rows[-1]["ts"], bytes=size)


class ColdMergerContract:
    async def test_parts_of_exactly_max_rows_sorted_by_time_with_their_lookup_keys(self, cold_tier: Any) -> None:
        files = [
            await _file(cold_tier, "a", _rows([0, 3, 6, 9, 12], trace_id="a" * 32)),
            await _file(cold_tier, "b", _rows([1, 4, 7, 10], session_id="s-b")),  # overlaps a in time
            await _file(cold_tier, "c", _rows([20, 21, 22], trace_id="c" * 32, session_id="s-c")),
        ]
        parts = [p async for p in cold_tier.merge("logs", files, 5)]
        assert [p.rows for p in parts] == [5, 5, 2]
        merged = []
        for i, part in enumerate(parts):
            key = f"telemetry/logs/day={T0.date()}/project=none/merged-{i}.parquet"
            size = await cold_tier.write(key, "logs", part.data)
            written = ColdFile(id=uuid.uuid4(), signal="logs", day=T0.date(), project_id=None, key=key,
                               rows=part.rows, min_ts=part.first[0], max_ts=part.last[0], bytes=size)
            items = await cold_tier.search_logs([written], LogQuery(limit=100))
            assert len(items) == part.rows
            oldest_first = sorted(items, key=lambda x: (x.timestamp, x.id))
            assert (oldest_first[0].timestamp, oldest_first[0].id) == part.first
            assert (oldest_first[-1].timestamp, oldest_first[-1].id) == part.last
            expected = {("t", x.trace_id) for x in items if x.trace_id}
            expected |= {("s", x.session_id) for x in items if x.session_id}
            assert part.keys == expected
            merged += oldest_first
        assert [x.timestamp for x in merged] == [T0 + timedelta(seconds=s) for s in
                                                 (0, 1, 3, 4, 6, 7, 9, 10, 12, 20, 21, 22)]
        assert parts[0].keys == {("t", "a" * 32), ("s", "s-b")}
        assert parts[2].keys == {("t", "c" * 32), ("s", "s-c")}

    async def test_a_missing_object_is_not_found(self, cold_tier: Any) -> None:
        present = await _file(cold_tier, "present", _rows([0, 1]))
        gone = ColdFile(id=uuid.uuid4(), signal="logs", day=T0.date(), project_id=None,
                        key=f"telemetry/logs/day={T0.date()}/project=none/gone.parquet", rows=2,
                        min_ts=T0, max_ts=T0, bytes=1)
        with pytest.raises(NotFound):
            _ = [p async for p in cold_tier.merge("logs", [present, gone], 10)]
