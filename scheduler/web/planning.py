"""Staff pages about time: Today (the home page), the Calendar (month, week, day; "move to"), the
History page with keyset pages and a streamed CSV, and their JSON API (``/api/v1/history`` with a
cursor, ``/api/v1/calendar``).

History pages are keyset pages: newest first, ``?after=ID`` reads the rows with a smaller id
(``WHERE id < after … ORDER BY id DESC LIMIT page+1``), so the millionth row is as quick to
reach as the first and a row written meanwhile never shifts a page (no OFFSET). The CSV export
streams every matching row, oldest first, a thousand at a time.
"""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import datetime as dt
import io
import logging
from collections.abc import Awaitable, Callable, Iterator
from typing import Annotated, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import Depends, FastAPI, Form, Query
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from scheduler.actions import posts as post_actions
from scheduler.errors import PromoError, StateError, ValidationError
from scheduler.history_read import history_page as read_history_page
from scheduler.models import Channel, ChannelStatus, Post, PostStatus, utcnow
from scheduler.rows import HistoryRow
from scheduler.storage.db import Database
from scheduler.views import (
    HISTORY_FIELDS,
    HistoryFilter,
    channel_states,
    csv_cell,
    status_report,
)
from scheduler.web.apimodels import Calendar, errors
from scheduler.web.apimodels import HistoryPage as HistoryPageOut
from scheduler.web.core import Who, require, typed_handler
from scheduler.web.params import MAX_ID, HistoryExport, HistoryQuery, choice, flag, local_day, param, shown
from scheduler.web.webapp import WebApp

log = logging.getLogger("promo.web")

#: Rows on one history page (and one API page).
HISTORY_PAGE = 100
#: Rows the CSV export reads per query.
CSV_CHUNK = 1000
#: Posts shown in one calendar day cell, per view; the rest are "+N more" (a link to the day).
PER_DAY = {"month": 4, "week": 25, "day": 500}
#: Posts that may still be moved: nothing has been sent for them.
UNSENT = (PostStatus.DRAFT.value, PostStatus.PENDING_APPROVAL.value, PostStatus.SCHEDULED.value,
          PostStatus.RETRY_WAIT.value)
ATTENTION = (PostStatus.FAILED.value, PostStatus.NEEDS_REVIEW.value, PostStatus.EXPIRED.value)
#: Posts waiting to go out; behind a paused or needs_reauth channel they are stuck.
WAITING = (PostStatus.SCHEDULED.value, PostStatus.RETRY_WAIT.value, PostStatus.PENDING_APPROVAL.value)


def _(message: str) -> str:
    """Marks a string for extraction (pybabel); translated where shown."""
    return message


# --- typed parameters -----------------------------------------------------------------------------

def row_id(name: str, raw: str, tz: ZoneInfo) -> int:
    """A row id (ASCII digits) to continue after."""
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_ID:
        raise ValidationError(f"{name} {shown(raw)}: not a row id (a whole number from 1)")
    return int(raw)


@dataclasses.dataclass(frozen=True)
class CalendarQuery:
    """``/calendar?view=month|week|day&date=YYYY-MM-DD``"""

    view: str = param(choice("month", "week", "day"), default="month")
    date: dt.date | None = param(local_day)


@dataclasses.dataclass(frozen=True)
class HistoryPage(HistoryQuery):
    """``/history?…&after=ID``: the filters, and where the page starts (older than row ``after``)."""

    after: int | None = param(row_id)


@dataclasses.dataclass(frozen=True)
class HistoryApi(HistoryExport):
    """``/api/v1/history``: without ``after`` or ``page`` the newest 500 as a JSON list, oldest first
    (as before); with them an object ``{"rows": newest first, "next": the next page's address}``."""

    after: int | None = param(row_id)
    page: bool = param(flag, default=False)


def typed_route(api: FastAPI, board: Any, path: str, spec: type, role: str,
                fn: Callable[[Request, Any], Awaitable[Response]], *, schema: bool, **declared: Any) -> None:
    """A GET route whose parameters are the fields of ``spec`` (parsed by
    :func:`scheduler.web.params.parse`, declared for OpenAPI like the routes of ``ROUTES``)."""
    handle = typed_handler(spec, role, board.tz, fn, fn.__name__)
    declared.setdefault("response_class", Response)
    api.add_api_route(path, handle, methods=["GET"], tags=["api" if path.startswith("/api/") else "pages"],
                      include_in_schema=schema, **declared)


# --- reading ---------------------------------------------------------------------------------------

