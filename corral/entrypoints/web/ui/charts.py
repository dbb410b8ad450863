"""Line charts as SVG, built here on the server (no JavaScript): one polyline per series on a time axis, axes
with "nice" ticks and the unit, a ``<title>`` on each series and each point for hover, a legend naming each
series' labels. Pure: data in, escaped markup out (label text is user-controlled: every text is escaped)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from html import escape

import attrs
from markupsafe import Markup

__all__ = ["Chart", "Line", "Series", "label_text", "line_chart", "nice_ticks", "time_ticks", "value_text"]

WIDTH = 900
HEIGHT = 320
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 12, 36  # the plot area's margins (axis labels live there)
COLOURS = 8  # series colours in ui.css: .series-0 .. .series-7 (cycled)
MAX_DOTS = 400  # per series: more points than this get no individual <title> (the series' title still holds)
_TIME_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400,
               172800, 604800)


@attrs.frozen
class Series:
    """One series: a label (its labels as text) and its points, in time order."""

    label: str
    points: Sequence[tuple[datetime, float]]


@attrs.frozen
class Line:
    """A series as drawn: its colour class, its label, its points per unbroken run (a gap breaks the line)."""

    css: str
    label: str
    runs: list[list[tuple[float, float]]]
    count: int


@attrs.frozen
class Chart:
    svg: Markup
    lines: list[Line]
    unit: str | None


def label_text(labels: dict[str, str], fallback: str) -> str:
    """``host=a, region=eu`` (keys sorted); ``fallback`` (the metric's name) for a series without labels."""
    return ", ".join(f"{k}={v}" for k, v in sorted(labels.items())) or fallback


def value_text(value: float, unit: str | None = None) -> str:
    """A compact number (1.5k, 2M, 0.25) with the unit when there is one."""
    magnitude = abs(value)
    if magnitude >= 1e9:
        text = f"{value / 1e9:.3g}G"
    elif magnitude >= 1e6:
        text = f"{value / 1e6:.3g}M"
    elif magnitude >= 1e4:
        text = f"{value / 1e3:.3g}k"
    elif magnitude == 0 or magnitude >= 0.01:
        text = f"{value:.4g}"
    else:
        text = f"{value:.2e}"
    return f"{text} {unit}" if unit and unit != "1" else text


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values (1, 2 or 5 times a power of ten apart) covering [low, high]."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return [0.0]
    if high <= low:
        high = low + (abs(low) or 1.0)
    raw = (high - low) / max(count - 1, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.floor(low / step) * step
    ticks: list[float] = []
    value = first
    while value < high + step * 0.5 and len(ticks) < 50:
        ticks.append(round(value, 12))
        value += step
    if ticks[-1] < high:
        ticks.append(round(ticks[-1] + step, 12))
    return ticks


def time_ticks(start: datetime, end: datetime, count: int = 6) -> list[tuple[datetime, str]]:
    """Ticks on round times (1 s .. 7 d apart) between start and end, labelled HH:MM(:SS) or MM-DD HH:MM."""
    span = max((end - start).total_seconds(), 1.0)
    step = next((s for s in _TIME_STEPS if span / s <= count), _TIME_STEPS[-1])
    first = math.ceil(start.timestamp() / step) * step
    fmt = "%m-%d %H:%M" if span > 86400 else "%H:%M:%S" if step < 60 else "%H:%M"
    out = []
    t = first
    while t <= end.timestamp():
        when = datetime.fromtimestamp(t, UTC)
        out.append((when, when.strftime(fmt)))
        t += step
    return out


def _runs(points: Sequence[tuple[datetime, float]], step: float) -> list[list[tuple[datetime, float]]]:
    """The series cut at its gaps: a spacing above 1.5 times the larger of the step and the series' median
    spacing (data sent every minute, bucketed every 30 s, is a line, not dots)."""
    spacings = sorted((b[0] - a[0]).total_seconds() for a, b in itertools.pairwise(points))
    gap = 1.5 * max(step, spacings[len(spacings) // 2] if spacings else 0.0)
    runs: list[list[tuple[datetime, float]]] = []
    previous: datetime | None = None
    for when, value in points:
        if not math.isfinite(value):  # NaN/inf: a gap, never a point
            previous = None
            continue
        if previous is None or (when - previous).total_seconds() > gap:
            runs.append([])
        runs[-1].append((when, value))
        previous = when
    return runs


def line_chart(series: Sequence[Series], *, step_seconds: int, unit: str | None = None,
               since: datetime | None = None, until: datetime | None = None, title: str = "") -> Chart:
    """The chart of ``series`` (x from ``since`` to ``until`` when given, else the data's extent); a gap (see
    ``_runs``) breaks the line."""
    cut = [(s, _runs(s.points, step_seconds)) for s in series]
    every = [p for _, runs in cut for run in runs for p in run]
    if not every:
        return Chart(svg=Markup(""), lines=[], unit=unit)
    t0 = since or min(p[0] for p in every)
    t1 = until or max(p[0] for p in every)
    if t1 <= t0:  # one point in time: a step's width around it
        t0, t1 = t0 - timedelta(seconds=step_seconds / 2 or 1), t1 + timedelta(seconds=step_seconds / 2 or 1)
    v0, v1 = min(p[1] for p in every), max(p[1] for p in every)
    if v0 > 0 and (v0 == v1 or v0 < v1 * 0.75):  # positive values: the axis starts at 0 unless far above it
        v0 = 0.0
    yticks = nice_ticks(v0, v1)
    lo, hi = yticks[0], yticks[-1]
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    span_t = (t1 - t0).total_seconds()

    def x(when: datetime) -> float:
        return round(LEFT + (when - t0).total_seconds() / span_t * plot_w, 2)

    def y(value: float) -> float:
        return round(TOP + plot_h - (value - lo) / ((hi - lo) or 1.0) * plot_h, 2)

    parts = [f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}">']
    if title:
        parts.append(f"<title>{escape(title)}</title>")
    for value in yticks:
        yy = y(value)
        parts.append(f'<line class="tick" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{yy}" y2="{yy}"></line>'
                     f'<text x="{LEFT - 6}" y="{yy + 4}" text-anchor="end">{escape(value_text(value, unit))}</text>')
    for when, text in time_ticks(t0, t1):
        xx = x(when)
        parts.append(f'<line class="tick" x1="{xx}" x2="{xx}" y1="{TOP}" y2="{TOP + plot_h}"></line>'
                     f'<text x="{xx}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle">{escape(text)}</text>')
    parts.append(f'<line class="axis" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{TOP + plot_h}" y2="{TOP + plot_h}">'
                 f'</line><line class="axis" x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{TOP + plot_h}"></line>')
    if unit and unit != "1":
        parts.append(f'<text class="unit" x="4" y="{TOP + 8}">{escape(unit)}</text>')
    parts.append(f'<text class="unit" x="{WIDTH - RIGHT}" y="{HEIGHT - 4}" text-anchor="end">UTC</text>')
    lines = []
    for i, (s, runs) in enumerate(cut):
        css = f"series-{i % COLOURS}"
        placed = [[(x(w), y(v)) for w, v in run] for run in runs]
        count = sum(len(r) for r in runs)
        lines.append(Line(css=css, label=s.label, runs=placed, count=count))
        if not count:
            continue
        label = escape(s.label)
        parts.append(f'<g class="series {css}" data-series="{i}"><title>{label}</title>')
        for run in placed:
            if len(run) > 1:
                pts = " ".join(f"{px},{py}" for px, py in run)
                parts.append(f'<polyline class="line-series" points="{pts}"></polyline>')
        for run, raw in zip(placed, runs, strict=True):
            single = len(run) == 1
            for (px, py), (when, value) in zip(run, raw, strict=True):
                if count > MAX_DOTS and not single:
                    continue
                tip = f"{s.label}: {value_text(value, unit)} at {when.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"
                parts.append(f'<circle class="dot" cx="{px}" cy="{py}" r="{3 if single else 2}">'
                             f"<title>{escape(tip)}</title></circle>")
        parts.append("</g>")
    parts.append("</svg>")
    return Chart(svg=Markup("".join(parts)), lines=lines, unit=unit)  # noqa: S704 (every text escaped above)
