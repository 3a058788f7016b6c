"""kill -9 the real `promo serve` at random moments, restart it, and lose nothing.

300 posts over two idempotent webhook channels (the fake honours the key), two
non-idempotent ones (it does not: a re-send would be a second post) and the outbox
channel (idempotent and reconcilable). The fake answers after 250 ms and creates the post
as soon as it has read the request, so a kill while a request is in flight leaves a post
on the platform that the killed process never heard about.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select

from scheduler.config import load_settings
from scheduler.models import Channel, HistoryEntry, Post, PostStatus
from scheduler.storage import channels as channel_store
from scheduler.storage import posts as post_store
from scheduler.storage.db import Database
from tests.fakeplatform import FakePlatform
from tests.helpers import wait_for

S = PostStatus
IDEMPOTENT = ("w0", "w1")
PLAIN = ("n0", "n1")
POSTS_PER_CHANNEL = 60
KILLS = 10


@pytest.mark.slow
def test_kill9_loses_nothing_and_never_double_posts(fake_platform: FakePlatform, promo_env,
                                                    tmp_path: Path) -> None:
    fake = fake_platform
    fake.configure(latency=0.25)
    outbox = tmp_path / "outbox.jsonl"
    channels: dict[str, dict[str, str]] = {}
    for name in IDEMPOTENT:
        channels[name] = {"PLATFORM": "webhook", "URL": fake.url(name), "IDEMPOTENT": "true"}
    for name in PLAIN:
        channels[name] = {"PLATFORM": "webhook", "URL": fake.url(name)}
        fake.configure(name, idempotent=False)
    channels["outbox"] = {"PLATFORM": "outbox", "PATH": str(outbox)}
    env = promo_env(channels, LEASE_SECONDS="2", HEALTH_PORT="0", POLL_SECONDS="0.2", RETRY_BASE_SECONDS="0.2",
                    PUBLISH_TIMEOUT="5", LOG_LEVEL="WARNING")
    settings = load_settings(env)
    db = Database(settings.database_url)
    db.upgrade()
    now = dt.datetime.now(dt.UTC)
    with db.session() as session:
        rows = channel_store.sync_configured(session, settings)
        for name in channels:
            for n in range(POSTS_PER_CHANNEL):
                # Outbox posts trickle in over the run, so kills also land between them.
                at = now + dt.timedelta(seconds=0.3 * n) if name == "outbox" else now - dt.timedelta(seconds=60 - n)
                post_store.create_post(session, channel=rows[name], kind="free_text", text=f"{name} promo {n}",
                                       status=S.SCHEDULED, scheduled_at=at, actor="test")
    total = POSTS_PER_CHANNEL * len(channels)
    proc_env = {**env, "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    log = open(tmp_path / "serve.log", "ab")  # noqa: SIM115 - shared by every run, closed below

    def serve() -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-m", "scheduler.cli", "serve"], env=proc_env, cwd=tmp_path,
                                stdout=log, stderr=subprocess.STDOUT)

    def finished() -> int:
        with db.session() as session:
            counts = post_store.counts_by_status(session)
        return sum(n for st, n in counts.items() if S(st).terminal)

    rng = random.Random(2024)
    kills = 0
    try:
        while kills < KILLS:
            proc = serve()
            before = fake.request_count()
            done_before = sum(1 for r in fake.requests_for(None) if r.finished_at is not None)
            target = rng.randint(1, 10)
            if kills % 2 == 0:
                # Right as a request arrives: the platform is creating the post, we hear nothing.
                ok = fake.wait_for(lambda f, n=before + target: f.request_count() >= n, 60)
            else:
                # Right after an answer went out: the result may not be written yet.
                ok = fake.wait_for(lambda f, n=done_before + target: sum(
                    1 for r in f.requests if r.finished_at is not None) >= n, 60)
            assert ok, f"no progress after restart {kills} (see {tmp_path / 'serve.log'})"
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            kills += 1
            assert finished() < total, "everything finished before the 10th kill; make the run longer"
        proc = serve()
        wait_for(lambda: finished() == total, 90, "every post to reach a terminal state")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()

    with db.session() as session:
        posts = list(session.scalars(select(Post).join(Channel)))
        name_of = {p.id: p.channel.name for p in posts}
        history = list(session.scalars(select(HistoryEntry).order_by(HistoryEntry.id)))
    key_of = {p.id: p.idempotency_key for p in posts}

    # Nothing lost: every post is terminal, and its history ends where the post is.
    last: dict[int, HistoryEntry] = {}
    for h in history:
        last[h.post_id] = h
        assert h.action != "attempt" or h.finished_at is not None, f"attempt {h.id} left open"
    statuses = Counter((name_of[p.id], p.status) for p in posts)
    for p in posts:
        assert p.status in (S.PUBLISHED, S.NEEDS_REVIEW), (p.id, name_of[p.id], p.status, p.error)
        assert last[p.id].to_status == p.status
    # The kills really hit publishes in flight: some leases had to be resolved.
    assert any(h.outcome == "lease_expired" for h in history), statuses

    # History has an attempt for every request (an attempt killed before sending has none).
    attempts = Counter(key_of[h.post_id] for h in history if h.action == "attempt")
    requests = Counter(r.key for r in fake.requests_for(None))
    assert all(requests[k] <= attempts[k] for k in requests), "a request without an attempt in the history"

    for name in IDEMPOTENT + PLAIN:
        deliveries = Counter(d.key for d in fake.deliveries_for(name))
        assert all(n == 1 for n in deliveries.values()), (name, deliveries.most_common(2))
        for p in (p for p in posts if name_of[p.id] == name):
            if p.status == S.PUBLISHED:
                assert deliveries[p.idempotency_key] == 1
                assert p.remote_id == next(d.id for d in fake.deliveries_for(name) if d.key == p.idempotency_key)
            else:  # needs_review: never re-sent after the unknown outcome
                assert requests[p.idempotency_key] <= 1
    for name in IDEMPOTENT + ("outbox",):
        assert statuses[(name, S.NEEDS_REVIEW.value)] == 0, name
    for name in PLAIN:
        assert statuses[(name, S.NEEDS_REVIEW.value)] <= kills, name
    lines = [json.loads(line) for line in outbox.read_text().splitlines()]
    written = Counter(line["idempotency_key"] for line in lines)
    assert all(n == 1 for n in written.values()), written.most_common(2)
    assert set(written) == {p.idempotency_key for p in posts if name_of[p.id] == "outbox"}
