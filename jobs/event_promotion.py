"""Event promotion sequences: announcement, reminder, day-of and "still on today" posts.

For every scheduled event, posts are planned on PROMO_EVENT_CHANNELS at offsets from its
start (:func:`planned_posts`). Planning (:func:`plan_event`) is idempotent and runs when
an event is imported or edited (:func:`on_record_change`, inside the import's
transaction) and every few minutes from the ``event-promotion`` job, so it also covers
events that existed before a channel was added.

* Each planned post has a natural key ``event:<id>:<kind>:<n>:<generation>:<channel>``
  in ``Post.dedupe_key`` (unique in the database): a second run or a second process never
  makes a second one.
* An edit recomposes and reschedules the event's unsent posts; posts already published
  (or in flight) are never touched.
* An offset whose time has passed by more than its kind's maximum lateness is skipped
  and recorded in the audit trail (``event.post_skipped``) rather than posted late.
* A cancelled event cancels its unsent posts and, when PROMO_EVENT_CANCEL_NOTICE is on and
  some promotion was already published, posts a cancellation notice. Posts a staff member
  cancelled by hand stay cancelled; posts cancelled with the event come back (as a new
  generation) if the event is re-scheduled.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from jobs.highlight.create import refresh_unsent_highlights
from scheduler import errors
from scheduler.composer import Composer
from scheduler.config import ChannelConfig, Settings
from scheduler.models import (
    AuditEntry,
    Channel,
    Event,
    HistoryEntry,
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

log = logging.getLogger("promo.jobs.events")
ACTOR = "event-promotion"
CANCELLED_WITH_EVENT = "event cancelled"
#: Unsent posts a cancelled event withdraws (retry_wait has not reached the platform either).
WITHDRAWABLE = (*UNSENT, PostStatus.RETRY_WAIT.value)
SEQUENCE_KINDS = (PostKind.EVENT_ANNOUNCEMENT, PostKind.EVENT_REMINDER, PostKind.EVENT_DAYOF,
                  PostKind.EVENT_ONGOING)


@dataclass(frozen=True)
class Planned:
    """One post of an event's sequence: its kind, its number (days of an ongoing event) and time."""

    kind: PostKind
    n: int
    at: dt.datetime  # UTC

    @property
    def slot(self) -> str:
        return f"{self.kind}:{self.n}"


def planned_posts(settings: Settings, event: Event) -> list[Planned]:
    """The event's sequence from the settings (times in UTC, in order).

    Announcement and reminder: PROMO_EVENT_ANNOUNCE_DAYS / PROMO_EVENT_REMINDER_DAYS days
    before the start, at the start's time of day (0 turns one off). Day-of: the start day
    at PROMO_EVENT_DAYOF_TIME, or an hour before the start if it starts earlier. With
    PROMO_EVENT_ONGOING_POSTS, one "still on today" post on each later day at that time.
    """
    tz = settings.timezone
    start = event.starts_at.astimezone(tz)
    out: list[Planned] = []

    def days_before(n: int) -> dt.datetime:
        local = dt.datetime.combine(start.date() - dt.timedelta(days=n), start.time(),
                                    tzinfo=tz)
        return local.astimezone(dt.UTC)

    announce, remind = settings.event_announce_days, settings.event_reminder_days
    if announce > 0:
        out.append(Planned(PostKind.EVENT_ANNOUNCEMENT, 0, days_before(announce)))
    if remind > 0 and remind != announce:
        out.append(Planned(PostKind.EVENT_REMINDER, 0, days_before(remind)))
    dayof = dt.datetime.combine(start.date(), settings.event_dayof_time, tzinfo=tz).astimezone(dt.UTC)
    if dayof >= event.starts_at:
        dayof = event.starts_at - dt.timedelta(hours=1)
    out.append(Planned(PostKind.EVENT_DAYOF, 0, dayof))
    if settings.event_ongoing_posts and event.ends_at is not None:
        last_day = event.ends_at.astimezone(tz).date()
        day, n = start.date() + dt.timedelta(days=1), 1
        while day <= last_day:
            at = dt.datetime.combine(day, settings.event_dayof_time, tzinfo=tz).astimezone(dt.UTC)
            if at < event.ends_at:
                out.append(Planned(PostKind.EVENT_ONGOING, n, at))
            day, n = day + dt.timedelta(days=1), n + 1
    return sorted(out, key=lambda p: p.at)


@dataclass
class PlanResult:
    """What planning an event did, in words (for logs, the CLI and tests)."""

    created: list[int] = field(default_factory=list)
    updated: list[int] = field(default_factory=list)
    cancelled: list[int] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.created or self.updated or self.cancelled or self.skipped or self.problems)


