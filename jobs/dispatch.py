"""The dispatch job: publish what is due now, record the tick, and say when the next post is due."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from scheduler.dispatch import Dispatcher
from scheduler.models import Heartbeat, utcnow
from scheduler.storage import claims
from scheduler.storage.db import Database


async def dispatch(dispatcher: Dispatcher, db: Database, started_at: dt.datetime,
                   wake_at: Callable[[dt.datetime], None]) -> None:
    """One tick; then ``wake_at(time)`` with the next due time still ahead (so a post goes out
    within a second of its time rather than at the next poll)."""
    await dispatcher.tick()
    beat(db, dispatcher.worker, started_at, dispatcher.last_tick or utcnow())
    now = utcnow()
    nxt = claims.next_due(db.engine, now)
    if nxt is not None and (nxt - now).total_seconds() > 0.001:
        wake_at(nxt)


def beat(db: Database, worker: str, started_at: dt.datetime, tick: dt.datetime) -> None:
    """Record this process's last tick (what `promo status` reads)."""
    with db.session() as session:
        row = session.get(Heartbeat, worker)
        if row is None:
            session.add(Heartbeat(worker=worker, started_at=started_at, last_tick=tick))
        else:
            row.last_tick = tick
