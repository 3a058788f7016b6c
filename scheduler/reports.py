"""What worked: engagement read back from the platforms, grouped per UMKM, product, channel,
platform, post kind or hour of publishing (`promo report`; the web pages use the same rows).

Each published post counts with its latest read (the counters only grow, so the latest is the
whole story so far). ``engagement`` is likes + shares + replies + saves; ``reach_views`` is the
post's reach where the platform gives it, else its views. Posts on platforms that give no
counters count in ``posts`` but not in ``measured``, and never as zeros: a group with nothing
measured shows no engagement at all rather than 0.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from scheduler.models import Channel, Metric, Post, PostStatus, Product, Umkm

GROUPS = ("umkm", "product", "channel", "platform", "kind", "hour")
#: The common counters that make up engagement.
ENGAGEMENT = ("likes", "shares", "replies", "saves")
FIELDS = ("group", "posts", "measured", "reach_views", "engagement", "engagement_per_post", "likes", "shares",
          "replies", "saves", "best_platform")
#: The group of posts that have no UMKM or product (free text, events).
NONE = "(none)"


@dataclass
class _Post:
    id: int
    platform: str
    key: str
    counts: dict[str, int]


def _latest_counts(session: Session, post_ids: list[int]) -> dict[int, dict[str, int]]:
    """Each post's counters from its latest read."""
    out: dict[int, dict[str, int]] = defaultdict(dict)
    for start in range(0, len(post_ids), 900):  # SQLite's bound-parameter limit
        chunk = post_ids[start:start + 900]
        latest = (select(Metric.post_id, func.max(Metric.fetched_at).label("at"))
                  .where(Metric.post_id.in_(chunk)).group_by(Metric.post_id).subquery())
        rows = session.execute(
            select(Metric.post_id, Metric.name, Metric.value)
            .join(latest, (latest.c.post_id == Metric.post_id) & (latest.c.at == Metric.fetched_at)))
        for post_id, name, value in rows:
            out[post_id][name] = out[post_id].get(name, 0) + int(value)
    return out


def _key(by: str, post: Post, platform: str, product: str | None, umkm: str | None, tz: ZoneInfo) -> str:
    if by == "umkm":
        return umkm or NONE
    if by == "product":
        return product or NONE
    if by == "channel":
        return post.channel.name
    if by == "platform":
        return platform
    if by == "kind":
        return post.kind
    assert post.published_at is not None
    return post.published_at.astimezone(tz).strftime("%H:00")


def engagement_of(counts: dict[str, int]) -> int:
    return sum(counts.get(n, 0) for n in ENGAGEMENT)


def report(session: Session, *, since: dt.datetime, until: dt.datetime, by: str, tz: ZoneInfo) -> list[dict[str, Any]]:
    """One row per group of the posts published in [since, until): posts, measured posts, reach or
    views, engagement and per measured post, each counter, and the platform with the most engagement
    per measured post. Sorted by engagement, most first (groups with nothing measured last)."""
    if by not in GROUPS:
        raise ValueError(f"by must be one of {', '.join(GROUPS)}")
    rows = session.execute(
        select(Post, Channel.platform, Product.name, Umkm.name)
        .join(Channel, Channel.id == Post.channel_id)
        .outerjoin(Product, Product.id == Post.product_id)
        .outerjoin(Umkm, Umkm.id == Product.umkm_id)
        .where(Post.status == PostStatus.PUBLISHED.value, Post.published_at >= since, Post.published_at < until)
        .order_by(Post.id)).all()
    counts = _latest_counts(session, [r[0].id for r in rows])
    posts = [_Post(p.id, platform, _key(by, p, platform, product, umkm, tz), counts.get(p.id, {}))
             for p, platform, product, umkm in rows]
    groups: dict[str, list[_Post]] = defaultdict(list)
    for p in posts:
        groups[p.key].append(p)
    out = [_row(key, members) for key, members in groups.items()]
    out.sort(key=lambda r: (r["engagement"] is None, -(r["engagement"] or 0), r["group"]))
    return out


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
