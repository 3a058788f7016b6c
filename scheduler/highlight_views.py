"""The daily highlight as staff read it: what a day's pick would be and why (``promo highlight
preview``, creates nothing), past highlights, and how often each UMKM and product was featured.

These read models use the highlight job's own pick and queries, so they sit above ``jobs``
(beside the service); the plain rows every other screen shows are in :mod:`scheduler.views`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from scheduler.config import WEEKDAYS, Settings
from scheduler.errors import PromoError
from scheduler.models import (
    Channel,
    Highlight,
    HighlightStatus,
    Post,
    PostKind,
    Product,
    Umkm,
    utcnow,
)

if TYPE_CHECKING:
    from scheduler.composer import Composer
    from scheduler.storage.db import Database


def highlight_preview(settings: Settings, db: Database, composer: Composer, day: dt.date,
                      now: dt.datetime | None = None) -> dict[str, Any]:
    """The picks for ``day``, why, and each channel's text; creates nothing."""
    # Imported here: the other views (`promo status`, `promo history`) need no templates.
    from jobs.highlight.create import publish_time
    from jobs.highlight.queries import plan_day
    from scheduler.planner import Source, compose_for, resolve_channels

    now = now or utcnow()
    today = now.astimezone(settings.timezone).date()
    at = publish_time(settings, day).astimezone(settings.timezone)
    out: dict[str, Any] = {"date": day.isoformat(), "weekday": WEEKDAYS[day.weekday()].lower(),
                           "time": at.strftime("%Y-%m-%d %H:%M %Z"),
                           "channels": list(settings.highlight_channels), "picks": [], "posts": []}
    with db.read_session() as session:  # rolled back at the end: a preview creates nothing
        out["highlight_day"] = day.weekday() in settings.highlight_days
        picks, elig = plan_day(session, settings, day, simulate_from=today if day > today else None)
        out["eligible"] = elig.describe()
        recorded = session.execute(select(Channel.name, Highlight.slot, Highlight.status, Highlight.post_id,
                                          Highlight.reason).join(Channel, Channel.id == Highlight.channel_id)
                                   .where(Highlight.day == day).order_by(Channel.name, Highlight.slot)).all()
        out["recorded"] = [{"channel": c, "slot": s, "status": st, "post_id": pid, "reason": r}
                           for c, s, st, pid, r in recorded]
        for p in picks:
            out["picks"].append({"slot": p.slot, "product": p.candidate.product_ref,
                                 "product_name": p.candidate.product_name, "umkm": p.candidate.umkm_ref,
                                 "umkm_name": p.candidate.umkm_name, "why": p.why})
        if settings.highlight_channels and picks:
            for row, cfg in resolve_channels(session, settings, list(settings.highlight_channels)):
                for p in picks:
                    product = session.get(Product, p.candidate.product_id)
                    try:
                        source = Source(kind=PostKind.DAILY_HIGHLIGHT, product=product)
                        text = compose_for(composer, cfg, source, now=now, tz=settings.timezone,
                                           with_image=bool(product and product.image)).text
                        error = None
                    except PromoError as exc:
                        text, error = None, str(exc)
                    out["posts"].append({"channel": row.name, "platform": cfg.platform, "slot": p.slot,
                                         "text": text, "error": error})
    return out


def highlight_history(db: Database, local: Callable[[dt.datetime | None], str]) -> list[dict[str, Any]]:
    """Every recorded highlight day per channel, oldest first."""
    with db.read_session() as session:
        q = (select(Highlight, Channel.name, Product, Umkm, Post.status)
             .join(Channel, Channel.id == Highlight.channel_id)
             .outerjoin(Product, Product.id == Highlight.product_id)
             .outerjoin(Umkm, Umkm.id == Highlight.umkm_id)
             .outerjoin(Post, Post.id == Highlight.post_id)
             .order_by(Highlight.day, Channel.name, Highlight.slot))
        rows = []
        for h, channel, product, umkm, post_status in session.execute(q):
            rows.append({
                "day": h.day.isoformat(), "channel": channel, "slot": h.slot, "status": h.status,
                "product": product.external_id if product else None, "product_name": product.name if product else None,
                "umkm": umkm.external_id if umkm else None, "umkm_name": umkm.name if umkm else None,
                "post_id": h.post_id, "post_status": post_status, "reason": h.reason,
                "created_at": local(h.created_at),
            })
    return rows


def featured_summary(rows: list[dict[str, Any]], key: str, name: str) -> list[dict[str, Any]]:
    """How often, and when last, each UMKM or product (``key``) was featured."""
    from jobs.highlight.queries import NOT_SHOWN

    featured = [r for r in rows if r["status"] == HighlightStatus.CREATED and r["post_status"] not in NOT_SHOWN]
    days: dict[str, set[str]] = {}
    names: dict[str, str] = {}
    for r in featured:
        days.setdefault(r[key], set()).add(r["day"])
        names[r[key]] = r[name]
    return [{key: k, "name": names[k], "times": len(v), "last": max(v)}
            for k, v in sorted(days.items(), key=lambda kv: (-len(kv[1]), kv[0]))]
