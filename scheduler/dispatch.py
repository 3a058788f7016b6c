"""The dispatcher: claim due posts under a lease → publish → record; the retry policy.

* One publish in flight per channel, in order of scheduled time (the claim query picks
  each free channel's earliest due post); many channels publish concurrently on a few
  sharded ``httpx.AsyncClient``s that share one SSL context.
* A claim is an atomic database update that sets ``publishing``, the lease owner and
  its expiry; leases are renewed while a publish is in flight. Housekeeping resolves
  leases whose owner died: reconcile where the platform can tell, otherwise
  ``needs_review`` — never re-sent blindly.
* After an attempt that may have published (unknown outcome, dead claimer) a post is sent
  again blindly only while the platform still honours our idempotency key
  (``PlatformRules.idempotent_for``, counted from the first such attempt); past that window
  the dispatcher asks the platform first (``reconcile``) and, when it cannot tell, leaves
  the post for a person (``needs_review``).
* What happens after an error is decided from the error's class alone (:mod:`scheduler.retry`).
* Results are written in small batches, so a burst costs few transactions.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import logging
import os
import random
import socket
import uuid
from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy import select

from scheduler import budget as send_budget
from scheduler import errors, leases
from scheduler.config import ChannelConfig, Settings
from scheduler.httpclient import make_clients
from scheduler.models import Channel, PostKind, PostStatus, utcnow
from scheduler.platforms import adapter_class
from scheduler.platforms.base import Adapter, ChannelContext, PlatformRules, PublishResult, ReadyPost
from scheduler.post_images import media_for, more_media
from scheduler.redact import install_record_redaction, redact
from scheduler.retry import BudgetUsed, Decision, NotOnPlatform, decide, resend_is_safe
from scheduler.storage import channels as channel_store
from scheduler.storage import claims
from scheduler.storage import posts as post_store
from scheduler.storage.db import Database, retry_disconnect
from scheduler.values import human_duration

log = logging.getLogger("promo.dispatch")
Clock = Callable[[], dt.datetime]
#: Posts claimed per claim statement during a burst.
CLAIM_BATCH = 256
#: How long the flusher waits for more finished publishes to write in one transaction.
FLUSH_DELAY = 0.005
#: The least time between two claims triggered by finished publishes.
TICK_GAP = 0.05
#: Look for posts to expire at most this often (a burst ticks every TICK_GAP; lateness limits are
#: minutes or more, so a post expires at most this much later than it could).
EXPIRE_GAP = dt.timedelta(seconds=1)


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def make_adapter(settings: Settings, cfg: ChannelConfig, state: Any, client: httpx.AsyncClient) -> Adapter:
    """The adapter for one channel: its platform's class with the channel's options and state."""
    ctx = ChannelContext(name=cfg.name, options=cfg.options, state=state,
                         public_media_base_url=settings.public_media_base_url,
                         graph_api_version=settings.graph_api_version)
    return adapter_class(cfg.platform)(ctx, client)


class Dispatcher:
    """Publishes due posts; one instance per service process."""

    def __init__(self, settings: Settings, db: Database, *, worker: str | None = None,
                 clock: Clock = utcnow, transport: httpx.AsyncBaseTransport | None = None,
                 alert: Callable[[str], None] | None = None, seed: int | None = None):
        install_record_redaction()
        self.settings = settings
        self.db = db
        self.worker = worker or worker_id()
        self.clock = clock
        self.rng = random.Random(seed)
        self.alert = alert or (lambda message: None)
        self._transport = transport
        self._clients: list[httpx.AsyncClient] = []
        self._configs: dict[int, tuple[str, ChannelConfig]] = {}
        self._adapters: dict[int, Adapter] = {}
        self._inflight: dict[int, asyncio.Task[None]] = {}  # post id → task
        self._done: list[Decision] = []
        self._flush_needed = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None
        self._tick_lock = asyncio.Lock()
        self._retick = False
        self._last_tick_at = 0.0
        self.last_tick: dt.datetime | None = None
        self._expired_at: dt.datetime | None = None
        self.published = 0
        self.closing = False

    # --- set-up ---------------------------------------------------------------------

    def client_for(self, channel_id: int) -> httpx.AsyncClient:
        if not self._clients:
            self._clients = make_clients(self.settings.http_clients, self.settings.http_connections,
                                         self.settings.publish_timeout, self._transport,
                                         engine=self.settings.http_engine)
        return self._clients[channel_id % len(self._clients)]

    def reload_channels(self) -> None:
        with self.db.session() as session:
            channel_store.sync_configured(session, self.settings)
            configs = channel_store.channel_configs(session, self.settings)
            rows = {c.name: c.id for c in session.scalars(select(Channel))}
        self._configs = {rows[name]: (name, cfg) for name, cfg in configs.items() if name in rows}

    def config_for(self, channel_id: int) -> tuple[str, ChannelConfig]:
        if channel_id not in self._configs:
            self.reload_channels()
        if channel_id not in self._configs:
            raise errors.ConfigError(f"channel #{channel_id} has posts but is no longer configured")
        return self._configs[channel_id]

    def adapter_for(self, channel_id: int) -> Adapter:
        adapter = self._adapters.get(channel_id)
        if adapter is None:
            name, cfg = self.config_for(channel_id)
            state = channel_store.DbChannelState(self.db, channel_id, self.settings)
            adapter = make_adapter(self.settings, cfg, state, self.client_for(channel_id))
            self._adapters[channel_id] = adapter
        return adapter

    def forget_adapter(self, channel_id: int) -> None:
        """Drop a cached adapter (credentials changed, channel re-checked)."""
        self._adapters.pop(channel_id, None)

    # --- the loop -------------------------------------------------------------------

    async def tick(self) -> int:
        """Expire stale posts, claim due ones, start publishing them. Returns how many started."""
        if self.closing:
            return 0
        if self._tick_lock.locked():
            self._retick = True
            return 0
        async with self._tick_lock:
            started = 0
            while True:
                self._retick = False
                now = self.clock()
                self.last_tick = now
                self._last_tick_at = asyncio.get_running_loop().time()
                if self._expired_at is None or not self._expired_at <= now < self._expired_at + EXPIRE_GAP:
                    retry_disconnect(functools.partial(self.expire_stale, now))
                    self._expired_at = now
                # Channels with a post in flight are excluded by the claim itself (status publishing).
                claimed = retry_disconnect(functools.partial(
                    claims.claim_due, self.db.engine, worker=self.worker, now=now,
                    lease=dt.timedelta(seconds=self.settings.lease_seconds), limit=CLAIM_BATCH,
                ))
                for c in claimed:
                    self._inflight[c.id] = asyncio.create_task(self._publish(c), name=f"publish-{c.id}")
                started += len(claimed)
                if len(claimed) == CLAIM_BATCH:
                    await asyncio.sleep(0)  # let this batch start sending before claiming the next
                    continue
                if not self._retick:
                    return started

    def expire_stale(self, now: dt.datetime) -> int:
        """Waiting posts that came due later than their kind's maximum lateness become expired."""
        shortest = min(self.settings.lateness(k) for k in self.settings.max_lateness) \
            if self.settings.max_lateness else dt.timedelta(hours=1)
        expired = 0
        alerts: list[str] = []
        with self.db.session() as session:
            for post in post_store.stale_candidates(session, now - shortest):
                limit = self.settings.lateness(post.kind)
                assert post.scheduled_at is not None
                if now - post.scheduled_at <= limit:
                    continue
                late = now - post.scheduled_at
                reason = (f"not published: {human_duration(late)} late, more than the {human_duration(limit)} allowed for "
                          f"{post.kind} posts (PROMO_MAX_LATENESS_{post.kind.upper()})")
                if post.status == PostStatus.PENDING_APPROVAL.value:
                    reason = "not approved before its time"
                post_store.transition(session, post, PostStatus.EXPIRED, actor=self.worker, reason=reason)
                expired += 1
                if post.kind != PostKind.ALERT:
                    alerts.append(f"post {post.id} on {post.channel.name} expired: {reason}")
        # Alerts write in their own transaction: sent inside ours, they would wait for our lock.
        for message in alerts:
            self.alert(message)
        return expired

    async def _publish(self, c: claims.Claimed) -> None:
        channel_name = f"#{c.channel_id}"
        rules = PlatformRules(text=())
        result: PublishResult | None = None
        exc: BaseException | None = None
        try:
            channel_name, cfg = self.config_for(c.channel_id)
            adapter = self.adapter_for(c.channel_id)
            rules = adapter.rules_for(cfg.options, adapter.ctx.state)
            self.check_budget(c, channel_name, cfg, type(adapter))
            first = c.uncertain_since or c.claimed_at or self.clock()
            ready = ReadyPost(
                post_id=c.id, idempotency_key=c.idempotency_key, text=c.text, link=c.link, title=c.title,
                description=c.summary, image=media_for(self.settings, c.image_path, c.image_alt),
                more_images=more_media(self.settings, c.more_images),
                created_at=c.created_at, attempted_at=first,
            )
            if c.uncertain_since is not None and not resend_is_safe(rules, c.uncertain_since, self.clock()):
                result = await self._ask_first(adapter, ready, rules, c.uncertain_since)
            if result is None:
                try:
                    try:
                        # A safety net over the requests' own timeouts (an adapter polling a container).
                        async with asyncio.timeout(self.settings.publish_timeout * 4):
                            result = await adapter.publish(ready)
                    except TimeoutError:
                        raise errors.UnknownOutcome("publish did not finish in time: outcome unknown") from None
                except errors.UnknownOutcome as unknown:
                    # What the adapter learned while publishing (e.g. the server software) counts.
                    rules = adapter.rules_for(cfg.options, adapter.ctx.state)
                    if resend_is_safe(rules, first, self.clock()) or not rules.can_reconcile:
                        raise  # decide(): send again with the key, or needs_review
                    result = await self._reconcile_now(adapter, ready, unknown)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # every error is classified by decide()
            exc = e
        decision = decide(c, exc, result, rules, self.settings, self.clock(), self.rng, channel_name)
        if decision.outcome.to == PostStatus.PUBLISHED:
            self.published += 1
        log_fn = log.info if exc is None else log.warning
        log_fn("post %s on %s: %s%s", c.id, channel_name, decision.outcome.outcome,
               f" ({decision.outcome.error})" if decision.outcome.error else "")
        self._done.append(decision)
        self._flush_needed.set()

    def check_budget(self, c: claims.Claimed, channel_name: str, cfg: ChannelConfig,
                     cls: type[Adapter]) -> None:
        """Before a send: BudgetUsed when the channel's send budget has no room now."""
        budgets = send_budget.budgets_for(cfg, cls)
        if not budgets:
            return
        with self.db.engine.connect() as conn:
            wait = send_budget.check(conn, c.channel_id, budgets, self.clock(), exclude_history_id=c.history_id)
        if wait is not None:
            raise BudgetUsed(wait.reason(channel_name), retry_at=wait.until)

    async def _reconcile_now(self, adapter: Adapter, ready: ReadyPost, unknown: errors.UnknownOutcome) -> PublishResult:
        """After an unknown outcome, ask the platform; None means certainly not there → retry."""
        try:
            found = await adapter.reconcile(ready)
        except errors.PublishError as exc:
            raise errors.UnknownOutcome(f"{unknown}; reconcile cannot tell: {redact(str(exc))}",
                                        status=unknown.status) from None
        if found is None:
            raise NotOnPlatform(f"{unknown} — reconciled: not on the platform, will retry", status=unknown.status)
        return found

    async def _ask_first(self, adapter: Adapter, ready: ReadyPost, rules: PlatformRules,
                         since: dt.datetime) -> PublishResult | None:
        """Before resending a post an earlier attempt may have published, outside the key's window.

        Returns the post when it is on the platform, None when it certainly is not (send it);
        raises UnknownOutcome (→ needs_review) when the platform cannot tell.
        """
        what = f"an earlier attempt ({since:%Y-%m-%d %H:%M} UTC) may have published it"
        if not rules.can_reconcile:
            raise errors.UnknownOutcome(f"{what}; the platform cannot be asked and no idempotency key covers "
                                        "a resend now")
        try:
            return await adapter.reconcile(ready)
        except (errors.RateLimited, errors.AuthError):
            raise  # nothing was sent; the earlier attempt still counts next time
        except errors.PublishError as exc:
            raise errors.UnknownOutcome(f"{what} and reconcile cannot tell: {redact(str(exc))}") from None

    async def flusher(self) -> None:
        """Write finished attempts in batches, then look for more due work (freed channels)."""
        loop = asyncio.get_running_loop()
        while True:
            await self._flush_needed.wait()
            await asyncio.sleep(FLUSH_DELAY)  # let other finishing publishes join this batch
            self._flush_needed.clear()
            self.flush()
            if self.closing:
                continue
            # A finished post frees its channel for its next due post; claiming is not free,
            # so during a burst claim at most every TICK_GAP seconds.
            wait = self._last_tick_at + TICK_GAP - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            await self.tick()

    def flush(self) -> None:
        batch, self._done = self._done, []
        if not batch:
            return
        try:
            retry_disconnect(functools.partial(
                claims.finish_attempts, self.db.engine, self.worker, [d.outcome for d in batch],
                [d.channel for d in batch if d.channel is not None]))
        except BaseException:
            self._done[:0] = batch  # not written: the next flush writes them
            raise
        for d in batch:
            self._inflight.pop(d.outcome.post_id, None)
            if d.channel is not None and d.channel.status is not None:
                self.forget_adapter(d.channel.channel_id)
            if d.alert:
                self.alert(d.alert)

    async def renew(self) -> None:
        ids = list(self._inflight)
        if ids:
            claims.renew_leases(self.db.engine, self.worker, ids,
                                    self.clock() + dt.timedelta(seconds=self.settings.lease_seconds))

    def start(self) -> None:
        if self._flusher is None:
            self._flusher = asyncio.create_task(self.flusher(), name="flusher")

    async def drain(self) -> None:
        """Stop claiming; wait for in-flight publishes and write their results."""
        self.closing = True
        pending = [t for t in self._inflight.values() if not t.done()]
        if pending:
            log.info("waiting for %d in-flight publish(es) to finish", len(pending))
            await asyncio.gather(*pending, return_exceptions=True)
        self.flush()
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        for client in self._clients:
            await client.aclose()

    @property
    def inflight(self) -> int:
        return sum(1 for t in self._inflight.values() if not t.done())

    # --- housekeeping ------------------------------------------------------------------

    async def resolve_expired_leases(self) -> int:
        """Posts whose claimer died: reconcile where possible, else needs_review (never re-sent)."""
        now = self.clock()
        with self.db.session() as session:
            work = [(p.id, p.channel_id, p.lease_owner) for p in post_store.expired_leases(session, now)]
        resolved = 0
        for post_id, channel_id, owner in work:
            if post_id in self._inflight:
                continue
            adapter: Adapter | None
            try:
                name, cfg = self.config_for(channel_id)
                adapter = self.adapter_for(channel_id)
                rules = adapter.rules_for(cfg.options, adapter.ctx.state)
            except errors.PromoError:
                rules, adapter, name = PlatformRules(text=()), None, f"#{channel_id}"
            with self.db.session() as session:
                loaded = leases.load_expired(session, self.settings, post_id, owner, now)
            if loaded is None:
                continue
            verdict, error, found = await leases.judge(rules, adapter, *loaded, now, owner)
            with self.db.session() as session:
                done, alert = leases.settle(session, post_id, owner, verdict, error, found, now=now,
                                            worker=self.worker, channel=name)
            if alert:  # after our transaction, which holds the write lock the alert needs
                self.alert(alert)
            resolved += done
        return resolved

