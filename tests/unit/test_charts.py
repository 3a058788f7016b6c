"""The SVG charts the Reports pages draw on the server (scheduler/web/charts.py): well-formed XML
that scales (viewBox), labelled for screen readers, bars as long as their values, nothing drawn
for a missing figure, and every text escaped."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from scheduler.web.charts import NO_FIGURE, NO_POSTS, WIDTH, bar_chart, column_chart, line_chart

SVG = "{http://www.w3.org/2000/svg}"


def parse(markup: str) -> ET.Element:
    figure = ET.fromstring(str(markup))  # well-formed, or this raises
    assert figure.tag == "figure"
    (svg,) = figure.findall(f"{SVG}svg")
    return svg


def bars(svg: ET.Element) -> list[float]:
    return [float(r.get("width", "nan")) for r in svg.iter(f"{SVG}rect")]


def texts(svg: ET.Element, cls: str) -> list[str]:
    return [t.text or "" for t in svg.iter(f"{SVG}text") if t.get("class") == cls]


def test_bars_are_proportional_to_their_values() -> None:
    svg = parse(bar_chart("c", "Interaksi", [("a", 30), ("b", 15), ("c", 7.5), ("d", 0)], fmt=lambda v: f"{v:g}"))
    a, b, c, d = bars(svg)
    assert a > 0 and b / a == 0.5 and c / a == 0.25 and d == 0
    assert a <= WIDTH  # the longest bar leaves room for its figure inside the drawing
    assert texts(svg, "value") == ["30", "15", "7.5", "0"] and texts(svg, "label") == ["a", "b", "c", "d"]
    assert svg.get("viewBox", "").startswith(f"0 0 {WIDTH} ") and "width" not in svg.attrib  # scales with its box


def test_a_missing_figure_draws_no_bar_and_says_why() -> None:
    svg = parse(bar_chart("c", "t", [("mastodon", 5), ("telegram", None)], missing="tanpa angka"))
    assert len(bars(svg)) == 1
    assert texts(svg, "missing") == ["tanpa angka"] and texts(svg, "label") == ["mastodon", "telegram"]


def test_all_zero_or_no_data_divides_by_nothing() -> None:
    svg = parse(bar_chart("c", "t", [("a", 0), ("b", 0)]))
    assert bars(svg) == [0.0, 0.0]
    empty = parse(bar_chart("c", "t", [], empty="Tidak ada posting"))
    assert bars(empty) == [] and texts(empty, "empty") == ["Tidak ada posting"]
    assert texts(parse(line_chart("l", "t", [], {})), "empty") == ["nothing to show"]
    assert texts(parse(line_chart("l", "t", ["1 h"], {"likes": [None]})), "empty") == ["nothing to show"]
    flat = parse(line_chart("l", "t", ["1 h", "24 h"], {"likes": [0, 0]}))
    assert [c.get("cy") for c in flat.iter(f"{SVG}circle")] == ["196", "196"]  # on the x axis, no division by 0


def test_labels_and_titles_are_escaped() -> None:
    evil = '<script>alert("x")</script> & =SUM(A1)'
    markup = bar_chart('id"x', evil, [(evil, 3)], desc=evil, fmt=lambda v: evil)
    assert "<script>" not in markup and "&lt;script&gt;" in markup
    svg = parse(markup)
    assert svg.find(f"{SVG}title").text == evil and svg.find(f"{SVG}desc").text == evil  # type: ignore[union-attr]
    assert texts(svg, "label") == [evil]
    line = line_chart("l", evil, [evil, "b"], {evil: [1, 2]}, fmt=lambda v: evil)
    assert "<script>" not in line and texts(parse(line), "legend") == [evil]


def test_charts_are_labelled_for_screen_readers() -> None:
    figure = ET.fromstring(str(bar_chart("chart-umkm", "Interaksi per posting", [("a", 1)], desc="Suka dan lainnya")))
    svg = figure.find(f"{SVG}svg")
    assert svg is not None and svg.get("role") == "img"
    assert svg.get("aria-labelledby") == "chart-umkm-title chart-umkm-desc"
    assert {e.get("id") for e in svg} >= {"chart-umkm-title", "chart-umkm-desc"}
    assert figure.findtext("figcaption") == "Interaksi per posting"
    assert "style" not in str(ET.tostring(figure))  # the CSP allows no inline style: classes only


def test_a_line_per_series_over_evenly_spaced_reads() -> None:
    svg = parse(line_chart("l", "t", ["1 h", "24 h", "7 d"], {"likes": [2, 5, 10], "shares": [1, None, 2]},
                           fmt=lambda v: f"{v:g}"))
    lines = {g.get("class"): g for g in svg.iter(f"{SVG}g")}
    likes = lines["series s0"].find(f"{SVG}polyline")
    assert likes is not None
    points = [tuple(map(float, p.split(","))) for p in likes.get("points", "").split()]
    xs, ys = [x for x, _ in points], [y for _, y in points]
    assert xs[1] - xs[0] == xs[2] - xs[1]  # reads evenly apart, whatever the hours between them
    assert ys[0] > ys[1] > ys[2]  # higher counts are higher up
    # the y axis reaches a round figure at or above the top value: 10 is at its very top
    assert ys[2] == min(float(line.get("y1", "0")) for line in svg.iter(f"{SVG}line") if line.get("class") == "grid")
    assert len(lines["series s1"].findall(f"{SVG}circle")) == 2  # no point where nothing was read
    assert texts(svg, "legend") == ["likes", "shares"] and texts(svg, "tick")[-3:] == ["1 h", "24 h", "7 d"]


def test_columns_for_every_hour_with_the_best_highlighted_and_no_zero_for_what_is_missing() -> None:
    hours = [(f"{h:02d}", None, NO_POSTS) for h in range(24)]
    hours[9], hours[12], hours[19], hours[20] = ("09", 5.5, ""), ("12", None, NO_FIGURE), ("19", 11.0, ""), ("20", 0.0, "")
    svg = parse(column_chart("chart-hour", "t", hours, best=["19", "09"], fmt=lambda v: f"{v:g}",
                             legend={"best": "best hours", NO_POSTS: "no posts", NO_FIGURE: "no counters"},
                             names=[f"{h:02d}.00" for h in range(24)]))
    columns = [g for g in svg.iter(f"{SVG}g") if g.get("class") == "column"]
    assert len(columns) == 24
    drawn = {c[0].findtext(f"{SVG}title"): c[0].get("class") for c in columns}
    assert drawn["09.00: 5.5"] == drawn["19.00: 11"] == "bar best" and drawn["20.00: 0"] == "bar"
    assert drawn["12.00: no counters"] == NO_FIGURE
    assert sum(k.endswith(": no posts") and v == NO_POSTS for k, v in drawn.items()) == 20
    heights = {c[0].findtext(f"{SVG}title"): float(c[0].get("height", "nan")) for c in columns if c[0].tag.endswith("rect")}
    assert heights["19.00: 11"] / heights["09.00: 5.5"] == 2 and heights["20.00: 0"] == 0
    assert texts(svg, "value best") == ["5.5", "11"]  # the best hours' figures, in the day's order
    assert texts(svg, "tick") == [f"{h:02d}" for h in range(0, 24, 3)]
    assert texts(svg, "legend") == ["best hours", "no posts", "no counters"]
    assert max(float(t.get("x", "0")) for t in svg.iter(f"{SVG}text")) <= WIDTH  # nothing drawn outside


def test_the_pages_figures_are_written_as_babel_writes_them() -> None:
    from scheduler.composer.filters import number
    from scheduler.web.report_views import figure_format

    for language in ("id", "en"):
        fmt = figure_format(language)
        for value in (0, 7, 1234, 1255.0, 12345678, 5.5, 632.5, 0.25, 1234.57, 11.33, 2340.1):
            assert fmt(value) == str(number(int(value) if float(value).is_integer() else value, language)), value
    assert figure_format("id")(12345.5) == "12.345,5" and figure_format("en")(12345.5) == "12,345.5"
