"""``posts.due_at`` (migration 0008) is ``coalesce(next_attempt_at, scheduled_at)`` after every
kind of write — people's actions, the dispatcher's bulk claim and finish, a bulk insert — on
SQLite and PostgreSQL; the claim and ``next_due`` read it; the migration backfills it and its
downgrade removes it from a database with rows."""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import time_machine
from alembic import command
from alembic.config import Config
from cryptography.fernet import Fernet
from sqlalchemy import insert, inspect, select, text, update

from scheduler.actions import Actor
from scheduler.actions import posts as post_actions
from scheduler.errors import PromoError
from scheduler.models import Channel, Post, PostStatus
from scheduler.shipped import migrations_dir
from scheduler.storage import claims
from scheduler.storage import posts as post_store
from scheduler.storage.db import Database
from tests.unit.test_planner import NOW, World, env  # noqa: F401  (env: the fixture)

S = PostStatus
OP = Actor("op")


@pytest.fixture
def world(env: dict[str, str], db_url: str, tmp_path: Path) -> Iterator[World]:  # noqa: F811
    settings = {**env, "PROMO_DATABASE_URL": db_url, "PROMO_SECRET_KEY": Fernet.generate_key().decode()}
    with time_machine.travel(NOW, tick=False):
        w = World(settings, tmp_path)
        yield w
        w.db.dispose()


def stale_due_at(db: Database) -> list[tuple[int, str, object, object]]:
    """Posts whose stored due_at is not coalesce(next_attempt_at, scheduled_at), as read back."""
    with db.session() as s:
        return [(p.id, p.status, p.due_at, p.next_attempt_at or p.scheduled_at)
                for p in s.scalars(select(Post).order_by(Post.id))
                if p.due_at != (p.next_attempt_at or p.scheduled_at)]


def _finish(w: World, to: PostStatus, later: dt.timedelta) -> Callable[[int], object]:
    """Claim what is due (Core, in bulk) and record ``to`` for each (``retry_wait`` at ``later``)."""
    def run(_post_id: int) -> object:
        now = dt.datetime.now(dt.UTC) + dt.timedelta(days=30)  # everything waiting is due by then
        got = claims.claim_due(w.db.engine, worker="w1", now=now, lease=dt.timedelta(minutes=5))
        return claims.finish_attempts(w.db.engine, "w1", [
            claims.Outcome(post_id=c.id, history_id=c.history_id, to=to, outcome="x", finished_at=now,
                           next_attempt_at=now + later if to == S.RETRY_WAIT else None, failures=c.failures + 1)
            for c in got])
    return run


def _transition(w: World, to: PostStatus, **changes: object) -> Callable[[int], object]:
    def run(post_id: int) -> object:
        with w.db.session() as s:
            return post_store.transition(s, post_store.get_post(s, post_id), to, actor="op", reason="test", **changes)
    return run


def _bulk_reschedule(w: World) -> Callable[[int], object]:
    def run(post_id: int) -> object:  # a Core UPDATE, as a bulk job would write it
        with w.db.engine.begin() as conn:
            return conn.execute(update(Post).where(Post.id == post_id)
                                .values(scheduled_at=NOW + dt.timedelta(hours=post_id)))
    return run


def test_due_at_follows_every_kind_of_write_on_both_engines(world: World) -> None:
    w = world
    made = [*w.new("outbox,x_kota,tg", text="Promo", when="2023-10-25 19:00", status=S.SCHEDULED),
            *w.new("outbox,x_kota", text="Promo lagi", when="2023-10-26 19:00", status=S.SCHEDULED),
            *w.new(text="Draf", draft=True, status=S.DRAFT),
            *w.new(text="Minta setuju", when="2023-10-26 09:00", status=S.PENDING_APPROVAL)]
    posts = [p.id for p in made]
    soon = NOW + dt.timedelta(days=2)

    def new_posts(_post_id: int) -> object:  # the planner's insert, for the walk to keep going
        made = [*w.new("outbox,tg", text="Baru", when="2023-10-27 19:00", status=S.PENDING_APPROVAL),
                *w.new("x_kota", text="Baru juga", when="2023-10-27 20:00", status=S.SCHEDULED),
                *w.new(text="Draf baru", draft=True, status=S.DRAFT)]
        posts.extend(p.id for p in made)
        return made

    def retry_wait_by_hand(post_id: int) -> object:  # the ORM path (a lease judged after a crash)
        _transition(w, S.PUBLISHING)(post_id)
        return _transition(w, S.RETRY_WAIT, next_attempt_at=soon)(post_id)

    steps: dict[str, Callable[[int], object]] = {
        "new posts": new_posts,
        "approve": lambda p: post_actions.approve(w.ctx, OP, [p]),
        "reject": lambda p: post_actions.reject(w.ctx, OP, [p], "ubah"),
        "submit": lambda p: post_actions.submit(w.ctx, OP, [p]),
        "cancel": lambda p: post_actions.cancel(w.ctx, OP, [p]),
        "retry": lambda p: post_actions.retry(w.ctx, OP, [p]),
        "mark published": lambda p: post_actions.mark_published(w.ctx, OP, [p]),
        "reschedule": lambda p: post_actions.reschedule(w.ctx, OP, p, "2023-10-27 10:00"),
        "reschedule now": lambda p: post_actions.reschedule(w.ctx, OP, p, None, asap=True),
        "edit text": lambda p: post_actions.edit_text(w.ctx, OP, p, f"Teks baru {p}"),
        "claim, retry later": _finish(w, S.RETRY_WAIT, dt.timedelta(hours=3)),
        "claim, channel paused": _finish(w, S.SCHEDULED, dt.timedelta(0)),
        "claim, unknown outcome": _finish(w, S.NEEDS_REVIEW, dt.timedelta(0)),
        "claim, failed": _finish(w, S.FAILED, dt.timedelta(0)),
        "expire": _transition(w, S.EXPIRED),
        "retry wait by hand": retry_wait_by_hand,
        "bulk reschedule": _bulk_reschedule(w),
    }
    rng = random.Random(20261129)
    seen: dict[str, int] = dict.fromkeys(steps, 0)
    for _ in range(300):
        name = rng.choice(list(steps))
        with w.db.session() as s:
            live = list(s.scalars(select(Post.id).where(Post.status.notin_([S.PUBLISHED.value, S.CANCELLED.value])).order_by(Post.id)))
        post_id = rng.choice(live or posts)
        try:
            steps[name](post_id)
        except PromoError:  # an arrow the post's status does not have: nothing written
            continue
        seen[name] += 1
        assert stale_due_at(w.db) == [], f"after {name} on post {post_id}"
    assert all(seen.values()), seen  # every kind of write happened at least once
    with w.db.session() as s:  # and the walk reached waiting states with a retry time
        assert s.scalar(select(Post.id).where(Post.next_attempt_at.is_not(None))) is not None


