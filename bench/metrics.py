"""Metrics benchmark: read back the counters of 10,000 published posts across 10 channels.

Five Mastodon channels (one ``GET /api/v1/statuses/:id`` per post, at most 60 a run) and five X
channels (``GET /2/tweets?ids=`` with 100 posts a call, at most 5 calls a run), all pointing at
the fake platform (tests/fakeplatform.py, 127.0.0.1). Every post was published 25 hours ago,
so each is due its 24 h read. The collection job is run back to back (the service runs it every
10 minutes) until nothing is due, on a fresh SQLite database (or ``--database-url``).

Printed: posts, channels, runs needed, requests made (per platform), posts read per request,
seconds for the first run (which also puts the 10,000 posts on the schedule) and for all runs.

    .venv/bin/python -m bench.metrics
    .venv/bin/python -m bench.metrics --posts 2000 --latency-ms 20
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import insert, select

from scheduler.config import load_settings
from scheduler.metrics import collect
from scheduler.models import Channel, MetricSchedule, Post, PostStatus, utcnow
from scheduler.storage import channels as channel_store
from scheduler.storage.db import Database
from tests.fakeplatform import FakePlatform


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--posts", type=int, default=10_000)
    ap.add_argument("--channels", type=int, default=10, help="half Mastodon, half X")
    ap.add_argument("--latency-ms", type=float, default=0.0, help="the fake platform's answer latency")
    ap.add_argument("--database-url", help="default: SQLite in a temporary folder")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp, FakePlatform(seed=1) as fake:
        fake.configure(latency=args.latency_ms / 1000)
        names = [f"m{i}" if i % 2 == 0 else f"x{i}" for i in range(args.channels)]
        env = {"PROMO_DATABASE_URL": args.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}",
               "PROMO_CHANNELS": ",".join(names), "PROMO_ENV_FILE": str(Path(tmp) / "none.env")}
        for name in names:
            prefix = f"PROMO_CHANNEL_{name.upper()}_"
            env[prefix + "PLATFORM"] = "mastodon" if name.startswith("m") else "x"
            env[prefix + "BASE_URL"] = fake.base_url
            env[prefix + "ACCESS_TOKEN"] = "bench-token"
        settings = load_settings(env)
        db = Database(settings.database_url)
        db.upgrade()
        published = utcnow() - dt.timedelta(hours=25)
        with db.session() as session:
            channel_store.sync_configured(session, settings)
            ids = {c.name: c.id for c in session.scalars(select(Channel))}
            rows = [{"channel_id": ids[names[n % len(names)]], "kind": "free_text", "text": "bench",
                     "status": PostStatus.PUBLISHED.value, "published_at": published, "remote_id": str(10**9 + n),
                     "idempotency_key": uuid.uuid4().hex, "attempts": 1, "failures": 0, "created_by": "bench",
                     "created_at": published, "updated_at": published} for n in range(args.posts)]
            session.execute(insert(Post), rows)
        runs, requests, first = 0, 0, 0.0
        started = time.perf_counter()
        while True:
            t = time.perf_counter()
            result = asyncio.run(collect(settings, db))
            if runs == 0:
                first = time.perf_counter() - t
            runs += 1
            requests += result.requests
            with db.session() as session:
                left = session.scalar(select(MetricSchedule.post_id).where(MetricSchedule.next_at <= utcnow()).limit(1))
            if left is None or runs > 1000:
                break
        total = time.perf_counter() - started
        masto = sum(1 for r in fake.counter_reads if "/statuses/" in r)
        x = len(fake.counter_reads) - masto
        print(f"posts {args.posts}, channels {args.channels} ({args.channels - args.channels // 2} Mastodon, "
              f"{args.channels // 2} X), latency {args.latency_ms:g} ms")
        print(f"runs until nothing was due: {runs} (the service runs one every 10 minutes)")
        print(f"requests: {len(fake.counter_reads)} (Mastodon {masto}, X {x}); counted by the job: {requests}")
        print(f"posts read per request: {args.posts / max(1, len(fake.counter_reads)):.1f}")
        print(f"first run (schedules {args.posts} posts too): {first:.2f} s; all runs: {total:.2f} s")
        db.dispose()


if __name__ == "__main__":
    main()