def _parse_key(key: str | None) -> tuple[str, int, int, str] | None:
    """``event:<id>:<kind>:<n>:<gen>:<channel>`` → (kind, n, gen, channel)."""
    parts = (key or "").split(":")
    if len(parts) != 6 or parts[0] != "event":
        return None
    try:
        return parts[2], int(parts[3]), int(parts[4]), parts[5]
    except ValueError:
        return None


def _cancelled_with_event(session: Session, post: Post) -> bool:
    row = session.scalars(select(HistoryEntry).where(HistoryEntry.post_id == post.id,
                                                     HistoryEntry.to_status == PostStatus.CANCELLED.value)
                          .order_by(HistoryEntry.id.desc()).limit(1)).first()
    return row is not None and (row.error or "").startswith(CANCELLED_WITH_EVENT)



def _record_skip(session: Session, settings: Settings, event: Event, planned: Planned, channel: str,
                 reason: str, actor: str) -> bool:
    """An audit entry for a post that will not be made; once per event, post and time."""
    key = f"{planned.slot}:{channel}:{planned.at.isoformat()}"
    for entry in session.scalars(select(AuditEntry).where(AuditEntry.action == "event.post_skipped",
                                                          AuditEntry.entity == "event",
                                                          AuditEntry.entity_id == event.external_id)):
        if (entry.detail or {}).get("key") == key:
            return False
    session.add(AuditEntry(actor=actor, action="event.post_skipped", entity="event", entity_id=event.external_id,
                           detail={"key": key, "kind": planned.kind, "n": planned.n, "channel": channel,
                                   "planned_at": local_time(planned.at, settings.timezone), "reason": reason}))
    return True


def _create(session: Session, settings: Settings, composer: Composer, event: Event, planned: Planned, gen: int,
            row: Channel, cfg: ChannelConfig, at: dt.datetime, actor: str, result: PlanResult) -> None:
    kind = planned.kind
    key = f"event:{event.id}:{kind}:{planned.n}:{gen}"
    try:
        # A savepoint: losing a race for the key (another process) must not undo the caller's import.
        with session.begin_nested():
            # Composed "as of" its time, so a reminder says "Besok" even when planned a week early.
            posts = create_posts(session, settings, composer, Source(kind=kind, event=event), [(row, cfg)],
                                 when=at.isoformat(), actor=actor, now=at, dedupe_key=key)
        result.created.append(posts[0].id)
    except IntegrityError:
        pass
    except (errors.ComposeError, errors.ValidationError) as exc:
        # Recorded once (not every 15 minutes): staff fix the template or the channel, then it is made.
        if _record_skip(session, settings, event, planned, row.name, f"cannot compose: {exc}", actor):
            result.problems.append(f"{kind} on {row.name}: {exc}")


def plan_event(settings: Settings, session: Session, composer: Composer, event: Event, *, now: dt.datetime,
               actor: str = ACTOR) -> PlanResult:
    """Create, recompose, reschedule or cancel the event's posts so they match the event now."""
    result = PlanResult()
    if not settings.event_channels:
        return result
    channels = resolve_channels(session, settings, list(settings.event_channels))
    posts = session.scalars(select(Post).where(Post.event_id == event.id).order_by(Post.id)).all()
    latest: dict[tuple[str, int, int], tuple[Post, int]] = {}  # (kind, n, channel id) → (newest post, gen)
    for p in posts:
        parsed = _parse_key(p.dedupe_key)
        if parsed is not None:
            kind, n, gen, _channel = parsed
            latest[(kind, n, p.channel_id)] = (p, gen)
    if event.status == "cancelled":
        _cancel_event(settings, session, composer, event, posts, channels, latest, now, actor, result)
        return result
    wanted: set[tuple[str, int, int]] = set()
    end = event.ends_at or event.starts_at
    for planned in planned_posts(settings, event):
        lateness = settings.lateness(planned.kind)
        for row, cfg in channels:
            wanted.add((planned.kind, planned.n, row.id))
            current, gen = latest.get((planned.kind, planned.n, row.id), (None, 0))
            if current is not None and current.status not in UNSENT:
                if current.status != PostStatus.CANCELLED.value or not _cancelled_with_event(session, current):
                    continue  # published, in flight, failed, expired or cancelled by staff: leave it
                current = None  # cancelled with the event, which is on again: a new generation
            if current is None:
                at = planned.at
                if at < now:
                    if now - at > lateness or now >= end:
                        reason = (f"imported or changed too late: the {planned.kind} was due "
                                  f"{local_time(at, settings.timezone)}, more than {human_duration(lateness)} ago")
                        if _record_skip(session, settings, event, planned, row.name, reason, actor):
                            result.skipped.append(f"{planned.slot} on {row.name}: {reason}")
                        continue
                    at = now
                _create(session, settings, composer, event, planned, gen + 1, row, cfg, at, actor, result)
                continue
            _update(settings, session, composer, event, planned, current, row, cfg, now, actor, result)
    for (kind, n, channel_id), (post, _gen) in latest.items():
        if kind in SEQUENCE_KINDS and (kind, n, channel_id) not in wanted and post.status in UNSENT:
            post_store.transition(session, post, PostStatus.CANCELLED, actor=actor,
                                  reason="no longer part of the event's sequence (event or settings changed)")
            result.cancelled.append(post.id)
    return result


