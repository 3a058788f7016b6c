"""The retry policy: what an attempt's result or error means for the post and its channel.

Decided from the error's class alone (:func:`decide`), so every adapter gets the same
treatment: published, a duplicate, rate-limited (wait for the platform's time), auth or
configuration (pause the channel), rejected (failed), transient (retry with
:func:`backoff` until PROMO_MAX_ATTEMPTS), or an unknown outcome — sent again only while
the platform still honours our idempotency key (:func:`resend_is_safe`), otherwise left
for a person (``needs_review``).
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

from scheduler import budget as send_budget
from scheduler import errors
from scheduler.config import Settings
from scheduler.models import ChannelStatus, PostKind, PostStatus
from scheduler.platforms.base import PlatformRules, PublishResult
from scheduler.redact import redact
from scheduler.storage import claims

#: A blind resend must start this long before the platform's idempotency window closes
#: (the request takes time to arrive; clocks differ).
WINDOW_MARGIN = dt.timedelta(minutes=5)



class NotOnPlatform(errors.Transient):
    """Reconciled after an unknown outcome: not on the platform (yet), so it may be sent again."""


class BudgetUsed(errors.RateLimited):
    """The channel's send budget is used up (see :mod:`scheduler.budget`): nothing was sent."""


def resend_is_safe(rules: PlatformRules, since: dt.datetime, now: dt.datetime) -> bool:
    """Whether a blind resend now is covered by the platform's idempotency key.

    ``since`` is when the first attempt that may have reached the platform started: the
    platform cannot have stored our key before then, so its window ends at the latest
    ``idempotent_for`` later.
    """
    window = rules.idempotent_for
    if window is None:
        return False
    return now - since < window - min(WINDOW_MARGIN, window / 2)


def backoff(failures: int, settings: Settings, rng: random.Random) -> dt.timedelta:
    """Exponential backoff with full jitter between half and the whole step, capped."""
    step = min(settings.retry_max_seconds, settings.retry_base_seconds * (2 ** max(0, failures - 1)))
    return dt.timedelta(seconds=step * (0.5 + rng.random() / 2))


@dataclass
class Decision:
    outcome: claims.Outcome
    channel: claims.ChannelChange | None = None
    alert: str | None = None


def decide(claimed: claims.Claimed, exc: BaseException | None, result: PublishResult | None,
           rules: PlatformRules, settings: Settings, now: dt.datetime, rng: random.Random,
           channel_name: str) -> Decision:
    """What an attempt's result or error means for the post and its channel (class alone)."""
    decision = _classify(claimed, exc, result, rules, settings, now, rng, channel_name)
    if claimed.kind == PostKind.ALERT:
        # An alert about a failing alert post would go to the same failing channel, and so on.
        decision.alert = None
    return decision


def _classify(claimed: claims.Claimed, exc: BaseException | None, result: PublishResult | None,
              rules: PlatformRules, settings: Settings, now: dt.datetime, rng: random.Random,
              channel_name: str) -> Decision:

    def out(to: PostStatus, outcome: str, **kw: object) -> claims.Outcome:
        return claims.Outcome(post_id=claimed.id, history_id=claimed.history_id, to=to, outcome=outcome,
                                  finished_at=now, **kw)  # type: ignore[arg-type]

    if exc is None:
        assert result is not None
        return Decision(out(PostStatus.PUBLISHED, "published", remote_id=result.remote_id, remote_url=result.remote_url,
                            http_status=result.http_status))
    message = redact(str(exc)) or type(exc).__name__
    status = getattr(exc, "status", None)
    where = f"post {claimed.id} on {channel_name}"
    if isinstance(exc, errors.Duplicate):
        if exc.remote_id:
            return Decision(out(PostStatus.PUBLISHED, "duplicate", remote_id=exc.remote_id, remote_url=exc.remote_url,
                                http_status=status, error=f"already on the platform: {message}"))
        return Decision(out(PostStatus.NEEDS_REVIEW, "duplicate", http_status=status,
                            error=f"platform reports a duplicate but does not name it: {message}"),
                        alert=f"{where} needs review: {message}")
    if isinstance(exc, BudgetUsed):
        return Decision(out(PostStatus.RETRY_WAIT, send_budget.OUTCOME, next_attempt_at=exc.retry_at, error=message),
                        channel=claims.ChannelChange(claimed.channel_id, rate_limited_until=exc.retry_at))
    if isinstance(exc, errors.RateLimited):
        return Decision(out(PostStatus.RETRY_WAIT, "rate_limited", next_attempt_at=exc.retry_at, http_status=status,
                            error=message),
                        channel=claims.ChannelChange(claimed.channel_id, rate_limited_until=exc.retry_at))
    if isinstance(exc, errors.AuthError):
        return Decision(out(PostStatus.SCHEDULED, "auth", http_status=status, error=message),
                        channel=claims.ChannelChange(claimed.channel_id, status=ChannelStatus.NEEDS_REAUTH,
                                                         reason=message),
                        alert=f"channel {channel_name} paused (needs_reauth): {message}. "
                              f"Fix the credentials, then run `promo channels check {channel_name}`.")
    if isinstance(exc, errors.ConfigError):
        return Decision(out(PostStatus.SCHEDULED, "config", error=message),
                        channel=claims.ChannelChange(claimed.channel_id, status=ChannelStatus.NEEDS_REAUTH,
                                                         reason=message),
                        alert=f"channel {channel_name} paused: {message}")
    if isinstance(exc, errors.RejectedContent):
        return Decision(out(PostStatus.FAILED, "rejected", http_status=status, error=message),
                        alert=f"{where} failed: {message}")
    if isinstance(exc, errors.Transient):
        failures = claimed.failures + 1
        outcome = "absent" if isinstance(exc, NotOnPlatform) else "transient"
        if failures >= settings.max_attempts:
            return Decision(out(PostStatus.FAILED, outcome, http_status=status, failures=failures,
                                error=f"gave up after {failures} attempts: {message}"),
                            alert=f"{where} failed after {failures} attempts: {message}")
        return Decision(out(PostStatus.RETRY_WAIT, outcome, http_status=status, failures=failures, error=message,
                            next_attempt_at=now + backoff(failures, settings, rng)))
    if isinstance(exc, errors.UnknownOutcome):
        since = claimed.uncertain_since or claimed.claimed_at or now
        failures = claimed.failures + 1
        if resend_is_safe(rules, since, now) and failures < settings.max_attempts:
            # The platform dedupes on our key and still remembers it: sending again is safe.
            return Decision(out(PostStatus.RETRY_WAIT, "unknown", http_status=status, failures=failures,
                                error=f"outcome unknown, sending again with the same idempotency key: {message}",
                                next_attempt_at=now + backoff(failures, settings, rng)))
    else:
        message = f"unexpected {type(exc).__name__}: {message}"
    # A retry could double-post (no key, or its window has passed), or an unexpected error.
    return Decision(out(PostStatus.NEEDS_REVIEW, "unknown", http_status=status,
                        error=f"outcome unknown, not re-sent: {message}"),
                    alert=f"{where} needs review (may or may not be on the platform): {message}")