def _channel(db: Database, name: str) -> int:
    with db.engine.begin() as conn:
        return int(conn.execute(insert(Channel).values(name=name, platform="outbox", source="env", options={},
                                                       status="active").returning(Channel.id)).scalar_one())


def _add(db: Database, channel_id: int, status: str, scheduled_at: dt.datetime,
         next_attempt_at: dt.datetime | None = None) -> int:
    with db.engine.begin() as conn:
        return int(conn.execute(insert(Post).values(
            channel_id=channel_id, kind="free_text", text="x", status=status, scheduled_at=scheduled_at,
            next_attempt_at=next_attempt_at, idempotency_key=uuid.uuid4().hex, attempts=0, failures=0,
        ).returning(Post.id)).scalar_one())


def test_the_claim_and_next_due_go_by_the_retry_time_when_there_is_one(any_db: Database) -> None:
    db, now = any_db, NOW
    a, b, c, d = (_channel(db, n) for n in "abcd")
    early_but_retrying = _add(db, a, "retry_wait", now - dt.timedelta(hours=2), next_attempt_at=now + dt.timedelta(hours=1))
    late_but_retry_due = _add(db, b, "retry_wait", now + dt.timedelta(hours=5), next_attempt_at=now - dt.timedelta(minutes=1))
    due = _add(db, c, "scheduled", now - dt.timedelta(seconds=1))
    _add(db, d, "scheduled", now + dt.timedelta(minutes=30))
    _add(db, d, "draft", now - dt.timedelta(days=1))  # not waiting: never due
    _add(db, d, "published", now - dt.timedelta(days=1))
    assert claims.next_due(db.engine, now) == now - dt.timedelta(minutes=1)
    got = claims.claim_due(db.engine, worker="w", now=now, lease=dt.timedelta(minutes=5))
    assert sorted(x.id for x in got) == sorted([late_but_retry_due, due])
    assert early_but_retrying not in {x.id for x in got}
    # what is left: channel d at +30 min, channel a's retry at +1 h; a rate limit on d moves it to +2 h
    assert claims.next_due(db.engine, now) == now + dt.timedelta(minutes=30)
    with db.engine.begin() as conn:
        conn.execute(update(Channel).where(Channel.id == d).values(rate_limited_until=now + dt.timedelta(hours=2)))
    assert claims.next_due(db.engine, now) == now + dt.timedelta(hours=1)
    with db.engine.begin() as conn:
        conn.execute(update(Channel).where(Channel.id == a).values(status="paused"))
    assert claims.next_due(db.engine, now) == now + dt.timedelta(hours=2)


def _alembic(db: Database, fn: Callable[..., None], rev: str) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        fn(cfg, rev)


def test_migration_0008_backfills_due_at_and_its_downgrade_removes_it(db_url: str, tmp_path: Path) -> None:
    db = Database(db_url)
    try:
        _alembic(db, command.upgrade, "0007")
        ch = _channel(db, "kota")
        plain = _add(db, ch, "scheduled", NOW)
        retrying = _add(db, ch, "retry_wait", NOW - dt.timedelta(hours=1), next_attempt_at=NOW + dt.timedelta(hours=1))
        _alembic(db, command.upgrade, "0008")
        with db.engine.connect() as conn:
            rows = dict(conn.execute(select(Post.id, Post.due_at).order_by(Post.id)).all())  # type: ignore[arg-type]
            indexes = {i["name"] for i in inspect(conn).get_indexes("posts")}
        assert rows == {plain: NOW, retrying: NOW + dt.timedelta(hours=1)}
        assert {"ix_posts_claim_due", "ix_posts_due_at"} <= indexes and "ix_posts_due" not in indexes
        # the column follows later writes too
        with db.engine.begin() as conn:
            conn.execute(update(Post).where(Post.id == retrying).values(next_attempt_at=None, status="scheduled"))
            assert conn.execute(select(Post.due_at).where(Post.id == retrying)).scalar_one() == \
                NOW - dt.timedelta(hours=1)
        _alembic(db, command.downgrade, "0007")
        with db.engine.connect() as conn:
            columns = {c["name"] for c in inspect(conn).get_columns("posts")}
            indexes = {i["name"] for i in inspect(conn).get_indexes("posts")}
            count = conn.execute(text("SELECT count(*) FROM posts")).scalar_one()
        assert "due_at" not in columns and "ix_posts_due" in indexes and "ix_posts_claim_due" not in indexes
        assert count == 2
        _alembic(db, command.upgrade, "head")
        assert stale_due_at(db) == []
    finally:
        db.dispose()
