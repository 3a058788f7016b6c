"""Housekeeping on PostgreSQL with several processes: each decision is made once.

Two dispatchers (two processes of a cluster) resolving the same dead claimer's leases, or
expiring the same stale posts, at the same moment: each post gets one transition, one history
row and one alert — never one per process.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select

from scheduler.config import load_settings
from scheduler.dispatch import Dispatcher
from scheduler.models import HistoryEntry, Post, PostStatus, utcnow
from scheduler.storage import channels as channel_store
from scheduler.storage import posts as store
from scheduler.storage.db import Database

pytestmark = pytest.mark.postgres
POSTS = 60


def _dispatchers(pg_db: Database, promo_env, tmp_path: Path, alerts: list[str]) -> list[Dispatcher]:
    channels = {name: {"PLATFORM": "webhook", "URL": f"http://127.0.0.1:9/{name}"} for name in ("a", "b", "c")}
    settings = load_settings(promo_env(channels, MAX_LATENESS_FREE_TEXT="1m"))
    with pg_db.session() as session:
        channel_store.sync_configured(session, settings)
    return [Dispatcher(settings, pg_db, worker=f"p{i}", alert=alerts.append) for i in range(2)]


def _race(*calls) -> list[object]:
    """Run the calls at once, each on its own thread (own connection), as two processes would."""
    start = threading.Barrier(len(calls))
    results: list[object] = [None] * len(calls)

    def run(i: int) -> None:
        start.wait()
        results[i] = calls[i]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def test_two_processes_resolving_the_same_dead_leases_decide_each_post_once(pg_db, promo_env, tmp_path) -> None:
    alerts: list[str] = []
    d1, d2 = _dispatchers(pg_db, promo_env, tmp_path, alerts)
    now = utcnow()
    with pg_db.session() as session:
        channels = channel_store.sync_configured(session, d1.settings)
        for n in range(POSTS):
            post = store.create_post(session, channel=channels["abc"[n % 3]], kind="free_text", text=f"promo {n}",
                                     status=PostStatus.SCHEDULED, scheduled_at=now - dt.timedelta(seconds=5),
                                     actor="test")
            post.status, post.lease_owner = PostStatus.PUBLISHING.value, "dead:1"
            post.lease_expires_at = now - dt.timedelta(seconds=1)
            session.add(HistoryEntry(post_id=post.id, channel_id=post.channel_id, action="attempt",
                                     started_at=now - dt.timedelta(seconds=3), from_status="scheduled",
                                     to_status="publishing", actor="dead:1"))
    resolved = _race(lambda: asyncio.run(d1.resolve_expired_leases()), lambda: asyncio.run(d2.resolve_expired_leases()))
    assert sum(resolved) == POSTS  # type: ignore[arg-type]
    with pg_db.session() as session:
        moves = Counter(h.post_id for h in session.scalars(
            select(HistoryEntry).where(HistoryEntry.from_status == PostStatus.PUBLISHING.value)))
        statuses = Counter(p.status for p in session.scalars(select(Post)))
    assert set(moves.values()) == {1}, moves.most_common(3)
    assert statuses == {PostStatus.NEEDS_REVIEW.value: POSTS}  # a plain webhook cannot be asked: a person checks
    assert len(alerts) == POSTS  # one alert per post, not one per process


def test_two_processes_expiring_the_same_stale_posts_expire_each_once(pg_db, promo_env, tmp_path) -> None:
    alerts: list[str] = []
    d1, d2 = _dispatchers(pg_db, promo_env, tmp_path, alerts)
    now = utcnow()
    with pg_db.session() as session:
        channels = channel_store.sync_configured(session, d1.settings)
        for n in range(POSTS):
            store.create_post(session, channel=channels["abc"[n % 3]], kind="free_text", text=f"late {n}",
                              status=PostStatus.SCHEDULED, scheduled_at=now - dt.timedelta(hours=2), actor="test")
    expired = _race(lambda: d1.expire_stale(now), lambda: d2.expire_stale(now))
    assert sum(expired) == POSTS  # type: ignore[arg-type]
    with pg_db.session() as session:
        moves = Counter(h.post_id for h in session.scalars(
            select(HistoryEntry).where(HistoryEntry.to_status == PostStatus.EXPIRED.value)))
    assert len(moves) == POSTS and set(moves.values()) == {1}, moves.most_common(3)
    assert len(alerts) == POSTS
