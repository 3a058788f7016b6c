"""Posts: queue, approve, reject, cancel, reschedule, retry, submit, mark published, edit; preview
what queueing would store, and find the products and events a post can be made from.

Actions on several ids run in one transaction: when one post cannot change (wrong status,
no such post), none of them does.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from scheduler import planner, views
from scheduler.actions import Actor, Context, images, require
from scheduler.actions.images import ImageFit
from scheduler.errors import ComposeError, NotFoundError, StateError, TooLongError, ValidationError
from scheduler.models import AuditEntry, Channel, Event, Post, PostStatus, Product, utcnow
from scheduler.storage import channels as channel_store
from scheduler.storage import posts as post_store
from scheduler.textrules import first_broken

#: A post whose text may still be edited: nothing has been sent for it yet.
EDITABLE = (PostStatus.DRAFT.value, PostStatus.PENDING_APPROVAL.value, PostStatus.SCHEDULED.value)


@dataclass(frozen=True)
class Changed:
    """One post after an action: its id, status and time."""

    id: int
    status: str
    scheduled_at: dt.datetime | None


@dataclass(frozen=True)
class Queued:
    """The posts ``queue_posts`` created, as :func:`scheduler.views.post_row` rows (one per channel)."""

    rows: list[dict[str, Any]]


def _changed(post: Post) -> Changed:
    return Changed(post.id, post.status, post.scheduled_at)


def queue_posts(ctx: Context, actor: Actor, *, channels: Sequence[str], product: str | None = None,
                event: str | None = None, text: str | None = None, link: str | None = None,
                kind: str | None = None, template: str | None = None, at: str | None = None,
                queue: bool = False, now: bool = False, draft: bool = False,
                image: str | Sequence[str] | None = None, alt: str | Sequence[str | None] | None = None,
                shorten: bool = False, image_ids: Sequence[str] | None = None) -> Queued:
    """Compose and store one post per channel (see :func:`scheduler.planner.create_posts`);
    several images (the first is the cover) go as an album where the platform has them.

    ``image_ids`` names images stored by :func:`scheduler.actions.images.stage_image` (the web app's
    uploads) instead of ``image`` paths, with ``alt`` in the same order; an id that names no
    stored image raises :class:`NotFoundError` naming it."""
    require(actor, "post.queue")
    if image_ids:
        if image:
            raise ValidationError("give images either as files or as uploaded image ids, not both")
        image = [str(images.staged_path(ctx, i)) for i in image_ids]
    composer = ctx.composer()
    with ctx.db.session() as session:
        source = planner.find_source(session, product=product, event=event, text=text, link=link, kind=kind)
        chans = planner.resolve_channels(session, ctx.settings, list(channels))
        posts = planner.create_posts(session, ctx.settings, composer, source, chans, when=at, queue=queue,
                                     now_flag=now, draft=draft, image=image, image_alt=alt, template=template,
                                     actor=actor.name, shorten=shorten)
        return Queued([views.post_row(p, ctx.settings.timezone) for p in posts])


def _each(ctx: Context, post_ids: Sequence[int], step: Callable[[Session, Post], Post]) -> list[Changed]:
    with ctx.db.session() as session:
        return [_changed(step(session, post_store.get_post(session, i, lock=True))) for i in post_ids]


def approve(ctx: Context, actor: Actor, post_ids: Sequence[int], *, now: dt.datetime | None = None) -> list[Changed]:
    """pending_approval → scheduled. A post approved after its time goes out as soon as possible."""
    require(actor, "post.approve")
    at = now or utcnow()

    def step(session: Session, post: Post) -> Post:
        if post.status != PostStatus.PENDING_APPROVAL.value:
            raise StateError(f"post {post.id} is {post.status}, not pending_approval")
        reason = "approved"
        if post.scheduled_at is not None and post.scheduled_at < at:
            # Approval often comes after the planned time (a --now post always does): it goes
            # out at once, unless the dispatcher finds it past its kind's maximum lateness.
            reason = (f"approved after its time ({post.scheduled_at:%Y-%m-%d %H:%M} UTC): "
                      "publishing as soon as possible")
        return post_store.transition(session, post, PostStatus.SCHEDULED, actor=actor.name, reason=reason)

    return _each(ctx, post_ids, step)


def reject(ctx: Context, actor: Actor, post_ids: Sequence[int], comment: str) -> list[Changed]:
    """pending_approval → draft, with the approver's comment in the history (for its author to act on)."""
    require(actor, "post.reject")
    comment = comment.strip()
    if not comment:
        raise ValidationError("say why the post is rejected (--reason TEXT): its author reads it in the history")

    def step(session: Session, post: Post) -> Post:
        if post.status != PostStatus.PENDING_APPROVAL.value:
            raise StateError(f"post {post.id} is {post.status}, not pending_approval")
        return post_store.transition(session, post, PostStatus.DRAFT, actor=actor.name, reason=f"rejected: {comment}")

    return _each(ctx, post_ids, step)


