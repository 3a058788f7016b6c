"""The daily UMKM highlight: pick products fairly, create one post per channel per day.

The pick (:func:`pick_highlights`) is a pure function over the eligible products and the
past picks, so a preview, a test driving 60 days and the job itself all agree:

* only products whose curation is ``approved``, that are active and whose UMKM is curated;
* the UMKM least recently featured goes first (never featured counts as oldest), so a
  UMKM with ten products gets no second turn before every other eligible UMKM had one;
* no UMKM again within PROMO_HIGHLIGHT_UMKM_COOLDOWN_DAYS while another one is eligible;
* within the chosen UMKM, its least recently featured product;
* ties go to the UMKM (product) featured fewer times, then to the smaller external id.

Idempotency lives in the database: a :class:`~scheduler.models.Highlight` row is unique
per (day, channel, slot) and is inserted in the same transaction as the post, so a second
run, a restart or a second service process finds the row (or loses the insert race) and
creates nothing. Days the service missed beyond the highlight's maximum lateness are
recorded as ``skipped``; a day with nothing eligible as ``nothing_eligible`` (plus an
audit entry and an alert). With PROMO_REQUIRE_APPROVAL the post is created
PROMO_HIGHLIGHT_APPROVAL_LEAD early as ``pending_approval`` and expires at its time if
nobody approved it.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from scheduler import errors
from scheduler.composer import Composer
from scheduler.config import WEEKDAYS, Settings
from scheduler.models import AuditEntry, Channel, Highlight, Post, PostStatus, Product, Umkm, utcnow
from scheduler.planner import Source, compose_for, create_posts, resolve_channels
from scheduler.storage import posts as post_store
from scheduler.storage.db import Database

if TYPE_CHECKING:
    from scheduler.service import Service

log = logging.getLogger("promo.jobs.highlight")
S = PostStatus
KIND = "daily_highlight"
ACTOR = "daily-highlight"
#: How often the job also sweeps (catch-up, expiring unapproved posts) besides its exact times.
SWEEP_MINUTES = 15
#: How far back a restarted service records the days it missed as skipped.
MISSED_DAYS_LOOKBACK = 14
#: Posts in these states no longer count as a feature (the product was not shown).
NOT_SHOWN = (S.CANCELLED.value, S.EXPIRED.value)
UNSENT = (S.DRAFT.value, S.PENDING_APPROVAL.value, S.SCHEDULED.value)
Alert = Callable[[str], None]


# --- the pick (pure) ---------------------------------------------------------------------

@dataclass(frozen=True)
class Candidate:
    """An eligible product with its UMKM (ids are database ids; refs are external ids)."""

    product_id: int
    product_ref: str
    product_name: str
    umkm_id: int
    umkm_ref: str
    umkm_name: str


@dataclass(frozen=True)
class Feature:
    """One past pick: which product (of which UMKM) was the highlight of a day's slot."""

    day: dt.date
    slot: int
    umkm_id: int
    product_id: int


@dataclass
class Pick:
    """A product picked for a slot of a day, with the reasons in plain words."""

    slot: int
    candidate: Candidate
    why: list[str] = field(default_factory=list)


def _ago(day: dt.date, last: dt.date) -> str:
    n = (day - last).days
    return f"{last.isoformat()} ({'today' if n == 0 else '1 day ago' if n == 1 else f'{n} days ago'})"


def pick_highlights(candidates: Sequence[Candidate], history: Iterable[Feature], day: dt.date, *,
                    count: int = 1, cooldown_days: int = 7) -> list[Pick]:
    """Pick up to ``count`` products for ``day`` (see the module docstring for the rules).

    ``history`` holds the picks of earlier days (later ones are ignored). Each pick is
    added to the history before the next slot is picked, so two slots of one day go to
    two UMKM whenever there are two.
    """
    past = sorted((f for f in history if f.day < day), key=lambda f: (f.day, f.slot))
    picks: list[Pick] = []
    for slot in range(count):
        taken = {p.candidate.product_id for p in picks}
        pool = [c for c in candidates if c.product_id not in taken]
        if not pool:
            break
        pick = _pick_one(pool, past, day, slot, cooldown_days)
        picks.append(pick)
        past.append(Feature(day=day, slot=slot, umkm_id=pick.candidate.umkm_id,
                            product_id=pick.candidate.product_id))
    return picks


_NEVER = (dt.date.min, -1)


