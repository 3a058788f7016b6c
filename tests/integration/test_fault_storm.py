"""A fault storm: 500 posts over 10 webhook channels against a fake platform that misbehaves.

The fake answers ~30% 5xx, holds ~10% of requests and then drops them (a timeout after
receipt: the post may or may not have been created), resets a few connections and answers
bursts of 429 with Retry-After. Half the channels are IDEMPOTENT (the fake honours the
key, so re-sending is safe); on the other half it does not, so a re-send would show up as
a second delivery. The real Dispatcher runs in-process until every post is terminal.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from sqlalchemy import select

from scheduler.config import load_settings
from scheduler.dispatch import Dispatcher
from scheduler.models import Channel, HistoryEntry, Post, PostStatus
from scheduler.storage import channels as channel_store
from scheduler.storage import posts as post_store
from scheduler.storage.db import Database
from tests.fakeplatform import FakePlatform, overlapping

CHANNELS = 10
POSTS = 500
S = PostStatus


def idempotent(i: int) -> bool:
    return i % 2 == 0


@pytest.mark.slow
async def test_fault_storm_ends_terminal_without_double_posts(
        fake_platform: FakePlatform, promo_env, wait_until, tmp_path: Path) -> None:
    fake = fake_platform
    fake.configure(latency=0.003, p_5xx=0.30, p_timeout=0.10, p_reset=0.02, p_429=0.02, burst_429=2,
                   retry_after=1, drop_delivers=0.5)
    channels: dict[str, dict[str, str]] = {}
    for i in range(CHANNELS):
        channels[f"c{i}"] = {"PLATFORM": "webhook", "URL": fake.url(f"c{i}"),
                             "IDEMPOTENT": "true" if idempotent(i) else "false"}
        # A receiver that does not honour the key creates a second post when we re-send.
        fake.configure(f"c{i}", idempotent=idempotent(i))
    settings = load_settings(promo_env(channels, RETRY_BASE_SECONDS="0.05", RETRY_MAX_SECONDS="0.4",
                                       PUBLISH_TIMEOUT="0.5", MAX_ATTEMPTS="20", LEASE_SECONDS="60",
                                       HTTP_CLIENTS="2", HTTP_CONNECTIONS="16"))
    db = Database(settings.database_url)
    db.upgrade()
    now = dt.datetime.now(dt.UTC)
    with db.session() as session:
        rows = channel_store.sync_configured(session, settings)
        for n in range(POSTS):
            post_store.create_post(session, channel=rows[f"c{n % CHANNELS}"], kind="free_text",
                                   text=f"Promo #{n}", status=S.SCHEDULED,
                                   scheduled_at=now - dt.timedelta(seconds=POSTS - n), actor="test")

    def all_terminal() -> bool:
        with db.session() as session:
            counts = post_store.counts_by_status(session)
        return sum(n for st, n in counts.items() if S(st).terminal) == POSTS

    dispatcher = Dispatcher(settings, db, seed=3)
    dispatcher.start()
    try:
        await wait_until(all_terminal, 150, tick=dispatcher.tick, poll=0.05)
    finally:
        await dispatcher.drain()

    with db.session() as session:
        posts = list(session.scalars(select(Post).join(Channel)))
        channel_of = {p.id: p.channel.name for p in posts}
        history = list(session.scalars(select(HistoryEntry).order_by(HistoryEntry.id)))
    by_key = {p.idempotency_key: p for p in posts}
    requests = fake.requests_for(None)
    by_key_requests: dict[str, list] = defaultdict(list)
    for r in requests:
        by_key_requests[r.key].append(r)
    answers = Counter(r.answer for r in requests)
    # The storm really happened: every kind of fault was served, and posts were re-sent.
    assert answers["5xx"] > 100 and answers["timeout"] > 20 and answers["429"] >= 3 and answers["reset"] >= 1, answers
    assert any(len(rs) > 1 for rs in by_key_requests.values())

    # Every post ends in a terminal state; the history ends where the post is.
    last_row: dict[int, HistoryEntry] = {}
    for h in history:
        last_row[h.post_id] = h
        if h.action == "attempt":
            assert h.finished_at is not None, f"attempt {h.id} of post {h.post_id} never finished"
    for p in posts:
        assert S(p.status).terminal, f"post {p.id} ended {p.status}"
        assert last_row[p.id].to_status == p.status

    # History has an attempt row for every request the fake saw, per idempotency key.
    key_of = {p.id: p.idempotency_key for p in posts}
    attempts = Counter(key_of[h.post_id] for h in history if h.action == "attempt")
    assert set(by_key_requests) <= set(by_key)
    for key, rs in by_key_requests.items():
        assert attempts[key] == len(rs), f"post {by_key[key].id}: {attempts[key]} attempts, {len(rs)} requests"

    # No request to a channel before the Retry-After of a 429 on that channel.
    for path in fake.paths:
        seen = fake.requests_for(path)
        for limited in (r for r in seen if r.status == 429):
            assert limited.answered_at is not None and limited.retry_after is not None
            not_before = limited.answered_at + limited.retry_after
            early = [r for r in seen if limited.received_at < r.received_at < not_before]
            assert not early, f"{path}: request {early[0].seq} came {not_before - early[0].received_at:.3f}s early"

    # One in flight per channel: the fake never handled two requests of one path at once.
    for path in fake.paths:
        assert overlapping(fake.requests_for(path)) == [], path

    for i in range(CHANNELS):
        path, name = f"/c{i}", f"c{i}"
        mine = [p for p in posts if channel_of[p.id] == name]
        deliveries = Counter(d.key for d in fake.deliveries_for(path))
        # Never delivered twice, on either kind of channel.
        assert all(n == 1 for n in deliveries.values()), (name, deliveries.most_common(3))
        for p in mine:
            rs = by_key_requests[p.idempotency_key]
            if p.status == S.PUBLISHED:
                assert deliveries[p.idempotency_key] == 1 and p.remote_id is not None
                assert p.remote_id == next(r.delivery for r in reversed(rs) if r.status == 200)
        if idempotent(i):
            # Unknown outcomes were re-sent with the same key; the platform deduplicated.
            assert [p.id for p in mine if p.status != S.PUBLISHED] == [], name
        else:
            for p in mine:
                rs = by_key_requests[p.idempotency_key]
                dropped = [r for r in rs if r.answer in ("timeout", "reset")]
                if p.status == S.NEEDS_REVIEW:
                    # The unknown outcome was the last request: never re-sent after it.
                    assert len(dropped) == 1 and rs[-1] is dropped[0], (p.id, [r.answer for r in rs])
                    assert "outcome unknown" in (p.error or "")
                else:
                    assert dropped == [], (p.id, p.status, [r.answer for r in rs])
            unknown_keys = {r.key for r in fake.requests_for(path) if r.answer in ("timeout", "reset")}
            assert unknown_keys and all(by_key[k].status == S.NEEDS_REVIEW for k in unknown_keys)