def _update(settings: Settings, session: Session, composer: Composer, event: Event, planned: Planned,
            post: Post, row: Channel, cfg: ChannelConfig, now: dt.datetime, actor: str, result: PlanResult) -> None:
    """Bring an unsent post in line with the (possibly edited) event."""
    at = planned.at
    if at < now:
        if post.scheduled_at is not None and post.scheduled_at <= now and post.scheduled_at == planned.at:
            return  # due as planned: the dispatcher publishes or expires it
        if now - at > settings.lateness(planned.kind):
            reason = f"event changed: the {planned.kind} time {local_time(at, settings.timezone)} has passed"
            post_store.transition(session, post, PostStatus.CANCELLED, actor=actor, reason=reason)
            result.cancelled.append(post.id)
            if _record_skip(session, settings, event, planned, row.name, reason, actor):
                result.skipped.append(f"{planned.slot} on {row.name}: {reason}")
            return
        at = now
    try:
        composed = compose_for(composer, cfg, Source(kind=planned.kind, event=event), now=at, tz=settings.timezone,
                               with_image=post.image_path is not None)
    except errors.ComposeError as exc:
        result.problems.append(f"{planned.kind} on {row.name}: {exc}")
        return
    if update_unsent_post(session, settings, post, text=composed.text, scheduled_at=at, actor=actor,
                          reason=f"event {event.external_id} changed: recomposed for {local_time(at, settings.timezone)}",
                          link=composed.link, title=composed.title, summary=composed.summary):
        result.updated.append(post.id)


def _cancel_event(settings: Settings, session: Session, composer: Composer, event: Event, posts: Iterable[Post],
                  channels: list[tuple[Channel, ChannelConfig]], latest: dict[tuple[str, int, int], tuple[Post, int]],
                  now: dt.datetime, actor: str, result: PlanResult) -> None:
    published_on: set[int] = set()
    for post in posts:
        if post.kind in SEQUENCE_KINDS and post.status in WITHDRAWABLE:
            post_store.transition(session, post, PostStatus.CANCELLED, actor=actor, reason=f"{CANCELLED_WITH_EVENT}")
            result.cancelled.append(post.id)
        elif post.kind in SEQUENCE_KINDS and post.status == PostStatus.PUBLISHED.value:
            published_on.add(post.channel_id)
    end = event.ends_at or event.starts_at
    if not settings.event_cancel_notice or now >= end:
        return
    for row, cfg in channels:
        # People only need telling where the event was promoted.
        if row.id in published_on and ((PostKind.EVENT_CANCELLED, 0, row.id) not in latest):
            notice = Planned(PostKind.EVENT_CANCELLED, 0, event.starts_at)
            _create(session, settings, composer, event, notice, 1, row, cfg, now, actor, result)



def on_record_change(settings: Settings, composer: Composer, session: Session, kind: str, record: Any,
                     changed_fields: set[str], *, actor: str = ACTOR, now: dt.datetime | None = None) -> None:
    """Called by `promo import` after each created or updated record (in its transaction).

    Events: (re)plan the sequence. Products and UMKM: recompose (or cancel) unsent
    highlight posts of the products concerned.
    """
    now = now or utcnow()
    if kind == "events":
        result = plan_event(settings, session, composer, record, now=now, actor=actor)
        if result:
            log.info("event %s: %s", record.external_id, result)
        for problem in result.problems:
            log.warning("event %s: %s", record.external_id, problem)
    elif kind == "products":
        refresh_unsent_highlights(settings, session, composer, [record], actor=actor, now=now)
    elif kind == "umkm":
        products = session.scalars(select(Product).where(Product.umkm_id == record.id)).all()
        refresh_unsent_highlights(settings, session, composer, products, actor=actor, now=now)


