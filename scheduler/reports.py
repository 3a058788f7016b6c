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
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from scheduler.models import Channel, Metric, Post, PostStatus, Product, Umkm

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
    """A published post as the report groups it, with its latest counters."""

    id: int
    platform: str
    channel: str
    kind: str
    product: str | None
    umkm: str | None
    published_at: dt.datetime
    counts: dict[str, int]


def _latest_counts(session: Session, posts: Sequence[int] | Select[Any]) -> dict[int, dict[str, int]]:
    """Each post's counters from its latest read; ``posts`` their ids (asked 900 at a time) or a
    query of their ids (one query)."""
    out: dict[int, dict[str, int]] = defaultdict(dict)
    if isinstance(posts, Select):
        chunks: list[Any] = [posts]
    else:
        chunks = [posts[start:start + 900] for start in range(0, len(posts), 900)]  # SQLite's parameter limit
    for chunk in chunks:
        latest = (select(Metric.post_id, func.max(Metric.fetched_at).label("at"))
                  .where(Metric.post_id.in_(chunk)).group_by(Metric.post_id).subquery())
        rows = session.connection().execute(
            select(Metric.post_id, Metric.name, Metric.value)
            .join(latest, (latest.c.post_id == Metric.post_id) & (latest.c.at == Metric.fetched_at)))
        for post_id, name, value in rows:
            out[post_id][name] = out[post_id].get(name, 0) + int(value)
    return out


def published(session: Session, *, since: dt.datetime, until: dt.datetime) -> list[_Post]:
    """The posts published in [since, until), oldest id first, each with its latest counters:
    read once, grouped as often as a page needs (:func:`group`)."""
    in_period = (Post.status == PostStatus.PUBLISHED.value, Post.published_at >= since, Post.published_at < until)
    rows = session.connection().execute(
        select(Post.id, Post.kind, Post.published_at, Channel.name, Channel.platform, Product.name, Umkm.name)
        .join(Channel, Channel.id == Post.channel_id)
        .outerjoin(Product, Product.id == Post.product_id)
        .outerjoin(Umkm, Umkm.id == Product.umkm_id)
        .where(*in_period).order_by(Post.id)).all()
    counts = _latest_counts(session, select(Post.id).where(*in_period))
    out = []
    for pid, kind, at, channel, platform, product, umkm in rows:
        assert at is not None  # the query asks for it
        out.append(_Post(pid, platform, channel, kind, product, umkm, at, counts.get(pid, {})))
    return out


def _key(by: str, p: _Post, tz: ZoneInfo) -> str:
    if by == "umkm":
        return p.umkm or NONE
    if by == "product":
        return p.product or NONE
    if by == "channel":
        return p.channel
    if by == "platform":
        return p.platform
    if by == "kind":
        return p.kind
    return p.published_at.astimezone(tz).strftime("%H:00")


def gives_counters(platform: str) -> bool:
    """Whether ``platform`` lets us read engagement back (Discord, Telegram, outbox and webhook do not)."""
    from scheduler.platforms import PLATFORMS, adapter_class

    return platform in PLATFORMS and adapter_class(platform).metrics.available


def engagement_of(counts: dict[str, int]) -> int:
    return sum(counts.get(n, 0) for n in ENGAGEMENT)


def group(posts: Sequence[_Post], by: str, tz: ZoneInfo) -> list[dict[str, Any]]:
    """One row per group of ``posts`` (see :func:`report`)."""
    if by not in GROUPS:
        raise ValueError(f"by must be one of {', '.join(GROUPS)}")
    groups: dict[str, list[_Post]] = defaultdict(list)
    for p in posts:
        groups[_key(by, p, tz)].append(p)
    out = [_row(key, members) for key, members in groups.items()]
    out.sort(key=lambda r: (r["engagement"] is None, -(r["engagement"] or 0), r["group"]))
    return out


def report(session: Session, *, since: dt.datetime, until: dt.datetime, by: str, tz: ZoneInfo) -> list[dict[str, Any]]:
    """One row per group of the posts published in [since, until): posts, measured posts, reach or
    views, engagement and per measured post, each counter, and the platform with the most engagement
    per measured post. Sorted by engagement, most first (groups with nothing measured last)."""
    if by not in GROUPS:
        raise ValueError(f"by must be one of {', '.join(GROUPS)}")
    return group(published(session, since=since, until=until), by, tz)


@dataclass
class Sections:
    """A period's figures: its totals, the platforms it published on, and the rows of each grouping."""

    total: dict[str, Any]
    #: platform → posts published there in the period
    platforms: dict[str, int]
    rows: dict[str, list[dict[str, Any]]]
    #: the posts with the most engagement, most first (id, channel, platform, published_at, engagement)
    top: list[dict[str, Any]]


def sections(session: Session, *, since: dt.datetime, until: dt.datetime, tz: ZoneInfo,
             groups: Sequence[str] = GROUPS, top: int = 10) -> Sections:
    """The period's totals (one row named :data:`TOTAL`) and the rows of each of ``groups``
    (as :func:`report` gives them), from one read of the posts: the Reports pages."""
    posts = published(session, since=since, until=until)
    ranked = sorted((p for p in posts if p.counts), key=lambda p: (-engagement_of(p.counts), p.id))[:top]
    return Sections(_row(TOTAL, posts), dict(sorted(Counter(p.platform for p in posts).items())),
                    {by: group(posts, by, tz) for by in groups},
                    [{"id": p.id, "channel": p.channel, "platform": p.platform, "published_at": p.published_at,
                      "engagement": engagement_of(p.counts)} for p in ranked])


def _row(key: str, members: list[_Post]) -> dict[str, Any]:
    measured = [p for p in members if p.counts]
    row: dict[str, Any] = {"group": key, "posts": len(members), "measured": len(measured)}
    if not measured:
        return {**row, **{f: None for f in FIELDS if f not in row}}
    totals = {n: sum(p.counts.get(n, 0) for p in measured) for n in ENGAGEMENT}
    engagement = sum(totals.values())
    by_platform: dict[str, list[int]] = defaultdict(list)
    for p in measured:
        by_platform[p.platform].append(engagement_of(p.counts))
    best = max(sorted(by_platform), key=lambda k: sum(by_platform[k]) / len(by_platform[k]))
    return {**row, "reach_views": sum(p.counts.get("reach", p.counts.get("views", 0)) for p in measured),
            "engagement": engagement, "engagement_per_post": round(engagement / len(measured), 2), **totals,
            "best_platform": best}


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
    rows = session.execute(
        select(Post.id, Product.umkm_id).join(Product, Product.id == Post.product_id)
        .where(Post.status == PostStatus.PUBLISHED.value, Post.published_at >= since, Post.published_at < until)).all()
    counts = _latest_counts(session, [post_id for post_id, _ in rows])
    per: dict[int, list[int]] = defaultdict(list)
    for post_id, umkm_id in rows:
        if counts.get(post_id):
            per[umkm_id].append(engagement_of(counts[post_id]))
    return {u: sum(v) / len(v) for u, v in per.items()}
