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


def _b64(raw: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def test_cursors_are_signed_so_a_forged_or_tampered_one_is_a_400_naming_cursor() -> None:
    import json

    good = encode_cursor({"name": "alice"})
    forged = [
        _b64(json.dumps({"name": 123}).encode()),  # the attack: an unsigned cursor with a wrong type
        _b64(json.dumps({"t": "2026-01-01T00:00:00+00:00", "i": int("9" * 400)}).encode()),
        good[:-2] + ("AA" if not good.endswith("AA") else "BB"),  # tag tampered
        _b64(b'{"name":"bob"}' + bytes(16)),  # a zero tag
        "A" * 5000,  # too long to be ours
        "",
    ]
    for cursor in forged[:-1]:
        with pytest.raises(InvalidInput) as info:
            decode_cursor(cursor)
        assert info.value.field == "cursor", cursor
    assert decode_cursor(forged[-1]) is None


def test_the_cursor_key_is_installed_once_and_cursors_of_another_key_are_refused() -> None:
    from corral.core import pagination

    before = pagination._key
    try:
        pagination.configure_cursor_key(b"k" * 32)
        mine = encode_cursor({"after": "x"})
        assert decode_cursor(mine) == {"after": "x"}
        pagination.configure_cursor_key(b"other key, 32 bytes long......!")
        with pytest.raises(InvalidInput):
            decode_cursor(mine)
        pagination.configure_cursor_key(b"k" * 32)  # the same key (another replica, a restart): accepted again
        assert decode_cursor(mine) == {"after": "x"}
        with pytest.raises(ValueError):
            pagination.configure_cursor_key(b"short")
    finally:
        pagination.configure_cursor_key(before)


def test_cursor_values_are_type_checked_by_their_users() -> None:
    from corral.core.pagination import cursor_int, cursor_str

    assert cursor_str(None, "name") is None and cursor_int(None, "i") is None
    assert cursor_str({"name": "a"}, "name") == "a"
    assert cursor_int({"i": 5}, "i") == 5
    for values, read in (({"name": 123}, cursor_str), ({"i": "5"}, cursor_int), ({"i": True}, cursor_int),
                         ({"i": 2**63}, cursor_int), ({"i": -1}, cursor_int), ({}, cursor_str)):
        with pytest.raises(InvalidInput) as info:
            read(values, next(iter(values), "name"))  # type: ignore[operator]
        assert info.value.field == "cursor"


def test_observe_and_issue_cursors_refuse_values_out_of_range() -> None:
    from corral.core.observe.query import parse_cursor
    from corral.core.projects.issues import number_cursor

    for values in ({"t": "2026-01-01T00:00:00+00:00", "i": int("9" * 400)}, {"t": 5, "i": 1},
                   {"t": "2026-01-01T00:00:00", "i": 1}, {"t": "yesterday", "i": 1}):
        with pytest.raises(InvalidInput):
            parse_cursor(encode_cursor(values))
    assert parse_cursor(encode_cursor({"t": "2026-01-01T00:00:00+00:00", "i": 7}))[1] == 7  # type: ignore[index]
    for values in ({"before": 2**40}, {"before": "3"}, {"before": None}):
        with pytest.raises(InvalidInput):
            number_cursor(encode_cursor(values))


async def test_replicas_sharing_a_master_key_accept_each_others_cursors(tmp_path) -> None:
    """The cursor key is derived from the master key at bootstrap: the same on every replica and after a
    restart; another master key makes another key."""
    from corral.core import pagination
    from corral.entrypoints.bootstrap import start_platform
    from corral.entrypoints.config import Settings
    from corral.entrypoints.masterkey import generate_master_key

    before = pagination._key
    master = generate_master_key()
    try:
        keys = []
        for i, key in enumerate((master, master, generate_master_key())):
            platform = await start_platform(Settings(profile="memory", data_dir=tmp_path / str(i), master_key=key))
            keys.append(pagination._key)
            await platform.aclose()
        assert keys[0] == keys[1] != keys[2]
        assert before not in keys
    finally:
        pagination.configure_cursor_key(before)
