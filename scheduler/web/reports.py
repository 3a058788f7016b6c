"""The Reports pages (what worked) and their JSON API, from the figures `promo report` prints
(:mod:`scheduler.reports`: the same rows, never computed a second way).

* ``/reports``: a period (local days; the last 30 by default), its totals, the posts with the
  most engagement, and one tab per grouping (UMKM, product, channel, platform, post kind, hour
  of the day in the organisation's timezone), each a bar chart of engagement per measured post
  and a table.
* ``/reports/monthly?month=YYYY-MM``: one calendar month, every grouping, printable (the print
  stylesheet drops the navigation and the forms); ``format=csv`` downloads it.
* The post page shows the post's counters over time (:func:`post_engagement`).
* ``/api/v1/reports``, ``/api/v1/reports/monthly`` and ``/api/v1/reports/posts/{id}``: the same
  figures as JSON, their answers declared (pydantic) for the OpenAPI description.

Platforms that give no counters back (Discord, Telegram, the outbox, webhooks) are named as such;
their posts count under Posts and never as zero engagement.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from scheduler import reports
from scheduler.errors import ValidationError
from scheduler.models import utcnow
from scheduler.platforms import PLATFORMS, adapter_class
from scheduler.storage import posts as post_store
from scheduler.views import csv_text, local
from scheduler.web.apimodels import errors
from scheduler.web.charts import line_chart
from scheduler.web.core import Who, typed_handler
from scheduler.web.i18n import _, translations
from scheduler.web.params import MonthApi, MonthQuery, PostRef, ReportQuery
from scheduler.web.planning import day_range
from scheduler.web.report_views import GROUP_WORDS, best_hours_text, figure_format, group_chart, shown_rows
from scheduler.web.webapp import WebApp

#: The groupings of the monthly report, in its order.
MONTHLY = ("umkm", "product", "channel", "platform", "hour")
#: The counters as people say them.
COUNTER_WORDS = {"views": _("views"), "reach": _("reach"), "likes": _("likes"), "shares": _("shares"),
                 "replies": _("replies"), "saves": _("saves"), "clicks": _("clicks"), "quotes": _("quotes"),
                 "engagement": _("engagement")}
#: Counters drawn in a post's second chart (their figures dwarf the engagement counters).
AUDIENCE = ("views", "reach", "clicks", "quotes")
#: The monthly CSV's columns: the section, then `promo report --format csv`'s.
CSV_FIELDS = ("section", *reports.FIELDS)


# --- answers (pydantic: the OpenAPI description is generated from these) ---------------------------

class RowOut(BaseModel):
    """One group's figures, as `promo report --format json` gives them (``group`` is the row's name).
    Nothing measured: the figures are null, never 0."""

    group: str
    posts: int = Field(description="posts published")
    measured: int = Field(description="of them with counters read back")
    reach_views: int | None = Field(description="reach where the platform gives it, else views")
    engagement: int | None = Field(description="likes + shares + replies + saves of the latest reads")
    engagement_per_post: float | None = Field(description="engagement per measured post")
    likes: int | None
    shares: int | None
    replies: int | None
    saves: int | None
    best_platform: str | None = Field(description="the platform with the most engagement per measured post")


class NoCounters(BaseModel):
    """A platform of the period that gives no counters back."""

    platform: str
    posts: int
    why: str


class TopPost(BaseModel):
    id: int
    channel: str
    platform: str
    published_at: str
    engagement: int


class ReportOut(BaseModel):
    """Posts published from ``since`` to ``until`` (local days, both included), one row per ``by``."""

    since: dt.date
    until: dt.date
    timezone: str
    by: str
    total: RowOut
    rows: list[RowOut] = Field(description="by=hour: all 24 local hours in the day's order (an hour without posts: "
                                           "posts 0 and no figures); otherwise most engagement first")
    best_hours: list[str] = Field(description="by=hour: the (at most 3) hours with the most engagement per measured "
                                              "post, best first ('19:00' is 19.00-20.00 local); otherwise empty")
    top: list[TopPost]
    no_counters: list[NoCounters]


class MonthlyOut(BaseModel):
    """One local calendar month: its totals and the rows of each grouping."""

    month: str
    since: dt.date
    until: dt.date
    timezone: str
    total: RowOut
    sections: dict[str, list[RowOut]] = Field(description="grouping → rows; hour: all 24 local hours")
    best_hours: list[str] = Field(description="the (at most 3) hours with the most engagement per measured post, "
                                              "best first ('19:00' is 19.00-20.00 local)")
    top: list[TopPost]
    no_counters: list[NoCounters]


class ReadOut(BaseModel):
    at: str = Field(description="when the counters were read, in the organisation's timezone")
    hours_after: float | None = Field(description="hours after publishing")
    counts: dict[str, int]
    engagement: int


class PostReadsOut(BaseModel):
    """One post's counters over time, oldest read first."""

    post_id: int
    channel: str
    platform: str
    published_at: str | None
    gives_counters: bool = Field(description="false: the platform gives none back (never read)")
    reads: list[ReadOut]


