"""Several `promo serve` processes on one PostgreSQL database (issue 12: scale out).

Every test here runs real `promo` processes against the local PostgreSQL server and the fake
platform (tests/fakeplatform.py); it skips without the server (fails under
PROMO_REQUIRE_POSTGRES=1).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import select

from scheduler.models import Post
from scheduler.storage.db import Database
from tests.cluster import process_env, promo, serve
from tests.fakeplatform import FakePlatform
from tests.helpers import wait_for

pytestmark = pytest.mark.postgres


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
