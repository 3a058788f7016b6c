"""The metrics job over time (time-machine): each published post's counters are read at 1 h, 24 h,
7 d and 30 d after publishing and at no other time; drafts, failed posts and platforms without
counters are never asked; a deleted post is recorded as gone and not asked again; an auth error
pauses reading (not publishing); a rate limit makes reading wait. Both SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any

import httpx
import pytest
import time_machine
from sqlalchemy import select

from scheduler.config import Settings, load_settings
from scheduler.metrics import collect
from scheduler.models import Channel, ChannelStatus, Metric, MetricChannel, MetricSchedule, Post, PostStatus
from scheduler.storage import channels as channel_store
from scheduler.storage import metrics as store
from scheduler.storage.db import Database

T0 = dt.datetime(2027, 3, 1, 2, 0, tzinfo=dt.UTC)
MASTO = "http://127.0.0.1:9"


class Masto:
    """A strict Mastodon status endpoint: counts, a 404 for deleted ids, or a forced error."""

    def __init__(self) -> None:
        self.asked: list[str] = []
        self.deleted: set[str] = set()
        self.error: httpx.Response | None = None

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.method == "GET" and request.url.path.startswith("/api/v1/statuses/"), request.url
        status_id = request.url.path.rsplit("/", 1)[-1]
        self.asked.append(status_id)
        if self.error is not None:
            return self.error
        if status_id in self.deleted:
            return httpx.Response(404, json={"error": "Record not found"})
        return httpx.Response(200, json={"id": status_id, "favourites_count": len(self.asked),
                                         "reblogs_count": 1, "replies_count": 2})


@pytest.fixture(params=["sqlite", "postgresql"])
def setup(request: pytest.FixtureRequest, promo_env: Any) -> tuple[Settings, Database]:
    env = promo_env(channels={"masto": {"PLATFORM": "mastodon", "BASE_URL": MASTO, "ACCESS_TOKEN": "SECRET-m", "IDEMPOTENCY": "mastodon"},
                              "outbox": {"PLATFORM": "outbox", "PATH": "/dev/null"}})
    if request.param == "postgresql":
        db = request.getfixturevalue("pg_db")
        settings = load_settings({**env, "PROMO_DATABASE_URL": str(db.engine.url.render_as_string(False))})
    else:
        settings = load_settings(env)
        db = Database(settings.database_url)
        db.upgrade()
    with db.session() as session:
        channel_store.sync_configured(session, settings)
    return settings, db


def add_post(db: Database, channel: str, status: PostStatus = PostStatus.PUBLISHED,
             published_at: dt.datetime | None = T0, remote_id: str | None = None) -> int:
    with db.session() as session:
        ch = session.scalars(select(Channel).where(Channel.name == channel)).one()
        post = Post(channel_id=ch.id, kind="free_text", text="Kue lapis", status=status.value,
                    published_at=published_at if status == PostStatus.PUBLISHED else None,
                    remote_id=remote_id or (uuid.uuid4().hex[:8] if status == PostStatus.PUBLISHED else None),
                    idempotency_key=uuid.uuid4().hex)
        session.add(post)
        session.flush()
        return post.id


def run_at(settings: Settings, db: Database, fake: Masto, when: dt.datetime) -> Any:
    with time_machine.travel(when, tick=False):
        return asyncio.run(collect(settings, db, transport=httpx.MockTransport(fake)))


def reads(db: Database, post_id: int) -> list[dt.datetime]:
    with db.session() as session:
        return sorted(set(session.scalars(select(Metric.fetched_at).where(Metric.post_id == post_id))))


def test_counters_are_read_at_each_offset_and_never_in_between(setup: tuple[Settings, Database]) -> None:
    settings, db = setup
    fake = Masto()
    post = add_post(db, "masto", remote_id="1001")
    draft = add_post(db, "masto", PostStatus.DRAFT)
    failed = add_post(db, "masto", PostStatus.FAILED)
    outbox = add_post(db, "outbox")
    moments = [T0 + dt.timedelta(minutes=m) for m in (30, 59, 60, 70, 600, 1439, 1440, 1500)] + \
        [T0 + dt.timedelta(days=d) for d in (6, 7, 8, 29, 30, 31, 60)]
    for moment in moments:
        run_at(settings, db, fake, moment)
    assert reads(db, post) == [T0 + dt.timedelta(hours=1), T0 + dt.timedelta(hours=24), T0 + dt.timedelta(days=7),
                               T0 + dt.timedelta(days=30)]
    assert fake.asked == ["1001"] * 4
    assert reads(db, draft) == reads(db, failed) == reads(db, outbox) == []
    with db.session() as session:
        first = {(m.name, m.platform_name, m.value) for m in session.scalars(
            select(Metric).where(Metric.post_id == post, Metric.fetched_at == T0 + dt.timedelta(hours=1)))}
        row = session.get(MetricSchedule, post)
        assert row is not None and row.done == 4 and row.next_at is None
    assert first == {("likes", "favourites_count", 1), ("shares", "reblogs_count", 1),
                     ("replies", "replies_count", 2)}


def test_a_post_found_late_is_read_once_for_the_latest_offset_then_goes_on(setup: tuple[Settings, Database]) -> None:
    settings, db = setup
    fake = Masto()
    post = add_post(db, "masto", remote_id="2002")
    run_at(settings, db, fake, T0 + dt.timedelta(days=8))  # PROMO_METRICS was off until now
    run_at(settings, db, fake, T0 + dt.timedelta(days=9))
    run_at(settings, db, fake, T0 + dt.timedelta(days=30, minutes=5))
    assert reads(db, post) == [T0 + dt.timedelta(days=8), T0 + dt.timedelta(days=30, minutes=5)]


def test_a_deleted_post_is_gone_and_never_asked_again(setup: tuple[Settings, Database]) -> None:
    settings, db = setup
    fake = Masto()
    fake.deleted.add("3003")
    post = add_post(db, "masto", remote_id="3003")
    for days in (0.05, 1, 7, 30):
        run_at(settings, db, fake, T0 + dt.timedelta(days=days))
    assert fake.asked == ["3003"]
    with db.session() as session:
        row = session.get(MetricSchedule, post)
        assert row is not None and row.gone_at is not None and "deleted" in (row.note or "")
        assert store.gone_ids(session) == {post}


def test_an_auth_error_pauses_reading_but_not_publishing(setup: tuple[Settings, Database]) -> None:
    settings, db = setup
    fake = Masto()
    fake.error = httpx.Response(401, json={"error": "The access token is invalid"})
    post = add_post(db, "masto", remote_id="4004")
    result = run_at(settings, db, fake, T0 + dt.timedelta(hours=1))
    assert result.paused == ["masto"]
    run_at(settings, db, fake, T0 + dt.timedelta(hours=24))
    assert fake.asked == ["4004"]  # paused: not asked again
    with db.session() as session:
        channel = session.scalars(select(Channel).where(Channel.name == "masto")).one()
        assert channel.status == ChannelStatus.ACTIVE.value  # publishing goes on
        state = session.get(MetricChannel, channel.id)
        assert state is not None and state.paused_at is not None and "SECRET" not in (state.paused_reason or "")
        store.resume(session, channel.id)
    fake.error = None
    run_at(settings, db, fake, T0 + dt.timedelta(hours=25))
    assert len(reads(db, post)) == 1


def test_a_rate_limit_makes_reading_wait(setup: tuple[Settings, Database]) -> None:
    settings, db = setup
    fake = Masto()
    until = T0 + dt.timedelta(hours=3)
    fake.error = httpx.Response(429, json={"error": "Too many requests"},
                                headers={"X-RateLimit-Reset": until.isoformat().replace("+00:00", "Z")})
    post = add_post(db, "masto", remote_id="5005")
    assert run_at(settings, db, fake, T0 + dt.timedelta(hours=1)).waiting == ["masto"]
    fake.error = None
    run_at(settings, db, fake, T0 + dt.timedelta(hours=2))
    assert fake.asked == ["5005"]
    run_at(settings, db, fake, until + dt.timedelta(minutes=1))
    assert reads(db, post) == [until + dt.timedelta(minutes=1)]


def test_turned_off_the_service_declares_no_metrics_job(promo_env: Any) -> None:
    from scheduler.service import declared_jobs

    assert "metrics" not in declared_jobs(load_settings(promo_env(METRICS="false")))
    assert "metrics" in declared_jobs(load_settings(promo_env()))


def test_a_slow_read_never_holds_up_publishing_on_the_same_channel(setup: tuple[Settings, Database]) -> None:
    from scheduler.dispatch import Dispatcher
    from scheduler.models import utcnow
    from scheduler.storage import posts as post_store

    settings, db = setup
    add_post(db, "masto", published_at=utcnow() - dt.timedelta(hours=2), remote_id="6006")

    async def scenario() -> None:
        entered, release = asyncio.Event(), asyncio.Event()

        async def slow_read(request: httpx.Request) -> httpx.Response:
            entered.set()
            await release.wait()  # the platform takes its time over the counters
            return httpx.Response(200, json={"id": "6006", "favourites_count": 1, "reblogs_count": 0,
                                             "replies_count": 0})

        def publish(request: httpx.Request) -> httpx.Response:
            assert (request.method, request.url.path) == ("POST", "/api/v1/statuses"), request.url
            return httpx.Response(200, json={"id": "7007", "url": "https://m.example/@k/7007"})

        reading = asyncio.create_task(collect(settings, db, transport=httpx.MockTransport(slow_read)))
        await entered.wait()
        with db.session() as session:
            channel = channel_store.get_channel(session, "masto")
            post_id = post_store.create_post(session, channel=channel, kind="free_text", text="Kue lapis hari ini",
                                             status=PostStatus.SCHEDULED, scheduled_at=utcnow(), actor="t").id
        dispatcher = Dispatcher(settings, db, transport=httpx.MockTransport(publish))
        dispatcher.start()
        await dispatcher.tick()
        await dispatcher.drain()
        assert not reading.done()  # the read is still in flight …
        with db.session() as session:
            post = session.get(Post, post_id)
            assert post is not None and post.status == PostStatus.PUBLISHED.value  # … and the post went out
        release.set()
        assert (await reading).posts == 1

    asyncio.run(scenario())


def test_a_read_that_keeps_failing_is_retried_hourly_then_given_up(setup: tuple[Settings, Database]) -> None:
    settings, db = setup
    fake = Masto()
    fake.error = httpx.Response(503, text="<html>Service Unavailable</html>")
    post = add_post(db, "masto", remote_id="8008")
    run_at(settings, db, fake, T0 + dt.timedelta(hours=1))
    run_at(settings, db, fake, T0 + dt.timedelta(hours=1, minutes=30))  # not yet: an hour later
    run_at(settings, db, fake, T0 + dt.timedelta(hours=2))
    assert fake.asked == ["8008", "8008"]
    run_at(settings, db, fake, T0 + dt.timedelta(days=31, hours=23))  # last offset 30 d + 2 d: still tried
    run_at(settings, db, fake, T0 + dt.timedelta(days=33))  # past it: given up
    run_at(settings, db, fake, T0 + dt.timedelta(days=40))
    assert len(fake.asked) == 4
    with db.session() as session:
        row = session.get(MetricSchedule, post)
        assert row is not None and row.next_at is None and "503" in (row.note or "")