def day_range(first: dt.date, last: dt.date, tz: ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
    """From the start of local day ``first`` to the end of local day ``last``, in UTC."""
    start = dt.datetime.combine(first, dt.time(), tzinfo=tz).astimezone(dt.UTC)
    end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), tzinfo=tz).astimezone(dt.UTC)
    return start, end


def posts_by_day(session: Session, tz: ZoneInfo, first: dt.date, last: dt.date,
                 per_day: int) -> dict[dt.date, dict[str, Any]]:
    """Posts scheduled from local day ``first`` to ``last``: per local day the first ``per_day``
    (by time) and how many more. Two small queries a day over ``ix_posts_scheduled_at`` (a count,
    and the first few rows), so a month with 100 000 posts reads 42 × ``per_day`` rows, not all."""
    days: dict[dt.date, dict[str, Any]] = {}
    day = first
    while day <= last:
        start, end = day_range(day, day, tz)
        in_day = (Post.scheduled_at >= start, Post.scheduled_at < end)
        total = session.scalar(select(func.count(Post.id)).where(*in_day)) or 0
        if total:
            q = (select(Post.id, Post.status, Post.scheduled_at, Post.kind, Channel.name,
                        func.substr(Post.text, 1, 90))
                 .join(Channel, Channel.id == Post.channel_id).where(*in_day)
                 .order_by(Post.scheduled_at, Post.id).limit(per_day))
            posts = []
            for pid, status, at, kind, channel, snippet in session.execute(q):
                local_at = at.astimezone(tz)
                posts.append({"id": pid, "status": status, "time": local_at.strftime("%H:%M"),
                              "date": local_at.date().isoformat(), "at": local_at.isoformat(timespec="seconds"),
                              "kind": kind, "channel": channel, "text": snippet or "", "movable": status in UNSENT})
            days[day] = {"posts": posts, "more": total - len(posts), "total": total}
        day += dt.timedelta(days=1)
    return days


def calendar_span(view: str, day: dt.date) -> tuple[dt.date, dt.date]:
    """The days a view shows: whole weeks (Monday first) around the month, the week, or the day."""
    if view == "day":
        return day, day
    if view == "week":
        monday = day - dt.timedelta(days=day.weekday())
        return monday, monday + dt.timedelta(days=6)
    first = day.replace(day=1)
    last = (first + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)
    return first - dt.timedelta(days=first.weekday()), last + dt.timedelta(days=6 - last.weekday())


def history_page(session: Session, f: HistoryFilter, tz: ZoneInfo, after: int | None,
                 size: int = HISTORY_PAGE) -> tuple[list[dict[str, Any]], int | None]:
    """Newest first, the ``size`` rows older than row ``after`` (all when None), and the cursor of
    the next page (None on the last): one keyset query, the rows `promo history` prints."""
    page = read_history_page(session, f, tz, after=after, limit=size)
    return page.rows, page.next_after


