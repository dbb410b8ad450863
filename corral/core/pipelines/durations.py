"""Durations as pipeline files write them: Go's form (``90s``, ``10m``, ``1h30m``) plus days and weeks."""

from __future__ import annotations

import math
import re

__all__ = ["parse_duration"]

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_UNIT = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> int:
    """Whole seconds (rounded up) of a duration such as ``10m`` or ``1h30m``; ValueError otherwise."""
    text = text.strip()
    pos, total = 0, 0.0
    while pos < len(text):
        m = _PART.match(text, pos)
        if m is None:
            raise ValueError(f"{text!r} is not a duration: write it like 90s, 10m, 1h30m or 7d")
        total += float(m.group(1)) * _UNIT[m.group(2)]
        pos = m.end()
    if not text:
        raise ValueError("empty duration: write it like 90s, 10m, 1h30m or 7d")
    if total <= 0:
        raise ValueError(f"{text!r}: a duration must be longer than zero")
    return math.ceil(total)
