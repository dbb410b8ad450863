"""The code pages' pure helpers: side-by-side diff rows and how a repository file is served raw."""

from __future__ import annotations

from corral.entrypoints.web.routes.repo import raw_headers
from corral.entrypoints.web.ui.render import parse_patch, split_rows

PATCH = """\
diff --git a/a.txt b/a.txt
--- a/a.txt
+++ b/a.txt
@@ -1,5 +1,5 @@
 one
-two
-three
+TWO
 four
-five
+FIVE
+six
\\ No newline at end of file
"""


def test_split_rows_pair_deletions_with_the_additions_after_them() -> None:
    (f,) = parse_patch(PATCH)
    rows = split_rows(f.lines)
    shown = [(r.span.kind if r.span else None,
              (r.left.kind, r.left.text, r.left.old) if r.left else None,
              (r.right.kind, r.right.text, r.right.new) if r.right else None) for r in rows]
    assert shown == [
        ("hunk", None, None),
        (None, ("ctx", "one", 1), ("ctx", "one", 1)),
        (None, ("del", "two", 2), ("add", "TWO", 2)),
        (None, ("del", "three", 3), None),
        (None, ("ctx", "four", 4), ("ctx", "four", 3)),
        (None, ("del", "five", 5), ("add", "FIVE", 4)),
        (None, None, ("add", "six", 5)),
        ("note", None, None),
    ]


def test_an_addition_before_a_deletion_is_not_paired_with_it() -> None:
    (f,) = parse_patch("diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1,1 +1,1 @@\n+new\n-old\n")
    rows = split_rows(f.lines)[1:]
    assert [(r.left.text if r.left else None, r.right.text if r.right else None) for r in rows] == [
        (None, "new"), ("old", None)]


def test_raw_files_are_never_active_content() -> None:
    for name in ("page.html", "x.svg", "app.js", "data.json", "notes.txt", "a.xhtml"):
        headers = raw_headers(f"dir/{name}")
        assert headers["Content-Type"] == "text/plain; charset=utf-8", name
        assert headers["Content-Disposition"].startswith("inline;")
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert "sandbox" in headers["Content-Security-Policy"]
    assert raw_headers("logo.png")["Content-Type"] == "image/png"
    assert raw_headers("logo.png")["Content-Disposition"].startswith("inline;")
    archive = raw_headers("dist/tool.tar.gz")
    assert archive["Content-Disposition"] == "attachment; filename*=UTF-8''tool.tar.gz"
    assert raw_headers('we"ird name.bin')["Content-Disposition"].endswith("we%22ird%20name.bin")