def cancel(ctx: Context, actor: Actor, post_ids: Sequence[int], reason: str = "cancelled by staff") -> list[Changed]:
    """Withdraw posts not yet published (``reason`` goes into their history)."""
    require(actor, "post.cancel")
    return _each(ctx, post_ids, lambda session, post: post_store.transition(
        session, post, PostStatus.CANCELLED, actor=actor.name, reason=reason))


def retry(ctx: Context, actor: Actor, post_ids: Sequence[int], *, now: dt.datetime | None = None) -> list[Changed]:
    """Queue failed, expired or needs_review posts again, now."""
    require(actor, "post.retry")

    def step(session: Session, post: Post) -> Post:
        if post.status not in (PostStatus.FAILED.value, PostStatus.EXPIRED.value, PostStatus.NEEDS_REVIEW.value):
            raise StateError(f"post {post.id} is {post.status}; only failed, expired or needs_review posts can be "
                             "retried")
        gone = _missing_images(post)
        if gone:
            raise StateError(f"post {post.id}: its image {gone} is no longer stored (images are deleted "
                             f"PROMO_MEDIA_KEEP_DAYS={ctx.settings.media_keep_days} days after a post is done); "
                             "queue it again with its images")
        reason = "retry requested"
        if post.status == PostStatus.NEEDS_REVIEW.value:
            reason = "retry requested after review (staff confirmed it is not on the platform)"
        return post_store.transition(session, post, PostStatus.SCHEDULED, actor=actor.name, reason=reason,
                                     scheduled_at=now or utcnow(), next_attempt_at=None, failures=0, error=None)

    return _each(ctx, post_ids, step)


def _missing_images(post: Post) -> str | None:
    """The name of the first image file of ``post`` that is no longer there, or None."""
    paths = [post.image_path] + [p for p, _alt in json.loads(post.more_images or "[]")]
    return next((Path(p).name for p in paths if p and not Path(p).exists()), None)


def mark_published(ctx: Context, actor: Actor, post_ids: Sequence[int], url: str | None = None) -> list[Changed]:
    """Staff confirm needs_review posts are on the platform."""
    require(actor, "post.published")

    def step(session: Session, post: Post) -> Post:
        if post.status != PostStatus.NEEDS_REVIEW.value:
            raise StateError(f"post {post.id} is {post.status}; only needs_review posts can be marked published")
        return post_store.transition(session, post, PostStatus.PUBLISHED, actor=actor.name,
                                     reason="confirmed on the platform by staff", remote_url=url,
                                     published_at=utcnow())

    return _each(ctx, post_ids, step)


def submit(ctx: Context, actor: Actor, post_ids: Sequence[int]) -> list[Changed]:
    """Drafts → scheduled (or pending_approval with PROMO_REQUIRE_APPROVAL)."""
    require(actor, "post.submit")

    def step(session: Session, post: Post) -> Post:
        if post.status != PostStatus.DRAFT.value:
            raise StateError(f"post {post.id} is {post.status}, not a draft")
        if post.scheduled_at is None:
            raise ValidationError(f"post {post.id} has no time yet: `promo post reschedule {post.id} --at WHEN`")
        target = PostStatus.PENDING_APPROVAL if ctx.settings.require_approval else PostStatus.SCHEDULED
        return post_store.transition(session, post, target, actor=actor.name, reason="draft submitted")

    return _each(ctx, post_ids, step)


