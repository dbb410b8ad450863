"""Text that PostgreSQL (and JSON) can hold, and JSON request bodies bounded in depth.

PostgreSQL ``text`` cannot hold U+0000, ``jsonb`` refuses the ``\\u0000`` escape and unpaired
surrogates, and UTF-8 cannot encode a lone surrogate at all: one such character in one record
would fail a whole COPY. ``clean_text`` / ``clean_json_text`` replace them with U+FFFD.
"""

from __future__ import annotations

import json
import re
from typing import Any

from corral.core.errors import InvalidInput

__all__ = ["MAX_JSON_DEPTH", "clean_json_text", "clean_text", "find_nul", "json_depth_exceeds", "loads_json"]

MAX_JSON_DEPTH = 64
_BAD_CHARS = re.compile("[\x00\ud800-\udfff]")
# an escaped NUL or surrogate in JSON text; a run of backslashes of odd length is an escape (even: literal "\\")
_BAD_ESCAPE = re.compile(
    r"(\\+)u(0000|[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}|[dD][89a-fA-F][0-9a-fA-F]{2})"
)


def clean_text(value: str) -> str:
    """``value`` with NUL and unpaired surrogates replaced by U+FFFD (the common case returns it unchanged)."""
    if "\x00" not in value and (value.isascii() or not _BAD_CHARS.search(value)):
        return value
    return _BAD_CHARS.sub("\ufffd", value)


def _escape(match: re.Match[str]) -> str:
    slashes, code = match[1], match[2]
    if len(slashes) % 2 == 0 or len(code) > 4:  # a literal backslash, or a valid surrogate pair: keep
        return match[0]
    return slashes + "ufffd"


def clean_json_text(doc: str) -> str:
    """JSON text whose strings hold no NUL and no unpaired surrogate, escaped or raw (both become U+FFFD)."""
    if "\\u" in doc and ("\\u0000" in doc or "\\ud" in doc or "\\uD" in doc):
        doc = _BAD_ESCAPE.sub(_escape, doc)
    return clean_text(doc)


def find_nul(value: Any, path: str = "") -> str | None:
    """The path (``a.b[2]``) of the first key or string holding NUL in a JSON value, or None."""
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return where or "body"
        elif isinstance(item, dict):
            for key, child in item.items():
                name = f"{where}.{key}" if where else str(key)
                if isinstance(key, str) and "\x00" in key:
                    return (where + "." if where else "") + key.replace("\x00", "\\u0000")
                stack.append((child, name))
        elif isinstance(item, list):
            stack.extend((child, f"{where}[{i}]") for i, child in enumerate(item))
    return None


def json_depth_exceeds(raw: bytes | str, limit: int) -> bool:
    """Whether JSON text nests arrays/objects deeper than ``limit`` (brackets inside strings are ignored).

    Cheap for the common case: text with at most ``limit`` opening brackets cannot nest deeper."""
    data = raw.encode() if isinstance(raw, str) else raw
    if data.count(b"[") + data.count(b"{") <= limit:
        return False
    data = re.sub(rb'"(?:[^"\\]|\\.)*"', b'""', data)  # strings out (escaped quotes included)
    depth = 0
    for byte in re.sub(rb"[^\[\]{}]", b"", data):
        if byte in (0x5B, 0x7B):
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def loads_json(raw: bytes | str, *, max_depth: int = MAX_JSON_DEPTH, field: str = "body", what: str = "body") -> Any:
    """``json.loads`` for untrusted input: malformed, non-UTF-8 or too deeply nested text is an InvalidInput
    naming ``field`` (never a RecursionError)."""
    if json_depth_exceeds(raw, max_depth):
        raise InvalidInput(f"{what} nests JSON arrays/objects deeper than {max_depth} levels", field=field)
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise InvalidInput(f"{what} is not valid JSON: {exc}", field=field) from exc
