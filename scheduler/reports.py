"""What worked: engagement read back from the platforms, grouped per UMKM, product, channel,
platform, post kind or hour of publishing (`promo report`; the web's Reports pages use the same
rows: :func:`report`, :func:`sections`, :func:`post_reads`).

Each published post counts with its latest read (the counters only grow, so the latest is the
whole story so far). ``engagement`` is likes + shares + replies + saves; ``reach_views`` is the
post's reach where the platform gives it, else its views. Posts on platforms that give no
counters count in ``posts`` but not in ``measured``, and never as zeros: a group with nothing
measured shows no engagement at all rather than 0.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, String, case, func, select, type_coerce
from sqlalchemy.orm import Session

from scheduler.models import Channel, Metric, MetricSchedule, Post, PostStatus, Product, Umkm

GROUPS = ("umkm", "product", "channel", "platform", "kind", "hour")
#: The common counters that make up engagement.
ENGAGEMENT = ("likes", "shares", "replies", "saves")
FIELDS = ("group", "posts", "measured", "reach_views", "engagement", "engagement_per_post", "likes", "shares",
          "replies", "saves", "best_platform")
#: The group of posts that have no UMKM or product (free text, events).
NONE = "(none)"
#: The group name of a period's totals (:func:`sections`).
TOTAL = "(all)"
#: Days a report covers when no start is given (`promo report`, the Reports page).
DEFAULT_DAYS = 30


@dataclass
class _Post:
    """A published post as the report groups it, with its latest read's figures (None: never read)."""

    id: int
    platform: str
    channel: str
    kind: str
    product: str | None
    umkm: str | None
    #: when it was published, as read (:func:`_utc` makes it a datetime when asked: most never are)
    at: str | dt.datetime
    #: likes, shares, replies, saves and reach (else views) of the latest read; None: no read
    figures: tuple[int, int, int, int, int] | None
    #: its local hour of publishing
    hour: int
    engagement: int
    #: on the metrics schedule (its next read, as read: None once none is left), or not yet
    scheduled: bool = False
    next_at: str | dt.datetime | None = None

    @property
    def published_at(self) -> dt.datetime:
        return _utc(self.at)

    def next_read(self, offsets: Sequence[dt.timedelta]) -> dt.datetime | None:
        """When its counters are read next: the schedule's time, else the first of ``offsets``
        after publishing (the collector puts it on the schedule at its next run)."""
        if self.scheduled:
            return _utc(self.next_at) if self.next_at is not None else None
        return self.published_at + offsets[0] if offsets else None


def _latest_figures(posts: Select[Any]) -> Any:
    """Per post of ``posts`` (a query of ids): its latest read's counters summed in the database
    (one row per post, not one per counter), as a subquery."""
    latest = (select(Metric.post_id, func.max(Metric.fetched_at).label("at"))
              .where(Metric.post_id.in_(posts)).group_by(Metric.post_id).subquery())

    def total(name: str) -> Any:
        return func.sum(case((Metric.name == name, Metric.value), else_=None)).label(name)

    return (select(Metric.post_id, *(total(n) for n in (*ENGAGEMENT, "reach", "views")))
            .join(latest, (latest.c.post_id == Metric.post_id) & (latest.c.at == Metric.fetched_at))
            .group_by(Metric.post_id).subquery())


def _utc(value: str | dt.datetime) -> dt.datetime:
    """A UTC column read without its type's conversion (10,000 rows: that conversion, value by
    value, was a third of a month's report): SQLite gives naive UTC text, PostgreSQL a datetime."""
    at = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(value)
    return at if at.tzinfo else at.replace(tzinfo=dt.UTC)


