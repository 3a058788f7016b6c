"""Every query on posts, and the only code that writes a post's status.

Each status change goes through :func:`transition` (or the claim/finish pair of the
dispatcher's hot path in :mod:`scheduler.storage.claims`, which write the same history rows in bulk), so every change is
checked against :data:`ALLOWED` and leaves a history row with who did it and why.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from scheduler.errors import NotFoundError, StateError
from scheduler.models import (
    Channel,
    HistoryEntry,
    Post,
    PostStatus,
    utcnow,
)
from scheduler.redact import redact
from scheduler.storage.post_read import counts_by_status as counts_by_status
from scheduler.storage.post_read import post_filters, post_order

#: Every arrow of the lifecycle: from → allowed targets.
ALLOWED: dict[PostStatus, frozenset[PostStatus]] = {
    PostStatus.DRAFT: frozenset({PostStatus.PENDING_APPROVAL, PostStatus.SCHEDULED, PostStatus.CANCELLED}),
    PostStatus.PENDING_APPROVAL: frozenset({PostStatus.SCHEDULED, PostStatus.DRAFT, PostStatus.CANCELLED,
                                            PostStatus.EXPIRED}),
    PostStatus.SCHEDULED: frozenset({PostStatus.PUBLISHING, PostStatus.CANCELLED, PostStatus.EXPIRED,
                                     PostStatus.SCHEDULED, PostStatus.PENDING_APPROVAL}),
    PostStatus.PUBLISHING: frozenset({PostStatus.PUBLISHED, PostStatus.RETRY_WAIT, PostStatus.FAILED,
                                      PostStatus.NEEDS_REVIEW, PostStatus.SCHEDULED}),
    PostStatus.RETRY_WAIT: frozenset({PostStatus.PUBLISHING, PostStatus.CANCELLED, PostStatus.EXPIRED,
                                      PostStatus.FAILED, PostStatus.SCHEDULED}),
    PostStatus.FAILED: frozenset({PostStatus.SCHEDULED}),
    PostStatus.NEEDS_REVIEW: frozenset({PostStatus.PUBLISHED, PostStatus.SCHEDULED, PostStatus.CANCELLED}),
    PostStatus.EXPIRED: frozenset({PostStatus.SCHEDULED}),
    PostStatus.CANCELLED: frozenset(),
    PostStatus.PUBLISHED: frozenset(),
}
CLAIMABLE = (PostStatus.SCHEDULED.value, PostStatus.RETRY_WAIT.value)
WAITING = (PostStatus.SCHEDULED.value, PostStatus.RETRY_WAIT.value)


def new_key() -> str:
    return uuid.uuid4().hex


def get_post(session: Session, post_id: int, *, lock: bool = False) -> Post:
    """The post, or NotFoundError. ``lock`` holds its row for the transaction (``FOR UPDATE``; on
    SQLite the session's write lock does), so a dispatcher cannot claim it while a person changes it."""
    post = session.get(Post, post_id, with_for_update=lock)
    if post is None:
        raise NotFoundError(f"no post with id {post_id}")
    return post


def create_post(
    session: Session,
    *,
    channel: Channel,
    kind: str,
    text: str,
    status: PostStatus,
    scheduled_at: dt.datetime | None,
    actor: str,
    link: str | None = None,
    title: str | None = None,
    summary: str | None = None,
    template: str | None = None,
    product_id: int | None = None,
    event_id: int | None = None,
    image_path: str | None = None,
    image_alt: str | None = None,
    dedupe_key: str | None = None,
    reason: str = "created",
    more_images: str | None = None,
) -> Post:
    """Insert a post (one channel) and its first history row."""
    now = utcnow()
    post = Post(
        channel_id=channel.id, kind=kind, text=text, status=status.value, scheduled_at=scheduled_at,
        link=link, title=title, summary=summary, template=template, product_id=product_id,
        event_id=event_id, image_path=image_path, image_alt=image_alt, more_images=more_images, dedupe_key=dedupe_key,
        idempotency_key=new_key(), created_by=actor, created_at=now, updated_at=now, attempts=0, failures=0,
    )
    session.add(post)
    session.flush()
    _history(session, post, None, status, actor, reason)
    return post


def _history(session: Session, post: Post, frm: PostStatus | str | None, to: PostStatus | str,
             actor: str, reason: str | None, **fields: object) -> None:
    session.add(HistoryEntry(
        post_id=post.id, channel_id=post.channel_id, action="transition",
        started_at=utcnow(), finished_at=utcnow(),
        from_status=str(frm) if frm else None, to_status=str(to), outcome=fields.pop("outcome", None) or str(to),
        error=redact(reason) if reason else None, actor=actor, **fields,
    ))


def transition(session: Session, post: Post, to: PostStatus, *, actor: str, reason: str,
               **changes: object) -> Post:
    """Move ``post`` to ``to`` if the lifecycle allows it, with a history row."""
    frm = PostStatus(post.status)
    if to not in ALLOWED[frm]:
        raise StateError(f"post {post.id} is {frm.value}; it cannot become {to.value}")
    post.status = to.value
    post.updated_at = utcnow()
    for k, v in changes.items():
        setattr(post, k, v)
    if to in (PostStatus.SCHEDULED, PostStatus.DRAFT, PostStatus.PENDING_APPROVAL, PostStatus.CANCELLED,
              PostStatus.EXPIRED):
        post.lease_owner = None
        post.lease_expires_at = None
    session.flush()
    _history(session, post, frm, to, actor, reason)
    return post


def edit_text(session: Session, post: Post, text: str, to: PostStatus, *, actor: str, reason: str) -> Post:
    """Replace an unsent post's text, moving it to ``to`` (its own status, or back to pending_approval)."""
    frm = PostStatus(post.status)
    if to != frm:
        return transition(session, post, to, actor=actor, reason=reason, text=text)
    post.text = text
    post.updated_at = utcnow()
    session.flush()
    _history(session, post, frm, to, actor, reason)
    return post


def list_posts(session: Session, *, status: Sequence[str] | None = None, channel: str | None = None,
               limit: int | None = None, newest_first: bool = False) -> list[Post]:
    """Mapped posts in :mod:`post_read`'s order and filters (rows to show: :func:`post_read.post_rows`)."""
    q = select(Post).join(Channel).where(*post_filters(status, channel)).order_by(*post_order(newest_first))
    if limit:
        q = q.limit(limit)
    return list(session.scalars(q))


def busy_slots(session: Session, channel_id: int, start: dt.datetime, end: dt.datetime) -> set[dt.datetime]:
    """Scheduled times already taken on a channel (for --queue)."""
    q = select(Post.scheduled_at).where(
        Post.channel_id == channel_id, Post.scheduled_at >= start, Post.scheduled_at < end,
        Post.status.notin_([PostStatus.CANCELLED.value, PostStatus.DRAFT.value, PostStatus.FAILED.value,
                            PostStatus.EXPIRED.value]),
    )
    return {t for t in session.scalars(q) if t is not None}


def expired_leases(session: Session, now: dt.datetime) -> list[Post]:
    """Posts whose claimer's lease ran out (the process died or stalled)."""
    q = select(Post).where(Post.status == PostStatus.PUBLISHING.value, Post.lease_expires_at < now).order_by(Post.id)
    return list(session.scalars(q))


def open_attempt(session: Session, post: Post) -> HistoryEntry | None:
    """The attempt row a dead claimer left unfinished."""
    q = (select(HistoryEntry).where(HistoryEntry.post_id == post.id, HistoryEntry.action == "attempt",
                                    HistoryEntry.finished_at.is_(None))
         .order_by(HistoryEntry.id.desc()).limit(1))
    return session.scalars(q).first()


def stale_candidates(session: Session, older_than: dt.datetime) -> list[Post]:
    """Waiting posts scheduled before ``older_than`` (the caller applies each kind's lateness).

    Locked for the caller's transaction, skipping posts another process is deciding on right now
    (PostgreSQL; SQLite's write lock serialises), so two processes never both expire one post."""
    q = select(Post).where(Post.status.in_(WAITING + (PostStatus.PENDING_APPROVAL.value,)),
                           Post.scheduled_at < older_than).with_for_update(skip_locked=True, of=Post)
    return list(session.scalars(q))