# --- reading ---------------------------------------------------------------------------------------

def period(q: ReportQuery, today: dt.date) -> tuple[dt.date, dt.date]:
    """The local days a report covers: ``until`` (today) and DEFAULT_DAYS back from it unless given."""
    until = q.until or today
    try:
        since = q.since or until - dt.timedelta(days=reports.DEFAULT_DAYS - 1)
    except OverflowError:
        raise ValidationError(f"until {until}: out of range") from None
    if until < since:
        raise ValidationError(f"until {until}: before since {since}")
    return since, until


def bounds(since: dt.date, until: dt.date, board: WebApp) -> tuple[dt.datetime, dt.datetime]:
    try:
        return day_range(since, until, board.tz)
    except OverflowError:
        raise ValidationError(f"since {since} to until {until}: out of range") from None


def no_counters(platforms: dict[str, int]) -> list[dict[str, Any]]:
    return [{"platform": p, "posts": n, "why": adapter_class(p).metrics.source if p in PLATFORMS else ""}
            for p, n in platforms.items() if not reports.gives_counters(p)]


def unread(s: reports.Sections, by: str, board: WebApp) -> dict[str, str | None]:
    """Groups with nothing measured yet on platforms that give counters → their next read (local,
    ISO), ``"due"`` when it is already due (the next collection run reads it), None if none is scheduled."""
    now = utcnow()
    return {group: None if at is None else "due" if at <= now else local(at, board.tz)
            for group, at in s.unread[by].items()}


def _top(s: reports.Sections, board: WebApp) -> list[dict[str, Any]]:
    return [{**t, "published_at": local(t["published_at"], board.tz)} for t in s.top]


def after_label(hours: float, say: Callable[[str], str]) -> str:
    """Hours after publishing as a short label: '30 min', '1 h', '24 h', '7 d' (in the reader's language)."""
    if hours < 1:
        return say(_("%(n)s min")) % {"n": round(hours * 60)}
    if hours < 48:
        return say(_("%(n)s h")) % {"n": round(hours)}
    return say(_("%(n)s d")) % {"n": round(hours / 24)}


def post_reads(session: Session, post_id: int, board: WebApp) -> dict[str, Any]:
    """A post's counters over time (the API's answer, :class:`PostReadsOut`)."""
    post = post_store.get_post(session, post_id)  # NotFoundError names the id
    out = []
    for r in reports.post_reads(session, post.id):
        hours = (r["at"] - post.published_at).total_seconds() / 3600 if post.published_at else None
        out.append({"at": local(r["at"], board.tz), "hours_after": round(hours, 2) if hours is not None else None,
                    "counts": r["counts"], "engagement": r["engagement"]})
    return {"post_id": post.id, "channel": post.channel.name, "platform": post.channel.platform,
            "published_at": local(post.published_at, board.tz) or None,
            "gives_counters": reports.gives_counters(post.channel.platform), "reads": out}


