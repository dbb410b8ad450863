from __future__ import annotations

import pytest

from corral.core.errors import InvalidInput
from corral.core.ids import uuid7, uuid7_time_ms
from corral.core.pagination import clamp_limit, decode_cursor, encode_cursor


def test_uuid7_is_version_7_and_monotonic() -> None:
    ids = [uuid7() for _ in range(5000)]
    assert all(i.version == 7 for i in ids)
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert uuid7_time_ms(ids[0]) > 1_700_000_000_000


def test_cursor_round_trip_and_garbage() -> None:
    c = encode_cursor({"ts": "2026-01-01T00:00:00Z", "id": "x"})
    assert decode_cursor(c) == {"ts": "2026-01-01T00:00:00Z", "id": "x"}
    assert decode_cursor(None) is None
    with pytest.raises(InvalidInput) as info:
        decode_cursor("!!!not-a-cursor")
    assert info.value.field == "cursor"


def test_limit_bounds() -> None:
    assert clamp_limit(None) == 50
    with pytest.raises(InvalidInput):
        clamp_limit(0)
    with pytest.raises(InvalidInput):
        clamp_limit(100000)
