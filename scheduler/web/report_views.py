"""What the Reports pages draw and write of the read model's rows (:mod:`scheduler.web.reports`):
the charts of each grouping (all 24 hours of the day, the best ones highlighted), figures in the
reader's number format, and the best hours as a sentence."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

from markupsafe import Markup

from scheduler import reports
from scheduler.composer.filters import number
from scheduler.web.charts import NO_FIGURE, NO_POSTS, bar_chart, column_chart
from scheduler.web.i18n import _, translations

#: Bars in one chart (a table beside it has every row).
TOP_BARS = 12
#: Each grouping as a tab and a heading says it.
GROUP_WORDS = {"umkm": _("UMKM"), "product": _("Product"), "channel": _("Channel"), "platform": _("Platform"),
               "kind": _("Post kind"), "hour": _("Hour of the day")}

def figure_format(language: str) -> Callable[[float], str]:
    """Figures with the reader's thousand separator (12.345 and 11,5 in Indonesian): as Babel's
    ``number`` writes them (at most 3 decimals), without its cost per figure (a month's tables
    have thousands)."""
    group, decimal = _symbols(language)

    def fmt(value: float) -> str:
        if float(value).is_integer():
            text = f"{int(value):,}"
        elif abs(value) >= 1e15:
            return str(number(value, language))
        else:
            text = f"{value:,.3f}".rstrip("0")
        return text.translate({ord(","): group, ord("."): decimal})
    return fmt


@functools.cache
def _symbols(language: str) -> tuple[str, str]:
    """The reader's thousand separator and decimal mark (Babel's)."""
    digits = str(number(1234.5, language))
    return digits[1], digits[-2]


def hour_span(hour: str, language: str) -> str:
    """An hour of the day ('19:00') as the hour it spans: '19.00–20.00' in Indonesian, '19:00–20:00' in English."""
    start = int(hour[:2])
    mark = "." if language == "id" else ":"
    return f"{start:02d}{mark}00–{start + 1:02d}{mark}00"


def group_label(key: str, say: Callable[[str], str]) -> str:
    """A group's name; the posts of no UMKM or product are "(none)" in the reader's language."""
    return say(_("(none)")) if key == reports.NONE else key


def group_chart(by: str, rows: Sequence[dict[str, Any]], language: str) -> Markup:
    """Engagement per measured post per group: the best first; hours: all 24 as columns in the
    day's order, the best hours highlighted (:func:`hour_chart`)."""
    say = translations(language).gettext
    title = say(_("Engagement per post: %(what)s")) % {"what": say(GROUP_WORDS[by])}
    if by == "hour":
        return hour_chart(rows, title, language)
    bars = [(group_label(r["group"], say), r["engagement_per_post"]) for r in list(rows)[:TOP_BARS]]
    return bar_chart(f"chart-{by}", title, bars, fmt=figure_format(language), missing=say(_("no counters")),
                     empty=say(_("No posts published in this period.")),
                     desc=say(_("Likes, shares, replies and saves per post whose counters were read; "
                                "the table below has every figure.")))


def hour_chart(rows: Sequence[dict[str, Any]], title: str, language: str) -> Markup:
    """Every hour of the day as a column: engagement per measured post, an hour without posts and
    one whose posts have no counters drawn as such (never as 0), the best hours highlighted."""
    say = translations(language).gettext
    columns = [(r["group"][:2], r["engagement_per_post"], NO_POSTS if not r["posts"] else NO_FIGURE) for r in rows]
    return column_chart("chart-hour", title, columns, fmt=figure_format(language),
                        best=[h[:2] for h in reports.best_hours(rows)], names=[hour_span(r["group"], language) for r in rows],
                        legend={"best": say(_("best hours")), NO_POSTS: say(_("no posts")),
                                NO_FIGURE: say(_("no counters"))},
                        empty=say(_("No posts published in this period.")),
                        desc=say(_("Every hour of the day, local time: likes, shares, replies and saves per post "
                                   "whose counters were read; the table below has every figure.")))


def best_hours_text(rows: Sequence[dict[str, Any]], language: str) -> str:
    """'Best hours: 19.00–20.00, 09.00–10.00' (or that none can be named yet)."""
    say = translations(language).gettext
    best = reports.best_hours(rows)
    if not best:
        return say(_("Best hours: none yet (no engagement read for posts of this period)."))
    return say(_("Best hours: %(hours)s (engagement per post, local time).")) % {
        "hours": ", ".join(hour_span(h, language) for h in best)}


def shown_rows(by: str, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """A table's rows: hours without posts are left to the chart (it draws all 24)."""
    return [r for r in rows if r["posts"]] if by == "hour" else list(rows)
