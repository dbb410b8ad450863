"""The server-rendered SVG line chart: scaling, ticks, escaping of label text, many series, one point, gaps."""

from __future__ import annotations

import itertools
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

from corral.entrypoints.web.ui.charts import (
    COLOURS,
    HEIGHT,
    LEFT,
    RIGHT,
    TOP,
    WIDTH,
    Series,
    label_text,
    line_chart,
    nice_ticks,
    time_ticks,
    value_text,
)

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
SVG = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    """The chart must be well-formed XML (inline SVG in HTML, but also served alone)."""
    return ET.fromstring(str(svg).replace("<svg ", '<svg xmlns="http://www.w3.org/2000/svg" ', 1))


def points(el: ET.Element) -> list[tuple[float, float]]:
    return [(float(a), float(b)) for a, b in (p.split(",") for p in el.attrib["points"].split())]


def test_points_scale_into_the_plot_area_in_time_and_value_order() -> None:
    data = [(T0 + timedelta(minutes=i), float(v)) for i, v in enumerate([0, 10, 5, 20])]
    chart = line_chart([Series("host=a", data)], step_seconds=60, unit="ms")
    root = parse(chart.svg)
    (line,) = root.iter(f"{SVG}polyline")
    xy = points(line)
    assert xy[0][0] == LEFT and xy[-1][0] == WIDTH - RIGHT  # x spans the plot area from the first to the last
    assert [x for x, _ in xy] == sorted(x for x, _ in xy)
    bottom = HEIGHT - 36
    assert xy[0][1] == bottom  # 0 sits on the x axis (the y axis starts at 0)
    assert xy[3][1] == TOP  # 20 is the top tick
    assert xy[1][1] < xy[2][1]  # 10 is drawn above 5
    assert abs((bottom - xy[1][1]) - (bottom - xy[3][1]) / 2) < 0.01  # linear: 10 is half of 20


def test_value_ticks_are_round_and_cover_the_data_with_the_unit() -> None:
    assert nice_ticks(0, 20) == [0, 5, 10, 15, 20]
    assert nice_ticks(0.13, 0.91) == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    ticks = nice_ticks(-3, 1234)
    assert ticks[0] <= -3 and ticks[-1] >= 1234 and len({round(b - a, 6) for a, b in itertools.pairwise(ticks)}) == 1
    chart = line_chart([Series("x", [(T0, 0.0), (T0 + timedelta(minutes=1), 2000.0)])], step_seconds=60,
                       unit="By")
    labels = [t.text for t in parse(chart.svg).iter(f"{SVG}text")]
    assert "0 By" in labels and "2000 By" in labels and "By" in labels
    assert value_text(15_000, "By") == "15k By" and value_text(2_500_000) == "2.5M" and value_text(1, "1") == "1"


def test_time_ticks_fall_on_round_times_inside_the_range() -> None:
    start, end = T0 + timedelta(seconds=17), T0 + timedelta(hours=1, seconds=17)
    ticks = time_ticks(start, end)
    assert 2 <= len(ticks) <= 7
    assert all(start <= t <= end for t, _ in ticks)
    assert all(t.second == 0 and t.minute % 10 == 0 for t, _ in ticks)
    assert ticks[0][1] == "12:10"
    week = time_ticks(T0, T0 + timedelta(days=7))
    assert re.fullmatch(r"\d\d-\d\d \d\d:\d\d", week[0][1])


def test_label_text_is_escaped_everywhere_it_appears() -> None:
    hostile = {"host": "<script>alert(1)</script>", "x": '"><img src=x onerror=alert(2)>'}
    label = label_text(hostile, "cpu")
    chart = line_chart([Series(label, [(T0, 1.0), (T0 + timedelta(minutes=1), 2.0)])], step_seconds=60,
                       unit="<b>u</b>", title="cpu <i>")
    svg = str(chart.svg)
    assert "<script" not in svg and "<img" not in svg and "<b>" not in svg and "<i>" not in svg
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in svg
    root = parse(svg)  # still well-formed: the payload did not break out of its attribute or element
    titles = [t.text for t in root.iter(f"{SVG}title")]
    assert label in titles  # the series' title names its labels (hover)
    assert any(t and t.startswith(label + ": 2") for t in titles)  # each point's title: label, value, time
    assert label_text({}, "cpu") == "cpu" and label_text({"b": "2", "a": "1"}, "cpu") == "a=1, b=2"


def test_many_series_get_one_line_each_and_cycle_the_colours() -> None:
    many = [Series(f"host={i}", [(T0, float(i)), (T0 + timedelta(minutes=1), float(i + 1))]) for i in range(11)]
    chart = line_chart(many, step_seconds=60)
    root = parse(chart.svg)
    groups = [g for g in root.iter(f"{SVG}g") if "series" in g.attrib.get("class", "")]
    assert len(groups) == 11 and len(list(root.iter(f"{SVG}polyline"))) == 11
    assert [line.label for line in chart.lines] == [f"host={i}" for i in range(11)]
    assert chart.lines[COLOURS].css == chart.lines[0].css == "series-0"
    assert len({line.css for line in chart.lines}) == COLOURS


def test_one_point_is_drawn_as_a_dot_in_the_middle() -> None:
    chart = line_chart([Series("only", [(T0, 42.0)])], step_seconds=60, unit="s")
    root = parse(chart.svg)
    assert list(root.iter(f"{SVG}polyline")) == []
    (dot,) = root.iter(f"{SVG}circle")
    assert float(dot.attrib["cx"]) == LEFT + (WIDTH - LEFT - RIGHT) / 2
    assert TOP <= float(dot.attrib["cy"]) < HEIGHT - 36  # above the axis: the axis starts at 0
    assert dot.find(f"{SVG}title").text.startswith("only: 42 s at 2026-12-01 12:00:00")  # type: ignore[union-attr]


def test_a_gap_breaks_the_line_and_nan_is_never_plotted() -> None:
    data = [(T0 + timedelta(minutes=m), 1.0) for m in (0, 1, 2, 10, 11)]
    data.append((T0 + timedelta(minutes=12), float("nan")))
    data.append((T0 + timedelta(minutes=13), 3.0))
    chart = line_chart([Series("gappy", data)], step_seconds=60)
    assert [len(r) for r in chart.lines[0].runs] == [3, 2, 1]
    root = parse(chart.svg)
    assert len(list(root.iter(f"{SVG}polyline"))) == 2  # the lone last point is a dot only
    assert "nan" not in str(chart.svg).lower()
    # points sent every minute, bucketed every 10 s: the spacing is the data's, not a gap
    sparse = [(T0 + timedelta(minutes=m), float(m)) for m in range(5)]
    assert [len(r) for r in line_chart([Series("s", sparse)], step_seconds=10).lines[0].runs] == [5]


def test_no_data_is_an_empty_chart_and_the_range_given_is_the_x_axis() -> None:
    assert line_chart([], step_seconds=60).lines == [] and str(line_chart([], step_seconds=60).svg) == ""
    assert str(line_chart([Series("a", [])], step_seconds=60).svg) == ""
    since, until = T0 - timedelta(hours=1), T0 + timedelta(hours=1)
    chart = line_chart([Series("a", [(T0, 1.0), (T0 + timedelta(minutes=1), 1.0)])], step_seconds=60,
                       since=since, until=until)
    xs = [x for x, _ in points(next(parse(chart.svg).iter(f"{SVG}polyline")))]
    assert abs(xs[0] - (LEFT + (WIDTH - LEFT - RIGHT) / 2)) < 0.01  # T0 is the middle of the given range