def reschedule(ctx: Context, actor: Actor, post_id: int, when: str | None, *, asap: bool = False,
               now: dt.datetime | None = None) -> Changed:
    """Move a post to ``when`` (typed local time, or ISO 8601), or with ``asap`` to now (``asap``
    also lets ``when`` be in the past)."""
    require(actor, "post.reschedule")
    tz = ctx.settings.timezone
    now = now or utcnow()
    if asap and not when:
        when = now.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")
    if not when:
        raise ValidationError("give --at WHEN or --now")
    at = planner.parse_when(when, tz)
    if at < now and not asap:
        raise ValidationError(f"{when!r} is in the past; use --now to publish right away")
    with ctx.db.session() as session:
        post = post_store.get_post(session, post_id, lock=True)
        if post.status == PostStatus.DRAFT.value:
            post.scheduled_at = at
            session.add(AuditEntry(actor=actor.name, action="post.reschedule", entity="post", entity_id=str(post.id),
                                   detail={"scheduled_at": at.isoformat()}))
            return _changed(post)
        target = PostStatus.PENDING_APPROVAL if post.status == PostStatus.PENDING_APPROVAL.value else PostStatus.SCHEDULED
        moved = post_store.transition(session, post, target, actor=actor.name,
                                      reason=f"rescheduled to {at.astimezone(tz).isoformat(timespec='seconds')}",
                                      scheduled_at=at, next_attempt_at=None)
        return _changed(moved)


@dataclass(frozen=True)
class Edited:
    """A post whose text changed: its new status and the new text's count per rule."""

    id: int
    status: str
    counts: list[tuple[int, int, str]]  # (count, limit, method)


def edit_text(ctx: Context, actor: Actor, post_id: int, text: str) -> Edited:
    """Replace an unsent post's text, as written: it must fit its channel (never shortened here).

    With PROMO_REQUIRE_APPROVAL an approved (scheduled) post goes back to pending_approval, so
    what is published is what an approver read.
    """
    require(actor, "post.edit")
    text = text.strip()
    if not text:
        raise ValidationError("the new text is empty")
    with ctx.db.session() as session:
        post = post_store.get_post(session, post_id, lock=True)
        if post.status not in EDITABLE:
            raise StateError(f"post {post.id} is {post.status}; only draft, pending_approval or scheduled posts "
                             "can be edited")
        configs = channel_store.channel_configs(session, ctx.settings)
        cfg = configs.get(post.channel.name)
        if cfg is None:
            raise ValidationError(f"post {post.id}: its channel {post.channel.name!r} is no longer configured")
        rules = planner.rules_for(cfg, channel_store.plain_state(post.channel)).text_rules(bool(post.image_path))
        broken = first_broken(rules, text)
        if broken is not None:
            rule, n = broken
            raise TooLongError(f"post {post.id} on channel {cfg.name} ({cfg.platform}): the new text is {n}, "
                               f"{n - rule.limit} over the limit of {rule.describe()}; nothing changed",
                               length=n, limit=rule.limit)
        old = post.text
        reason = f"text edited ({len(old)} → {len(text)} characters)"
        target = PostStatus(post.status)
        if target == PostStatus.SCHEDULED and ctx.settings.require_approval:
            target = PostStatus.PENDING_APPROVAL
            reason += "; needs approval again"
        post_store.edit_text(session, post, text, target, actor=actor.name, reason=reason)
        session.add(AuditEntry(actor=actor.name, action="post.edit", entity="post", entity_id=str(post.id),
                               detail={"chars_before": len(old), "chars_after": len(text)}))
        return Edited(post.id, post.status, [(r.count(text), r.limit, r.method) for r in rules])


_HASHTAG = re.compile(r"(?<![\w&])#\w+")


@dataclass(frozen=True)
class Preview:
    """One channel's text as it would go out, or why it cannot (``error``), with its counts per rule."""

    channel: str
    platform: str
    text: str | None = None
    template: str | None = None
    shortened: bool = False
    link: str | None = None
    hashtags: tuple[str, ...] = ()
    counts: tuple[tuple[int, int, str], ...] = ()  # (count, limit, method)
    error: str | None = None
    #: what the platform receives of the image (with ``image_id``)
    image: ImageFit | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"channel": self.channel, "platform": self.platform, "text": self.text, "template": self.template,
                "shortened": self.shortened, "link": self.link, "hashtags": list(self.hashtags),
                "counts": [{"count": n, "limit": limit, "method": method, "fits": n <= limit}
                           for n, limit, method in self.counts],
                "error": self.error, "image": vars(self.image) if self.image else None}