def history_csv(db: Database, f: HistoryFilter, tz: ZoneInfo, chunk: int = CSV_CHUNK) -> Iterator[str]:
    """Every matching history row as CSV, oldest first, a chunk per query (keyset on id): a byte
    order mark and the header first, formula-safe cells (:func:`scheduler.views.csv_cell`)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(HISTORY_FIELDS)
    yield "\ufeff" + out.getvalue()
    last: int | None = None
    while True:
        with db.read_session() as session:  # one query a chunk, no connection held between chunks
            page = read_history_page(session, f, tz, after=last, limit=chunk, newest_first=False)
        if not page.rows:
            return
        out = io.StringIO()
        writer = csv.writer(out)
        for r in page.rows:
            writer.writerow([csv_cell(r.get(c)) for c in HISTORY_FIELDS])
        yield out.getvalue()
        if page.next_after is None:
            return
        last = page.next_after


def today_data(session: Session, settings: Any, now: dt.datetime) -> dict[str, Any]:
    """What the home page shows: today's posts per channel, what needs attention (counted, all of
    it), the service and the channels."""
    tz = settings.timezone
    today = now.astimezone(tz).date()
    start, end = day_range(today, today, tz)
    per_channel: dict[str, dict[str, Any]] = {}
    totals = session.execute(select(Channel.name, func.count(Post.id)).join(Channel, Channel.id == Post.channel_id)
                             .where(Post.scheduled_at >= start, Post.scheduled_at < end)
                             .group_by(Channel.name).order_by(Channel.name))
    for name, count in totals:
        per_channel[name] = {"total": count, "posts": []}
    shown_per_channel = 8
    for name, entry in per_channel.items():
        q = (select(Post.id, Post.status, Post.scheduled_at, func.substr(Post.text, 1, 90))
             .join(Channel, Channel.id == Post.channel_id)
             .where(Channel.name == name, Post.scheduled_at >= start, Post.scheduled_at < end)
             .order_by(Post.scheduled_at, Post.id).limit(shown_per_channel))
        entry["posts"] = [{"id": i, "status": s, "time": at.astimezone(tz).strftime("%H:%M"),
                                       "text": t or ""} for i, s, at, t in session.execute(q)]
    counts = dict(session.execute(select(Post.status, func.count(Post.id)).where(Post.status.in_(ATTENTION))
                                  .group_by(Post.status)).all())
    stuck = [{"channel": n, "status": s, "count": c} for n, s, c in session.execute(
        select(Channel.name, Channel.status, func.count(Post.id)).join(Post, Post.channel_id == Channel.id)
        .where(Channel.status.in_((ChannelStatus.PAUSED.value, ChannelStatus.NEEDS_REAUTH.value)),
               Post.status.in_(WAITING)).group_by(Channel.name, Channel.status).order_by(Channel.name))]
    latest = [{"id": p.id, "channel": p.channel.name, "status": p.status, "error": p.error,
               "scheduled_at": p.scheduled_at.astimezone(tz).isoformat(timespec="seconds") if p.scheduled_at else None}
              for p in session.scalars(select(Post).where(Post.status.in_(ATTENTION))
                                       .order_by(Post.id.desc()).limit(10))]
    return {"today": today, "per_channel": per_channel, "attention_counts": {s: counts.get(s, 0) for s in ATTENTION},
            "stuck": stuck, "attention": latest, "report": status_report(session, settings, now),
            "channels": channel_states(session, settings, now), "waiting": ",".join(WAITING)}


def next_link(request: Request, after: int | None, *, drop: tuple[str, ...] = ()) -> str | None:
    """This address with ``after`` set to the next page's cursor (None on the last page)."""
    if after is None:
        return None
    kept = [(k, v) for k, v in request.query_params.multi_items() if k not in ("after", *drop)]
    return request.url.path + "?" + urlencode([*kept, ("after", str(after))])


# --- routes ----------------------------------------------------------------------------------------

