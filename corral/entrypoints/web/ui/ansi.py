"""ANSI colours of a log line as HTML spans: the text is escaped first, only the SGR codes become classes."""

from __future__ import annotations

import re

from markupsafe import Markup, escape

__all__ = ["ansi_html", "strip_ansi"]

_SGR = re.compile(r"\x1b\[([0-9;]*)m")
_OTHER = re.compile(r"\x1b(?:\[[0-9;?]*[A-Za-z]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")


def strip_ansi(text: str) -> str:
    return _OTHER.sub("", _SGR.sub("", text))


def _apply(codes: list[int], fg: str | None, bg: str | None, bold: bool) -> tuple[str | None, str | None, bool]:
    i = 0
    while i < len(codes):
        c = codes[i]
        if c == 0:
            fg, bg, bold = None, None, False
        elif c == 1:
            bold = True
        elif c == 22:
            bold = False
        elif 30 <= c <= 37 or 90 <= c <= 97:
            fg = str(c)
        elif c == 39:
            fg = None
        elif 40 <= c <= 47 or 100 <= c <= 107:
            bg = str(c)
        elif c == 49:
            bg = None
        elif c in (38, 48) and i + 1 < len(codes):  # 256-colour / true colour: skipped (kept readable)
            i += 2 if codes[i + 1] == 5 else 4
        i += 1
    return fg, bg, bold


def ansi_html(line: str) -> Markup:
    """``line`` with its SGR colour codes as ``<span class="a-31 a-b">``; every character of text is escaped."""
    out: list[str] = []
    fg: str | None = None
    bg: str | None = None
    bold = False
    pos = 0
    for m in _SGR.finditer(line):
        _chunk(out, line[pos:m.start()], fg, bg, bold)
        codes = [int(x) for x in m.group(1).split(";") if x.isdigit() and len(x) <= 3] or [0]
        fg, bg, bold = _apply(codes, fg, bg, bold)
        pos = m.end()
    _chunk(out, line[pos:], fg, bg, bold)
    return Markup("".join(out))  # noqa: S704 (text escaped in _chunk, classes from digits only)


def _chunk(out: list[str], text: str, fg: str | None, bg: str | None, bold: bool) -> None:
    text = _OTHER.sub("", text)
    if not text:
        return
    classes = [f"a-{fg}"] if fg else []
    classes += [f"a-{bg}"] if bg else []
    classes += ["a-b"] if bold else []
    if classes:
        out.append(f'<span class="{" ".join(classes)}">{escape(text)}</span>')
    else:
        out.append(str(escape(text)))
