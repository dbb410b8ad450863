"""The rendering the UI does in Python rather than per template expression (large diffs, trace waterfalls): the
same numbers and classes as before, and every piece of hostile text escaped."""

from __future__ import annotations

from datetime import UTC, datetime

from corral.core.observe.model import SpanItem
from corral.core.observe.query import TraceView, WaterfallSpan
from corral.entrypoints.web.ui.observe import trace_html, waterfall
from corral.entrypoints.web.ui.render import diff_rows, env, parse_patch

NOW = datetime(2026, 1, 1, tzinfo=UTC)
XSS = "<script>window.__xss=1</script><img src=x onerror=\"window.__xss=2\">"

PATCH = f"""\
diff --git a/app.py b/app.py
index 1111111..2222222 100644
--- a/app.py
+++ b/app.py
@@ -1,4 +1,4 @@ def main():
 keep = 1
-old = '{XSS}'
+new = "{XSS}"
 tail = 2

 end
\\ No newline at end of file
diff --git a/logo.png b/logo.png
Binary files a/logo.png and b/logo.png differ
"""


def test_parse_patch_numbers_lines_and_counts_changes() -> None:
    app, logo = parse_patch(PATCH)
    assert (app.path, app.additions, app.deletions, logo.binary) == ("app.py", 1, 1, True)
    kinds = [(line.kind, line.old, line.new) for line in app.lines]
    assert kinds == [("hunk", None, None), ("ctx", 1, 1), ("del", 2, None), ("add", None, 2), ("ctx", 3, 3),
                     ("ctx", 4, 4), ("ctx", 5, 5), ("note", None, None)]
    assert app.lines[2].text == f"old = '{XSS}'"


def test_diff_rows_escape_every_text_and_keep_the_numbers() -> None:
    app = parse_patch(PATCH)[0]
    html = str(diff_rows(app.lines))
    assert "<script>" not in html and "<img" not in html
    assert "&lt;script&gt;window.__xss=1&lt;/script&gt;&lt;img src=x onerror=&quot;window.__xss=2&quot;&gt;" in html
    assert html.count("<tr") == len(app.lines)
    assert ('<tr class="del"><td class="ln">2</td><td class="ln"></td><td class="code"><span class="mark">-</span>'
            "old = &#x27;") in html
    assert '<tr class="hunk"><td colspan="3">@@ -1,4 +1,4 @@ def main():</td></tr>' in html
    assert '<tr class="ctx"><td class="ln">4</td><td class="ln">4</td><td class="code"><span class="mark"> </span>' \
           "</td></tr>" in html  # the empty context line
    assert str(diff_rows([])) == ""


def test_the_diff_macro_renders_the_rows_once_per_file() -> None:
    files = parse_patch(PATCH)
    html = env().from_string('{% from "_macros.html" import diff %}{{ diff(files) }}').render(files=files)
    assert html.count('class="diff-file"') == 2 and "Binary file" in html
    assert html.count("<tr") == len(files[0].lines)
    assert "<script>" not in html


def _span(name: str, parent: str | None, **kw: object) -> SpanItem:
    fields: dict[str, object] = {
        "id": 1, "start": NOW, "trace_id": "a" * 32, "span_id": name[:1] * 16, "parent_span_id": parent,
        "name": name, "service": "svc", "kind": "server", "status": "unset", "duration_ms": 100.0, "project_id": None,
        "session_id": None, "user_id": None, "attributes": {}, "events": [], **kw}
    return SpanItem(**fields)  # type: ignore[arg-type]


def test_trace_html_escapes_span_text_and_places_the_bars() -> None:
    root = _span("a" + XSS, None, attributes={"z": 1, "k": XSS, "nested": {"b": [1, 2], "a": None}})
    child = _span("b-call", "a" * 16, status="error", duration_ms=50.0, session_id="s<1>",
                  events=[{"name": XSS}])
    bars, _, _ = waterfall(TraceView("a" * 32, [WaterfallSpan(root, 0, 0.0), WaterfallSpan(child, 1, 25.0)]))
    svg, details = (str(x) for x in trace_html(bars))
    for html in (svg, details):
        assert "<script>" not in html and "<img" not in html
    assert svg.count("<g data-span=") == 2 and svg.count('class="bar-err"') == 1
    assert f'<rect class="bar" x="{bars[0].x}" y="23" width="{bars[0].width}" height="14" rx="2"></rect>' in svg
    assert details.count("<details id=\"span-") == 2 and 'id="span-1"' in details
    # attributes one key a line, sorted, hostile text escaped; nested values compact on their line
    assert ("<pre>{\n &quot;k&quot;: &quot;&lt;script&gt;") in details
    assert "&quot;nested&quot;: {&quot;a&quot;: null, &quot;b&quot;: [1, 2]},\n &quot;z&quot;: 1\n}" in details
    assert "<dt>Session</dt><dd>s&lt;1&gt;</dd>" in details
    assert "<dt>Events</dt>" in details and "(parent <code>aaaaaaaaaaaaaaaa</code>)" in details
    assert "at +25.0 ms" in details and "2026-01-01 00:00:00 UTC" in details


def test_trace_html_lists_the_details_of_the_first_spans_only_when_capped() -> None:
    spans = [WaterfallSpan(_span(f"{c}-step", None if i == 0 else "a" * 16), min(i, 1), float(i))
             for i, c in enumerate("abcd")]
    bars, _, _ = waterfall(TraceView("a" * 32, spans))
    svg, details = (str(x) for x in trace_html(bars, 2))
    assert svg.count("<g data-span=") == 4  # every span keeps its bar
    assert [f'id="span-{i}"' in details for i in range(4)] == [True, True, False, False]
    assert str(trace_html(bars)[1]).count("<details") == 4
