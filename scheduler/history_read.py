"""History on SQLAlchemy Core: its filters, keyset pages and streamed exports, and the CSV every
export writes. `promo history` reads through this alone (a Core connection, the tables of
:mod:`scheduler.tables`), so it starts without the ORM; the dashboard and the API use the same
functions with their sessions. :mod:`scheduler.views` re-exports all of it.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Select, select

from scheduler import values
from scheduler.dbtime import local as local
from scheduler.errors import ValidationError
from scheduler.rows import HistoryRow
from scheduler.states import PostStatus
from scheduler.tables import channels, history, posts

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

#: Transitions whose reason is an error (the rest carry a note: "created", "rescheduled to …").
_ERROR_STATES = frozenset({PostStatus.FAILED, PostStatus.NEEDS_REVIEW, PostStatus.RETRY_WAIT})
#: A spreadsheet runs a cell starting with one of these as a formula (OWASP "CSV injection").
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> str:
    """A value for a CSV cell: "" for nothing, and text a spreadsheet would run as a formula
    (``=HYPERLINK(…)`` from a platform's answer) prefixed with ``'`` so it stays text."""
    s = "" if value is None else str(value)
    return "'" + s if s.startswith(_FORMULA_START) else s


def csv_text(rows: Sequence[dict[str, Any]], columns: Sequence[str], *, bom: bool = True) -> str:
    """Every CSV the project writes (CLI and dashboard): formula-safe cells, and a UTF-8 byte
    order mark first so Excel reads Indonesian text as UTF-8."""
    out = io.StringIO()
    if bom:
        out.write("\ufeff")
    w = csv.writer(out)
    w.writerow(columns)
    for r in rows:
        w.writerow([csv_cell(r.get(c)) for c in columns])
    return out.getvalue()


def day_bound(value: str, tz: ZoneInfo, *, end: bool, what: str = "date") -> dt.datetime:
    """``YYYY-MM-DD`` (the whole day in the organisation's timezone) or a time → UTC bound."""
    value = value.strip()
    try:
        if len(value) == 10:
            day = dt.date.fromisoformat(value)
            if end:
                day += dt.timedelta(days=1)
            return dt.datetime.combine(day, dt.time(), tzinfo=tz).astimezone(dt.UTC)
        return values.parse_when(value, tz)
    except ValueError:
        raise ValidationError(f"{what} {value!r}: not a date (YYYY-MM-DD) or time (YYYY-MM-DD HH:MM)") from None
    except OverflowError:  # 0001-01-01 east of UTC, or the day after 9999-12-31
        raise ValidationError(f"{what} {value!r}: out of range") from None


@dataclass(frozen=True)
class HistoryFilter:
    channel: str | None = None
    #: outcomes or resulting statuses (published, failed, needs_review, …)
    statuses: tuple[str, ...] = ()
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    #: status changes too, not only publish attempts
    all: bool = False
    post_id: int | None = None

    @classmethod
    def parse(cls, tz: ZoneInfo, *, channel: str | None = None, status: str | None = None,
              since: str | None = None, until: str | None = None, all: bool = False,
              post_id: int | None = None) -> HistoryFilter:
        """From what a person typed (``--since 2027-01-01``, ``?status=failed,expired``)."""
        return cls(channel=(channel or "").strip().lower() or None,
                   statuses=tuple(s.strip() for s in (status or "").split(",") if s.strip()),
                   since=day_bound(since, tz, end=False, what="since") if since else None,
                   until=day_bound(until, tz, end=True, what="until") if until else None,
                   all=all, post_id=post_id)

    def conditions(self) -> list[Any]:
        """The WHERE clauses (over history joined with its channel and post)."""
        c: list[Any] = []
        if self.channel:
            c.append(channels.c.name == self.channel)
        if self.statuses:
            c.append(history.c.to_status.in_(self.statuses) | history.c.outcome.in_(self.statuses))
        if self.since:
            c.append(history.c.started_at >= self.since)
        if self.until:
            c.append(history.c.started_at < self.until)
        if not self.all:
            c.append(history.c.action == "attempt")
        if self.post_id is not None:
            c.append(history.c.post_id == self.post_id)
        return c


def _history_columns() -> Select[Any]:
    """History rows with their channel and post columns: one query (joins), no lazy loads."""
    h = history.c
    return cast("Select[Any]", select(h.id, h.post_id, h.action, h.started_at, h.finished_at, h.from_status,
                                      h.to_status, h.outcome, h.http_status, h.remote_id, h.remote_url, h.error,
                                      h.actor, channels.c.name.label("channel"), channels.c.platform.label("platform"),
                                      posts.c.status.label("post_status"),
                                      posts.c.scheduled_at.label("post_scheduled_at"),
                                      posts.c.published_at.label("post_published_at"),
                                      posts.c.text.label("post_text"), posts.c.attempts.label("post_attempts"))
                        .select_from(history)
                        .join(channels, channels.c.id == h.channel_id)
                        .join(posts, posts.c.id == h.post_id))


def _filtered(f: HistoryFilter) -> Select[Any]:
    return _history_columns().where(*f.conditions())


def _history_dict(r: Any, tz: ZoneInfo) -> dict[str, Any]:
    """A row of :func:`_history_columns` as `promo history`, the dashboard and the API give it."""
    is_error = r.action == "attempt" or r.to_status in _ERROR_STATES
    return vars(HistoryRow(
        id=r.id, post_id=r.post_id, channel=r.channel, platform=r.platform,
        action=r.action, started_at=local(r.started_at, tz), finished_at=local(r.finished_at, tz) or None,
        from_status=r.from_status, to_status=r.to_status, outcome=r.outcome, http_status=r.http_status,
        status=r.post_status, scheduled_at=local(r.post_scheduled_at, tz) or None,
        published_at=local(r.post_published_at, tz) or None, text=r.post_text,
        remote_id=r.remote_id, remote_url=r.remote_url, attempts=r.post_attempts,
        error=r.error if is_error else None, actor=r.actor, note=None if is_error else r.error,
    ))


def history_rows(conn: Connection | Session, f: HistoryFilter, tz: ZoneInfo, *, newest_first: bool = False,
                 limit: int | None = None) -> list[dict[str, Any]]:
    """Every matching row (or the first ``limit``), in one query. For big histories use
    :func:`history_page` or :func:`iter_history`."""
    q = _filtered(f).order_by(history.c.id.desc() if newest_first else history.c.id)
    if limit is not None:
        q = q.limit(limit)
    return [_history_dict(r, tz) for r in conn.execute(q)]


@dataclass(frozen=True)
class HistoryPage:
    rows: list[dict[str, Any]]
    #: Pass as ``after`` for the next page; None when this page is the last.
    next_after: int | None


def history_page(conn: Connection | Session, f: HistoryFilter, tz: ZoneInfo, *, after: int | None = None,
                 limit: int = 100, newest_first: bool = True) -> HistoryPage:
    """One page of history, keyset-paginated on the row id: ``after`` is the last id of the
    previous page (rows with a smaller id newest first, a larger one oldest first). A page
    deep in a million rows costs what the first one does: no OFFSET, one indexed query."""
    if limit < 1:
        raise ValidationError(f"limit {limit}: must be at least 1")
    q = _filtered(f)
    if newest_first:
        q = q.order_by(history.c.id.desc())
        if after is not None:
            q = q.where(history.c.id < after)
    else:
        q = q.order_by(history.c.id)
        if after is not None:
            q = q.where(history.c.id > after)
    rows = [_history_dict(r, tz) for r in conn.execute(q.limit(limit + 1))]
    more = len(rows) > limit
    rows = rows[:limit]
    return HistoryPage(rows, rows[-1]["id"] if more else None)


def iter_history(conn: Connection | Session, f: HistoryFilter, tz: ZoneInfo, *, newest_first: bool = False,
                 batch: int = 2000) -> Iterator[dict[str, Any]]:
    """Every matching row, fetched ``batch`` at a time (keyset pages): memory stays flat however
    long the history is. Rows committed while it runs may or may not appear."""
    after: int | None = None
    while True:
        page = history_page(conn, f, tz, after=after, limit=batch, newest_first=newest_first)
        yield from page.rows
        if page.next_after is None:
            return
        after = page.next_after


def write_csv(rows: Iterable[dict[str, Any]], columns: Sequence[str], out: TextIO, *, bom: bool = True) -> int:
    """Stream rows as CSV (formula-safe cells, the BOM of :func:`csv_text`); returns the row count."""
    if bom:
        out.write("\ufeff")
    w = csv.writer(out)
    w.writerow(columns)
    n = 0
    for r in rows:
        w.writerow([csv_cell(r.get(c)) for c in columns])
        n += 1
    return n


def write_jsonl(rows: Iterable[dict[str, Any]], columns: Sequence[str], out: TextIO) -> int:
    """Stream rows as JSON lines (one object per line, the given columns); returns the row count."""
    n = 0
    for r in rows:
        out.write(json.dumps({c: r.get(c) for c in columns}, ensure_ascii=False))
        out.write("\n")
        n += 1
    return n
