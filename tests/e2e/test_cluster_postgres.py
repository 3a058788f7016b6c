"""Several `promo serve` processes on one PostgreSQL database (issue 12: scale out).

Every test here runs real `promo` processes against the local PostgreSQL server and the fake
platform (tests/fakeplatform.py); it skips without the server (fails under
TEST_REQUIRE_POSTGRES=1).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from scheduler.models import AuditEntry, Highlight, HistoryEntry, Post
from scheduler.storage.db import Database
from tests.cluster import process_env, promo, serve
from tests.fakeplatform import FakePlatform
from tests.helpers import wait_for
from tests.integration.test_highlight import catalogue_rows, write_csv

pytestmark = pytest.mark.postgres
WITA = ZoneInfo("Asia/Makassar")


def test_a_post_queued_now_by_another_process_is_published_without_waiting_for_the_poll(
        pg_url: str, fake_platform: FakePlatform, promo_env, tmp_path: Path) -> None:
    env = process_env(promo_env({"w": {"PLATFORM": "webhook", "URL": fake_platform.url("w"), "IDEMPOTENT": "true"}},
                                DATABASE_URL=pg_url, POLL_SECONDS="30", LOG_LEVEL="INFO"), tmp_path)
    log_path = tmp_path / "serve.log"
    with open(log_path, "wb") as log:
        proc = serve(env, tmp_path, log)
        try:
            wait_for(lambda: "wake-ups: listening" in log_path.read_text(), 30, "the service to LISTEN")
            latencies = []
            for n in range(3):
                out = promo(env, tmp_path, "post", "new", "--text", f"flash sale {n}", "--channel", "w", "--now")
                assert out.returncode == 0, out.stdout + out.stderr
                assert fake_platform.wait_for(lambda f, n=n: len(f.requests_for("w")) > n, 5), \
                    f"not published within 5 s although polling is every 30 s:\n{log_path.read_text()}"
                db = Database(pg_url)
                with db.session() as session:
                    post = session.scalars(select(Post).where(Post.text == f"flash sale {n}")).one()
                db.dispose()
                arrived = dt.datetime.fromtimestamp(fake_platform.requests_for("w")[n].received_at, dt.UTC)
                latencies.append((arrived - post.created_at).total_seconds())
        finally:
            proc.terminate()
            proc.wait(30)
    # Created → on the platform, through the commit, NOTIFY, the dispatch tick and the request.
    print("\nwake-up latency (post created in another process → request at the platform): "
          + ", ".join(f"{s * 1000:.0f} ms" for s in latencies))
    assert max(latencies) < 5


def test_three_processes_make_each_recurring_post_once(pg_url: str, fake_platform: FakePlatform, promo_env,
                                                       tmp_path: Path) -> None:
    """The daily highlight and event planning run in every process, at the same moments (all three
    start together): one highlight per channel and slot, one post per event offset and channel."""
    channels = {name: {"PLATFORM": "webhook", "URL": fake_platform.url(name), "IDEMPOTENT": "true"}
                for name in ("kota", "dua")}
    base = dict(DATABASE_URL=pg_url, TIMEZONE="Asia/Makassar", HIGHLIGHT_CHANNELS="kota,dua", HIGHLIGHT_TIME="00:00",
                MAX_LATENESS_DAILY_HIGHLIGHT="25h", HIGHLIGHT_DAYS="mon,tue,wed,thu,fri,sat,sun", POLL_SECONDS="0.5",
                LOG_LEVEL="DEBUG", EVENT_ONGOING_POSTS="true")
    # The records exist before the event channels are set: the services plan the events, not the import.
    setup = process_env(promo_env(channels, **base), tmp_path)
    umkm, products = catalogue_rows()
    start = (dt.datetime.now(WITA) + dt.timedelta(days=5)).replace(hour=19, minute=0, second=0, microsecond=0)
    events = [{"id": f"e{i}", "name": f"Pameran {i}", "description": "Pameran produk kreatif.", "venue": "Atrium",
               "city": "Balikpapan", "starts_at": f"{start + dt.timedelta(days=i):%Y-%m-%d %H:%M}",
               "ends_at": f"{start + dt.timedelta(days=i + 2):%Y-%m-%d %H:%M}", "url": "", "image": "", "tags": "",
               "status": "scheduled"} for i in range(3)]
    for kind, rows in (("umkm", umkm), ("products", products), ("events", events)):
        out = promo(setup, tmp_path, "import", kind, str(write_csv(tmp_path / f"{kind}.csv", rows)))
        assert out.returncode == 0, out.stdout + out.stderr
    env = process_env(promo_env(channels, EVENT_CHANNELS="kota,dua", **base), tmp_path)
    logs = [tmp_path / f"serve{i}.log" for i in range(3)]
    handles = [open(path, "wb") for path in logs]  # noqa: SIM115 - closed below
    procs = [serve(env, tmp_path, h) for h in handles]
    try:
        wait_for(lambda: all("daily highlight checked" in p.read_text() and "event promotion checked" in p.read_text()
                             for p in logs), 60, "the highlight and event jobs in all three processes")
        assert fake_platform.wait_for(lambda f: len(f.requests_for("kota")) + len(f.requests_for("dua")) >= 2, 30)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(30)
        for h in handles:
            h.close()
    db = Database(pg_url)
    with db.session() as session:
        highlights = session.scalars(select(Highlight)).all()
        posts = session.scalars(select(Post)).all()
        skips = session.scalars(select(AuditEntry).where(AuditEntry.action == "event.post_skipped")).all()
    db.dispose()
    assert sorted((h.channel_id, h.slot, h.status) for h in highlights) == sorted(
        {(h.channel_id, 0, "created") for h in highlights}), "one highlight per channel"
    assert len(highlights) == 2
    keys = Counter(p.dedupe_key for p in posts)
    assert set(keys.values()) == {1}, keys.most_common(3)
    event_posts = [p for p in posts if p.event_id is not None]
    # Per event: announcement, reminder, day-of and two "still on today" posts, on each of two channels,
    # each made once, or (an announcement already past) recorded as skipped once.
    assert len({(p.event_id, p.kind, p.scheduled_at, p.channel_id) for p in event_posts}) == len(event_posts)
    assert len({s.detail["key"] for s in skips}) == len(skips), "a skip recorded once, not once per process"
    assert len(event_posts) + len(skips) == 3 * 5 * 2, (sorted(keys), [s.detail for s in skips])
    kind_of = {p.idempotency_key: p.kind for p in posts}
    for name in ("kota", "dua"):
        sent = Counter(kind_of[r.key] for r in fake_platform.requests_for(name) if r.key)
        assert sent["daily_highlight"] == 1, ("the day's highlight published once per channel", sent)
        assert len(fake_platform.deliveries_for(name)) == len(fake_platform.requests_for(name)), "each post once"


def test_a_retry_after_seen_by_one_process_holds_for_every_process(pg_url: str, fake_platform: FakePlatform,
                                                                   promo_env, tmp_path: Path) -> None:
    """The 429 answer's Retry-After is stored on the channel: no process sends to it before then."""
    fake_platform.configure("rl", retry_after=3.0, latency=0.05)
    fake_platform.script("rl", "429")
    channels = {"rl": {"PLATFORM": "webhook", "URL": fake_platform.url("rl"), "IDEMPOTENT": "true"}}
    env = process_env(promo_env(channels, DATABASE_URL=pg_url, POLL_SECONDS="0.2", RETRY_BASE_SECONDS="0.1",
                                LOG_LEVEL="INFO"), tmp_path)
    logs = [tmp_path / f"serve{i}.log" for i in range(2)]
    handles = [open(path, "wb") for path in logs]  # noqa: SIM115 - closed below
    procs = [serve(env, tmp_path, h) for h in handles]
    try:
        wait_for(lambda: all("wake-ups: listening" in p.read_text() for p in logs), 30, "both services")
        for n in range(6):
            out = promo(env, tmp_path, "post", "new", "--text", f"promo {n}", "--channel", "rl", "--now")
            assert out.returncode == 0, out.stdout + out.stderr
        assert fake_platform.wait_for(lambda f: len(f.deliveries_for("rl")) == 6, 60), \
            "\n".join(p.read_text() for p in logs)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(30)
        for h in handles:
            h.close()
    requests = fake_platform.requests_for("rl")
    limited = requests[0]
    assert limited.status == 429 and limited.answered_at is not None
    later = [r.received_at - limited.answered_at for r in requests[1:]]
    assert min(later) >= 3.0 - 0.05, f"a request {min(later):.2f} s after a 3 s Retry-After"
    db = Database(pg_url)
    with db.session() as session:
        actors = {h.actor for h in session.scalars(select(HistoryEntry).where(HistoryEntry.action == "attempt"))}
    db.dispose()
    print(f"\nfirst request after the 429: {min(later):.2f} s later (Retry-After 3 s); attempts by {len(actors)} "
          "processes")