def _pick_one(pool: Sequence[Candidate], past: Sequence[Feature], day: dt.date, slot: int,
              cooldown_days: int) -> Pick:
    umkm_last: dict[int, tuple[dt.date, int]] = {}
    umkm_times: dict[int, int] = {}
    product_last: dict[int, tuple[dt.date, int]] = {}
    product_times: dict[int, int] = {}
    for f in past:  # sorted oldest first, so the last write is the latest feature
        umkm_last[f.umkm_id] = (f.day, f.slot)
        umkm_times[f.umkm_id] = umkm_times.get(f.umkm_id, 0) + 1
        product_last[f.product_id] = (f.day, f.slot)
        product_times[f.product_id] = product_times.get(f.product_id, 0) + 1
    by_umkm: dict[int, list[Candidate]] = {}
    for c in pool:
        by_umkm.setdefault(c.umkm_id, []).append(c)

    def umkm_key(u: int) -> tuple[tuple[dt.date, int], int, str]:
        return umkm_last.get(u, _NEVER), umkm_times.get(u, 0), min(c.umkm_ref for c in by_umkm[u])

    def cooling(u: int) -> bool:
        last = umkm_last.get(u)
        return last is not None and (day - last[0]).days < cooldown_days

    ranked = sorted(by_umkm, key=umkm_key)
    free = [u for u in ranked if not cooling(u)]
    chosen = (free or ranked)[0]
    first = by_umkm[chosen][0]
    last = umkm_last.get(chosen)
    seen = f"last featured {_ago(day, last[0])}" if last else "never featured"
    why = [f"UMKM {first.umkm_name} ({first.umkm_ref}): {seen}, least recently featured "
           f"of {len(ranked)} eligible UMKM"]
    ties = [u for u in ranked if u != chosen and umkm_key(u)[:2] == umkm_key(chosen)[:2]]
    if ties:
        why.append(f"tied with {len(ties)} other UMKM; the smallest id goes first")
    if cooldown_days:
        cooled = len(ranked) - len(free)
        if not free:
            why.append(f"every eligible UMKM was featured within the {cooldown_days}-day cooldown, "
                       "so the least recent one goes again")
        elif cooled:
            why.append(f"{cooled} UMKM featured within the last {cooldown_days} days wait (cooldown)")

    def product_key(c: Candidate) -> tuple[tuple[dt.date, int], int, str]:
        return product_last.get(c.product_id, _NEVER), product_times.get(c.product_id, 0), c.product_ref

    products = sorted(by_umkm[chosen], key=product_key)
    best = products[0]
    plast = product_last.get(best.product_id)
    pseen = f"last featured {_ago(day, plast[0])}" if plast else "never featured"
    why.append(f"product {best.product_name} ({best.product_ref}): {pseen}, least recently featured "
               f"of its {len(products)} eligible product(s)")
    return Pick(slot=slot, candidate=best, why=why)


# --- reading the database -------------------------------------------------------------

@dataclass
class Eligibility:
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
         .where(Highlight.status == "created", Highlight.day < before, Highlight.product_id.is_not(None),
                or_(Post.id.is_(None), Post.status.notin_(NOT_SHOWN)))
         .distinct())
    return [Feature(d, s, u, p) for d, s, u, p in session.execute(q) if u is not None and p is not None]


def day_picks(session: Session, day: dt.date) -> dict[int, Candidate]:
    """Slots of ``day`` already decided on some channel (other channels reuse them)."""
    q = (select(Highlight.slot, Product, Umkm).join(Product, Product.id == Highlight.product_id)
         .join(Umkm, Umkm.id == Product.umkm_id)
         .where(Highlight.day == day, Highlight.status.in_(("created", "expired", "cancelled")))
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
                                         cooldown_days=settings.highlight_cooldown_days):
                    history.append(Feature(d, p.slot, p.candidate.umkm_id, p.candidate.product_id))
            d += dt.timedelta(days=1)
    picks = pick_highlights(elig.candidates, history, day, count=settings.highlight_count,
                            cooldown_days=settings.highlight_cooldown_days)
    return picks, elig


# --- the job ------------------------------------------------------------------------------

@dataclass
class Decision:
    """What the job did for one day, channel and slot."""

    day: dt.date
    channel: str
    slot: int
    status: str  # created | skipped | nothing_eligible | expired
    post_id: int | None = None
    product: str | None = None
    reason: str | None = None


