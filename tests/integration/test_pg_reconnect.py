"""PostgreSQL: the server ends the dispatcher's database sessions (a restart, an administrator's
pg_terminate_backend). Pooled connections are not pinged at every checkout, only after they sat
idle; a connection killed since its last use fails its statement, and the dispatcher runs that
transaction again on a fresh connection: nothing lost, nothing sent twice."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, event, text

from scheduler.config import load_settings
from scheduler.dispatch import Dispatcher
from scheduler.models import Channel, PostStatus
from scheduler.storage import channels as channel_store
from scheduler.storage import db as db_module
from scheduler.storage import posts as post_store
from scheduler.storage.db import Database
from tests.conftest import PG_URL

pytestmark = pytest.mark.postgres
CHANNELS = ("a", "b", "c")


class Backends:
    """The server process ids of every connection the pool opened, and a way to end them."""

    def __init__(self, db: Database):
        self.pids: list[int] = []
        self.admin = create_engine(PG_URL)

        @event.listens_for(db.engine, "connect")
        def _remember(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
            self.pids.append(dbapi_conn.info.backend_pid)  # psycopg knows it: no query, no transaction

    def terminate(self) -> int:
        """End the pool's sessions on the server, as a restart would; wait until they are gone."""
        with self.admin.begin() as conn:
            ended = sum(bool(conn.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}))
                        for pid in self.pids)
        for _ in range(500):
            with self.admin.connect() as conn:
                alive = conn.scalar(text("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(:pids)"),
                                    {"pids": self.pids})
            if not alive:
                return ended
        raise AssertionError("the terminated sessions are still there")


@pytest.fixture
def setup(promo_env, pg_url, fake_platform) -> Iterator[tuple[Database, Backends, dict[str, int], object, Database]]:
    """The dispatcher's Database (its pool's sessions get killed) and the channels' ids; the test
    queues and reads posts through ``other`` (a separate pool, like the web app's process)."""
    env = {**promo_env({n: {"PLATFORM": "webhook", "URL": fake_platform.url(n)} for n in CHANNELS}),
           "PROMO_DATABASE_URL": pg_url}
    settings = load_settings(env)
    db = Database(pg_url)
    backends = Backends(db)
    with db.session() as session:
        ids = {n: c.id for n, c in channel_store.sync_configured(session, settings).items()}
    other = Database(pg_url)
    yield db, backends, ids, settings, other
    other.dispose()
    db.dispose()
    backends.admin.dispose()


def queue(db: Database, ids: dict[str, int], text_: str) -> list[int]:
    with db.session() as session:
        return [post_store.create_post(session, channel=session.get(Channel, ids[n]), kind="free_text",
                                       text=f"{text_} {n}", status=PostStatus.SCHEDULED, actor="test",
                                       scheduled_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)).id
                for n in CHANNELS]


def statuses(db: Database, post_ids: list[int]) -> list[str]:
    with db.session() as session:
        return [post_store.get_post(session, p).status for p in post_ids]


async def test_the_dispatcher_recovers_on_the_next_tick_after_its_sessions_are_killed(
        setup, fake_platform, wait_until) -> None:
    db, backends, ids, settings, other = setup
    dispatcher = Dispatcher(settings, db)
    dispatcher.start()
    first = queue(other, ids, "first")
    await wait_until(lambda: statuses(other, first) == ["published"] * 3, 20, tick=dispatcher.tick)
    assert backends.terminate() >= 1  # the pool's connections, used a moment ago: no idle ping saves them

    second = queue(other, ids, "second")
    assert await dispatcher.tick() == 3  # the claim's first try fails on a dead connection; the retry claims
    backends.terminate()  # and again while the three are in flight: their results are written all the same
    await wait_until(lambda: statuses(other, second) == ["published"] * 3, 20, tick=dispatcher.tick)
    await dispatcher.drain()

    for name in CHANNELS:
        keys = [r.key for r in fake_platform.requests_for(name)]
        assert len(keys) == 2 and len(set(keys)) == 2  # each post sent once
    with other.session() as session:
        rows = session.execute(text("SELECT post_id, outcome, finished_at IS NOT NULL FROM history "
                                    "WHERE action = 'attempt' ORDER BY post_id")).all()
    assert [(r[0], r[1], r[2]) for r in rows] == [(p, "published", True) for p in first + second]


def test_a_connection_killed_while_idle_is_replaced_before_use(setup, monkeypatch) -> None:
    db, backends, ids, _settings, _other = setup
    queue(db, ids, "idle")
    monkeypatch.setattr(db_module, "IDLE_PING_SECONDS", 0.0)  # every pooled connection counts as idle
    assert backends.terminate() >= 1
    with db.session() as session:  # no retry here: the checkout's ping found the dead one
        assert session.scalar(text("SELECT count(*) FROM posts")) == 3


def test_without_the_idle_ping_a_killed_connection_fails_its_first_statement(setup) -> None:
    """What the dispatcher's retry is for (and that the test above can fail)."""
    db, backends, ids, _settings, _other = setup
    queue(db, ids, "recent")
    assert backends.terminate() >= 1
    with pytest.raises(Exception, match="terminat|closed|connection"), db.session() as session:
        session.scalar(text("SELECT count(*) FROM posts"))
    with db.session() as session:  # the pool was invalidated: fresh connections from here on
        assert session.scalar(text("SELECT count(*) FROM posts")) == 3


async def test_a_dashboard_read_is_answered_after_the_servers_sessions_end(setup) -> None:
    """The web app's reads (every page and API answer reads through ``WebApp.read``) run once more
    on fresh connections when PostgreSQL ended the pool's sessions, instead of answering 500."""
    from sqlalchemy import func, select

    from scheduler.web.webapp import WebApp

    db, backends, _ids, settings, _other = setup
    app = WebApp(settings, db)

    def channels(session) -> int:  # type: ignore[no-untyped-def]
        return int(session.scalar(select(func.count()).select_from(Channel)))

    assert await app.read(channels) == 3
    assert backends.terminate() >= 1  # used a moment ago: the idle ping does not look at it
    assert await app.read(channels) == 3
