"""`EXPLAIN ANALYZE` of the claim on PostgreSQL with many due posts (default 20,000).

A throw-away schema of ``--database-url`` gets ``--channels`` webhook channels and
``--posts`` posts spread over them, all due, each with its history row, then ``ANALYZE``.
The two statements of a claim (:func:`scheduler.storage.claims.claim_due`) are explained in
one transaction that is rolled back: locking the free channels (``FOR NO KEY UPDATE SKIP
LOCKED``) and taking the earliest due post of each.

    .venv/bin/python -m bench.claim_explain --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import datetime as dt
import uuid
from typing import Any

from sqlalchemy import create_engine, event, insert, select, text

ROOT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def explain(conn: Any, statement: Any, params: dict[str, Any]) -> str:
    """The plan of ``statement`` run with ``params`` (really run: ANALYZE executes it)."""

    def prefix(_conn: Any, _cursor: Any, sql: str, parameters: Any, _context: Any, _many: bool) -> tuple[str, Any]:
        return "EXPLAIN (ANALYZE, BUFFERS) " + sql, parameters

    event.listen(conn, "before_cursor_execute", prefix, retval=True)
    try:
        result = conn.execute(statement, params)
        rows = result.cursor.fetchall()
    finally:
        event.remove(conn, "before_cursor_execute", prefix)
    return "\n".join(r[0] for r in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="EXPLAIN ANALYZE of the claim with many due posts (PostgreSQL).")
    parser.add_argument("--database-url", default=ROOT_URL, help=f"PostgreSQL server (default {ROOT_URL})")
    parser.add_argument("--posts", type=int, default=20000, help="due posts (20000)")
    parser.add_argument("--channels", type=int, default=2570, help="channels they are spread over (2570)")
    parser.add_argument("--limit", type=int, default=256, help="posts per claim (the dispatcher's CLAIM_BATCH)")
    args = parser.parse_args(argv)

    from scheduler.models import Channel, HistoryEntry, Post, utcnow
    from scheduler.storage import claims as store
    from scheduler.storage.db import Database

    schema = f"explain_{uuid.uuid4().hex[:8]}"
    admin = create_engine(args.database_url)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        db = Database(f"{args.database_url}?options=-csearch_path%3D{schema}")
        db.upgrade()
        now = utcnow()
        with db.engine.begin() as conn:
            conn.execute(insert(Channel.__table__), [
                dict(name=f"c{i}", platform="webhook", source="db", options={}, status="active", created_at=now,
                     updated_at=now) for i in range(args.channels)])
            ids = list(conn.execute(select(Channel.id)).scalars())
            conn.execute(insert(Post.__table__), [
                dict(channel_id=ids[i % len(ids)], kind="daily_highlight", text=f"post {i}", status="scheduled",
                     scheduled_at=now - dt.timedelta(seconds=args.posts - i), idempotency_key=uuid.uuid4().hex,
                     created_by="bench", created_at=now, updated_at=now, attempts=0, failures=0)
                for i in range(args.posts)])
            rows = conn.execute(select(Post.id, Post.channel_id)).all()
            conn.execute(insert(HistoryEntry.__table__), [
                dict(post_id=p, channel_id=c, action="transition", started_at=now, finished_at=now,
                     to_status="scheduled", outcome="scheduled", actor="bench") for p, c in rows])
            conn.exec_driver_sql("ANALYZE")
        params: dict[str, Any] = {"c_now": utcnow(), "c_limit": args.limit, "c_worker": "bench",
                                  "c_expires": utcnow() + dt.timedelta(seconds=60)}
        with db.engine.connect() as conn, conn.begin() as tx:
            print(f"{args.posts} due posts over {args.channels} channels, claim limit {args.limit}\n")
            print("-- 1. lock free channels with a due post (FOR NO KEY UPDATE SKIP LOCKED)")
            print(explain(conn, store._LOCK_CHANNELS, params))
            channels = list(conn.execute(store._LOCK_CHANNELS, params).scalars())
            print(f"\n-- 2. take the earliest due post of each of the {len(channels)} locked channels")
            print(explain(conn, store._CLAIM_LOCKED, {**params, "c_channels": channels}))
            tx.rollback()
        db.dispose()
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
