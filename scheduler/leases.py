"""Leases whose claimer died mid-publish: what to do with each post, decided once and written once.

The dispatcher's housekeeping (:meth:`scheduler.dispatch.Dispatcher.resolve_expired_leases`)
finds such posts and calls, per post: :func:`load_expired` (the post as it was sent and since
when its outcome is unknown), :func:`judge` (send again only while the platform dedupes on our
key, else ask the platform, else a person decides) and :func:`settle` (the post's new status
and its attempt closed). A post is never re-sent blindly.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from scheduler.config import Settings
from scheduler.models import Post, PostKind, PostStatus
from scheduler.platforms.base import Adapter, PlatformRules, PublishResult, ReadyPost
from scheduler.post_images import media_for, more_media
from scheduler.redact import redact
from scheduler.retry import resend_is_safe
from scheduler.storage import claims
from scheduler.storage import posts as post_store

#: What becomes of a post whose lease expired.
PUBLISHED, RETRY, NEEDS_REVIEW = "published", "retry", "needs_review"


def _still_ours(post: Post | None, owner: str | None) -> bool:
    return post is not None and post.status == PostStatus.PUBLISHING.value and post.lease_owner == owner


def load_expired(session: Session, settings: Settings, post_id: int, owner: str | None,
                 now: dt.datetime) -> tuple[ReadyPost, dt.datetime] | None:
    """The post as it was sent and when its outcome became uncertain; None when another worker
    has dealt with it meanwhile."""
    post = session.get(Post, post_id)
    if post is None or not _still_ours(post, owner):
        return None
    open_row = post_store.open_attempt(session, post)
    since = open_row.started_at if open_row is not None else now
    earlier = claims.uncertain_since(session.connection(), [post.id]).get(post.id)
    since = min(since, earlier) if earlier is not None else since
    ready = ReadyPost(post_id=post.id, idempotency_key=post.idempotency_key, text=post.text,
                      link=post.link, title=post.title, description=post.summary,
                      image=media_for(settings, post.image_path, post.image_alt),
                      more_images=more_media(settings, post.more_images),
                      created_at=post.created_at, attempted_at=since)
    return ready, since


async def judge(rules: PlatformRules, adapter: Adapter | None, ready: ReadyPost, since: dt.datetime,
                now: dt.datetime, owner: str | None) -> tuple[str, str, PublishResult | None]:
    """(verdict, reason, what the platform has) for one expired lease."""
    if resend_is_safe(rules, since, now):
        return RETRY, f"lease of {owner} expired; the platform dedupes on our key, sending again", None
    if rules.can_reconcile and adapter is not None:
        try:
            found = await adapter.reconcile(ready)
        except Exception as exc:  # cannot tell: needs a person
            return (NEEDS_REVIEW,
                    f"lease of {owner} expired and reconcile failed ({redact(str(exc))}): outcome unknown", None)
        return (PUBLISHED if found else RETRY,
                f"lease of {owner} expired; reconciled: "
                + ("it is on the platform" if found else "not on the platform, sending again"), found)
    return NEEDS_REVIEW, f"lease of {owner} expired mid-publish: outcome unknown", None


def settle(session: Session, post_id: int, owner: str | None, verdict: str, error: str,
           found: PublishResult | None, *, now: dt.datetime, worker: str,
           channel: str) -> tuple[bool, str | None]:
    """Write the verdict: (done, alert to raise after the transaction). Not done when the post
    changed hands meanwhile."""
    # Locked and checked again: another process resolving the same lease waits here, then finds
    # the post decided and leaves it (one transition, one alert).
    post = session.get(Post, post_id, with_for_update=True)
    if post is None or not _still_ours(post, owner):
        return False, None
    attempt = post_store.open_attempt(session, post)
    if attempt is not None:
        attempt.finished_at = now
        attempt.outcome = "lease_expired"
        attempt.error = error
    if verdict == PUBLISHED:
        assert found is not None
        post_store.transition(session, post, PostStatus.PUBLISHED, actor=worker, reason=error,
                              remote_id=found.remote_id, remote_url=found.remote_url,
                              published_at=now, lease_owner=None, lease_expires_at=None)
    elif verdict == RETRY:
        post_store.transition(session, post, PostStatus.RETRY_WAIT, actor=worker, reason=error,
                              next_attempt_at=now, lease_owner=None, lease_expires_at=None)
    else:
        post_store.transition(session, post, PostStatus.NEEDS_REVIEW, actor=worker, reason=error,
                              error=error, lease_owner=None, lease_expires_at=None)
        if post.kind != PostKind.ALERT:
            return True, f"post {post_id} on {channel} needs review: {error}"
    return True, None