def post_engagement(data: dict[str, Any], language: str) -> dict[str, Any]:
    """What the post page shows of :func:`post_reads`: the charts of its counters over time and
    each counter's figures per read."""
    say = translations(language).gettext
    fmt = figure_format(language)
    reads = data["reads"]
    labels = [after_label(r["hours_after"] or 0, say) for r in reads]
    names = [n for n in COUNTER_WORDS if any(n in r["counts"] for r in reads)]
    engaged = [n for n in reports.ENGAGEMENT if n in names] + ["engagement"]
    charts = []
    if reads:
        series = {say(COUNTER_WORDS[n]): [float(r["engagement"] if n == "engagement" else r["counts"].get(n, 0))
                                          for r in reads] for n in engaged}
        charts.append(line_chart("post-engagement", say(_("Engagement over time")), labels, series, fmt=fmt,
                                 desc=say(_("Likes, shares, replies and saves at each read after publishing."))))
        audience = [n for n in AUDIENCE if n in names]
        if audience:
            charts.append(line_chart("post-audience", say(_("Views and reach over time")), labels,
                                     {say(COUNTER_WORDS[n]): [r["counts"].get(n) for r in reads] for n in audience},
                                     fmt=fmt, desc=say(_("Views, reach, clicks and quotes at each read."))))
    return {**data, "charts": charts, "labels": labels, "names": [n for n in names if n != "engagement"]}


def _language(request: Request) -> str:
    who: Who | None = getattr(request.state, "who", None)
    return who.language if who else "id"


def _render(board: WebApp, request: Request, template: str, **context: Any) -> Response:
    language = _language(request)
    return board.render(request, template, num=figure_format(language), group_words=GROUP_WORDS,
                        counter_words=COUNTER_WORDS, no_group=reports.NONE, offsets=metric_offsets(board, language),
                        **context)


def metric_offsets(board: WebApp, language: str) -> str:
    """When counters are read after publishing (PROMO_METRICS_AT): '1 h, 24 h, 7 d, 30 d'."""
    say = translations(language).gettext
    return ", ".join(after_label(o.total_seconds() / 3600, say) for o in board.settings.metrics_at)


