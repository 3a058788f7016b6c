"""Housekeeping: renew our own in-flight leases, resolve leases whose owner died, and once a day
(one process of the cluster) delete the media files no post needs any more (:mod:`scheduler.mediaprune`)."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

from scheduler.config import Settings
from scheduler.dispatch import Dispatcher
from scheduler.mediaprune import Pruned, prune
from scheduler.models import utcnow
from scheduler.storage.db import Database

log = logging.getLogger("promo.media")
#: How often each process asks the database whether the daily media prune is due.
MEDIA_CHECK_EVERY = dt.timedelta(minutes=10)
_next_media_check: dict[str, dt.datetime] = {}


async def housekeeping(dispatcher: Dispatcher) -> None:
    await dispatcher.renew()
    await dispatcher.resolve_expired_leases()
    await prune_media_when_due(dispatcher.settings, dispatcher.db, dispatcher.worker)


async def prune_media_when_due(settings: Settings, db: Database, worker: str,
                               now: dt.datetime | None = None) -> Pruned | None:
    """The daily media prune, when no process of the cluster did it in the last day (checked at most
    every :data:`MEDIA_CHECK_EVERY` per process); its file work runs off the event loop."""
    now = now or utcnow()
    if _next_media_check.get(worker, now) > now:
        return None
    _next_media_check[worker] = now + MEDIA_CHECK_EVERY
    try:
        return await asyncio.to_thread(prune, settings, db, now=now, only_if_due=True)
    except Exception:  # housekeeping goes on (a prune that never started is tried at the next check)
        log.exception("media prune failed")
        return None
