"""Human output: a table for listings, ``key: value`` lines for objects (``--json`` bypasses all of this)."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["render"]

_MAX_COLUMNS = 7
_MAX_WIDTH = 48


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict | list):
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    else:
        text = str(value)
    text = text.replace("\n", " ").replace("\t", " ")
    return text if len(text) <= _MAX_WIDTH else text[: _MAX_WIDTH - 1] + "…"


def _table(items: list[Any]) -> str:
    if not items:
        return "(none)"
    if not all(isinstance(i, dict) for i in items):
        return "\n".join(_cell(i) for i in items)
    columns: list[str] = []
    for item in items:
        for key, value in item.items():
            if key not in columns and not isinstance(value, dict | list):
                columns.append(key)
    if "id" in columns and ("number" in columns or "name" in columns):
        columns.remove("id")  # a UUID is noise next to the number or name people use (--json has it)
    columns = columns[:_MAX_COLUMNS] or list(items[0])[:_MAX_COLUMNS]
    rows = [[_cell(item.get(c)) for c in columns] for item in items]
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines)


def _object(value: dict[str, Any]) -> str:
    width = max((len(k) for k in value), default=0)
    lines = []
    for key, item in value.items():
        if isinstance(item, list) and item and all(isinstance(i, dict) for i in item):
            lines.append(f"{key}:")
            lines += ["  " + line for line in _table(item).splitlines()]
        elif isinstance(item, dict | list):
            lines.append(f"{key.ljust(width)}  {json.dumps(item, ensure_ascii=False)}")
        elif isinstance(item, str) and "\n" in item:
            lines.append(f"{key}:")
            lines += ["  " + line for line in item.splitlines()]
        else:
            shown = item if isinstance(item, str) else "-" if item is None else _cell(item)
            lines.append(f"{key.ljust(width)}  {shown}")
    return "\n".join(lines)


def render(payload: Any) -> tuple[str, str | None]:
    """(text for stdout, hint for stderr): a page's ``next_cursor`` becomes a hint to pass ``--cursor``."""
    if isinstance(payload, list):
        return _table(payload), None
    if isinstance(payload, dict):
        if isinstance(payload.get("items"), list) and set(payload) <= {"items", "next_cursor"}:
            cursor = payload.get("next_cursor")
            return _table(payload["items"]), (f"more: --cursor {cursor} (or --all)" if cursor else None)
        return _object(payload), None
    if payload is None:
        return "done", None
    return str(payload), None