def published(session: Session, *, since: dt.datetime, until: dt.datetime, tz: ZoneInfo | None = None
              ) -> list[_Post]:
    """The posts published in [since, until), oldest id first, each with its latest read's figures
    and its place on the metrics schedule: one query, grouped as often as a page needs (:func:`group`)."""
    in_period = (Post.status == PostStatus.PUBLISHED.value, Post.published_at >= since, Post.published_at < until)
    figures = _latest_figures(select(Post.id).where(*in_period))
    rows = session.connection().execute(
        select(Post.id, Post.kind, type_coerce(Post.published_at, String()), Channel.name, Channel.platform,
               Product.name, Umkm.name,
               figures.c.post_id, *(figures.c[n] for n in (*ENGAGEMENT, "reach", "views")),
               MetricSchedule.post_id, type_coerce(MetricSchedule.next_at, String()))
        .join(Channel, Channel.id == Post.channel_id)
        .outerjoin(Product, Product.id == Post.product_id)
        .outerjoin(Umkm, Umkm.id == Product.umkm_id)
        .outerjoin(figures, figures.c.post_id == Post.id)
        .outerjoin(MetricSchedule, MetricSchedule.post_id == Post.id)
        .where(*in_period).order_by(Post.id)).all()
    zone = tz or ZoneInfo("UTC")
    hours: dict[str, int] = {}  # a UTC hour ('2027-03-01 16') → its local hour; -1: the zone's offset has minutes

    def local_hour(at: str | dt.datetime) -> int:
        if isinstance(at, str):  # SQLite: parse a month's ~720 hours rather than 10,000 times
            hour = hours.get(at[:13])
            if hour is None:
                start = _utc(at[:13] + ":00:00")
                offset = zone.utcoffset(start)
                whole = offset is not None and offset.seconds % 3600 == 0  # not India's +05:30
                hour = hours[at[:13]] = start.astimezone(zone).hour if whole else -1
            if hour >= 0:
                return hour
        return _utc(at).astimezone(zone).hour

    out = []
    for (pid, kind, at, channel, platform, product, umkm, read, likes, shares, replies, saves, reach, views,
         scheduled, next_at) in rows:
        assert at is not None  # the query asks for it
        got = None
        if read is not None:
            got = (int(likes or 0), int(shares or 0), int(replies or 0), int(saves or 0),
                   int(reach if reach is not None else views or 0))
        out.append(_Post(pid, platform, channel, kind, product, umkm, at, got, local_hour(at),
                         sum(got[:4]) if got else 0, scheduled is not None, next_at))
    return out


def hour_name(hour: int) -> str:
    return f"{hour:02d}:00"


HOURS = tuple(hour_name(h) for h in range(24))
#: Each grouping's key of a post.
_KEYS: dict[str, Callable[[_Post], str]] = {
    "umkm": lambda p: p.umkm or NONE, "product": lambda p: p.product or NONE, "channel": attrgetter("channel"),
    "platform": attrgetter("platform"), "kind": attrgetter("kind"), "hour": lambda p: HOURS[p.hour]}


def _key(by: str, p: _Post) -> str:
    return _KEYS[by](p)


def gives_counters(platform: str) -> bool:
    """Whether ``platform`` lets us read engagement back (Discord, Telegram, outbox and webhook do not)."""
    from scheduler.platforms import PLATFORMS, adapter_class

    return platform in PLATFORMS and adapter_class(platform).metrics.available


def engagement_of(counts: dict[str, int]) -> int:
    return sum(counts.get(n, 0) for n in ENGAGEMENT)


def group(posts: Sequence[_Post], by: str, tz: ZoneInfo | None = None) -> list[dict[str, Any]]:
    """One row per group of ``posts`` (see :func:`report`); ``hour``: all 24 local hours in the
    day's order (an hour without posts: 0 posts and no figures), none when there are no posts."""
    if by not in GROUPS:
        raise ValueError(f"by must be one of {', '.join(GROUPS)}")
    groups: dict[str, list[_Post]] = defaultdict(list)
    key = _KEYS[by]
    for p in posts:
        groups[key(p)].append(p)
    if by == "hour":
        return [_row(h, groups.get(h, [])) for h in HOURS] if posts else []
    out = [_row(key, members) for key, members in groups.items()]
    out.sort(key=lambda r: (r["engagement"] is None, -(r["engagement"] or 0), r["group"]))
    return out


def best_hours(rows: Sequence[dict[str, Any]], n: int = 3) -> list[str]:
    """The ``n`` hours (rows of the ``hour`` grouping) with the most engagement per measured post,
    best first (an earlier hour first on a tie); hours with nothing measured or no engagement never."""
    scored = [r for r in rows if r["engagement_per_post"]]
    return [r["group"] for r in sorted(scored, key=lambda r: (-r["engagement_per_post"], r["group"]))[:n]]


def report(session: Session, *, since: dt.datetime, until: dt.datetime, by: str, tz: ZoneInfo) -> list[dict[str, Any]]:
    """One row per group of the posts published in [since, until): posts, measured posts, reach or
    views, engagement and per measured post, each counter, and the platform with the most engagement
    per measured post. Sorted by engagement, most first (groups with nothing measured last); hours
    of the day: all 24 in the day's order (see :func:`best_hours`)."""
    if by not in GROUPS:
        raise ValueError(f"by must be one of {', '.join(GROUPS)}")
    return group(published(session, since=since, until=until, tz=tz), by)


@dataclass
class Sections:
    """A period's figures: its totals, the platforms it published on, and the rows of each grouping."""

    total: dict[str, Any]
    #: platform → posts published there in the period
    platforms: dict[str, int]
    rows: dict[str, list[dict[str, Any]]]
    #: the posts with the most engagement, most first (id, channel, platform, published_at, engagement)
    top: list[dict[str, Any]]
    #: grouping → group with nothing measured yet but posts on a platform that gives counters →
    #: their earliest next read (None: none scheduled); a group with nothing measured that is not
    #: here published only where no counters are given
    unread: dict[str, dict[str, dt.datetime | None]] = field(default_factory=dict)


