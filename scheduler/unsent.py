"""Editing posts that have not gone out yet: the one way a job recomposes or reschedules a post.

Used by the daily highlight (a product was edited) and event promotion (an event changed);
posts already published or in flight are never passed here.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session

from scheduler.config import Settings
from scheduler.models import AuditEntry, Post, PostStatus, utcnow
from scheduler.storage import posts as post_store

#: Posts not yet handed to the dispatcher: their text and time may still change.
UNSENT = (PostStatus.DRAFT.value, PostStatus.PENDING_APPROVAL.value, PostStatus.SCHEDULED.value)


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
    if post.status == PostStatus.SCHEDULED.value:
        target = (PostStatus.PENDING_APPROVAL if settings.require_approval and post.text != text
                  else PostStatus.SCHEDULED)
        post_store.transition(session, post, target, actor=actor, reason=reason, next_attempt_at=None, **changes)
    else:  # draft or pending_approval: same status, so no transition; the audit trail says what changed
        for k, v in changes.items():
            setattr(post, k, v)
        post.updated_at = utcnow()
        session.add(AuditEntry(actor=actor, action="post.recompose", entity="post", entity_id=str(post.id),
                               detail={"reason": reason, "scheduled_at": when.isoformat() if when else None}))
    return True
