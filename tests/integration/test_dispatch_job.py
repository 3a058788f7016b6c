"""The dispatch job takes plain arguments: after a tick it records the heartbeat and asks for a
wake-up at the next post's time; the service turns that into its declared ``dispatch-wake`` job."""

from __future__ import annotations

import datetime as dt

from apscheduler.triggers.date import DateTrigger
from sqlalchemy import select

from jobs.dispatch import dispatch
from scheduler.config import load_settings
from scheduler.dispatch import Dispatcher
from scheduler.models import Heartbeat, PostKind, PostStatus, utcnow
from scheduler.service import Service
from scheduler.storage import channels as channel_store
from scheduler.storage import posts as post_store
from scheduler.storage.db import Database


async def test_a_tick_records_the_heartbeat_and_asks_to_wake_at_the_next_due_post(promo_env) -> None:
    settings = load_settings(promo_env(POLL_SECONDS="60"))
    db = Database(settings.database_url)
    db.upgrade()
    due = (utcnow() + dt.timedelta(seconds=40)).replace(microsecond=0)
    with db.session() as session:
        [channel] = channel_store.sync_configured(session, settings).values()
        post_store.create_post(session, channel=channel, kind=PostKind.FREE_TEXT, text="Bazar UMKM nanti sore",
                               status=PostStatus.SCHEDULED, scheduled_at=due, actor="test")
    dispatcher = Dispatcher(settings, db, worker="w1")
    started = utcnow()
    woken: list[dt.datetime] = []
    await dispatch(dispatcher, db, started, woken.append)
    await dispatcher.drain()
    assert woken == [due]  # 40 s ahead, long before the next 60 s poll
    with db.session() as session:
        beat = session.scalars(select(Heartbeat)).one()
        assert (beat.worker, beat.started_at) == ("w1", started)


def test_the_service_arms_dispatch_wake_with_its_declared_grace(promo_env) -> None:
    settings = load_settings(promo_env())
    service = Service(settings, Database(settings.database_url))
    when = utcnow() + dt.timedelta(minutes=5)
    service.wake_at(when)
    [job] = service.scheduler.get_jobs()
    assert job.id == "dispatch-wake" and isinstance(job.trigger, DateTrigger) and job.trigger.run_date == when
    assert job.misfire_grace_time == service.jobs["dispatch-wake"].misfire_grace == 60 and job.coalesce
    assert job.args[0] is service.dispatcher  # plain arguments, not the service
