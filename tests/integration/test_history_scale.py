"""History at scale: one query per page, keyset pages, streamed exports in flat memory, and
archiving old rows in small batches (on SQLite and on PostgreSQL)."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import json
import tracemalloc
from zoneinfo import ZoneInfo

from sqlalchemy import event, func, insert, select

from scheduler.models import Channel, HistoryEntry, Post, PostStatus
from scheduler.storage import posts as store
from scheduler.storage.db import Database
from scheduler.views import (
    HISTORY_FIELDS,
    HistoryFilter,
    archive_history,
    export_history,
    history_page,
    history_rows,
    iter_history,
)

UTC = ZoneInfo("UTC")
T0 = dt.datetime(2027, 1, 1, tzinfo=dt.UTC)


def seed(db: Database, n: int, *, channels: int = 2, posts: int = 10,
         status: PostStatus = PostStatus.PUBLISHED) -> None:
    """``n`` history rows, one a minute from T0, spread over ``posts`` posts of ``channels`` channels;
    every third row a transition, the rest attempts (outcome published or transient)."""
    with db.session() as s:
        chans = [Channel(name=f"c{i}", platform="outbox", source="env", options={}) for i in range(channels)]
        s.add_all(chans)
        s.flush()
        ids = []
        for i in range(posts):
            p = store.create_post(s, channel=chans[i % channels], kind="free_text", text=f"post {i}",
                                  status=PostStatus.SCHEDULED, scheduled_at=T0, actor="t")
            p.status, p.attempts = status.value, 3
            ids.append((p.id, p.channel_id))
        s.execute(HistoryEntry.__table__.delete())
    rows = []
    for k in range(n):
        post_id, channel_id = ids[k % posts]
        attempt = k % 3 != 0
        rows.append(dict(post_id=post_id, channel_id=channel_id, action="attempt" if attempt else "transition",
                         started_at=T0 + dt.timedelta(minutes=k), finished_at=T0 + dt.timedelta(minutes=k),
                         to_status="published" if attempt and k % 2 else "retry_wait",
                         outcome="published" if attempt and k % 2 else "transient", actor="t"))
        if len(rows) == 5000 or k == n - 1:
            with db.engine.begin() as conn:
                conn.execute(insert(HistoryEntry.__table__), rows)
            rows = []


def count_queries(db: Database) -> list[str]:
    seen: list[str] = []
    event.listen(db.engine, "before_cursor_execute", lambda *a: seen.append(a[2]))
    return seen


def test_pages_are_keyset_in_both_orders_and_one_query_each(any_db: Database) -> None:
    seed(any_db, 30)
    f = HistoryFilter(all=True)
    with any_db.read_session() as s:
        everything = [r["id"] for r in history_rows(s, f, UTC)]
        assert everything == sorted(everything) and len(everything) == 30
        queries = count_queries(any_db)
        first = history_page(s, f, UTC, limit=12)
        assert len(queries) == 1  # rows, channel and post in one statement (no query per row)
        second = history_page(s, f, UTC, after=first.next_after, limit=12)
        last = history_page(s, f, UTC, after=second.next_after, limit=12)
        newest = [r["id"] for r in first.rows + second.rows + last.rows]
        assert newest == everything[::-1] and last.next_after is None and len(last.rows) == 6
        assert first.next_after == first.rows[-1]["id"]
        up = history_page(s, f, UTC, limit=10, newest_first=False)
        up2 = history_page(s, f, UTC, after=up.next_after, limit=10, newest_first=False)
        assert [r["id"] for r in up.rows + up2.rows] == everything[:20]
        exact = history_page(s, f, UTC, limit=30)  # a page ending exactly at the end has no next page
        assert exact.next_after is None


def test_the_dashboards_history_page_and_csv_are_the_cli_rows_one_query_a_page(any_db: Database) -> None:
    from scheduler.web.planning import history_csv
    from scheduler.web.planning import history_page as web_page

    seed(any_db, 40, posts=12)
    f = HistoryFilter(all=True)
    with any_db.read_session() as s:
        queries = count_queries(any_db)
        rows, after = web_page(s, f, UTC, None, size=15)
        assert len(queries) == 1  # not a query per row's post and channel
        assert rows == history_page(s, f, UTC, limit=15).rows and after == rows[-1]["id"]
        everything = history_rows(s, f, UTC)
    exported = list(csv.DictReader(io.StringIO("".join(history_csv(any_db, f, UTC, chunk=7)).lstrip("\ufeff"))))
    assert [int(r["id"]) for r in exported] == [r["id"] for r in everything]
    assert [r["text"] for r in exported] == [r["text"] for r in everything]


def test_pages_apply_the_filters(any_db: Database) -> None:
    seed(any_db, 60)
    with any_db.read_session() as s:
        rows = history_page(s, HistoryFilter(channel="c1", statuses=("published",)), UTC, limit=100).rows
        assert rows and all(r["channel"] == "c1" and r["outcome"] == "published" for r in rows)
        assert all(r["action"] == "attempt" for r in rows)
        since = T0 + dt.timedelta(minutes=50)
        rows = history_page(s, HistoryFilter(all=True, since=since), UTC, limit=100).rows
        assert [r["started_at"] for r in rows][-1] == since.isoformat() and len(rows) == 10
        post_id = rows[0]["post_id"]
        rows = history_page(s, HistoryFilter(all=True, post_id=post_id), UTC, limit=100).rows
        assert len(rows) == 6 and {r["post_id"] for r in rows} == {post_id}
        assert rows[0]["text"].startswith("post ") and rows[0]["attempts"] == 3


def test_export_streams_csv_and_json_lines(any_db: Database) -> None:
    seed(any_db, 25)
    with any_db.read_session() as s:
        out = io.StringIO()
        assert export_history(s, HistoryFilter(all=True), UTC, out) == 25
        parsed = list(csv.DictReader(io.StringIO(out.getvalue().lstrip("\ufeff"))))
        assert [int(r["id"]) for r in parsed] == [r["id"] for r in history_rows(s, HistoryFilter(all=True), UTC)]
        assert list(parsed[0]) == list(HISTORY_FIELDS)
        out = io.StringIO()
        assert export_history(s, HistoryFilter(), UTC, out, fmt="jsonl", newest_first=True) == 16
        lines = [json.loads(line) for line in out.getvalue().splitlines()]
        assert [r["id"] for r in lines] == sorted((r["id"] for r in lines), reverse=True)
        assert all(r["action"] == "attempt" for r in lines)


class Sink(io.TextIOBase):
    """Counts what is written and keeps none of it."""

    def __init__(self) -> None:
        self.chars = 0

    def write(self, s: str) -> int:
        self.chars += len(s)
        return len(s)


def test_export_memory_stays_flat_however_many_rows(tmp_path) -> None:
    db = Database(f"sqlite:///{tmp_path}/big.db")
    db.upgrade()
    try:
        seed(db, 50_000)

        def peak(limit: int) -> int:
            with db.read_session() as s:
                rows = iter_history(s, HistoryFilter(all=True), UTC)
                sink = Sink()
                tracemalloc.start()
                n = 0
                for r in rows:
                    sink.write(json.dumps(r))
                    n += 1
                    if n == limit:
                        break
                _, top = tracemalloc.get_traced_memory()
                tracemalloc.stop()
                return top

        small, big = peak(5_000), peak(50_000)
        # Ten times the rows, about the same memory: nothing grows with the history's length.
        assert big < small * 1.5, (small, big)
        assert big < 20 * 1024 * 1024
    finally:
        db.dispose()


def test_archive_moves_old_rows_to_gzip_csv_in_batches_and_keeps_attempt_counts(any_db: Database,
                                                                             tmp_path) -> None:
    seed(any_db, 100, posts=10)
    with any_db.session() as s:  # one post is still waiting: its history stays (a retry reads it)
        live = s.scalars(select(Post).order_by(Post.id)).first()
        live.status = PostStatus.RETRY_WAIT.value
        live_id = live.id
    cutoff = T0 + dt.timedelta(minutes=60)
    commits: list[int] = []
    event.listen(any_db.engine, "commit", lambda conn: commits.append(1))
    path = tmp_path / "archive.csv.gz"
    with path.open("wb") as fh:
        moved = archive_history(any_db, cutoff, fh, batch=7)
    kept_live = 6  # rows 0, 10, 20, 30, 40, 50 belong to the live post
    assert moved == 60 - kept_live
    assert len(commits) >= moved // 7  # small transactions, not one long one
    with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == moved and list(rows[0]) == list(HISTORY_FIELDS)
    assert all(dt.datetime.fromisoformat(r["started_at"]) < cutoff for r in rows)
    assert all(int(r["post_id"]) != live_id for r in rows)
    with any_db.read_session() as s:
        left = s.scalars(select(HistoryEntry)).all()
        assert len(left) == 100 - moved
        assert all(h.started_at >= cutoff or h.post_id == live_id for h in left)
        assert set(s.scalars(select(Post.attempts))) == {3}  # counts live on the post, not in history
        assert s.scalar(select(func.count()).select_from(Post)) == 10
