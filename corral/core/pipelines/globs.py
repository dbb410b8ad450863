"""doublestar globs, as Woodpecker matches branches, refs, events and changed paths.

``*`` any run of characters except ``/``; ``**`` any run including ``/`` (``a/**/b`` also matches ``a/b``);
``?`` one character except ``/``; ``[abc]``, ``[a-z]``, ``[!a]`` / ``[^a]`` classes; ``{x,y}`` alternatives;
``\\`` escapes the next character. The whole string must match.
"""

from __future__ import annotations

import functools
import re

__all__ = ["glob_match", "glob_regex"]


def _translate(pattern: str, i: int, stop: str) -> tuple[str, int]:
    out: list[str] = []
    n = len(pattern)
    while i < n:
        c = pattern[i]
        if c in stop:
            return "".join(out), i
        if c == "\\" and i + 1 < n:
            out.append(re.escape(pattern[i + 1]))
            i += 2
        elif c == "*":
            if pattern.startswith("**", i):
                at_start = i == 0 or pattern[i - 1] == "/"
                after = i + 2
                if at_start and pattern.startswith("/", after):
                    out.append("(?:.*/)?")
                    i = after + 1
                else:
                    out.append(".*")
                    i = after
            else:
                out.append("[^/]*")
                i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[":
            j = pattern.find("]", i + 2 if pattern[i + 1:i + 2] in ("!", "^") else i + 1)
            if j < 0:
                out.append(re.escape(c))
                i += 1
                continue
            body = pattern[i + 1:j]
            negate = body[:1] in ("!", "^")
            if negate:
                body = body[1:]
            body = body.replace("\\", "\\\\")
            out.append(f"[{'^/' if negate else ''}{body}]" if negate else f"[{body}]")
            i = j + 1
        elif c == "{":
            alternatives: list[str] = []
            i += 1
            while True:
                alt, i = _translate(pattern, i, ",}")
                alternatives.append(alt)
                if i >= n:
                    raise ValueError(f"unclosed {{ in glob {pattern!r}")
                if pattern[i] == "}":
                    i += 1
                    break
                i += 1  # ","
            out.append("(?:" + "|".join(alternatives) + ")")
        else:
            out.append(re.escape(c))
            i += 1
    return "".join(out), i


@functools.lru_cache(maxsize=1024)
def glob_regex(pattern: str) -> re.Pattern[str]:
    """The compiled regular expression of a glob; ValueError when the glob is malformed."""
    body, end = _translate(pattern, 0, "")
    if end != len(pattern):  # pragma: no cover - _translate consumes everything at top level
        raise ValueError(f"malformed glob {pattern!r}")
    try:
        return re.compile(rf"\A{body}\Z", re.DOTALL)
    except re.error as exc:
        raise ValueError(f"malformed glob {pattern!r}: {exc}") from None


def glob_match(pattern: str, value: str) -> bool:
    """Whether ``value`` matches the glob ``pattern`` (a malformed glob matches nothing, as in
    doublestar; the validator reports it)."""
    try:
        return glob_regex(pattern).match(value) is not None
    except ValueError:
        return False