def publish_time(settings: Settings, day: dt.date) -> dt.datetime:
    """The day's highlight time (PROMO_HIGHLIGHT_TIME in the organisation's timezone), in UTC."""
    return dt.datetime.combine(day, settings.highlight_time, tzinfo=settings.timezone).astimezone(dt.UTC)


def create_time(settings: Settings, day: dt.date) -> dt.datetime:
    """When the day's posts are created: at their time, or the approval lead earlier."""
    at = publish_time(settings, day)
    return at - settings.highlight_lead if settings.require_approval else at


def _local(settings: Settings, when: dt.datetime) -> str:
    return when.astimezone(settings.timezone).strftime("%Y-%m-%d %H:%M %Z")


def _insert(db: Database, fill: Callable[[Session], Highlight | None]) -> Highlight | None:
    """Run ``fill`` in its own transaction; None when another run already holds the row."""
    try:
        with db.session() as session:
            return fill(session)
    except IntegrityError:
        return None


def _record(session: Session, *, day: dt.date, channel: Channel, slot: int, status: str, reason: str,
            actor: str, product: Candidate | None = None, post_id: int | None = None,
            why: Sequence[str] = ()) -> Highlight:
    row = Highlight(day=day, channel_id=channel.id, slot=slot, status=status, reason=reason,
                    product_id=product.product_id if product else None,
                    umkm_id=product.umkm_id if product else None, post_id=post_id, created_at=utcnow())
    session.add(row)
    session.flush()  # the unique (day, channel, slot) key decides here
    detail: dict[str, Any] = {"day": day.isoformat(), "channel": channel.name, "slot": slot, "reason": reason}
    if product is not None:
        detail.update(product=product.product_ref, umkm=product.umkm_ref, why=list(why))
    if post_id is not None:
        detail["post_id"] = post_id
    session.add(AuditEntry(actor=actor, action=f"highlight.{status}", entity="highlight",
                           entity_id=f"{day.isoformat()}:{channel.name}:{slot}", detail=detail))
    return row


def expire_unapproved(settings: Settings, db: Database, now: dt.datetime, *, actor: str = ACTOR,
                      alert: Alert | None = None) -> list[Decision]:
    """Highlight posts still waiting for approval at their time expire (and the day is not featured)."""
    out: list[Decision] = []
    with db.session() as session:
        posts = session.scalars(select(Post).where(Post.kind == KIND, Post.status == S.PENDING_APPROVAL.value,
                                                   Post.scheduled_at <= now)).all()
        for post in posts:
            assert post.scheduled_at is not None  # the query selected scheduled_at <= now
            post_store.transition(session, post, S.EXPIRED, actor=actor, reason="not approved before its time")
            for row in session.scalars(select(Highlight).where(Highlight.post_id == post.id)):
                row.status = "expired"
                row.reason = f"post {post.id} was not approved before {_local(settings, post.scheduled_at)}"
                out.append(Decision(row.day, post.channel.name, row.slot, "expired", post.id, reason=row.reason))
    for d in out:
        if alert:
            alert(f"highlight post {d.post_id} on {d.channel} expired: not approved before its time")
    return out


def run_daily_highlight(settings: Settings, db: Database, composer: Composer, now: dt.datetime, *,
                        actor: str = ACTOR, alert: Alert | None = None) -> list[Decision]:
    """Do whatever the highlight needs at ``now``; safe to call any number of times.

    Expires unapproved posts whose time came, records missed days as skipped, and
    creates today's highlight once its creation time has come (and it is not too late).
    """
    decisions = expire_unapproved(settings, db, now, actor=actor, alert=alert)
    if not settings.highlight_channels:
        return decisions
    today = now.astimezone(settings.timezone).date()
    channels = sync_channels(settings, db, settings.highlight_channels)
    with db.session() as session:
        last_days = dict(session.execute(
            select(Highlight.channel_id, func.max(Highlight.day)).where(Highlight.day < today)
            .group_by(Highlight.channel_id)).all())
    lateness = settings.lateness(KIND)
    skipped: list[Decision] = []
    for name, channel_id in channels:
        last = last_days.get(channel_id)
        if last is None:
            continue  # a new channel or a new install: nothing was missed
        d = max(last + dt.timedelta(days=1), today - dt.timedelta(days=MISSED_DAYS_LOOKBACK))
        while d < today:
            if d.weekday() in settings.highlight_days:
                skipped += _skip(settings, db, d, name, actor, now, lateness)
            d += dt.timedelta(days=1)
    if today.weekday() in settings.highlight_days and now >= create_time(settings, today):
        if now > publish_time(settings, today) + lateness:
            for name, _id in channels:
                skipped += _skip(settings, db, today, name, actor, now, lateness)
        else:
            decisions += _create_day(settings, db, composer, today, [n for n, _ in channels], now, actor, alert)
    if skipped and alert:
        days = sorted({d.day.isoformat() for d in skipped})
        alert(f"daily highlight skipped for {', '.join(days)}: {skipped[0].reason}")
    return decisions + skipped