def preview(ctx: Context, actor: Actor, *, channels: Sequence[str], product: str | None = None,
            event: str | None = None, text: str | None = None, link: str | None = None, kind: str | None = None,
            template: str | None = None, image: bool = False, shorten: bool = False,
            now: dt.datetime | None = None, image_id: str | None = None) -> list[Preview]:
    """What :func:`queue_posts` would store per channel (the `promo compose` path), storing no post.

    A channel whose text cannot be composed (does not fit, template error) gets its ``error``;
    a source or channel that does not exist raises as in :func:`queue_posts`. With ``image_id``
    (:func:`scheduler.actions.images.stage_image`) each says what its platform receives of the image.
    """
    require(actor, "post.preview")
    composer = ctx.composer()
    staged = images.staged_path(ctx, image_id) if image_id else None
    out: list[Preview] = []
    with ctx.db.read_session() as session:
        source = planner.find_source(session, product=product, event=event, text=text, link=link, kind=kind)
        configs = channel_store.channel_configs(session, ctx.settings)
        for given in channels:
            name = given.strip().lower()
            if not name:
                continue
            cfg = configs.get(name)
            if cfg is None:
                raise NotFoundError(f"no channel named {name!r} (configured: {', '.join(sorted(configs)) or 'none'})")
            row = session.scalars(select(Channel).where(Channel.name == name)).first()  # not synced yet: no state
            state = channel_store.plain_state(row) if row is not None else None
            try:
                composed = planner.compose_for(composer, cfg, source, now=now or utcnow(), tz=ctx.settings.timezone,
                                               with_image=image or staged is not None, template=template,
                                               state=state, shorten=shorten)
            except ComposeError as exc:
                out.append(Preview(cfg.name, cfg.platform, error=str(exc)))
                continue
            fit = images.image_fit(ctx, cfg, planner.rules_for(cfg, state), staged) if staged else None
            out.append(Preview(cfg.name, cfg.platform, composed.text, composed.template, composed.shortened,
                               composed.link, tuple(dict.fromkeys(_HASHTAG.findall(composed.text))),
                               tuple((n, r.limit, r.method) for r, n in composed.counts), image=fit))
    return out


@dataclass(frozen=True)
class SourceMatch:
    """A product or event a post can be made from: ``kind`` (product, event), its id and name."""

    kind: str
    id: str
    name: str
    detail: str


def find_sources(ctx: Context, actor: Actor, query: str, limit: int = 20) -> list[SourceMatch]:
    """Products and events whose id or name contains ``query`` (case-insensitive), products first."""
    require(actor, "post.preview")
    q = query.strip()
    if not q:
        return []
    like = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    tz = ctx.settings.timezone
    with ctx.db.read_session() as session:
        products = session.scalars(
            select(Product).where(or_(Product.name.ilike(like, escape="\\"), Product.external_id.ilike(like, escape="\\")))
            .order_by(Product.name).limit(limit)).all()
        events = session.scalars(
            select(Event).where(or_(Event.name.ilike(like, escape="\\"), Event.external_id.ilike(like, escape="\\")))
            .order_by(Event.starts_at.desc()).limit(limit)).all()
        found = [SourceMatch("product", p.external_id, p.name, p.umkm.name if p.umkm else "") for p in products]
        found += [SourceMatch("event", e.external_id, e.name,
                              e.starts_at.replace(tzinfo=e.starts_at.tzinfo or dt.UTC).astimezone(tz)
                              .strftime("%Y-%m-%d %H:%M")) for e in events]
    return found[:limit]


def text_counts(ctx: Context, session: Session, post: Post) -> list[tuple[int, int, str]]:
    """A stored post's text counted by each rule of its channel: (count, limit, method); [] when the
    channel is no longer configured."""
    cfg = channel_store.channel_configs(session, ctx.settings).get(post.channel.name)
    if cfg is None:
        return []
    rules = planner.rules_for(cfg, channel_store.plain_state(post.channel)).text_rules(bool(post.image_path))
    return [(r.count(post.text), r.limit, r.method) for r in rules]