def register(api: FastAPI, board: WebApp) -> None:  # noqa: C901, PLR0915 - one small closure per route
    """Today, Calendar, History (pages) and /api/v1/history, /api/v1/calendar."""
    tz: ZoneInfo = board.tz

    async def today(request: Request, q: Any) -> Response:
        now = utcnow()
        data = await board.read(lambda s: today_data(s, board.settings, now))
        tomorrow = data["today"] + dt.timedelta(days=1)
        highlight: dict[str, Any] | None = None
        highlight_error = None
        if board.settings.highlight_channels:
            try:
                from scheduler.highlight_views import highlight_preview

                highlight = await asyncio.to_thread(highlight_preview, board.settings, board.db,
                                                    board.ctx.composer(), tomorrow, now)
            except PromoError as exc:
                highlight_error = str(exc)
            except Exception:  # the home page never falls over on the preview
                log.warning("web: the highlight preview for %s failed", tomorrow, exc_info=True)
                highlight_error = "the preview could not be made; the service log says why"
        return board.render(request, "planning_today.html", tomorrow=tomorrow, highlight=highlight,
                            highlight_error=highlight_error, **data)

    typed_route(api, board, "/", _NoParams, "viewer", today, schema=False)

    async def calendar(request: Request, q: CalendarQuery) -> Response:
        day = q.date or utcnow().astimezone(tz).date()
        first, last = calendar_span(q.view, day)
        cells = await board.read(lambda s: posts_by_day(s, tz, first, last, PER_DAY[q.view]))
        days = [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
        if q.view == "month":
            month_start = day.replace(day=1)
            prev_day = (month_start - dt.timedelta(days=1)).replace(day=1)
            next_day = (month_start + dt.timedelta(days=32)).replace(day=1)
        else:
            step = dt.timedelta(days=7 if q.view == "week" else 1)
            prev_day, next_day = day - step, day + step
        who: Who = request.state.who
        from scheduler.storage import accounts

        return board.render(request, "planning_calendar.html", view=q.view, day=day, days=days, cells=cells,
                            today=utcnow().astimezone(tz).date(), prev_day=prev_day, next_day=next_day,
                            can_move=accounts.role_rank(who.role) >= accounts.role_rank("editor"),
                            back=str(request.url.path) + (f"?{request.url.query}" if request.url.query else ""),
                            weekdays=[_("Mon"), _("Tue"), _("Wed"), _("Thu"), _("Fri"), _("Sat"), _("Sun")])

    typed_route(api, board, "/calendar", CalendarQuery, "viewer", calendar, schema=False)

    @api.post("/calendar/move", include_in_schema=False)
    async def move(request: Request, who: Annotated[Who, Depends(require("editor"))],
                   post_id: Annotated[int, Form(ge=1, le=MAX_ID)], date: Annotated[dt.date, Form()],
                   time: Annotated[dt.time, Form()], back: Annotated[str, Form(max_length=500)] = "/calendar"
                   ) -> Response:
        """Move an unsent post to another local day and time (its history says so)."""
        when = f"{date.isoformat()} {time.strftime('%H:%M')}"
        translations = _translations(who.language)
        try:
            await board.act(who, post_actions.reschedule, post_id, when)
        except (ValidationError, StateError) as exc:
            return board.done(back, translations.gettext(_("Post %(id)s not moved: %(why)s")) % {"id": post_id,
                                                                                              "why": str(exc)})
        return board.done(back, translations.gettext(_("Post %(id)s moved to %(when)s")) % {"id": post_id, "when": when})

    async def history(request: Request, q: HistoryPage) -> Response:
        f = q.filter()

        def load(session: Session) -> dict[str, Any]:
            rows, after = history_page(session, f, tz, q.after)
            return {"rows": rows, "older": next_link(request, after),
                    "channels": list(session.scalars(select(Channel.name).order_by(Channel.name)))}

        csv_query = urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "after"])
        return board.render(request, "planning_history.html", query=request.query_params, csv_query=csv_query,
                            newest=(request.url.path + ("?" + csv_query if csv_query else "")) if q.after else None,
                            **await board.read(load))

    typed_route(api, board, "/history", HistoryPage, "viewer", history, schema=False)

    async def api_history(request: Request, q: HistoryApi) -> Response:
        """History rows. ``format=csv``: every matching row, streamed, oldest first. Without ``after``
        or ``page``: the newest 500 as a list, oldest first. With ``after=ID`` (or ``page=1`` for the
        first page): ``{"rows": [100 rows newest first, older than ID], "next": address or null}``."""
        from scheduler.views import history_rows
        from scheduler.web.core import PAGE_ROWS

        f = q.filter()
        if q.format == "csv":
            return StreamingResponse(history_csv(board.db, f, tz), media_type="text/csv; charset=utf-8",
                                     headers={"Content-Disposition": 'attachment; filename="promo-history.csv"'})
        if q.after is None and not q.page:
            newest = await board.read(lambda s: history_rows(s, f, tz, newest_first=True, limit=PAGE_ROWS))
            return board.as_json(newest[::-1])
        rows, after = await board.read(lambda s: history_page(s, f, tz, q.after))
        return board.as_json({"rows": rows, "next": next_link(request, after, drop=("page",))})

    csv = {200: {"content": {"text/csv": {"schema": {"type": "string", "description": "format=csv: every row"}}}}}
    typed_route(api, board, "/api/v1/history", HistoryApi, "viewer", api_history, schema=True,
                response_class=JSONResponse, response_model=list[HistoryRow] | HistoryPageOut,
                responses={**errors(), **csv})

    @api.get("/api/v1/calendar", tags=["api"], response_model=Calendar, response_class=JSONResponse,
             responses=errors())
    async def api_calendar(who: Annotated[Who, Depends(require("viewer"))],
                           start: Annotated[dt.date, Query(alias="from", description="first local day, YYYY-MM-DD")],
                           end: Annotated[dt.date, Query(alias="to", description="last local day, YYYY-MM-DD")]
                           ) -> Response:
        """Posts scheduled from local day ``from`` to ``to`` (at most 92 days), per local day: the
        posts (id, time in the organisation's timezone, channel, state, kind; at most 10,000 a day)
        and ``total``, how many there are."""
        if end < start:
            raise ValidationError(f"to {end}: before from {start}")
        if (end - start).days > 92:
            raise ValidationError(f"from {start} to {end}: more than 92 days; ask for a shorter span")
        cells = await board.read(lambda s: posts_by_day(s, tz, start, end, PER_DAY["day"] * 20))
        return board.as_json({"from": start.isoformat(), "to": end.isoformat(), "timezone": str(tz),
                              "days": [{"date": d.isoformat(), "total": c["total"],
                                        "posts": [{k: p[k] for k in ("id", "at", "channel", "status", "kind")}
                                                  for p in c["posts"]]}
                                       for d, c in sorted(cells.items())]})


@dataclasses.dataclass(frozen=True)
class _NoParams:
    """A page that takes no parameters."""


def _translations(language: str) -> Any:
    from scheduler.web.i18n import translations

    return translations(language)