def sync_channels(settings: Settings, db: Database, names: Sequence[str]) -> list[tuple[str, int]]:
    """(name, id) of the channels, creating their rows first if needed.

    Two processes starting together may both insert a configured channel's row; the loser
    of that race simply reads the winner's row on the second try.
    """
    for attempt in range(2):
        try:
            with db.session() as session:
                return [(row.name, row.id) for row, _cfg in resolve_channels(session, settings, list(names))]
        except IntegrityError:
            if attempt:
                raise
    raise AssertionError("unreachable")


def _skip(settings: Settings, db: Database, day: dt.date, channel: str, actor: str, now: dt.datetime,
          lateness: dt.timedelta) -> list[Decision]:
    at = publish_time(settings, day)
    reason = (f"the service was not running between {_local(settings, at)} and "
              f"{_local(settings, at + lateness)} (PROMO_MAX_LATENESS_DAILY_HIGHLIGHT={_human(lateness)}); "
              f"noticed at {_local(settings, now)}")

    def fill(session: Session) -> Highlight:
        row = session.scalars(select(Channel).where(Channel.name == channel)).one()
        return _record(session, day=day, channel=row, slot=0, status="skipped", reason=reason, actor=actor)

    return [Decision(day, channel, 0, "skipped", reason=reason)] if _insert(db, fill) else []


def _create_day(settings: Settings, db: Database, composer: Composer, day: dt.date, channels: list[str],
                now: dt.datetime, actor: str, alert: Alert | None) -> list[Decision]:
    with db.session() as session:
        done = set(session.execute(select(Channel.name, Highlight.slot).join(Channel, Channel.id == Highlight.channel_id)
                                   .where(Highlight.day == day)).all())
        if all((c, slot) in done for c in channels for slot in range(settings.highlight_count)):
            return []  # the usual case for every run after the first
        picks, elig = plan_day(session, settings, day)
    at = max(publish_time(settings, day), now)
    if settings.require_approval and now > publish_time(settings, day):
        # Created late: give the approver the lead time, but never past the maximum lateness.
        at = min(now + settings.highlight_lead, publish_time(settings, day) + settings.lateness(KIND))
    out: list[Decision] = []
    if not picks:
        reason = f"nothing eligible: {elig.describe()}"
        for channel in channels:
            if (channel, 0) in done:
                continue

            def nothing(session: Session, channel: str = channel) -> Highlight:
                row = session.scalars(select(Channel).where(Channel.name == channel)).one()
                return _record(session, day=day, channel=row, slot=0, status="nothing_eligible", reason=reason,
                               actor=actor)

            if _insert(db, nothing):
                out.append(Decision(day, channel, 0, "nothing_eligible", reason=reason))
        if out and alert:
            alert(f"no daily highlight on {day.isoformat()}: {reason}")
        return out
    failures: list[str] = []
    for channel in channels:
        for pick in picks:
            if (channel, pick.slot) in done:
                continue
            problem: list[str] = []

            def make(session: Session, channel: str = channel, pick: Pick = pick,
                     problem: list[str] = problem) -> Highlight:
                row, cfg = resolve_channels(session, settings, [channel])[0]
                product = session.get(Product, pick.candidate.product_id)
                reason = "; ".join(pick.why)
                try:  # create_posts composes and checks before it writes, so a failure leaves nothing behind
                    posts = create_posts(session, settings, composer, Source(kind=KIND, product=product),
                                         [(row, cfg)], when=at.isoformat(), actor=actor, now=min(now, at),
                                         dedupe_key=f"highlight:{day.isoformat()}:{pick.slot}")
                except (errors.ComposeError, errors.ValidationError) as exc:
                    problem.append(str(exc))
                    return _record(session, day=day, channel=row, slot=pick.slot, status="skipped",
                                   reason=f"could not compose the post: {exc}", actor=actor,
                                   product=pick.candidate, why=pick.why)
                return _record(session, day=day, channel=row, slot=pick.slot, status="created", reason=reason,
                               actor=actor, product=pick.candidate, post_id=posts[0].id, why=pick.why)

            hl = _insert(db, make)
            if hl is None:
                continue  # another run (or process) made it first
            if problem:
                failures.append(f"{channel}: {problem[0]}")
                out.append(Decision(day, channel, pick.slot, "skipped", product=pick.candidate.product_ref,
                                    reason=hl.reason))
            else:
                out.append(Decision(day, channel, pick.slot, "created", hl.post_id,
                                    pick.candidate.product_ref, hl.reason))
    if failures and alert:
        alert(f"daily highlight {day.isoformat()} not created on " + "; ".join(failures))
    return out


