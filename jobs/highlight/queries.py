"""What the highlight reads from the database: eligible products, past features, a day's picks."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from jobs.highlight.pick import Candidate, Feature, Pick, pick_highlights
from scheduler.config import Settings
from scheduler.models import Highlight, HighlightStatus, Post, PostStatus, Product, Umkm

#: Posts in these states no longer count as a feature (the product was not shown).
NOT_SHOWN = (PostStatus.CANCELLED.value, PostStatus.EXPIRED.value)


@dataclass
class Eligibility:
    """The eligible products, and how many others were left out for each reason."""

    candidates: list[Candidate]
    total: int
    not_approved: int
    inactive: int
    uncurated: int

    def describe(self) -> str:
        s = f"{len(self.candidates)} of {self.total} product(s) eligible"
        parts = [f"{n} {what}" for n, what in ((self.not_approved, "not approved"), (self.inactive, "inactive"),
                                               (self.uncurated, "from a UMKM that is not curated")) if n]
        return s + (f" ({', '.join(parts)})" if parts else "")


def eligible_products(session: Session) -> Eligibility:
    """Every product with its reason for (not) being eligible."""
    rows = session.execute(select(Product, Umkm).join(Umkm, Umkm.id == Product.umkm_id)).all()
    out = Eligibility([], len(rows), 0, 0, 0)
    for p, u in rows:
        if p.curation != "approved":
            out.not_approved += 1
        elif not p.active:
            out.inactive += 1
        elif not u.curated:
            out.uncurated += 1
        else:
            out.candidates.append(Candidate(p.id, p.external_id, p.name, u.id, u.external_id, u.name))
    out.candidates.sort(key=lambda c: (c.umkm_ref, c.product_ref))
    return out


def feature_history(session: Session, before: dt.date) -> list[Feature]:
    """Past picks (one per day and slot) whose posts were not cancelled or expired."""
    q = (select(Highlight.day, Highlight.slot, Highlight.umkm_id, Highlight.product_id)
         .outerjoin(Post, Post.id == Highlight.post_id)
         .where(Highlight.status == HighlightStatus.CREATED, Highlight.day < before, Highlight.product_id.is_not(None),
                or_(Post.id.is_(None), Post.status.notin_(NOT_SHOWN)))
         .distinct())
    return [Feature(d, s, u, p) for d, s, u, p in session.execute(q) if u is not None and p is not None]


def day_picks(session: Session, day: dt.date) -> dict[int, Candidate]:
    """Slots of ``day`` already decided on some channel (other channels reuse them)."""
    q = (select(Highlight.slot, Product, Umkm).join(Product, Product.id == Highlight.product_id)
         .join(Umkm, Umkm.id == Product.umkm_id)
         .where(Highlight.day == day, Highlight.status.in_((HighlightStatus.CREATED, HighlightStatus.EXPIRED,
                                                            HighlightStatus.CANCELLED)))
         .order_by(Highlight.id))
    out: dict[int, Candidate] = {}
    for slot, p, u in session.execute(q):
        out.setdefault(slot, Candidate(p.id, p.external_id, p.name, u.id, u.external_id, u.name))
    return out


def plan_day(session: Session, settings: Settings, day: dt.date, *, simulate_from: dt.date | None = None
             ) -> tuple[list[Pick], Eligibility]:
    """The picks for ``day``: those already made, else computed from the history.

    With ``simulate_from``, highlight days between it and ``day`` that have no picks yet
    are picked first (in memory), so a preview of a later day accounts for them.
    """
    elig = eligible_products(session)
    existing = day_picks(session, day)
    if existing:
        return [Pick(slot, c, ["already picked for this day"]) for slot, c in sorted(existing.items())], elig
    history = feature_history(session, day)
    if simulate_from is not None:
        d = simulate_from
        while d < day and (day - d).days <= 366:
            if d.weekday() in settings.highlight_days and not day_picks(session, d):
                for p in pick_highlights(elig.candidates, history, d, count=settings.highlight_count,
                                         cooldown_days=settings.highlight_cooldown_days,
                                         engagement=_engagement(session, settings, d)):
                    history.append(Feature(d, p.slot, p.candidate.umkm_id, p.candidate.product_id))
            d += dt.timedelta(days=1)
    picks = pick_highlights(elig.candidates, history, day, count=settings.highlight_count,
                            cooldown_days=settings.highlight_cooldown_days, engagement=_engagement(session, settings, day))
    return picks, elig


def _engagement(session: Session, settings: Settings, day: dt.date) -> dict[int, float]:
    """UMKM id → engagement per measured post over the 90 days before ``day``, when
    PROMO_HIGHLIGHT_ORDER=fair_then_engagement; else nothing (ties go to the smaller id)."""
    if settings.highlight_order != "fair_then_engagement":
        return {}
    from scheduler.reports import engagement_by_umkm

    until = dt.datetime.combine(day, dt.time(), tzinfo=settings.timezone).astimezone(dt.UTC)
    return engagement_by_umkm(session, since=until - dt.timedelta(days=90), until=until)
