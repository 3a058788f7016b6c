"""Wake-ups on PostgreSQL (storage/wakeup.py): sent with the transaction that makes a post due,
delivered only when it commits, and still received after the LISTEN connection was lost."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from sqlalchemy import text

from scheduler.models import Channel, PostStatus, utcnow
from scheduler.storage import posts as store
from scheduler.storage.db import Database
from scheduler.storage.wakeup import DueListener, notify_due

pytestmark = pytest.mark.postgres


async def _wait(condition, timeout: float) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_a_committed_due_post_wakes_the_listener_and_a_rolled_back_one_does_not(pg_db: Database) -> None:
    wakes: list[float] = []
    listener = DueListener(pg_db.engine, asyncio.get_running_loop(), lambda: wakes.append(0.0))
    listener.start()
    try:
        await asyncio.to_thread(listener.listening.wait, 10)
        with pg_db.session() as session:
            channel = Channel(name="c", platform="outbox", source="env", options={})
            session.add(channel)
        await _wait(lambda: len(wakes) == 1, 5)  # an active channel wakes too (a resumed one may have posts)
        wakes.clear()
        with pytest.raises(RuntimeError), pg_db.session() as session:
            store.create_post(session, channel=session.merge(channel), kind="free_text", text="no",
                              status=PostStatus.SCHEDULED, scheduled_at=utcnow(), actor="test")
            raise RuntimeError("rolled back")
        with pg_db.session() as session:  # a draft is not due: nothing to wake for
            store.create_post(session, channel=session.merge(channel), kind="free_text", text="draft",
                              status=PostStatus.DRAFT, scheduled_at=None, actor="test")
        await asyncio.sleep(0.3)
        assert wakes == []
        with pg_db.session() as session:
            store.create_post(session, channel=session.merge(channel), kind="free_text", text="now",
                              status=PostStatus.SCHEDULED, scheduled_at=utcnow() + dt.timedelta(seconds=1),
                              actor="test")
        await _wait(lambda: len(wakes) == 1, 5)
    finally:
        await asyncio.to_thread(listener.stop)


async def test_the_listener_reconnects_after_losing_its_connection(pg_db: Database) -> None:
    wakes: list[float] = []
    listener = DueListener(pg_db.engine, asyncio.get_running_loop(), lambda: wakes.append(0.0), max_backoff=0.5)
    listener.start()
    try:
        await asyncio.to_thread(listener.listening.wait, 10)
        with pg_db.engine.begin() as conn:  # the server drops the LISTEN connection (a restart, a proxy)
            pid = listener._conn.info.backend_pid
            assert conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar()
        # Back: it wakes once on reconnecting (a notification sent meanwhile is lost) ...
        await _wait(lambda: len(wakes) >= 1, 10)
        before = len(wakes)
        # ... and hears the next one.
        with pg_db.engine.begin() as conn:
            notify_due(conn)
        await _wait(lambda: len(wakes) > before, 5)
    finally:
        await asyncio.to_thread(listener.stop)