def _human(delta: dt.timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    return f"{seconds // 60}m"


# --- keeping unsent highlight posts current --------------------------------------------

def update_unsent_post(session: Session, settings: Settings, post: Post, *, text: str, actor: str, reason: str,
                       scheduled_at: dt.datetime | None = None, **fields: Any) -> bool:
    """Recompose/reschedule an unsent post; returns False when nothing changed.

    A changed text needs approval again when PROMO_REQUIRE_APPROVAL is on.
    """
    when = scheduled_at or post.scheduled_at
    fields = {k: v for k, v in fields.items() if getattr(post, k) != v}
    if post.text == text and post.scheduled_at == when and not fields:
        return False
    changes = dict(text=text, scheduled_at=when, **fields)
    if post.status == S.SCHEDULED.value:
        target = S.PENDING_APPROVAL if settings.require_approval and post.text != text else S.SCHEDULED
        post_store.transition(session, post, target, actor=actor, reason=reason, next_attempt_at=None, **changes)
    else:  # draft or pending_approval: same status, so no transition; the audit trail says what changed
        for k, v in changes.items():
            setattr(post, k, v)
        post.updated_at = utcnow()
        session.add(AuditEntry(actor=actor, action="post.recompose", entity="post", entity_id=str(post.id),
                               detail={"reason": reason, "scheduled_at": when.isoformat() if when else None}))
    return True


def refresh_unsent_highlights(settings: Settings, session: Session, composer: Composer, products: Iterable[Product],
                              *, actor: str, now: dt.datetime) -> list[str]:
    """After a product or UMKM changed: recompose its unsent highlight posts, or cancel them
    when the product is no longer eligible. Returns what was done, in words."""
    done: list[str] = []
    ids = {p.id: p for p in products}
    if not ids:
        return done
    posts = session.scalars(select(Post).where(Post.kind == KIND, Post.product_id.in_(list(ids)),
                                               Post.status.in_(UNSENT))).all()
    if not posts:
        return done
    configs = {cfg.name: cfg for _row, cfg in
               resolve_channels(session, settings, sorted({p.channel.name for p in posts}))}
    for post in posts:
        product = ids[post.product_id]  # type: ignore[index]
        if product.curation != "approved" or not product.active or not product.umkm.curated:
            why = ("curation is " + product.curation if product.curation != "approved"
                   else "inactive" if not product.active else f"UMKM {product.umkm.external_id} is not curated")
            post_store.transition(session, post, S.CANCELLED, actor=actor,
                                  reason=f"product {product.external_id} is no longer eligible ({why})")
            for row in session.scalars(select(Highlight).where(Highlight.post_id == post.id)):
                row.status = "cancelled"
                row.reason = f"product no longer eligible ({why})"
            done.append(f"cancelled highlight post {post.id}")
            continue
        composed = compose_for(composer, configs[post.channel.name], Source(kind=KIND, product=product), now=now,
                               tz=settings.timezone, with_image=post.image_path is not None)
        if update_unsent_post(session, settings, post, text=composed.text, actor=actor,
                              reason=f"product {product.external_id} was edited: recomposed",
                              link=composed.link, title=composed.title, summary=composed.summary):
            done.append(f"recomposed highlight post {post.id}")
    return done


# --- service wiring --------------------------------------------------------------------

def highlight_trigger(settings: Settings, *, sweep: bool = True) -> OrTrigger:
    """At the creation time and the publish time on highlight days, plus (``sweep``) every 15 minutes."""
    tz = settings.timezone
    days = ",".join(WEEKDAYS[d].lower() for d in settings.highlight_days) or "mon"
    triggers: list[Any] = []
    for day_offset, at in _clock_times(settings):
        shifted = ",".join(WEEKDAYS[(d + day_offset) % 7].lower() for d in settings.highlight_days) or days
        triggers.append(CronTrigger(day_of_week=shifted, hour=at.hour, minute=at.minute, timezone=tz))
    if sweep:
        triggers.append(IntervalTrigger(minutes=SWEEP_MINUTES, timezone=tz))
    return OrTrigger(triggers)


def _clock_times(settings: Settings) -> list[tuple[int, dt.time]]:
    """(weekday shift, local time) of the creation and publish moments."""
    publish = settings.highlight_time
    out = [(0, publish)]
    if settings.require_approval and settings.highlight_lead:
        anchor = dt.datetime.combine(dt.date(2024, 1, 8), publish)  # a Monday
        early = anchor - settings.highlight_lead
        out.insert(0, ((early.date() - anchor.date()).days, early.time()))
    return out


def describe_trigger(settings: Settings) -> str:
    """The trigger in words, for `promo jobs list`."""
    days = ",".join(WEEKDAYS[d].lower() for d in settings.highlight_days)
    s = f"{settings.highlight_time:%H:%M} on {days}"
    if settings.require_approval:
        s += f" (created {_human(settings.highlight_lead)} earlier for approval)"
    return s + f" + a sweep every {SWEEP_MINUTES}m"


def highlight_job(service: Service) -> list[Decision]:
    """The APScheduler job: run the highlight at the current time."""
    settings = service.settings
    composer = Composer(settings.templates_dir, settings.timezone, settings.language)
    now = utcnow()
    decisions = run_daily_highlight(settings, service.db, composer, now, alert=service.alerter)
    log.debug("daily highlight checked at %s: %d decision(s)", now.isoformat(timespec="seconds"), len(decisions))
    for d in decisions:
        log.info("highlight %s %s slot %d: %s%s", d.day, d.channel, d.slot, d.status,
                 f" (post {d.post_id}, {d.product})" if d.post_id else f" ({d.reason})")
    return decisions


def register(service: Service) -> None:
    """Add the ``daily-highlight`` job (and a one-off catch-up run at start-up)."""
    settings = service.settings
    grace = int(settings.lateness(KIND).total_seconds()) or 1
    service.scheduler.add_job(highlight_job, highlight_trigger(settings), args=[service], id="daily-highlight",
                              replace_existing=True, coalesce=True, max_instances=1, misfire_grace_time=grace)
    # A service that starts after the highlight time catches up (or records the skip) at once.
    service.scheduler.add_job(highlight_job, "date", args=[service], id="daily-highlight-startup",
                              replace_existing=True, misfire_grace_time=grace)


# --- data for `promo highlight preview|history` (the CLI renders it) ------------------------

def preview(settings: Settings, db: Database, composer: Composer, day: dt.date,
            now: dt.datetime | None = None) -> dict[str, Any]:
    """The picks for ``day``, why, and each channel's text; creates nothing."""
    now = now or utcnow()
    today = now.astimezone(settings.timezone).date()
    out: dict[str, Any] = {"date": day.isoformat(), "weekday": WEEKDAYS[day.weekday()].lower(),
                           "time": _local(settings, publish_time(settings, day)),
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
                        text = compose_for(composer, cfg, Source(kind=KIND, product=product), now=now,
                                           tz=settings.timezone, with_image=bool(product and product.image)).text
                        error = None
                    except errors.PromoError as exc:
                        text, error = None, str(exc)
                    out["posts"].append({"channel": row.name, "platform": cfg.platform, "slot": p.slot,
                                         "text": text, "error": error})
    return out


def history(db: Database, local: Callable[[dt.datetime | None], str]) -> list[dict[str, Any]]:
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
    featured = [r for r in rows if r["status"] == "created" and r["post_status"] not in NOT_SHOWN]
    days: dict[str, set[str]] = {}
    names: dict[str, str] = {}
    for r in featured:
        days.setdefault(r[key], set()).add(r["day"])
        names[r[key]] = r[name]
    return [{key: k, "name": names[k], "times": len(v), "last": max(v)}
            for k, v in sorted(days.items(), key=lambda kv: (-len(kv[1]), kv[0]))]
