"""Charts drawn on the server as SVG: a bar chart and a line chart, no script and no third-party code.

Each chart is a ``<figure>`` (its title as the caption) holding an inline ``<svg>`` with a
``viewBox`` (it scales to the width of its box: a phone's screen or a printed page), a ``<title>``
and ``<desc>`` it is labelled by (screen readers read those; the page's table beside it holds
every figure), and text labels on the drawing itself.
Every text is escaped. Colours and line styles come from classes in ``static/app.css`` (the
Content-Security-Policy allows no inline style); series differ in dash pattern as well as colour.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from markupsafe import Markup, escape

#: The drawing's width in viewBox units; the page scales it (CSS: ``svg.chart``).
WIDTH = 400
#: A bar chart's rows: a label line, then the bar with its value.
BAR_ROW = 38
BAR_HEIGHT = 14
#: Room at the right of the longest bar for its value.
VALUE_ROOM = 72
#: A line chart's plot area and margins.
LINE_HEIGHT = 230
LEFT, RIGHT, TOP, BOTTOM = 46, 12, 14, 34
#: Series shown in one line chart (their classes s0…s5 in the stylesheet).
MAX_SERIES = 6

Format = Callable[[float], str]


def _n(value: float) -> str:
    """A coordinate: at most one decimal, no trailing zeros."""
    text = f"{value:.1f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _open(chart_id: str, height: float, title: str, desc: str, kind: str) -> list[str]:
    ident = escape(chart_id)
    return [f'<figure class="chart chart-{kind}" id="{ident}"><figcaption aria-hidden="true">{escape(title)}</figcaption>',
            f'<svg viewBox="0 0 {WIDTH} {_n(height)}" role="img" '
            f'aria-labelledby="{ident}-title {ident}-desc" xmlns="http://www.w3.org/2000/svg">',
            f'<title id="{ident}-title">{escape(title)}</title>',
            f'<desc id="{ident}-desc">{escape(desc)}</desc>']


def _empty(chart_id: str, title: str, desc: str, kind: str, message: str) -> Markup:
    parts = _open(chart_id, 40, title, desc, kind)
    parts.append(f'<text class="empty" x="{WIDTH // 2}" y="24" text-anchor="middle">{escape(message)}</text>')
    return Markup("".join([*parts, "</svg></figure>"]))  # every text in it is escaped


def bar_chart(chart_id: str, title: str, bars: Sequence[tuple[str, float | None]], *, desc: str = "",
              fmt: Format = str, missing: str = "no figures", empty: str = "nothing to show") -> Markup:
    """Horizontal bars, one per ``(label, value)``, each as long as its value against the largest
    (a value of 0 draws no bar but its figure); a value of None draws no bar, only ``missing``
    (a platform that gives no counters is not a zero). No bars: ``empty``."""
    if not bars:
        return _empty(chart_id, title, desc, "bar", empty)
    top = max((v for _l, v in bars if v is not None and v > 0), default=0.0)
    room = WIDTH - VALUE_ROOM - 4
    parts = _open(chart_id, len(bars) * BAR_ROW + 4, title, desc, "bar")
    for i, (label, value) in enumerate(bars):
        y = i * BAR_ROW
        parts.append(f'<g class="bar-row"><text class="label" x="2" y="{y + 13}">{escape(label)}</text>')
        if value is None:
            parts.append(f'<text class="missing" x="2" y="{y + 30}">{escape(missing)}</text></g>')
            continue
        width = room * max(value, 0) / top if top else 0.0
        parts.append(f'<rect class="bar" x="2" y="{y + 18}" width="{_n(width)}" height="{BAR_HEIGHT}">'
                     f'<title>{escape(label)}: {escape(fmt(value))}</title></rect>'
                     f'<text class="value" x="{_n(width + 6)}" y="{y + 30}">{escape(fmt(value))}</text></g>')
    return Markup("".join([*parts, "</svg></figure>"]))  # every text in it is escaped


def _ticks(top: float) -> list[float]:
    """0, half and the top of a y axis rounded up to a readable figure (1, 2, 2.5 or 5 × 10^n)."""
    if top <= 0:
        return [0.0, 1.0]
    step = 1.0
    while step * 10 < top:
        step *= 10
    for factor in (1, 2, 2.5, 5, 10):
        if step * factor >= top:
            nice = step * factor
            break
    return [0.0, nice / 2, nice]


def line_chart(chart_id: str, title: str, x_labels: Sequence[str], series: Mapping[str, Sequence[float | None]], *,
               desc: str = "", fmt: Format = str, empty: str = "nothing to show") -> Markup:
    """One line per series over the points ``x_labels`` (evenly spaced: reads at 1 h, 24 h, 7 d
    and 30 d stay apart), a y axis from 0 with three ticks, a dot and its figure per point (None:
    no point), and a legend naming each series. At most MAX_SERIES series are drawn."""
    named = list(series.items())[:MAX_SERIES]
    values = [v for _name, points in named for v in points if v is not None]
    if not x_labels or not values:
        return _empty(chart_id, title, desc, "line", empty)
    ticks = _ticks(max(values))
    legend_rows = (len(named) + 1) // 2
    height = LINE_HEIGHT + legend_rows * 18
    plot_w, plot_h = WIDTH - LEFT - RIGHT, LINE_HEIGHT - TOP - BOTTOM

    def x_of(i: int) -> float:
        return LEFT + (plot_w / 2 if len(x_labels) == 1 else plot_w * i / (len(x_labels) - 1))

    def y_of(v: float) -> float:
        return TOP + plot_h - plot_h * v / ticks[-1]

    parts = _open(chart_id, height, title, desc, "line")
    for t in ticks:
        y = _n(y_of(t))
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y}" y2="{y}"/>'
                     f'<text class="tick" x="{LEFT - 4}" y="{y}" dy="4" text-anchor="end">{escape(fmt(t))}</text>')
    for i, label in enumerate(x_labels):
        anchor = "start" if i == 0 and len(x_labels) > 1 else "end" if i == len(x_labels) - 1 and i else "middle"
        parts.append(f'<text class="tick" x="{_n(x_of(i))}" y="{LINE_HEIGHT - BOTTOM + 16}" '
                     f'text-anchor="{anchor}">{escape(label)}</text>')
    for s, (name, points) in enumerate(named):
        drawn = [(x_of(i), y_of(v), v) for i, v in enumerate(points[:len(x_labels)]) if v is not None]
        parts.append(f'<g class="series s{s}">')
        if len(drawn) > 1:
            parts.append('<polyline points="' + " ".join(f"{_n(x)},{_n(y)}" for x, y, _v in drawn) + '"/>')
        parts.extend(f'<circle cx="{_n(x)}" cy="{_n(y)}" r="3.5"><title>{escape(name)}: {escape(fmt(v))}</title></circle>'
                     for x, y, v in drawn)
        lx, ly = 8 + (s % 2) * (WIDTH // 2), LINE_HEIGHT + (s // 2) * 18 + 4
        parts.append(f'<line class="key" x1="{lx}" x2="{lx + 22}" y1="{ly}" y2="{ly}"/>'
                     f'<text class="legend" x="{lx + 28}" y="{ly + 4}">{escape(name)}</text></g>')
    return Markup("".join([*parts, "</svg></figure>"]))  # every text in it is escaped


#: A column chart's plot height, the room above the columns for the best ones' figures, and below
#: for the labels and the legend.
COLUMN_PLOT, COLUMN_TOP, COLUMN_LABELS = 120, 22, 24
#: How a column without a figure is drawn: no posts at all, or posts without counters.
NO_POSTS, NO_FIGURE = "no-posts", "no-figure"


def column_chart(chart_id: str, title: str, columns: Sequence[tuple[str, float | None, str]], *, desc: str = "",
                 fmt: Format = str, best: Sequence[str] = (), legend: Mapping[str, str] | None = None,
                 label_every: int = 3, names: Sequence[str] = (), empty: str = "nothing to show") -> Markup:
    """One column per ``(label, value, why)`` in their order (the hours of a day), each as tall as
    its value against the largest. A value of None draws no column but a mark: ``why`` is
    :data:`NO_POSTS` (a short dotted line) or :data:`NO_FIGURE` (a hollow stub), never a zero.
    Labels in ``best`` are highlighted (class ``best``) with their figure above the column.
    Every column has a tooltip (``<title>``): its name (``names``, else its label) and figure or
    ``why``'s legend text; every ``label_every``-th column's label is written below it.
    ``legend``: class (``best``, :data:`NO_POSTS`, :data:`NO_FIGURE`) → its text, drawn below."""
    if not columns:
        return _empty(chart_id, title, desc, "column", empty)
    legend = dict(legend or {})
    top = max((v for _l, v, _w in columns if v is not None and v > 0), default=0.0)
    step = (WIDTH - 8) / len(columns)
    base = COLUMN_TOP + COLUMN_PLOT
    keys = [k for k in ("best", NO_POSTS, NO_FIGURE) if k in legend]
    parts = _open(chart_id, base + COLUMN_LABELS + 18 * len(keys) + 4, title, desc, "column")
    parts.append(f'<line class="grid" x1="4" x2="{WIDTH - 4}" y1="{base}" y2="{base}"/>')
    for i, (label, value, why) in enumerate(columns):
        x = 4 + i * step
        mid = x + step / 2
        tip = escape(names[i] if i < len(names) else label) + ": " + escape(fmt(value) if value is not None else legend.get(why, why))
        if value is None:
            parts.append(f'<g class="column"><line class="{NO_POSTS}" x1="{_n(x + 2)}" x2="{_n(x + step - 2)}" '
                         f'y1="{base - 2}" y2="{base - 2}"><title>{tip}</title></line></g>' if why == NO_POSTS else
                         f'<g class="column"><rect class="{NO_FIGURE}" x="{_n(x + 2)}" y="{base - 12}" '
                         f'width="{_n(step - 4)}" height="11"><title>{tip}</title></rect></g>')
        else:
            height = COLUMN_PLOT * max(value, 0) / top if top else 0.0
            parts.append(f'<g class="column"><rect class="{"bar best" if label in best else "bar"}" x="{_n(x + 2)}" '
                         f'y="{_n(base - height)}" width="{_n(step - 4)}" height="{_n(height)}"><title>{tip}</title></rect>')
            if label in best:
                anchor = "start" if i < 2 else "end" if i >= len(columns) - 2 else "middle"
                parts.append(f'<text class="value best" x="{_n(x if i < 2 else x + step if anchor == "end" else mid)}" '
                             f'y="{_n(base - height - 5)}" text-anchor="{anchor}">{escape(fmt(value))}</text>')
            parts.append("</g>")
        if i % label_every == 0:
            parts.append(f'<text class="tick" x="{_n(mid)}" y="{base + 16}" text-anchor="middle">{escape(label)}</text>')
    for k, key in enumerate(keys):
        y = base + COLUMN_LABELS + 18 * k + 10
        mark = (f'<rect class="bar best" x="8" y="{y - 9}" width="14" height="10"/>' if key == "best" else
                f'<line class="{NO_POSTS}" x1="8" x2="22" y1="{y - 2}" y2="{y - 2}"/>' if key == NO_POSTS else
                f'<rect class="{NO_FIGURE}" x="8" y="{y - 9}" width="14" height="10"/>')
        parts.append(f'{mark}<text class="legend" x="28" y="{y}">{escape(legend[key])}</text>')
    return Markup("".join([*parts, "</svg></figure>"]))  # every text in it is escaped
