"""Rules every ObjectStore applies to keys, prefixes, byte ranges and listing limits.

Every adapter validates with these functions before touching its backend, so
a key that one store accepts is accepted by all of them.
"""

from __future__ import annotations

from corral.core.errors import InvalidInput
from corral.core.pagination import decode_cursor, encode_cursor

__all__ = [
    "MAX_KEY_BYTES",
    "MAX_LIST_LIMIT",
    "ByteRange",
    "check_range",
    "decode_list_token",
    "encode_list_token",
    "resolve_range",
    "validate_key",
    "validate_limit",
    "validate_prefix",
]

MAX_KEY_BYTES = 1024
MAX_LIST_LIMIT = 1000


def _check_chars(value: str, field: str) -> None:
    for ch in value:
        if ord(ch) < 0x20 or ord(ch) == 0x7F:
            raise InvalidInput(f"{field} must not contain control characters", field=field)
        if ch == "\\":
            raise InvalidInput(f"{field} must use '/' as separator, not '\\'", field=field)
    if len(value.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise InvalidInput(f"{field} is longer than {MAX_KEY_BYTES} bytes (UTF-8)", field=field)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInput(f"{field} is not valid Unicode text", field=field) from exc


def validate_key(key: str) -> str:
    """Return ``key`` if it is a valid object key, else raise InvalidInput(field="key").

    A key is 1–1024 bytes of UTF-8 made of ``/``-separated segments; no
    segment is empty, ``.`` or ``..`` (so no leading, trailing or doubled
    ``/``), and there are no control characters or backslashes.
    """
    if not isinstance(key, str) or not key:
        raise InvalidInput("key must be a non-empty string such as 'artifacts/42/build.log'", field="key")
    _check_chars(key, "key")
    for segment in key.split("/"):
        if segment == "":
            raise InvalidInput("key must not start or end with '/' or contain '//'", field="key")
        if segment in (".", ".."):
            raise InvalidInput("key must not contain '.' or '..' segments", field="key")
    return key


def validate_prefix(prefix: str) -> str:
    """Return ``prefix`` if it can start a valid key (empty is allowed).

    Otherwise raise InvalidInput(field="prefix").
    """
    if not isinstance(prefix, str):
        raise InvalidInput("prefix must be a string", field="prefix")
    if not prefix:
        return prefix
    _check_chars(prefix, "prefix")
    if prefix.startswith("/"):
        raise InvalidInput("prefix must not start with '/'", field="prefix")
    segments = prefix.split("/")
    for segment in segments[:-1]:  # the last one may be partial (or empty after a trailing '/')
        if segment in ("", ".", ".."):
            raise InvalidInput("prefix must not contain '//', '.' or '..' segments", field="prefix")
    return prefix


def validate_limit(limit: int) -> int:
    """Return ``limit`` if it is 1..MAX_LIST_LIMIT, else raise InvalidInput(field="limit")."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIST_LIMIT:
        raise InvalidInput(f"limit must be an integer from 1 to {MAX_LIST_LIMIT}", field="limit")
    return limit


ByteRange = tuple[int, int]


def resolve_range(size: int, start: int | None, end: int | None) -> ByteRange | None:
    """The inclusive byte range ``(first, last)`` to serve from an object of ``size`` bytes.

    None means the whole object (no range asked, or ``start=0`` without ``end``).
    ``end`` past the last byte is clamped. Raises InvalidInput(field="range") for a
    negative bound, ``end < start``, or a ``start`` at or past the end of the object.
    """
    check_range(start, end)
    if end is None and not start:
        return None
    first = start or 0
    if first >= size:
        raise InvalidInput(f"range starts at byte {first} but the object has {size} bytes", field="range")
    last = size - 1 if end is None else min(end, size - 1)
    return first, last


def check_range(start: int | None, end: int | None) -> None:
    """The size-independent part of resolve_range's validation."""
    for name, value in (("start", start), ("end", end)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise InvalidInput(f"range {name} must be a non-negative integer", field="range")
    if start is not None and end is not None and end < start:
        raise InvalidInput("range end must not be before its start", field="range")


def encode_list_token(last_key: str) -> str:
    """The ``next_token`` of stores that page by key: an opaque form of the last key returned."""
    return encode_cursor({"after": last_key})


def decode_list_token(token: str | None) -> str | None:
    """The last key of the previous page, or None.

    A token this module did not make raises InvalidInput(field="token").
    """
    if token is None:
        return None
    try:
        values = decode_cursor(token)
    except InvalidInput as exc:
        raise InvalidInput("token is not a next_token returned by this store", field="token") from exc
    after = values.get("after") if values else None
    if not isinstance(after, str):
        raise InvalidInput("token is not a next_token returned by this store", field="token")
    return after
