"""Rendering for the web UI: the jinja2 environment (autoescaped), sanitised Markdown, highlighted code,
unified diffs and the HTML response with the UI's security headers."""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime, timedelta
from html import escape as _escape
from typing import Any

import attrs
import nh3
from aiohttp import web
from jinja2 import Environment, PackageLoader, select_autoescape
from markdown_it import MarkdownIt
from markupsafe import Markup, escape
from pygments import highlight as _pygmentize
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name, guess_lexer_for_filename
from pygments.lexers.special import TextLexer
from pygments.util import ClassNotFound

__all__ = ["SECURITY_HEADERS", "DiffFile", "DiffLine", "SplitRow", "diff_rows", "env", "highlight",
           "html_response", "markdown", "parse_patch", "render", "split_rows"]

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                               "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}
MAX_HIGHLIGHT_BYTES = 512 * 1024  # larger files are shown as plain text (still escaped)

# ---- Markdown -----------------------------------------------------------------------------------------------
_TAGS = {"a", "abbr", "b", "blockquote", "br", "code", "dd", "del", "details", "div", "dl", "dt", "em", "h1",
         "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "kbd", "li", "ol", "p", "pre", "s", "span", "strong",
         "sub", "summary", "sup", "table", "tbody", "td", "th", "thead", "tr", "ul"}
_ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt", "title"}, "span": {"class"}, "code": {"class"},
               "div": {"class"}, "pre": {"class"}, "th": {"align"}, "td": {"align"}, "ol": {"start"}}


def _fence_highlight(code: str, lang: str, _attrs: str) -> str:
    if not lang:
        return ""
    try:
        lexer = get_lexer_by_name(lang)
    except ClassNotFound:
        return ""
    return str(_pygmentize(code, lexer, HtmlFormatter(cssclass="hl", wrapcode=True)))


@functools.cache
def _md() -> MarkdownIt:
    # html=False: raw HTML in the source is shown as text; nh3 then cleans what markdown-it made
    return MarkdownIt("commonmark", {"html": False, "highlight": _fence_highlight}).enable(
        ["table", "strikethrough"])


def markdown(text: str | None) -> Markup:
    """Markdown rendered by markdown-it-py and sanitised by nh3 (safe to insert into a page)."""
    if not text:
        return Markup("")
    html = _md().render(text)
    clean = nh3.clean(html, tags=_TAGS, attributes=_ATTRIBUTES, url_schemes={"http", "https", "mailto"},
                      link_rel="noopener noreferrer nofollow")
    return Markup(clean)  # noqa: S704 (sanitised by nh3 just above)


# ---- code ---------------------------------------------------------------------------------------------------
def highlight(code: str, filename: str) -> Markup:
    """``code`` highlighted by pygments (guessing the language from ``filename``), with line anchors L1, L2..."""
    lexer: Any
    if len(code) > MAX_HIGHLIGHT_BYTES:
        lexer = TextLexer()
    else:
        try:
            lexer = guess_lexer_for_filename(filename, code[:4096])
        except ClassNotFound:
            lexer = TextLexer()
    formatter = HtmlFormatter(cssclass="hl", linenos="table", lineanchors="L", anchorlinenos=True, wrapcode=True)
    return Markup(_pygmentize(code, lexer, formatter))  # noqa: S704 (pygments escapes the source)


# ---- diffs --------------------------------------------------------------------------------------------------
@attrs.define  # not frozen: a frozen class's __init__ costs several times more, and a large diff makes thousands
class DiffLine:
    kind: str  # hunk | add | del | ctx | note
    text: str
    old: int | None = None
    new: int | None = None


@attrs.define
class DiffFile:
    path: str
    old_path: str | None = None
    lines: list[DiffLine] = attrs.field(factory=list)
    binary: bool = False
    additions: int = 0
    deletions: int = 0


_HUNK = re.compile(r"^@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@")
_DIFF_GIT = re.compile(r"^diff --git a/(.*) b/(.*)$")


def _unquote(path: str) -> str:
    return path[1:-1] if len(path) > 1 and path[0] == path[-1] == '"' else path


def parse_patch(patch: str) -> list[DiffFile]:
    """A git unified patch split into files and numbered lines (for the side-by-side-free unified view)."""
    files: list[DiffFile] = []
    current: DiffFile | None = None
    old_no = new_no = 0
    in_hunk = False
    lines: list[DiffLine] = []
    add = lines.append
    for raw in patch.splitlines():
        first = raw[:1]
        if in_hunk:  # the common case first: a hunk's lines never look like a file or hunk header
            if first == "+":
                add(DiffLine("add", raw[1:], None, new_no))
                new_no += 1
                continue
            if first == "-":
                add(DiffLine("del", raw[1:], old_no, None))
                old_no += 1
                continue
            if first == " ":
                add(DiffLine("ctx", raw[1:], old_no, new_no))
                old_no += 1
                new_no += 1
                continue
            if first == "\\":
                add(DiffLine("note", raw))
                continue
        head = _DIFF_GIT.match(raw) if first == "d" else None
        if head:
            current = DiffFile(path=_unquote(head.group(2)), old_path=_unquote(head.group(1)))
            files.append(current)
            lines = current.lines
            add = lines.append
            in_hunk = False
            continue
        if current is None:
            continue
        hunk = _HUNK.match(raw) if first == "@" else None
        if hunk:
            old_no, new_no = int(hunk.group(1)), int(hunk.group(2))
            add(DiffLine("hunk", raw))
            in_hunk = True
            continue
        if not in_hunk:
            if raw.startswith("+++ ") and raw[4:] != "/dev/null":
                current.path = _unquote(raw[4:]).removeprefix("b/")
            elif raw.startswith("Binary files"):
                current.binary = True
            continue
        add(DiffLine("ctx", raw[1:], old_no, new_no))
        old_no += 1
        new_no += 1
    for f in files:
        kinds = [line.kind for line in f.lines]
        f.additions, f.deletions = kinds.count("add"), kinds.count("del")
    return files


