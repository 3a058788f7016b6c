"""A person's change and a dispatcher's claim on the same post, on PostgreSQL: the action holds
the post's row, so it sees the claim's status and refuses, instead of editing a post in flight."""

from __future__ import annotations

import concurrent.futures
import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import text

from scheduler.actions import Actor, Context
from scheduler.actions import posts as post_actions
from scheduler.config import load_settings
from scheduler.errors import StateError
from scheduler.models import PostStatus
from scheduler.storage import channels as channel_store
from scheduler.storage import posts as post_store
from scheduler.storage.db import Database
from tests.helpers import wait_for

pytestmark = pytest.mark.postgres


def test_an_edit_waits_for_a_claim_in_progress_and_then_refuses(pg_db: Database, tmp_path: Path) -> None:
    settings = load_settings({"PROMO_CHANNELS": "outbox", "PROMO_CHANNEL_OUTBOX_PATH": str(tmp_path / "o.jsonl")})
    with pg_db.session() as s:
        row = channel_store.sync_configured(s, settings)["outbox"]
        post_id = post_store.create_post(s, channel=row, kind="free_text", text="Versi satu",
                                         status=PostStatus.SCHEDULED, actor="rina",
                                         scheduled_at=dt.datetime.now(dt.UTC)).id
    claimer = pg_db.engine.connect()  # a dispatcher in the middle of claiming the post
    pool = concurrent.futures.ThreadPoolExecutor(1)
    try:
        claimer.execute(text("SELECT id FROM posts WHERE id = :id FOR UPDATE"), {"id": post_id})
        claimer.execute(text("UPDATE posts SET status = 'publishing' WHERE id = :id"), {"id": post_id})
        edit = pool.submit(post_actions.edit_text, Context(settings, pg_db), Actor("rina"), post_id, "Versi dua")

        def edit_is_waiting_for_the_row() -> bool:
            with pg_db.engine.connect() as probe:
                return bool(probe.execute(text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND datname = current_database()")).scalar())

        wait_for(edit_is_waiting_for_the_row, 20, "the edit to wait for the claimed row")
        claimer.commit()
        with pytest.raises(StateError, match="publishing; only draft, pending_approval or scheduled"):
            edit.result(timeout=20)
    finally:
        claimer.rollback()
        claimer.close()
        pool.shutdown()
    with pg_db.session() as s:
        post = post_store.get_post(s, post_id)
        assert (post.status, post.text) == ("publishing", "Versi satu")
