"""The post lifecycle: every allowed arrow, forbidden ones, and what decide() makes of each error class."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import pytest
from sqlalchemy import select

from scheduler import errors
from scheduler.config import load_settings
from scheduler.models import ChannelStatus, HistoryEntry, PostStatus
from scheduler.platforms.base import ALWAYS, PlatformRules, PublishResult
from scheduler.retry import decide
from scheduler.storage import channels as channel_store
from scheduler.storage import claims
from scheduler.storage import posts as post_store
from scheduler.storage.db import Database

# The design's lifecycle, written out by hand from the diagram in scheduler/models.py (and README):
# NOT derived from post_store.ALLOWED, so adding an arrow to the code without drawing it fails here.
LIFECYCLE: dict[str, set[str]] = {
    "draft": {"pending_approval", "scheduled", "cancelled"},
    "pending_approval": {"scheduled", "draft", "cancelled", "expired"},
    "scheduled": {"publishing", "cancelled", "expired", "scheduled", "pending_approval"},
    "publishing": {"published", "retry_wait", "failed", "needs_review", "scheduled"},
    "retry_wait": {"publishing", "scheduled", "failed", "cancelled", "expired"},
    "failed": {"scheduled"},
    "needs_review": {"published", "scheduled", "cancelled"},
    "expired": {"scheduled"},
    "published": set(),
    "cancelled": set(),
}
ARROWS = [(PostStatus(frm), PostStatus(to)) for frm, targets in LIFECYCLE.items() for to in sorted(targets)]
FORBIDDEN = [(frm, to) for frm in PostStatus for to in PostStatus if to.value not in LIFECYCLE[frm.value]]
NOW = dt.datetime(2026, 3, 4, 5, 6, 7, tzinfo=dt.UTC)


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path}/promo.db")
    database.upgrade()
    return database


@pytest.fixture
def settings(tmp_path: Path):
    return load_settings({"PROMO_DATABASE_URL": f"sqlite:///{tmp_path}/promo.db",
                          "PROMO_RETRY_BASE_SECONDS": "10", "PROMO_RETRY_MAX_SECONDS": "60",
                          "PROMO_MAX_ATTEMPTS": "6"})


def new_post(db: Database, settings, status: PostStatus) -> int:
    with db.session() as session:
        channel = channel_store.sync_configured(session, settings)["outbox"]
        post = post_store.create_post(session, channel=channel, kind="free_text", text="Pasar malam!",
                                      status=status, scheduled_at=NOW, actor="test")
        return post.id


def history_of(db: Database, post_id: int) -> list[HistoryEntry]:
    with db.session() as session:
        return list(session.scalars(select(HistoryEntry).where(HistoryEntry.post_id == post_id)
                                    .order_by(HistoryEntry.id)))


# --- the arrows ----------------------------------------------------------------------------

@pytest.mark.parametrize(("frm", "to"), ARROWS, ids=[f"{f.value}->{t.value}" for f, t in ARROWS])
def test_each_allowed_arrow_moves_the_post_and_writes_who_and_why(db, settings, frm, to) -> None:
    post_id = new_post(db, settings, frm)
    with db.session() as session:
        post_store.transition(session, post_store.get_post(session, post_id), to, actor="ayu",
                              reason=f"because {frm.value} had to become {to.value}")
    with db.session() as session:
        assert post_store.get_post(session, post_id).status == to.value
    row = history_of(db, post_id)[-1]
    assert (row.from_status, row.to_status, row.actor) == (frm.value, to.value, "ayu")
    assert row.error == f"because {frm.value} had to become {to.value}"


@pytest.mark.parametrize(("frm", "to"), FORBIDDEN, ids=[f"{f.value}-x->{t.value}" for f, t in FORBIDDEN])
def test_forbidden_arrows_raise_and_change_nothing(db, settings, frm, to) -> None:
    post_id = new_post(db, settings, frm)
    before = len(history_of(db, post_id))
    with pytest.raises(errors.StateError, match=f"is {frm.value}; it cannot become {to.value}"):
        with db.session() as session:
            post_store.transition(session, post_store.get_post(session, post_id), to, actor="ayu", reason="try")
    with db.session() as session:
        assert post_store.get_post(session, post_id).status == frm.value
    assert len(history_of(db, post_id)) == before


# --- decide(): what each error class means ----------------------------------------------------

PLAIN = PlatformRules(text=())
IDEMPOTENT = PlatformRules(text=(), idempotent_for=ALWAYS)


def claimed(failures: int = 0, kind: str = "free_text", **kw) -> claims.Claimed:
    return claims.Claimed(id=41, channel_id=3, kind=kind, text="x", link=None, title=None, summary=None,
                              image_path=None, image_alt=None, idempotency_key="k" * 32, created_at=NOW,
                              scheduled_at=NOW, attempts=failures + 1, failures=failures, history_id=9, **kw)


def run(exc: BaseException | None, settings, *, failures: int = 0, rules: PlatformRules = PLAIN,
        kind: str = "free_text", seed: int = 1, result: PublishResult | None = None, **kw):
    return decide(claimed(failures, kind, **kw), exc, result, rules, settings, NOW, random.Random(seed),
                  "fb_kota")


def test_success_is_published_with_the_remote_id(settings) -> None:
    d = run(None, settings, result=PublishResult(remote_id="123", remote_url="https://x/123", http_status=200))
    assert (d.outcome.to, d.outcome.remote_id, d.outcome.remote_url) == (PostStatus.PUBLISHED, "123", "https://x/123")
    assert d.alert is None and d.channel is None


def test_transient_backoff_grows_is_capped_and_jittered(settings) -> None:
    for failures_so_far in range(5):
        failures = failures_so_far + 1
        step = min(60.0, 10.0 * 2 ** (failures - 1))
        delays = set()
        for seed in range(20):
            d = run(errors.Transient("HTTP 503"), settings, failures=failures_so_far, seed=seed)
            assert d.outcome.to == PostStatus.RETRY_WAIT and d.outcome.failures == failures
            assert d.outcome.next_attempt_at is not None
            delay = (d.outcome.next_attempt_at - NOW).total_seconds()
            assert step / 2 <= delay <= step, (failures, delay)
            delays.add(round(delay, 6))
        assert len(delays) > 10, "no jitter"
    # 10, 20, 40, then capped at 60 (not 80).
    assert run(errors.Transient("x"), settings, failures=4).outcome.next_attempt_at <= NOW + dt.timedelta(seconds=60)


def test_transient_after_max_attempts_is_failed_with_an_alert(settings) -> None:
    d = run(errors.Transient("HTTP 502 bad gateway"), settings, failures=5)
    assert d.outcome.to == PostStatus.FAILED and d.outcome.failures == 6
    assert "gave up after 6 attempts" in d.outcome.error and "502 bad gateway" in d.outcome.error
    assert d.alert and "failed after 6 attempts" in d.alert


def test_rate_limited_waits_exactly_until_retry_at_and_limits_the_channel(settings) -> None:
    retry_at = NOW + dt.timedelta(seconds=93)
    d = run(errors.RateLimited("slow down", retry_at=retry_at, status=429), settings, failures=2)
    assert d.outcome.to == PostStatus.RETRY_WAIT and d.outcome.next_attempt_at == retry_at
    assert d.outcome.failures is None, "a rate limit is not a failure"
    assert d.channel is not None and d.channel.rate_limited_until == retry_at and d.channel.status is None


def test_auth_error_pauses_the_channel_and_puts_the_post_back(settings) -> None:
    d = run(errors.AuthError("token expired", status=401), settings)
    assert d.outcome.to == PostStatus.SCHEDULED
    assert d.channel is not None and d.channel.status == ChannelStatus.NEEDS_REAUTH
    assert d.alert and "needs_reauth" in d.alert and "promo channels check fb_kota" in d.alert


def test_rejected_content_fails_at_once_with_the_message(settings) -> None:
    d = run(errors.RejectedContent("image is too large", status=400), settings)
    assert d.outcome.to == PostStatus.FAILED and "image is too large" in d.outcome.error
    assert d.alert and "image is too large" in d.alert


def test_duplicate_with_an_id_is_published(settings) -> None:
    d = run(errors.Duplicate("exists", remote_id="987", remote_url="https://x/987"), settings)
    assert (d.outcome.to, d.outcome.remote_id) == (PostStatus.PUBLISHED, "987")


def test_duplicate_without_an_id_needs_review(settings) -> None:
    d = run(errors.Duplicate("exists somewhere"), settings)
    assert d.outcome.to == PostStatus.NEEDS_REVIEW and d.alert


def test_unknown_outcome_needs_review_where_a_retry_could_double_post(settings) -> None:
    d = run(errors.UnknownOutcome("read timeout"), settings, rules=PLAIN)
    assert d.outcome.to == PostStatus.NEEDS_REVIEW and "outcome unknown, not re-sent" in d.outcome.error
    assert d.alert and "needs review" in d.alert


def test_unknown_outcome_is_retried_where_the_platform_dedupes(settings) -> None:
    d = run(errors.UnknownOutcome("read timeout"), settings, rules=IDEMPOTENT)
    assert d.outcome.to == PostStatus.RETRY_WAIT and d.outcome.failures == 1 and d.alert is None


ONE_HOUR_KEY = PlatformRules(text=(), idempotent_for=dt.timedelta(hours=1))  # Mastodon


def test_unknown_outcome_is_resent_blindly_only_while_the_platform_remembers_the_key(settings) -> None:
    # This attempt is the first that may have reached the platform: the key covers a resend.
    d = run(errors.UnknownOutcome("read timeout"), settings, rules=ONE_HOUR_KEY, claimed_at=NOW)
    assert d.outcome.to == PostStatus.RETRY_WAIT and d.outcome.outcome == "unknown"
    assert "same idempotency key" in d.outcome.error
    # An earlier attempt 40 minutes ago may have created it: the key is still remembered.
    d = run(errors.UnknownOutcome("read timeout"), settings, rules=ONE_HOUR_KEY, claimed_at=NOW,
            uncertain_since=NOW - dt.timedelta(minutes=40))
    assert d.outcome.to == PostStatus.RETRY_WAIT
    # 58 minutes ago: a resend would arrive after the server forgot the key (5 minutes' margin).
    for ago in (dt.timedelta(minutes=58), dt.timedelta(hours=3)):
        d = run(errors.UnknownOutcome("read timeout"), settings, rules=ONE_HOUR_KEY, claimed_at=NOW,
                uncertain_since=NOW - ago)
        assert d.outcome.to == PostStatus.NEEDS_REVIEW and "not re-sent" in d.outcome.error, ago
    # A key kept forever (the outbox, a deduping webhook receiver) has no window.
    d = run(errors.UnknownOutcome("x"), settings, rules=IDEMPOTENT, uncertain_since=NOW - dt.timedelta(days=9))
    assert d.outcome.to == PostStatus.RETRY_WAIT


def test_unknown_outcome_after_the_last_attempt_needs_review_not_failed(settings) -> None:
    # It may be on the platform: "failed" would invite a person to post it again.
    d = run(errors.UnknownOutcome("HTTP 502"), settings, rules=ONE_HOUR_KEY, failures=5, claimed_at=NOW)
    assert d.outcome.to == PostStatus.NEEDS_REVIEW and d.alert


def test_an_unexpected_error_needs_review_not_a_retry(settings) -> None:
    d = run(KeyError("boom"), settings, rules=IDEMPOTENT)
    assert d.outcome.to == PostStatus.NEEDS_REVIEW and "unexpected KeyError" in d.outcome.error


@pytest.mark.parametrize("exc", [errors.RejectedContent("no"), errors.UnknownOutcome("?"), errors.Duplicate("?"),
                                 errors.AuthError("revoked")], ids=lambda e: type(e).__name__)
def test_a_failing_alert_post_never_raises_another_alert(settings, exc) -> None:
    d = run(exc, settings, kind="alert")
    assert d.alert is None
    assert run(errors.Transient("x"), settings, kind="alert", failures=5).alert is None