@attrs.frozen
class SplitRow:
    """One row of the side-by-side view: the old line on the left, the new one on the right (either may be
    missing); a hunk header or a note spans both sides (``span``)."""

    left: DiffLine | None = None
    right: DiffLine | None = None
    span: DiffLine | None = None


def split_rows(lines: list[DiffLine]) -> list[SplitRow]:
    """A file's unified lines as side-by-side rows: a run of deletions is paired with the additions after it."""
    rows: list[SplitRow] = []
    dels: list[DiffLine] = []
    adds: list[DiffLine] = []

    def flush() -> None:
        for i in range(max(len(dels), len(adds))):
            rows.append(SplitRow(dels[i] if i < len(dels) else None, adds[i] if i < len(adds) else None))
        dels.clear()
        adds.clear()

    for line in lines:
        if line.kind == "del":
            if adds:
                flush()
            dels.append(line)
        elif line.kind == "add":
            adds.append(line)
        else:
            flush()
            rows.append(SplitRow(line, line) if line.kind == "ctx" else SplitRow(span=line))
    flush()
    return rows


_MARKS = {"add": "+", "del": "-", "ctx": " ", "note": ""}


def diff_rows(lines: list[DiffLine]) -> Markup:
    """A file's lines as the rows of ``table.diff``, built in one pass here: a template loop over thousands of
    lines (an autoescaped expression per cell) is what made a large diff page slow."""
    out = []
    # one escape over every text at once (a text never holds a line break: parse_patch split on them)
    texts = _escape("\n".join([line.text for line in lines])).split("\n") if lines else []
    for line, text in zip(lines, texts, strict=True):
        if line.kind == "hunk":
            out.append(f'<tr class="hunk"><td colspan="3">{text}</td></tr>')
        else:
            old = "" if line.old is None else line.old
            new = "" if line.new is None else line.new
            out.append(f'<tr class="{line.kind}"><td class="ln">{old}</td><td class="ln">{new}</td>'
                       f'<td class="code"><span class="mark">{_MARKS[line.kind]}</span>{text}</td></tr>')
    return Markup("\n".join(out))  # noqa: S704 (every text escaped just above; kinds and numbers are ours)


# ---- formatting ---------------------------------------------------------------------------------------------
def ago(value: datetime | None) -> str:
    """'3 minutes ago' (the exact time is in the title attribute the templates add)."""
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    seconds = int((datetime.now(UTC) - value).total_seconds())
    if seconds < 0:
        return "just now" if seconds > -60 else value.strftime("%Y-%m-%d %H:%M")
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = seconds // size
            if unit == "day" and n > 30:
                return value.strftime("%Y-%m-%d")
            return f"{n} {unit}{'s' if n != 1 else ''} ago"
    return "just now"


def when(value: datetime | None) -> str:
    if value is None:
        return ""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def duration(value: float | timedelta | None) -> str:
    if value is None:
        return ""
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if seconds < 1:
        return f"{int(seconds * 1000)} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, sec = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {sec} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def first_line(text: str | None) -> str:
    return (text or "").strip().split("\n", 1)[0]


def size(value: int | None) -> str:
    if value is None:
        return ""
    step = 1024.0
    number = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if number < step or unit == "GiB":
            return f"{int(number)} {unit}" if unit == "B" else f"{number:.1f} {unit}"
        number /= step
    return str(value)


@functools.cache
def env() -> Environment:
    environment = Environment(
        loader=PackageLoader("corral.entrypoints.web.ui", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True, lstrip_blocks=True, enable_async=False,
        # compiled once per process: checking every template file (and each one it extends or imports) for changes
        # on every page cost a stat per file per request
        auto_reload=False,
    )
    environment.filters.update(markdown=markdown, ago=ago, when=when, duration=duration, first_line=first_line,
                               size=size, diff_rows=diff_rows, short=lambda sha: (sha or "")[:10],
                               split_rows=split_rows)
    return environment


def render(template: str, **context: Any) -> str:
    return env().get_template(template).render(**context)


def html_response(body: str, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    merged = {**SECURITY_HEADERS, "Cache-Control": "no-store", **(headers or {})}
    return web.Response(text=body, status=status, content_type="text/html", charset="utf-8", headers=merged)


def text(value: object) -> Markup:
    return escape(value)
