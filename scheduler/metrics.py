"""Reading engagement back: for every published post on a platform that gives counters, read them
at PROMO_METRICS_AT after publishing (1 h, 24 h, 7 d, 30 d), in small batches per channel.

* Its own HTTP client (``2 × PARALLEL_CHANNELS`` connections, the publish timeout): a slow platform read never takes a
  connection or a claim a publish needs; post rows are only read, never locked.
* Per channel and run at most ``MetricsSpec.requests_per_run`` requests of ``MetricsSpec.batch``
  posts, well inside each platform's read limit.
* Errors follow the dispatcher's typed errors, but act on collection only: AuthError pauses the
  channel's collection (its publishing is untouched; `promo channels check` resumes it),
  RateLimited makes the channel's reads wait, other errors retry those posts an hour later.
  A post deleted on the platform is recorded as gone and never asked for again.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
from sqlalchemy import select

from scheduler import errors
from scheduler.config import ChannelConfig, Settings
from scheduler.dispatch import make_adapter
from scheduler.httpclient import make_clients
from scheduler.models import Channel, utcnow
from scheduler.platforms import PLATFORMS, adapter_class
from scheduler.platforms.base import Gone
from scheduler.redact import redact
from scheduler.storage import channels as channel_store
from scheduler.storage import metrics as store
from scheduler.storage.db import Database

log = logging.getLogger("promo.metrics")
#: Channels read at the same time.
PARALLEL_CHANNELS = 8
#: A read that failed for its own reason (5xx, timeout) is tried again this much later.
RETRY_AFTER = dt.timedelta(hours=1)


def platforms_with_metrics() -> list[str]:
    return [p for p in PLATFORMS if adapter_class(p).metrics.available]


@dataclass
class Collected:
    """What one run did (for logs, tests and the bench)."""

    requests: int = 0
    posts: int = 0
    gone: int = 0
    paused: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)
    failed: int = 0


async def collect(settings: Settings, db: Database, *, clock: Callable[[], dt.datetime] = utcnow,
                  transport: httpx.AsyncBaseTransport | None = None) -> Collected:
    """One collection run: enrol newly published posts, then read what is due on every channel."""
    now = clock()
    result = Collected()
    offsets = settings.metrics_at
    with db.session() as session:
        channel_store.sync_configured(session, settings)
        store.enrol(session, platforms_with_metrics(), offsets, now)
        channel_ids = store.channels_with_due(session, now)
        names = {c.id: c.name for c in session.scalars(select(Channel).where(Channel.id.in_(channel_ids)))}
        configs = channel_store.channel_configs(session, settings) if channel_ids else {}
    if not channel_ids:
        return result
    (client,) = make_clients(1, 2 * PARALLEL_CHANNELS, settings.publish_timeout, transport,
                             engine=settings.http_engine)
    gate = asyncio.Semaphore(PARALLEL_CHANNELS)

    async def one(channel_id: int) -> None:
        cfg = configs.get(names.get(channel_id, ""))
        if cfg is None:
            return  # no longer configured: its posts wait until it is again
        async with gate:
            await _collect_channel(settings, db, channel_id, cfg, client, clock, result)

    try:
        await asyncio.gather(*(one(c) for c in channel_ids))
    finally:
        await client.aclose()
    return result


async def _collect_channel(settings: Settings, db: Database, channel_id: int, cfg: ChannelConfig,
                           client: httpx.AsyncClient,
                           clock: Callable[[], dt.datetime], result: Collected) -> None:
    state = channel_store.DbChannelState(db, channel_id, settings)
    adapter = make_adapter(settings, cfg, state, client)
    spec = adapter.metrics
    with db.session() as session:
        posts = store.due(session, channel_id, clock(), spec.batch * spec.requests_per_run)
    for start in range(0, len(posts), spec.batch):
        batch = posts[start:start + spec.batch]
        by_remote = {p.remote_id: p.post_id for p in batch}
        try:
            answer = await adapter.fetch_metrics(list(by_remote))
        except errors.AuthError as exc:
            with db.session() as session:
                store.pause(session, channel_id, redact(str(exc)), clock())
            log.warning("metrics: reading %s paused (publishing goes on): %s", cfg.name, redact(str(exc)))
            result.paused.append(cfg.name)
            return
        except errors.RateLimited as exc:
            with db.session() as session:
                store.wait(session, channel_id, exc.retry_at)
            result.waiting.append(cfg.name)
            return
        except (errors.PublishError, errors.ConfigError) as exc:
            with db.session() as session:
                store.postpone(session, by_remote.values(), clock() + RETRY_AFTER, redact(str(exc)),
                               settings.metrics_at)
            log.info("metrics: reading %s failed, again in an hour: %s", cfg.name, redact(str(exc)))
            result.failed += len(batch)
            continue
        finally:
            result.requests += adapter_requests(spec.batch, len(batch))
        now = clock()
        with db.session() as session:
            for remote_id, counts in answer.items():
                post_id = by_remote.get(remote_id)
                if post_id is None:
                    continue
                if isinstance(counts, Gone):
                    store.mark_gone(session, post_id, counts.reason, now)
                    result.gone += 1
                else:
                    store.record(session, post_id, counts, spec.names, settings.metrics_at, now)
                    result.posts += 1
            missing = [by_remote[r] for r in by_remote if r not in answer]
            if missing:
                store.postpone(session, missing, now + RETRY_AFTER, "not in the platform's answer",
                               settings.metrics_at)


def adapter_requests(batch: int, posts: int) -> int:
    """Requests a batch costs: one for a batch endpoint, one per post otherwise."""
    return 1 if batch > 1 else posts
