"""The pure parts of the UI's operations pages: ANSI colours as escaped spans, the DAG columns of a workflow, the
trace waterfall's geometry, the TOTP QR code."""

from __future__ import annotations

import base64
import urllib.parse
import uuid
from datetime import UTC, datetime

from corral.core.observe.model import SpanItem
from corral.core.observe.query import TraceView, WaterfallSpan
from corral.core.pipelines.runs import Status, StepKind, StepRun, WorkflowRun
from corral.entrypoints.web.ui.account import qr_svg
from corral.entrypoints.web.ui.ansi import ansi_html, strip_ansi
from corral.entrypoints.web.ui.observe import LABEL, WIDTH, waterfall
from corral.entrypoints.web.ui.pipelines import graph

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_ansi_colours_become_classes_and_text_is_escaped() -> None:
    html = str(ansi_html("\x1b[1;31m<b>fail</b>\x1b[0m & <img src=x onerror=alert(1)>"))
    assert html == ('<span class="a-31 a-b">&lt;b&gt;fail&lt;/b&gt;</span> &amp; '
                    '&lt;img src=x onerror=alert(1)&gt;')
    assert str(ansi_html("\x1b[38;5;200mx\x1b[39m\x1b[2Ky")) == "xy"  # 256 colours dropped, erase-line removed
    assert strip_ansi("\x1b[32mok\x1b[0m") == "ok"


def _step(name: str, wf: uuid.UUID, position: int, deps: tuple[str, ...] = (),
          kind: StepKind = StepKind.STEP) -> StepRun:
    return StepRun(id=uuid.uuid4(), pipeline_id=uuid.uuid4(), workflow_id=wf, project_id=uuid.uuid4(),
                   position=position, name=name, kind=kind, status=Status.SUCCESS, depends_on=deps,
                   started_at=NOW, finished_at=NOW)


def test_graph_puts_each_step_right_of_what_it_depends_on() -> None:
    wf = WorkflowRun(id=uuid.uuid4(), pipeline_id=uuid.uuid4(), project_id=uuid.uuid4(), position=0, name="ci",
                     status=Status.SUCCESS)
    steps = [_step("clone", wf.id, 0, kind=StepKind.CLONE), _step("lint", wf.id, 1), _step("build", wf.id, 2),
             _step("test", wf.id, 3, ("build",)), _step("ship", wf.id, 4, ("test", "lint")),
             _step("elsewhere", uuid.uuid4(), 5)]
    columns = graph(wf, steps)
    assert [[v.step.name for v in col] for col in columns] == [["clone"], ["lint", "build"], ["test"], ["ship"]]


def test_waterfall_places_bars_on_the_time_axis() -> None:
    def span(name: str, parent: str | None) -> SpanItem:
        return SpanItem(id=1, start=NOW, trace_id="a" * 32, span_id=name * 16, parent_span_id=parent, name=name,
                        service="svc", kind="server", status="error" if parent else "unset",
                        duration_ms=100.0 if parent is None else 50.0, project_id=None, session_id=None,
                        user_id=None, attributes={"k": "<v>"}, events=[])

    view = TraceView("a" * 32, [WaterfallSpan(span("a", None), 0, 0.0), WaterfallSpan(span("b", "a" * 16), 1, 25.0)])
    bars, total, ticks = waterfall(view)
    assert total == 100.0
    usable = WIDTH - LABEL - 10
    assert (bars[0].x, bars[0].width) == (LABEL, usable)
    assert (bars[1].x, bars[1].width) == (LABEL + usable / 4, usable / 2)
    assert [b.error for b in bars] == [False, True]
    assert ticks[-1] == (LABEL + usable, "100.0 ms")


def test_the_totp_qr_code_is_an_svg_data_uri() -> None:
    uri = qr_svg("otpauth://totp/Corral:ada?secret=JBSWY3DPEHPK3PXP&issuer=Corral")
    assert uri.startswith("data:image/svg+xml")
    svg = urllib.parse.unquote(uri.split(",", 1)[1]) if ";base64" not in uri else base64.b64decode(
        uri.split(",", 1)[1]).decode()
    assert "<svg" in svg and "<path" in svg
