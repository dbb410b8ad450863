"""PostgreSQL binary COPY encoding of telemetry rows (done in decoder processes, not the event loop).

The chunks produced here hold whole rows without the COPY header and trailer, so the chunks
of several requests concatenate into one COPY: the writer sends ``HEADER``, the chunks, then
``TRAILER``. Column types follow migrations/040_observe_hot.sql.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from corral.core.safetext import clean_json_text, clean_text

__all__ = ["HEADER", "LOG_TYPES", "POINT_TYPES", "SPAN_TYPES", "TRAILER", "encode_rows", "json_field", "jsonb", "text"]

HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
TRAILER = b"\xff\xff"
NULL = b"\xff\xff\xff\xff"
PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01 in Unix microseconds
_ONE_US = timedelta(microseconds=1)
_int8 = struct.Struct(">iq").pack
_float8 = struct.Struct(">id").pack
_len = struct.Struct(">i").pack


def _enc_int8(v: Any) -> bytes:
    return _int8(8, v)


def _enc_float8(v: Any) -> bytes:
    return _float8(8, float(v))


def _enc_ts(v: Any) -> bytes:
    return _int8(8, (v - PG_EPOCH) // _ONE_US)


def _enc_uuid(v: Any) -> bytes:
    raw = v.bytes if isinstance(v, uuid.UUID) else bytes.fromhex(v)
    return _len(16) + raw


def text(v: str) -> bytes:
    """A text field (NUL and lone surrogates, which PostgreSQL text cannot hold, become U+FFFD)."""
    raw = clean_text(v).encode()
    return _len(len(raw)) + raw


def jsonb(v: str) -> bytes:
    """A jsonb field: version byte 1, then the JSON text (escaped NUL and lone surrogates become U+FFFD)."""
    raw = clean_json_text(v).encode()
    return _len(len(raw) + 1) + b"\x01" + raw


def json_field(v: str) -> bytes:
    """A json field: the JSON text itself (PostgreSQL validates it; no version byte, unlike jsonb).
    Escaped NUL and lone surrogates become U+FFFD: json operators cannot return text holding them."""
    raw = clean_json_text(v).encode()
    return _len(len(raw)) + raw


_ENCODERS: dict[str, Callable[[Any], bytes]] = {
    "int8": _enc_int8,
    "float8": _enc_float8,
    "ts": _enc_ts,
    "uuid": _enc_uuid,
    "text": text,
    "jsonb": jsonb,
    "json": json_field,
}
LOG_TYPES = ("int8", "ts", "uuid", "text", "uuid", "text", "uuid", "text", "text", "text", "json")  # 044: json
SPAN_TYPES = (
    "int8", "ts", "uuid", "text", "text", "uuid", "text", "uuid", "text", "text", "text", "text", "float8", "jsonb",
    "jsonb",
)  # fmt: skip
POINT_TYPES = ("uuid", "ts", "float8", "uuid", "uuid", "text")


def encode_rows(rows: Sequence[tuple[Any, ...]], types: Sequence[str]) -> bytes:
    """Rows (tuples in ``types`` order, the codec's column order) as binary COPY rows."""
    encoders = [_ENCODERS[t] for t in types]
    count = struct.pack(">h", len(types))
    out: list[bytes] = []
    append = out.append
    for row in rows:
        append(count)
        for enc, value in zip(encoders, row, strict=True):
            append(NULL if value is None else enc(value))
    return b"".join(out)
