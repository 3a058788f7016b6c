"""The highlight job: create each highlight day's posts exactly once, and keep unsent ones current.

Idempotency lives in the database: a :class:`~scheduler.models.Highlight` row is unique
per (day, channel, slot) and is inserted in the same transaction as the post, so a second
run, a restart or a second service process finds the row (or loses the insert race) and
creates nothing. Days the service missed beyond the highlight's maximum lateness are
recorded as ``skipped``; a day with nothing eligible as ``nothing_eligible`` (plus an
audit entry and an alert). With PROMO_REQUIRE_APPROVAL the post is created
PROMO_HIGHLIGHT_APPROVAL_LEAD early as ``pending_approval`` and expires at its time if
nobody approved it. Every outcome is a :class:`~scheduler.models.HighlightStatus`.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from jobs.highlight.pick import Candidate, Pick
from jobs.highlight.queries import plan_day
from scheduler import errors
from scheduler.composer import Composer
from scheduler.config import Settings
from scheduler.models import (
    AuditEntry,
    Channel,
    Highlight,
    HighlightStatus,
    Post,
    PostKind,
    PostStatus,
    Product,
    utcnow,
)
from scheduler.planner import Source, compose_for, create_posts, resolve_channels
from scheduler.storage import posts as post_store
from scheduler.storage.db import Database
from scheduler.unsent import UNSENT, update_unsent_post
from scheduler.values import human_duration, local_time

log = logging.getLogger("promo.jobs.highlight")
KIND = PostKind.DAILY_HIGHLIGHT
ACTOR = "daily-highlight"
#: How far back a restarted service records the days it missed as skipped.
MISSED_DAYS_LOOKBACK = 14
Alert = Callable[[str], None]


@dataclass
class Decision:
    """What the job did for one day, channel and slot."""

    day: dt.date
    channel: str
    slot: int
    status: HighlightStatus
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



def _insert(db: Database, fill: Callable[[Session], Highlight | None]) -> Highlight | None:
    """Run ``fill`` in its own transaction; None when another run already holds the row."""
    try:
        with db.session() as session:
            return fill(session)
    except IntegrityError:
        return None


def _record(session: Session, *, day: dt.date, channel: Channel, slot: int, status: HighlightStatus, reason: str,
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
        # Locked, skipping those another process is expiring now: one transition and one alert each.
        posts = session.scalars(select(Post).where(Post.kind == KIND, Post.status == PostStatus.PENDING_APPROVAL.value,
                                                   Post.scheduled_at <= now)
                                .with_for_update(skip_locked=True, of=Post)).all()
        for post in posts:
            assert post.scheduled_at is not None  # the query selected scheduled_at <= now
            post_store.transition(session, post, PostStatus.EXPIRED, actor=actor, reason="not approved before its time")
            for row in session.scalars(select(Highlight).where(Highlight.post_id == post.id)):
                row.status = HighlightStatus.EXPIRED
                row.reason = f"post {post.id} was not approved before {local_time(post.scheduled_at, settings.timezone)}"
                out.append(Decision(row.day, post.channel.name, row.slot, HighlightStatus.EXPIRED, post.id,
                                    reason=row.reason))
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
    reason = (f"the service was not running between {local_time(at, settings.timezone)} and "
              f"{local_time(at + lateness, settings.timezone)} (PROMO_MAX_LATENESS_DAILY_HIGHLIGHT={human_duration(lateness)}); "
              f"noticed at {local_time(now, settings.timezone)}")

    def fill(session: Session) -> Highlight:
        row = session.scalars(select(Channel).where(Channel.name == channel)).one()
        return _record(session, day=day, channel=row, slot=0, status=HighlightStatus.SKIPPED, reason=reason,
                       actor=actor)

    return [Decision(day, channel, 0, HighlightStatus.SKIPPED, reason=reason)] if _insert(db, fill) else []


def _post_time(settings: Settings, day: dt.date, now: dt.datetime) -> dt.datetime:
    """When the day's highlight posts go out: the publish time, or now when that has passed."""
    at = max(publish_time(settings, day), now)
    if settings.require_approval and now > publish_time(settings, day):
        # Created late: give the approver the lead time, but never past the maximum lateness.
        at = min(now + settings.highlight_lead, publish_time(settings, day) + settings.lateness(KIND))
    return at


