"""Posts and the service's heartbeats read on SQLAlchemy Core: the post list and one post (`promo post list|show`,
/api/v1/posts, the dashboard's lists) and `promo status`. Like :mod:`scheduler.history_read`,
this imports no ORM, so those commands start without mapping a class; each function takes a Core
connection or an ORM session alike. :func:`post_row` is the one place a post becomes the row
staff read (:class:`scheduler.rows.PostRow`), for a Core row or a mapped ``Post``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Connection, Select, func, select

from scheduler.dbtime import local, seconds_since, utcnow
from scheduler.errors import NotFoundError
from scheduler.rows import PostRow
from scheduler.tables import channels, heartbeats, posts

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from scheduler.config import Settings


def post_order(newest_first: bool) -> list[ColumnElement[Any]]:
    """The order posts are listed in: by scheduled time, unscheduled drafts last (or, newest first,
    first: what a dashboard shows), ties by id."""
    if newest_first:
        return [posts.c.scheduled_at.is_not(None), posts.c.scheduled_at.desc(), posts.c.id.desc()]
    return [posts.c.scheduled_at.is_(None), posts.c.scheduled_at, posts.c.id]


def post_filters(status: Sequence[str] | None, channel: str | None) -> list[ColumnElement[bool]]:
    """``--status a,b`` and ``--channel NAME`` as conditions (the query joins channels)."""
    where: list[ColumnElement[bool]] = []
    if status:
        where.append(posts.c.status.in_(list(status)))
    if channel:
        where.append(channels.c.name == channel)
    return where


def post_row(p: Any, tz: ZoneInfo, channel: str, platform: str) -> dict[str, Any]:
    """A post (a Core row of :data:`scheduler.tables.posts`, or a mapped ``Post``: the same
    attribute names) as staff read it, times in the organisation's timezone."""
    return vars(PostRow(
        id=p.id, channel=channel, platform=platform, kind=p.kind, status=p.status,
        scheduled_at=local(p.scheduled_at, tz) or None, published_at=local(p.published_at, tz) or None,
        text=p.text, link=p.link, remote_id=p.remote_id, remote_url=p.remote_url,
        attempts=p.attempts, error=p.error, image=p.image_path, template=p.template,
        created_by=p.created_by, next_attempt_at=local(p.next_attempt_at, tz) or None, image_alt=p.image_alt,
    ))


_ROW_COLUMNS = [c for c in posts.c if c.name in {
    "id", "kind", "status", "scheduled_at", "published_at", "text", "link", "remote_id", "remote_url", "attempts",
    "error", "image_path", "template", "created_by", "next_attempt_at", "image_alt"}]


def _rows_query() -> Select[Any]:
    return (select(*_ROW_COLUMNS, channels.c.name.label("channel_name"), channels.c.platform.label("channel_platform"))
            .join(channels, channels.c.id == posts.c.channel_id))


def iter_post_rows(conn: Connection | Session, tz: ZoneInfo, *, status: Sequence[str] | None = None,
                   channel: str | None = None, limit: int | None = None, newest_first: bool = False,
                   batch: int = 1000) -> Iterator[dict[str, Any]]:
    """Posts as rows, in one query with their channel: ``limit`` of them (all for None), fetched
    ``batch`` at a time (a server-side cursor on PostgreSQL), so listing every post of a province
    holds one batch in memory, not the list."""
    q = _rows_query().where(*post_filters(status, channel)).order_by(*post_order(newest_first))
    if limit:
        q = q.limit(limit)
    for r in conn.execute(q.execution_options(yield_per=batch)):
        yield post_row(r, tz, r.channel_name, r.channel_platform)


def post_rows(conn: Connection | Session, tz: ZoneInfo, *, status: Sequence[str] | None = None,
              channel: str | None = None, limit: int | None = None, newest_first: bool = False) -> list[dict[str, Any]]:
    """:func:`iter_post_rows` as a list (a page of the dashboard or the API)."""
    return list(iter_post_rows(conn, tz, status=status, channel=channel, limit=limit, newest_first=newest_first))


def one_post_row(conn: Connection | Session, tz: ZoneInfo, post_id: int) -> dict[str, Any]:
    """One post as a row (`promo post show`), or NotFoundError."""
    r = conn.execute(_rows_query().where(posts.c.id == post_id)).first()
    if r is None:
        raise NotFoundError(f"no post with id {post_id}")
    return post_row(r, tz, r.channel_name, r.channel_platform)


def counts_by_status(conn: Connection | Session) -> dict[str, int]:
    """How many posts are in each state (states with none are left out)."""
    return {status: n for status, n in conn.execute(select(posts.c.status, func.count()).group_by(posts.c.status))}


def stalled(last_tick: dt.datetime | None, settings: Settings, now: dt.datetime | None = None) -> bool:
    """A service process whose dispatch loop has not ticked for longer than the health limit."""
    if last_tick is None:
        return True
    return ((now or utcnow()) - last_tick).total_seconds() > settings.health_stall_seconds


def status_report(conn: Connection | Session, settings: Settings, now: dt.datetime | None = None) -> dict[str, Any]:
    """What `promo status` prints: each service process's last tick, and posts per state."""
    now = now or utcnow()
    tz = settings.timezone
    beats = conn.execute(select(heartbeats).order_by(heartbeats.c.started_at))
    return {"now": local(now, tz), "counts": counts_by_status(conn), "workers": [
        {"worker": b.worker, "last_tick": local(b.last_tick, tz),
         "seconds_since_tick": seconds_since(b.last_tick, now, 1),
         "stalled": stalled(b.last_tick, settings, now)} for b in beats]}
