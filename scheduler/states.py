"""The words of the post lifecycle and of channels and highlights (plain enums, no SQLAlchemy).

:mod:`scheduler.models` re-exports them beside the tables; settings and the read-only commands
import them from here, so neither loads the ORM (see :mod:`scheduler.tables`).
"""

from __future__ import annotations

import enum


class PostStatus(enum.StrEnum):
    DRAFT = "draft"  #: being written; never published
    PENDING_APPROVAL = "pending_approval"  #: waits for an approver (PROMO_REQUIRE_APPROVAL)
    SCHEDULED = "scheduled"  #: will be published at scheduled_at
    PUBLISHING = "publishing"  #: claimed by a dispatcher under a lease
    RETRY_WAIT = "retry_wait"  #: a transient error or rate limit; next try at next_attempt_at
    PUBLISHED = "published"  #: on the platform; remote_id/remote_url set
    FAILED = "failed"  #: permanent error or retries used up
    NEEDS_REVIEW = "needs_review"  #: outcome unknown where a retry could double-post; staff decide
    CANCELLED = "cancelled"  #: withdrawn before publishing
    EXPIRED = "expired"  #: came due too late to still make sense

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({PostStatus.PUBLISHED, PostStatus.FAILED, PostStatus.NEEDS_REVIEW,
                      PostStatus.CANCELLED, PostStatus.EXPIRED})
#: Posts not done yet: they may still be sent, or wait for a person's review. Their history rows
#: are never archived (a retry reads the earlier attempts) and their images never pruned.
OPEN = (PostStatus.DRAFT.value, PostStatus.PENDING_APPROVAL.value, PostStatus.SCHEDULED.value,
        PostStatus.PUBLISHING.value, PostStatus.RETRY_WAIT.value, PostStatus.NEEDS_REVIEW.value)


class PostKind(enum.StrEnum):
    """What a post is about; picks its template folder and how late it may still go out."""

    FREE_TEXT = "free_text"  #: text a staff member typed
    PRODUCT_HIGHLIGHT = "product_highlight"  #: a product promoted by hand (`promo post new --product`)
    DAILY_HIGHLIGHT = "daily_highlight"  #: the day's UMKM highlight, made by the daily-highlight job
    EVENT_ANNOUNCEMENT = "event_announcement"  #: an event, PROMO_EVENT_ANNOUNCE_DAYS before it starts
    EVENT_REMINDER = "event_reminder"  #: an event, PROMO_EVENT_REMINDER_DAYS before it starts
    EVENT_DAYOF = "event_dayof"  #: an event on the day it starts
    EVENT_ONGOING = "event_ongoing"  #: "still on today", each later day of a multi-day event
    EVENT_CANCELLED = "event_cancelled"  #: the notice that a promoted event was cancelled
    ALERT = "alert"  #: a message from the service to the alert channel (never alerts about itself)


class HighlightStatus(enum.StrEnum):
    """What the daily highlight decided for one day, channel and slot (a :class:`Highlight` row)."""

    CREATED = "created"  #: its post was created; the product counts as featured
    SKIPPED = "skipped"  #: missed (service down past the maximum lateness) or the post could not be composed
    NOTHING_ELIGIBLE = "nothing_eligible"  #: no product was eligible that day
    EXPIRED = "expired"  #: its post was not approved before its time; the product was not shown
    CANCELLED = "cancelled"  #: its post was cancelled (the product stopped being eligible)


class ChannelStatus(enum.StrEnum):
    ACTIVE = "active"  #: publishing normally
    NEEDS_REAUTH = "needs_reauth"  #: the platform refused our credentials; `channels check` re-activates
    PAUSED = "paused"  #: paused by staff
