"""The Reports pages at the size of a busy month: their times against a baseline in the same run.

    .venv/bin/python -m bench.reports                      # 10,000 posts, ~120,000 counter rows
    .venv/bin/python -m bench.reports --posts 2000 --runs 5

One SQLite database is filled with bulk statements: ``--channels`` channels (Mastodon, Bluesky
and X, which give counters; Telegram and Discord, which give none), ``--umkm`` UMKM with five
products each, and ``--posts`` posts published over one calendar month (the organisation's
timezone, Asia/Makassar) at every hour of the day; each post on a counting platform has
``--reads`` reads of five counters (likes, shares, replies, saves, views): about 120,000 rows by default.

``promo web`` (a real uvicorn) serves it on 127.0.0.1; each address is fetched once to warm up,
then ``--runs`` times: the median round trip and the server process's CPU time per request
(/proc), each with its ratio against ``/api/v1/status`` (the baseline: a logged-in request that
reads almost nothing) of the same run. The machine is shared: compare ratios of one run, and CPU
time rather than round trips (a busy machine stretches those), never milliseconds across runs. Not a test
(tests/integration/test_bench_smoke.py runs it at a tiny size).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import func, insert, select

from bench.web import serving, timed_ms, user_token
from scheduler.config import load_settings
from scheduler.models import Channel, Metric, Post, Product, Umkm
from scheduler.storage import channels as channel_store
from scheduler.storage.db import Database
from tests.webapp import PASSWORD, free_port, log_in

ROOT = Path(__file__).resolve().parents[1]
TZ = "Asia/Makassar"
MONTH = dt.date(2027, 3, 1)
PLATFORMS = ("mastodon", "bluesky", "x", "mastodon", "bluesky", "x", "mastodon", "bluesky", "telegram", "discord")
COUNTERS = ("likes", "shares", "replies", "saves", "views")
TARGET_MS = 300
BASELINE = "/api/v1/status (baseline)"


def channel_env(channels: int, tmp: Path) -> dict[str, str]:
    names = [f"c{i}" for i in range(channels)]
    env = {"PROMO_DATABASE_URL": f"sqlite:///{tmp / 'reports.db'}", "PROMO_TIMEZONE": TZ,
           "PROMO_SECRET_KEY": "a-long-bench-passphrase-for-reports", "PROMO_CHANNELS": ",".join(names),
           "PROMO_TEMPLATES_DIR": str(ROOT / "templates"), "PROMO_ENV_FILE": str(tmp / "none.env"),
           "PROMO_LOG_LEVEL": "WARNING"}
    for i, name in enumerate(names):
        p = f"PROMO_CHANNEL_{name.upper()}_"
        platform = PLATFORMS[i % len(PLATFORMS)]
        env[p + "PLATFORM"] = platform
        if platform in ("mastodon", "x"):
            env.update({p + "BASE_URL": "http://127.0.0.1:9", p + "ACCESS_TOKEN": "t"})
        elif platform == "bluesky":
            env.update({p + "HANDLE": f"{name}.test", p + "APP_PASSWORD": "p"})
        elif platform == "telegram":
            env.update({p + "BOT_TOKEN": "1:x", p + "CHAT_ID": "@umkm"})
        else:
            env[p + "WEBHOOK_URL"] = "http://127.0.0.1:9/api/webhooks/1/tok"
    return env


def fill(env: dict[str, str], posts: int, umkm: int, reads: int) -> tuple[str, str]:
    """The database of ``env``, filled; (an API token, what it took)."""
    t0 = time.perf_counter()
    settings = load_settings(env)
    db = Database(settings.database_url)
    try:
        db.upgrade()
        with db.session() as s:
            channel_store.sync_configured(s, settings)
        with db.engine.begin() as conn:
            channels = [tuple(r) for r in conn.execute(select(Channel.id, Channel.platform).order_by(Channel.id))]
            conn.execute(insert(Umkm), [{"external_id": f"u{i}", "name": f"UMKM {i}"} for i in range(umkm)])
            umkm_ids = list(conn.execute(select(Umkm.id).order_by(Umkm.id)).scalars())
            conn.execute(insert(Product), [{"external_id": f"p{i}", "umkm_id": umkm_ids[i % umkm], "name": f"Produk {i}",
                                            "curation": "approved"} for i in range(umkm * 5)])
            products = list(conn.execute(select(Product.id).order_by(Product.id)).scalars())
        tz = ZoneInfo(TZ)
        start = dt.datetime.combine(MONTH, dt.time(), tzinfo=tz).astimezone(dt.UTC)
        span = 30 * 86400
        now = dt.datetime.now(dt.UTC)
        rows: list[dict[str, Any]] = []
        for i in range(posts):
            at = start + dt.timedelta(seconds=(i * 7919) % span)
            product = products[i % len(products)] if i % 7 else None
            rows.append({"channel_id": channels[i % len(channels)][0], "kind": "product_highlight" if product
                         else "free_text", "text": f"Promo #{i}", "status": "published", "published_at": at,
                         "scheduled_at": at, "product_id": product, "remote_id": f"r{i}", "attempts": 1,
                         "failures": 0, "idempotency_key": uuid.uuid4().hex, "created_by": "bench",
                         "created_at": now, "updated_at": now})
        with db.engine.begin() as conn:
            for k in range(0, len(rows), 5000):
                conn.execute(insert(Post), rows[k:k + 5000])
            published = conn.execute(select(Post.id, Post.channel_id, Post.published_at).order_by(Post.id)).all()
        counting = {cid for cid, platform in channels if platform in ("mastodon", "bluesky", "x")}
        metrics: list[dict[str, Any]] = []
        offsets = (dt.timedelta(hours=1), dt.timedelta(hours=24), dt.timedelta(days=7), dt.timedelta(days=30))
        for pid, cid, at in published:
            if cid not in counting:
                continue
            for r in range(reads):
                metrics.extend({"post_id": pid, "fetched_at": at + offsets[r], "name": n, "platform_name": n,
                                "value": (pid * (3 + k) + r * 11) % (40 if n != "views" else 5000)}
                               for k, n in enumerate(COUNTERS))
        with db.engine.begin() as conn:
            for k in range(0, len(metrics), 20000):
                conn.execute(insert(Metric), metrics[k:k + 20000])
            conn.exec_driver_sql("ANALYZE")
            count = conn.execute(select(func.count()).select_from(Metric)).scalar_one()
        token = user_token(db, "viewer")
    finally:
        db.dispose()
    return token, f"{posts:,} posts, {count:,} counter rows in {time.perf_counter() - t0:.1f} s"


@dataclass
class Options:
    posts: int = 10_000
    channels: int = 10
    umkm: int = 200
    reads: int = 3
    runs: int = 9


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` and its threads so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(o: Options) -> tuple[str, dict[str, tuple[float, float]]]:
    """Fill a fresh database and time each address; (what was filled, address → (median ms of a
    round trip, the server's CPU ms per request)). CPU time barely depends on what else the
    shared machine runs; round trips do."""
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        env = channel_env(o.channels, tmp)
        token, filled = fill(env, o.posts, o.umkm, o.reads)
        month = f"{MONTH:%Y-%m}"
        period = f"since={MONTH}&until={MONTH + dt.timedelta(days=30)}"
        bearer = {"Authorization": f"Bearer {token}"}
        started: list[subprocess.Popen[bytes]] = []
        with serving(["web"], {**os.environ, **env, "PYTHONPATH": str(ROOT)}, tmp, free_port(), started) as url, \
                httpx.Client(base_url=url, trust_env=False, timeout=120) as page, \
                httpx.Client(base_url=url, trust_env=False, timeout=120, headers=bearer) as api:
            log_in(page, "ana", PASSWORD)
            pid = started[0].pid

            def timed(fn: Callable[[], httpx.Response]) -> tuple[float, float]:
                before = cpu_seconds(pid)
                ms = timed_ms(fn, o.runs)
                return ms, 1000 * (cpu_seconds(pid) - before) / (o.runs + 1)  # the warm-up too

            return filled, {
                BASELINE: timed(lambda: api.get("/api/v1/status")),
                "/reports (by channel)": timed(lambda: page.get(f"/reports?{period}&by=channel")),
                "/reports (by hour)": timed(lambda: page.get(f"/reports?{period}&by=hour")),
                "/reports/monthly": timed(lambda: page.get(f"/reports/monthly?month={month}")),
                "/reports/monthly CSV": timed(lambda: page.get(f"/reports/monthly?month={month}&format=csv")),
                "/api/v1/reports/monthly": timed(lambda: api.get(f"/api/v1/reports/monthly?month={month}"))}


def report(filled: str, times: dict[str, tuple[float, float]]) -> str:
    base, base_cpu = times[BASELINE]
    lines = [f"filled: {filled}",
             f"{'address':<28} {'median ms':>10} {'× baseline':>11} {'server CPU ms':>14} {'× baseline':>11}"]
    lines += [f"{what:<28} {ms:>10.1f} {ms / base:>11.1f} {cpu:>14.1f} {cpu / max(base_cpu, 0.1):>11.1f}"
              for what, (ms, cpu) in times.items()]
    slow = [w for w, (ms, _cpu) in times.items() if w != BASELINE and ms > TARGET_MS]
    lines.append(f"over {TARGET_MS} ms: {', '.join(slow) if slow else 'none'}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--posts", type=int, default=Options.posts)
    ap.add_argument("--channels", type=int, default=Options.channels)
    ap.add_argument("--umkm", type=int, default=Options.umkm)
    ap.add_argument("--reads", type=int, default=Options.reads, choices=range(1, 5),
                    help="reads per post (5 counters each)")
    ap.add_argument("--runs", type=int, default=Options.runs)
    a = ap.parse_args(argv)
    print(report(*measure(Options(a.posts, a.channels, a.umkm, a.reads, a.runs))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
