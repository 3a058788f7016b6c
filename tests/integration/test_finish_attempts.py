"""Writing attempt results in bulk: results under our lease, and results whose lease was lost
(on SQLite and on PostgreSQL: the ``any_db`` fixture)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from scheduler.config import load_settings
from scheduler.models import Channel, HistoryEntry, Post, PostStatus, utcnow
from scheduler.storage import channels as channel_store
from scheduler.storage import claims
from scheduler.storage import posts as store
from scheduler.storage.db import Database

S = PostStatus


def setup(db: Database, n: int):
    settings = load_settings({"PROMO_DATABASE_URL": db.url})
    now = utcnow()
    with db.session() as session:
        rows = []
        for i in range(n):
            session.add(Channel(name=f"c{i}", platform="outbox", source="env", options={}))
        session.flush()
        for ch in session.scalars(select(Channel)):
            rows.append(store.create_post(session, channel=ch, kind="free_text", text=f"post {ch.name}",
                                          status=S.SCHEDULED, scheduled_at=now - dt.timedelta(seconds=1),
                                          actor="test").id)
        channel_store.sync_configured(session, settings)
    claimed = claims.claim_due(db.engine, worker="w1", now=now, lease=dt.timedelta(seconds=30))
    assert sorted(c.id for c in claimed) == sorted(rows)
    return db, claimed, now


def outcome(c: claims.Claimed, to: PostStatus, now: dt.datetime, **kw) -> claims.Outcome:
    return claims.Outcome(post_id=c.id, history_id=c.history_id, to=to, outcome=kw.pop("outcome", to.value),
                         finished_at=now, **kw)


def test_results_under_our_lease_are_written_with_their_history(any_db: Database):
    db, claimed, now = setup(any_db, 4)
    a, b, c, d = sorted(claimed, key=lambda x: x.id)
    later = now + dt.timedelta(minutes=5)
    lost = claims.finish_attempts(db.engine, "w1", [
        outcome(a, S.PUBLISHED, now, remote_id="r1", remote_url="https://x/1"),
        outcome(b, S.RETRY_WAIT, now, outcome="transient", error="HTTP 503", failures=1, next_attempt_at=later),
        outcome(c, S.FAILED, now, outcome="rejected", error="too long"),
        outcome(d, S.SCHEDULED, now, outcome="auth", error="token revoked"),
    ])
    assert lost == []
    with db.session() as s:
        posts = {p.id: p for p in s.scalars(select(Post))}
        assert (posts[a.id].status, posts[a.id].remote_id, posts[a.id].published_at) == ("published", "r1", now)
        assert posts[a.id].error is None and posts[a.id].lease_owner is None
        assert (posts[b.id].status, posts[b.id].failures, posts[b.id].next_attempt_at) == ("retry_wait", 1, later)
        assert (posts[c.id].status, posts[c.id].error, posts[c.id].failures) == ("failed", "too long", 0)
        assert (posts[d.id].status, posts[d.id].next_attempt_at) == ("scheduled", None)
        hist = {h.post_id: h for h in s.scalars(select(HistoryEntry).where(HistoryEntry.action == "attempt"))}
        assert hist[a.id].outcome == "published" and hist[a.id].remote_url == "https://x/1"
        assert hist[b.id].to_status == "retry_wait" and hist[b.id].error == "HTTP 503"
        assert all(h.finished_at == now for h in hist.values())


def test_a_result_whose_lease_was_lost_keeps_history_and_a_success_wins(any_db: Database):
    db, claimed, now = setup(any_db, 2)
    a, b = sorted(claimed, key=lambda x: x.id)
    with db.session() as s:  # housekeeping decided both meanwhile (the lease ran out)
        for c in (a, b):
            store.transition(s, store.get_post(s, c.id), S.NEEDS_REVIEW, actor="w2", reason="lease expired")
    lost = claims.finish_attempts(db.engine, "w1", [
        outcome(a, S.PUBLISHED, now, remote_id="r9"),
        outcome(b, S.FAILED, now, outcome="rejected", error="nope"),
    ])
    assert sorted(lost) == sorted([a.id, b.id])
    with db.session() as s:
        assert s.get(Post, a.id).status == "published" and s.get(Post, a.id).remote_id == "r9"
        assert s.get(Post, b.id).status == "needs_review"  # a failure does not override the review
        finished = s.scalars(select(HistoryEntry).where(HistoryEntry.action == "attempt",
                                                        HistoryEntry.finished_at.is_not(None))).all()
        assert len(finished) == 2