def sections(session: Session, *, since: dt.datetime, until: dt.datetime, tz: ZoneInfo,
             groups: Sequence[str] = GROUPS, top: int = 10, offsets: Sequence[dt.timedelta] = ()) -> Sections:
    """The period's totals (one row named :data:`TOTAL`) and the rows of each of ``groups``
    (as :func:`report` gives them), from one read of the posts: the Reports pages."""
    posts = published(session, since=since, until=until, tz=tz)
    ranked = sorted((p for p in posts if p.figures), key=lambda p: (-p.engagement, p.id))[:top]
    rows = {by: group(posts, by) for by in groups}
    counting = {name for name in {p.platform for p in posts} if gives_counters(name)}
    unread: dict[str, dict[str, dt.datetime | None]] = {}
    for by in groups:
        blank = {r["group"] for r in rows[by] if r["posts"] and not r["measured"]}
        waiting: dict[str, dt.datetime | None] = {}
        key_of = _KEYS[by]
        for p in posts if blank else ():
            key = key_of(p)
            if key in blank and p.platform in counting:
                known, upcoming = waiting.get(key), p.next_read(offsets)
                waiting[key] = upcoming if known is None else min(known, upcoming or known)
        unread[by] = waiting
    return Sections(_row(TOTAL, posts), dict(sorted(Counter(p.platform for p in posts).items())), rows,
                    [{"id": p.id, "channel": p.channel, "platform": p.platform, "published_at": p.published_at,
                      "engagement": p.engagement} for p in ranked], unread)


def _row(key: str, members: Sequence[_Post]) -> dict[str, Any]:
    row: dict[str, Any] = {"group": key, "posts": len(members)}
    measured = [p for p in members if p.figures is not None]
    row["measured"] = len(measured)
    if not measured:
        return {**row, **{f: None for f in FIELDS if f not in row}}
    totals = [sum(column) for column in zip(*(p.figures for p in measured if p.figures), strict=True)]
    engagement = sum(totals[:4])
    by_platform: dict[str, list[int]] = {}
    for p in measured:
        seen = by_platform.setdefault(p.platform, [0, 0])
        seen[0] += p.engagement
        seen[1] += 1
    best = max(sorted(by_platform), key=lambda k: by_platform[k][0] / by_platform[k][1])
    return {**row, "reach_views": totals[4], "engagement": engagement,
            "engagement_per_post": round(engagement / len(measured), 2),
            **dict(zip(ENGAGEMENT, totals[:4], strict=True)), "best_platform": best}


def month_bounds(month: dt.date, tz: ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
    """The local calendar month of ``month`` (any day of it), as UTC [start, end)."""
    first = month.replace(day=1)
    after = (first + dt.timedelta(days=32)).replace(day=1)
    return (dt.datetime.combine(first, dt.time(), tzinfo=tz).astimezone(dt.UTC),
            dt.datetime.combine(after, dt.time(), tzinfo=tz).astimezone(dt.UTC))


def post_reads(session: Session, post_id: int) -> list[dict[str, Any]]:
    """Every read of one post's counters, oldest first: when (UTC), each counter, and engagement
    (a post's counters over time)."""
    reads: dict[dt.datetime, dict[str, int]] = defaultdict(dict)
    for at, name, value in session.execute(select(Metric.fetched_at, Metric.name, Metric.value)
                                           .where(Metric.post_id == post_id).order_by(Metric.fetched_at, Metric.id)):
        reads[at][name] = reads[at].get(name, 0) + int(value)
    return [{"at": at, "counts": counts, "engagement": engagement_of(counts)} for at, counts in sorted(reads.items())]


def engagement_by_umkm(session: Session, *, since: dt.datetime, until: dt.datetime) -> dict[int, float]:
    """UMKM id → engagement per measured post of its products' posts published in [since, until)."""
    in_period = (Post.status == PostStatus.PUBLISHED.value, Post.published_at >= since, Post.published_at < until,
                 Post.product_id.is_not(None))
    figures = _latest_figures(select(Post.id).where(*in_period))
    per: dict[int, list[int]] = defaultdict(list)
    for umkm_id, *counts in session.execute(
            select(Product.umkm_id, *(figures.c[n] for n in ENGAGEMENT))
            .select_from(Post).join(figures, figures.c.post_id == Post.id)
            .join(Product, Product.id == Post.product_id).where(*in_period)):
        per[umkm_id].append(sum(int(c or 0) for c in counts))
    return {u: sum(v) / len(v) for u, v in per.items()}