def monthly_csv(month: dt.date, s: reports.Sections) -> Response:
    rows = [{**s.total, "section": "total"}] + [{**r, "section": by} for by in MONTHLY for r in s.rows[by]]
    return Response(csv_text(rows, CSV_FIELDS), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="promo-report-{month:%Y-%m}.csv"'})


# --- routes ----------------------------------------------------------------------------------------

def register(api: FastAPI, board: WebApp) -> None:
    """The Reports pages and /api/v1/reports."""
    tz = board.tz

    def today() -> dt.date:
        return utcnow().astimezone(tz).date()

    def route(path: str, spec: type, fn: Callable[[Request, Any], Awaitable[Response]], model: Any = None,
              missing: tuple[int, ...] = ()) -> None:
        handle = typed_handler(spec, "viewer", tz, fn, fn.__name__)
        api_path = path.startswith("/api/")
        api.add_api_route(path, handle, methods=["GET"], response_model=model, tags=["api" if api_path else "pages"],
                          include_in_schema=api_path, response_class=JSONResponse if api_path else Response,
                          responses=errors(*missing) if api_path else None)

    async def figures(q: ReportQuery) -> tuple[dt.date, dt.date, reports.Sections]:
        since, until = period(q, today())
        start, end = bounds(since, until, board)
        found = await board.read(lambda s: reports.sections(s, since=start, until=end, tz=tz, groups=(q.by,),
                                                            offsets=board.settings.metrics_at))
        return since, until, found

    async def month_figures(month: dt.date | None) -> tuple[dt.date, reports.Sections]:
        first = month or today().replace(day=1)
        start, end = reports.month_bounds(first, tz)
        return first, await board.read(lambda s: reports.sections(s, since=start, until=end, tz=tz, groups=MONTHLY,
                                                                  offsets=board.settings.metrics_at))

    async def reports_page(request: Request, q: ReportQuery) -> Response:
        since, until, s = await figures(q)
        language = _language(request)
        return _render(board, request, "reports.html", since=since, until=until, by=q.by, total=s.total,
                       rows=shown_rows(q.by, s.rows[q.by]), top=_top(s, board), no_counters=no_counters(s.platforms),
                       chart=group_chart(q.by, s.rows[q.by], language), groups=reports.GROUPS,
                       month=until.replace(day=1), unread=unread(s, q.by, board), best=reports.best_hours(s.rows[q.by]),
                       best_text=best_hours_text(s.rows[q.by], language) if q.by == "hour" else "")

    async def monthly_page(request: Request, q: MonthQuery) -> Response:
        first, s = await month_figures(q.month)
        if q.format == "csv":
            return monthly_csv(first, s)
        last = (first + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)
        language = _language(request)
        return _render(board, request, "reports_monthly.html", month=first, last=last, total=s.total,
                       sections=[(by, shown_rows(by, s.rows[by]), group_chart(by, s.rows[by], language), unread(s, by, board),
                                  best_hours_text(s.rows[by], language) if by == "hour" else "") for by in MONTHLY],
                       best=reports.best_hours(s.rows["hour"]),
                       top=_top(s, board), no_counters=no_counters(s.platforms),
                       previous=(first - dt.timedelta(days=1)).replace(day=1),
                       following=(first + dt.timedelta(days=32)).replace(day=1))

    async def api_reports(request: Request, q: ReportQuery) -> Response:
        """The figures of ``/reports``: totals, one row per ``by`` (as `promo report --format json`),
        the posts with the most engagement, and the platforms that give no counters."""
        since, until, s = await figures(q)
        answer = ReportOut.model_validate({"since": since, "until": until, "timezone": str(tz), "by": q.by,
                                           "total": s.total, "rows": s.rows[q.by], "top": _top(s, board),
                                           "best_hours": reports.best_hours(s.rows[q.by]) if q.by == "hour" else [],
                                           "no_counters": no_counters(s.platforms)})
        return board.as_json(answer.model_dump(mode="json"))

    async def api_monthly(request: Request, q: MonthApi) -> Response:
        """One local calendar month (by default this one): totals and every grouping; ``format=csv``
        as the monthly page's download."""
        first, s = await month_figures(q.month)
        if q.format == "csv":
            return monthly_csv(first, s)
        last = (first + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)
        answer = MonthlyOut.model_validate({"month": f"{first:%Y-%m}", "since": first, "until": last,
                                            "timezone": str(tz), "total": s.total,
                                            "sections": {by: s.rows[by] for by in MONTHLY}, "top": _top(s, board),
                                            "best_hours": reports.best_hours(s.rows["hour"]),
                                            "no_counters": no_counters(s.platforms)})
        return board.as_json(answer.model_dump(mode="json"))

    async def api_post_reads(request: Request, q: PostRef) -> Response:
        """One post's counters at each read, oldest first (what the post page draws)."""
        data = await board.read(lambda s: post_reads(s, q.id, board))
        return board.as_json(PostReadsOut.model_validate(data).model_dump(mode="json"))

    route("/reports", ReportQuery, reports_page)
    route("/reports/monthly", MonthQuery, monthly_page)
    route("/api/v1/reports", ReportQuery, api_reports, ReportOut)
    route("/api/v1/reports/monthly", MonthApi, api_monthly, MonthlyOut)
    route("/api/v1/reports/posts/{id}", PostRef, api_post_reads, PostReadsOut, (404,))
