"""Claims on PostgreSQL: row locks per channel instead of one global lock.

Claimers on different channels run side by side; a channel another claimer holds is skipped,
never waited for; and still at most one post of a channel is in flight, in scheduled order.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import random
import threading

import pytest
from sqlalchemy import select, text

from scheduler.models import Channel, HistoryEntry, Post, PostStatus, utcnow
from scheduler.storage import claims
from scheduler.storage import posts as store
from scheduler.storage.db import Database

pytestmark = pytest.mark.postgres
LEASE = dt.timedelta(seconds=60)


def make_posts(db: Database, channels: int, per_channel: int, now: dt.datetime) -> dict[str, int]:
    """``channels`` outbox channels with ``per_channel`` due posts each, in a shuffled creation order."""
    with db.session() as session:
        rows = [Channel(name=f"c{i:02d}", platform="outbox", source="env", options={}) for i in range(channels)]
        session.add_all(rows)
        session.flush()
        order = [(ch, k) for ch in rows for k in range(per_channel)]
        random.Random(3).shuffle(order)
        for ch, k in order:
            store.create_post(session, channel=ch, kind="free_text", text=f"{ch.name} #{k}",
                              status=PostStatus.SCHEDULED, scheduled_at=now - dt.timedelta(minutes=per_channel - k),
                              actor="test")
        return {ch.name: ch.id for ch in rows}


def published(claimed: list[claims.Claimed], now: dt.datetime) -> list[claims.Outcome]:
    return [claims.Outcome(post_id=c.id, history_id=c.history_id, to=PostStatus.PUBLISHED, outcome="published",
                          finished_at=now, remote_id=f"r{c.id}") for c in claimed]


def test_a_channel_held_by_another_claimer_is_skipped_and_the_others_are_claimed(pg_db: Database) -> None:
    now = utcnow()
    ids = make_posts(pg_db, channels=2, per_channel=1, now=now)
    # Another claimer is in the middle of its claim on channel c00: it holds that channel's row.
    other = pg_db.engine.connect()
    pool = concurrent.futures.ThreadPoolExecutor(1)
    try:
        other.execute(text("SELECT id FROM channels WHERE id = :id FOR UPDATE"), {"id": ids["c00"]})
        claim = pool.submit(claims.claim_due, pg_db.engine, worker="w1", now=now, lease=LEASE)
        first = claim.result(timeout=20)  # a claimer that waited for c00 would time out here
        assert [c.channel_id for c in first] == [ids["c01"]]  # c00 skipped: not waited for, not taken twice
    finally:
        other.rollback()  # the other claimer finishes (and a waiting claim, if any, goes on)
        other.close()
        pool.shutdown()
    # Once the other claimer is done, c00's post is there to claim.
    second = claims.claim_due(pg_db.engine, worker="w1", now=now, lease=LEASE)
    assert [c.channel_id for c in second] == [ids["c00"]]


def test_concurrent_claimers_keep_one_in_flight_per_channel_in_scheduled_order(pg_db: Database) -> None:
    now = utcnow()
    ids = make_posts(pg_db, channels=10, per_channel=12, now=now)
    in_flight: set[int] = set()
    overlaps: list[int] = []
    guard = threading.Lock()

    def worker(name: str) -> int:
        done = 0
        for _ in range(400):
            claimed = claims.claim_due(pg_db.engine, worker=name, now=now, lease=LEASE, limit=3)
            with guard:
                for c in claimed:
                    if c.channel_id in in_flight:
                        overlaps.append(c.channel_id)
                    in_flight.add(c.channel_id)
            with guard:
                for c in claimed:
                    in_flight.discard(c.channel_id)
            assert claims.finish_attempts(pg_db.engine, name, published(claimed, now)) == []
            done += len(claimed)
            if done and not claimed:
                with pg_db.engine.connect() as conn:
                    left = conn.execute(text("SELECT count(*) FROM posts WHERE status <> 'published'")).scalar()
                if left == 0:
                    break
        return done

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        counts = [f.result(timeout=120) for f in [pool.submit(worker, f"w{i}") for i in range(4)]]

    assert sum(counts) == 120 and overlaps == []
    with pg_db.session() as session:
        posts = list(session.scalars(select(Post)))
        assert all(p.status == "published" and p.attempts == 1 for p in posts)
        attempts = {h.post_id: h.id for h in session.scalars(select(HistoryEntry)
                                                             .where(HistoryEntry.action == "attempt"))}
    for channel_id in ids.values():
        mine = sorted((p for p in posts if p.channel_id == channel_id), key=lambda p: attempts[p.id])
        assert [p.scheduled_at for p in mine] == sorted(p.scheduled_at for p in mine)