def _nothing_eligible(db: Database, day: dt.date, channels: list[str], reason: str, actor: str,
                      alert: Alert | None) -> list[Decision]:
    """Record on each channel that the day has no highlight, and why (one alert for the day)."""
    out: list[Decision] = []
    for channel in channels:

        def nothing(session: Session, channel: str = channel) -> Highlight:
            row = session.scalars(select(Channel).where(Channel.name == channel)).one()
            return _record(session, day=day, channel=row, slot=0, status=HighlightStatus.NOTHING_ELIGIBLE,
                           reason=reason, actor=actor)

        if _insert(db, nothing):
            out.append(Decision(day, channel, 0, HighlightStatus.NOTHING_ELIGIBLE, reason=reason))
    if out and alert:
        alert(f"no daily highlight on {day.isoformat()}: {reason}")
    return out


def _create_day(settings: Settings, db: Database, composer: Composer, day: dt.date, channels: list[str],
                now: dt.datetime, actor: str, alert: Alert | None) -> list[Decision]:
    with db.session() as session:
        done = set(session.execute(select(Channel.name, Highlight.slot).join(Channel, Channel.id == Highlight.channel_id)
                                   .where(Highlight.day == day)).all())
        if all((c, slot) in done for c in channels for slot in range(settings.highlight_count)):
            return []  # the usual case for every run after the first
        picks, elig = plan_day(session, settings, day)
    if not picks:
        return _nothing_eligible(db, day, [c for c in channels if (c, 0) not in done],
                                 f"nothing eligible: {elig.describe()}", actor, alert)
    at = _post_time(settings, day, now)
    out: list[Decision] = []
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
                    return _record(session, day=day, channel=row, slot=pick.slot, status=HighlightStatus.SKIPPED,
                                   reason=f"could not compose the post: {exc}", actor=actor,
                                   product=pick.candidate, why=pick.why)
                return _record(session, day=day, channel=row, slot=pick.slot, status=HighlightStatus.CREATED,
                               reason=reason, actor=actor, product=pick.candidate, post_id=posts[0].id,
                               why=pick.why)

            hl = _insert(db, make)
            if hl is None:
                continue  # another run (or process) made it first
            if problem:
                failures.append(f"{channel}: {problem[0]}")
                out.append(Decision(day, channel, pick.slot, HighlightStatus.SKIPPED, product=pick.candidate.product_ref,
                                    reason=hl.reason))
            else:
                out.append(Decision(day, channel, pick.slot, HighlightStatus.CREATED, hl.post_id,
                                    pick.candidate.product_ref, hl.reason))
    if failures and alert:
        alert(f"daily highlight {day.isoformat()} not created on " + "; ".join(failures))
    return out



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
            post_store.transition(session, post, PostStatus.CANCELLED, actor=actor,
                                  reason=f"product {product.external_id} is no longer eligible ({why})")
            for row in session.scalars(select(Highlight).where(Highlight.post_id == post.id)):
                row.status = HighlightStatus.CANCELLED
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


def highlight_job(settings: Settings, db: Database, alert: Alert | None = None,
                  clock: Callable[[], dt.datetime] = utcnow) -> list[Decision]:
    """The scheduled job: do whatever the highlight needs now (see :func:`run_daily_highlight`)."""
    composer = Composer(settings.templates_dir, settings.timezone, settings.language)
    now = clock()
    decisions = run_daily_highlight(settings, db, composer, now, alert=alert)
    log.debug("daily highlight checked at %s: %d decision(s)", now.isoformat(timespec="seconds"), len(decisions))
    for d in decisions:
        log.info("highlight %s %s slot %d: %s%s", d.day, d.channel, d.slot, d.status,
                 f" (post {d.post_id}, {d.product})" if d.post_id else f" ({d.reason})")
    return decisions