def run_event_promotion(settings: Settings, db: Database, composer: Composer, now: dt.datetime, *,
                        actor: str = ACTOR) -> dict[str, PlanResult]:
    """Plan every event that has not ended yet (one transaction per event). Idempotent."""
    if not settings.event_channels:
        return {}
    with db.session() as session:
        ids = [e.id for e in session.scalars(select(Event).where(
            or_(Event.ends_at >= now, (Event.ends_at.is_(None)) & (Event.starts_at >= now - dt.timedelta(hours=12)))))]
    out: dict[str, PlanResult] = {}
    for event_id in ids:
        try:
            with db.session() as session:
                # One process plans an event at a time (PostgreSQL row lock; SQLite's write lock):
                # the next one then sees its posts and audit entries and adds nothing.
                event = session.get(Event, event_id, with_for_update=True)
                if event is None:
                    continue
                result = plan_event(settings, session, composer, event, now=now, actor=actor)
                if result:
                    out[event.external_id] = result
        except IntegrityError:  # another process planned the same event at the same moment
            continue
    return out


def event_promotion_job(settings: Settings, db: Database, alert: Callable[[str], None] | None = None,
                        clock: Callable[[], dt.datetime] = utcnow) -> dict[str, PlanResult]:
    """The scheduled job: plan every current event now; a problem is alerted."""
    composer = Composer(settings.templates_dir, settings.timezone, settings.language)
    results = run_event_promotion(settings, db, composer, clock())
    log.debug("event promotion checked: %d event(s) changed", len(results))
    for ref, result in results.items():
        log.info("event %s: %s", ref, result)
        for problem in result.problems:
            if alert is not None:
                alert(f"event {ref}: {problem}")
    return results


def record_change_hook(settings: Settings, composer: Composer, actor: str) -> Callable[..., None]:
    """What an import or a record edit runs for each changed record (the CLI and the web app alike):
    events (re)plan their posts, products and UMKM recompose their unsent highlight posts."""
    return lambda session, kind, record, changed: on_record_change(settings, composer, session, kind, record,
                                                                   changed, actor=actor)


def on_records_changed(settings: Settings, composer: Composer, session: Session, kind: str, ids: list[str],
                       changed: dict[str, set[str]], record_ids: dict[str, int], *, actor: str = ACTOR,
                       now: dt.datetime | None = None) -> None:
    """:func:`on_record_change` for a batch of records by external id (an import calls it once per
    1,000): events are loaded and (re)planned one by one, in file order; for products and UMKM one
    query finds the batch's products that have unsent highlight posts, and only those are loaded.
    ``record_ids``: the database ids of the records the import updated, by external id (a record
    it created has none, and no posts yet)."""
    now = now or utcnow()
    if kind == "events":
        order = {e: n for n, e in enumerate(ids)}
        events = sorted(session.scalars(select(Event).where(Event.external_id.in_(ids))),
                        key=lambda e: order[e.external_id])
        for event in events:
            on_record_change(settings, composer, session, kind, event, changed.get(event.external_id, set()),
                             actor=actor, now=now)
        return
    if kind not in ("products", "umkm"):
        return
    if not record_ids:
        return
    # One query for the batch by database id: which of its products have unsent highlight posts
    # (usually none); only those are loaded. By posts.product_id (products.umkm_id for UMKM), both
    # indexed: matched on the products' external ids instead, PostgreSQL read every post of the
    # table for each batch (25-35 ms with 100,000 posts). The status and kind are checked here,
    # not in SQL: given a status to match, SQLite read every queued post through the status index
    # instead of the batch's posts through the product index (60 ms a batch with 100,000 posts).
    concerned = select(Post.product_id, Post.status, Post.kind)
    if kind == "products":
        concerned = concerned.where(Post.product_id.in_(list(record_ids.values())))
    else:
        concerned = concerned.join(Product, Post.product_id == Product.id).where(
            Product.umkm_id.in_(list(record_ids.values())))
    product_ids = {product_id for product_id, status, post_kind in session.execute(concerned)
                   if status in UNSENT and post_kind == PostKind.DAILY_HIGHLIGHT}
    if product_ids:
        products = session.scalars(select(Product).where(Product.id.in_(product_ids)).order_by(Product.id)).all()
        refresh_unsent_highlights(settings, session, composer, products, actor=actor, now=now)


def records_changed_hook(settings: Settings, composer: Composer,
                         actor: str) -> Callable[[Session, str, list[str], dict[str, set[str]], dict[str, int]], None]:
    """The batched :func:`record_change_hook` for imports (``import_file(on_changes=…)``): one
    query per 1,000 records, and no record loaded unless it has something to update."""
    return lambda session, kind, ids, changed, record_ids: on_records_changed(
        settings, composer, session, kind, ids, changed, record_ids, actor=actor)
