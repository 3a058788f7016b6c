"""The running service: APScheduler 3.x wiring, health endpoint, signals.

Every job is declared once, in :func:`declared_jobs` (id, trigger, misfire grace, coalescing;
added with ``replace_existing=True``); `promo serve` adds them and `promo jobs list` lists the
same scheduler's table without starting it. The job functions live in ``jobs/`` and take plain
arguments; none of them imports this module.

* ``dispatch``: every PROMO_POLL_SECONDS; publishes due posts and arms ``dispatch-wake``
  at the next due time, so a post goes out within a second of its time rather than at
  the next poll. On PostgreSQL a ``LISTEN`` thread (storage/wakeup.py) also runs it as
  soon as any process commits a post that is due (``promo post new --now`` elsewhere).
* ``housekeeping``: renews our leases, resolves leases whose owner died and, once a day per
  cluster, deletes media files no post needs any more (PROMO_MEDIA_KEEP_DAYS).
* ``daily-highlight`` (at its times), ``daily-highlight-sweep`` (catch-up, expiring
  unapproved posts) and ``event-promotion``: create posts (never publish), in the main
  process only.
* ``metrics`` (PROMO_METRICS): reads engagement counters back at PROMO_METRICS_AT after
  publishing, main process only, on its own HTTP client (scheduler/metrics.py).
* ``history-archive`` (with PROMO_HISTORY_KEEP_DAYS, daily at 03:00): moves old history rows into
  a gzip CSV in PROMO_HISTORY_ARCHIVE_DIR; main process only.

Child processes (scheduler/process.py): PROMO_WORKERS - 1 extra dispatch-only workers, and with
``promo serve --web`` the web app beside the service in its own process (``promo web`` on the
socket this process bound), so page loads never share the dispatcher's interpreter. A child that
dies is restarted after a backoff; the children die with this process, even when it is killed.

SIGTERM/SIGINT stop claiming, stop the child processes, wait for in-flight publishes and write
their results.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import errno
import json
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import delete

from jobs.dispatch import dispatch
from jobs.event_promotion import event_promotion_job
from jobs.highlight.create import highlight_job
from jobs.history_archive import history_archive_job
from jobs.housekeeping import housekeeping
from jobs.metrics import collect_metrics
from scheduler.alerts import Alerter
from scheduler.config import WEEKDAYS, Settings
from scheduler.dbtime import seconds_since
from scheduler.dispatch import Dispatcher
from scheduler.errors import ConfigError
from scheduler.models import Heartbeat, PostKind, utcnow
from scheduler.process import Child, Children
from scheduler.storage.db import Database
from scheduler.storage.post_read import stalled
from scheduler.storage.wakeup import DueListener
from scheduler.values import human_duration

log = logging.getLogger("promo.service")
T = TypeVar("T")
#: How often the highlight sweeps (catch-up, expiring unapproved posts) besides its exact times,
#: and how often events are re-planned.
SWEEP_MINUTES = 15
#: How often engagement counters that came due are read (PROMO_METRICS_AT is counted to this).
METRICS_MINUTES = 10


@dataclass(frozen=True)
class JobSpec:
    """One job of the service, declared once: `promo serve` adds it, `promo jobs list` lists it."""

    id: str
    #: What it does, in words: the job's name in the scheduler (`promo jobs list` shows it).
    what: str
    func: Callable[..., Any]
    #: The plain arguments it is called with, taken from the running service.
    args: Callable[[Service], tuple[Any, ...]]
    #: When it runs; None for a job the service adds at run time (``dispatch-wake``).
    trigger: BaseTrigger | None
    #: Seconds a run may start late (after a busy loop or a suspend) before it is dropped.
    misfire_grace: int
    #: Runs missed while the service could not run them are done once, not once each.
    coalesce: bool = True
    #: Creates posts: the main process runs it, a dispatch-only worker (PROMO_WORKERS) does not.
    creates_posts: bool = False
    #: Runs in the main process only, like the jobs that create posts (reading counters back).
    main_only: bool = False
    #: Also runs as soon as the service starts (catch-up after downtime).
    at_start: bool = False


def declared_jobs(settings: Settings) -> dict[str, JobSpec]:
    """Every job the service runs, by id."""
    tz = settings.timezone
    poll, renew = settings.poll_seconds, max(1.0, settings.lease_seconds / 3)
    highlight_grace = int(settings.lateness(PostKind.DAILY_HIGHLIGHT).total_seconds()) or 1

    def dispatch_args(s: Service) -> tuple[Any, ...]:
        return s.dispatcher, s.db, s.started_at, s.wake_at

    def create_args(s: Service) -> tuple[Any, ...]:
        return s.settings, s.db, s.alerter

    specs = [
        JobSpec("dispatch", "publish due posts (and at each post's due time, as dispatch-wake)", dispatch,
                dispatch_args, IntervalTrigger(seconds=poll, timezone=tz), misfire_grace=30),
        JobSpec("dispatch-wake", "publish the next due post at its time", dispatch, dispatch_args, None,
                misfire_grace=60),
        JobSpec("housekeeping", "renew leases; resolve leases of dead workers; prune unused media daily", housekeeping,
                lambda s: (s.dispatcher,), IntervalTrigger(seconds=renew, timezone=tz), misfire_grace=60),
        JobSpec("daily-highlight", "create the day's UMKM highlight on " + _channels(settings.highlight_channels),
                highlight_job, create_args, highlight_trigger(settings), misfire_grace=highlight_grace,
                creates_posts=True),
        JobSpec("daily-highlight-sweep", "catch up a missed highlight; expire highlight posts nobody approved",
                highlight_job, create_args, IntervalTrigger(minutes=SWEEP_MINUTES, timezone=tz),
                misfire_grace=highlight_grace, creates_posts=True, at_start=True),
        JobSpec("event-promotion", "plan event announcement / reminder / day-of posts on "
                + _channels(settings.event_channels), event_promotion_job, create_args,
                IntervalTrigger(minutes=SWEEP_MINUTES, timezone=tz), misfire_grace=SWEEP_MINUTES * 60,
                creates_posts=True, at_start=True),
    ]
    if settings.metrics:
        specs.append(JobSpec("metrics", "read likes, shares and views back at "
                             + ", ".join(human_duration(o) for o in settings.metrics_at) + " after publishing",
                             collect_metrics, lambda s: (s.settings, s.db),
                             IntervalTrigger(minutes=METRICS_MINUTES, timezone=tz),
                             misfire_grace=METRICS_MINUTES * 60, main_only=True))
    if settings.history_keep_days:
        specs.append(JobSpec("history-archive", f"archive history older than {settings.history_keep_days} days into "
                             f"{settings.history_archive_dir}", history_archive_job,
                             lambda s: (s.db, tz, s.settings.history_keep_days, s.settings.history_archive_dir),
                             CronTrigger(hour=3, minute=0, timezone=tz), misfire_grace=6 * 3600,
                             main_only=True))
    return {spec.id: spec for spec in specs}


def _channels(names: tuple[str, ...] | list[str]) -> str:
    return ", ".join(names) or "(no channels set)"


def highlight_trigger(settings: Settings) -> BaseTrigger:
    """On highlight days: at the creation time (the approval lead early, with PROMO_REQUIRE_APPROVAL)
    and at the publish time, in the organisation's timezone."""
    publish = settings.highlight_time
    moments = [(0, publish)]
    if settings.require_approval and settings.highlight_lead:
        anchor = dt.datetime.combine(dt.date(2024, 1, 8), publish)  # a Monday
        early = anchor - settings.highlight_lead
        moments.insert(0, ((early.date() - anchor.date()).days, early.time()))
    triggers = []
    for day_offset, at in moments:
        days = ",".join(WEEKDAYS[(d + day_offset) % 7].lower() for d in settings.highlight_days) or "mon"
        triggers.append(CronTrigger(day_of_week=days, hour=at.hour, minute=at.minute, timezone=settings.timezone))
    return triggers[0] if len(triggers) == 1 else OrTrigger(triggers)


class Service:
    """One service process: scheduler + dispatcher + health endpoint."""

    def __init__(self, settings: Settings, db: Database, *, health_port: int | None = None,
                 workers: int = 1, dispatch_only: bool = False, web: Child | None = None):
        """``health_port`` (``--health-port``) overrides PROMO_HEALTH_PORT; either one makes a taken
        port an error, while the default port falls back to a free one. ``web`` (``promo serve --web``)
        is the web app's process, started and kept running beside the service's."""
        self.settings = settings
        self.db = db
        #: Extra dispatch-only processes to start (PROMO_WORKERS - 1): a burst uses every core.
        self.extra_workers = max(0, workers - 1) if not dispatch_only else 0
        self.dispatch_only = dispatch_only
        self.alerter = Alerter(db, settings.alert_channel, settings.alert_min_interval)
        self.dispatcher = Dispatcher(settings, db, alert=self.alerter)
        self.scheduler = AsyncIOScheduler(timezone=settings.timezone)
        self.health_port = settings.health_port if health_port is None else health_port
        #: Where the health endpoint answers once started (the fallback port included).
        self.health_address: tuple[str, int] | None = None
        self._health_setting = "--health-port" if health_port is not None else \
            "PROMO_HEALTH_PORT" if settings.health_port_explicit else None
        self._health: asyncio.base_events.Server | None = None
        #: The web app's process (``promo serve --web``), or None: never on this process's loop, so
        #: page loads never hold up a due post.
        self.web = web
        #: The child processes once started: extra dispatch workers, the web app.
        self.children: Children | None = None
        self.jobs = declared_jobs(settings)
        self._stop = asyncio.Event()
        self.started_at = utcnow()
        #: PostgreSQL: the LISTEN connection that wakes this dispatcher when another process
        #: makes a post due (storage/wakeup.py); None on SQLite.
        self.listener: DueListener | None = None
        self._wake_task: asyncio.Task[None] | None = None
        self._wake_again = False

    # --- jobs ------------------------------------------------------------------------

    def add_jobs(self) -> None:
        """Add every declared job with a trigger (before or after the scheduler starts)."""
        for spec in self.jobs.values():
            if spec.trigger is None or ((spec.creates_posts or spec.main_only) and self.dispatch_only):
                continue
            self._add(spec, spec.trigger, **({"next_run_time": utcnow()} if spec.at_start else {}))

    def wake_at(self, when: dt.datetime) -> None:
        """Run ``dispatch-wake`` at ``when`` (the next post's due time)."""
        self._add(self.jobs["dispatch-wake"], DateTrigger(when))

    def wake_now(self) -> None:
        """Run the dispatch job now (a post became due in some process); wake-ups that arrive
        while it runs make it run once more, not once each."""
        if self._wake_task is not None and not self._wake_task.done():
            self._wake_again = True
            return
        self._wake_task = asyncio.get_running_loop().create_task(self._dispatch_on_wake(), name="dispatch-notify")

    async def _dispatch_on_wake(self) -> None:
        spec = self.jobs["dispatch"]
        while not self._stop.is_set():
            self._wake_again = False
            try:
                await spec.func(*spec.args(self))
            except Exception:  # the next poll tries again
                log.exception("dispatch after a wake-up failed")
            if not self._wake_again:
                return

    def _add(self, spec: JobSpec, trigger: BaseTrigger, **extra: Any) -> None:
        self.scheduler.add_job(spec.func, trigger, args=spec.args(self), id=spec.id, name=spec.what,
                               replace_existing=True, coalesce=spec.coalesce, max_instances=1,
                               misfire_grace_time=spec.misfire_grace, **extra)

    # --- health ------------------------------------------------------------------------

    def health(self) -> tuple[bool, dict[str, object]]:
        now = utcnow()
        last = self.dispatcher.last_tick
        age = seconds_since(last, now) if last else None
        ok = not stalled(last, self.settings, now)  # what `promo status` calls stalled
        return ok, {
            "status": "ok" if ok else "stalled",
            "worker": self.dispatcher.worker,
            "last_tick": last.isoformat() if last else None,
            "seconds_since_tick": age,
            "stall_after_seconds": self.settings.health_stall_seconds,
            "in_flight": self.dispatcher.inflight,
            "published_since_start": self.dispatcher.published,
        }

    async def _serve_health(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readline(), timeout=5)
            while (await asyncio.wait_for(reader.readline(), timeout=5)) not in (b"\r\n", b"\n", b""):
                pass
            parts = request.decode("latin-1").split()
            path = parts[1] if len(parts) > 1 else "/"
            if path.split("?")[0] == "/healthz":
                ok, body = self.health()
                status = "200 OK" if ok else "503 Service Unavailable"
            else:
                body, status = {"error": "not found; try /healthz"}, "404 Not Found"
            data = json.dumps(body).encode()
            writer.write(f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n"
                         "Connection: close\r\n\r\n".encode() + data)
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    async def _start_health(self) -> None:
        """Listen on the health port. Any number of processes may share a database, so when the
        default port is taken (another `promo serve` here) this one answers on a free port and
        logs it; a port somebody chose (PROMO_HEALTH_PORT, --health-port) that is taken stops start-up."""
        host = self.settings.health_host
        try:
            self._health = await asyncio.start_server(self._serve_health, host, self.health_port)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            if self._health_setting is not None:
                raise ConfigError(f"the health port {self.health_port} ({self._health_setting}) is already in use on "
                                  f"{host}, probably by another promo serve: choose another port with "
                                  "PROMO_HEALTH_PORT or --health-port, or 0 to turn the endpoint off") from None
            self._health = await asyncio.start_server(self._serve_health, host, 0)
            port = self._health.sockets[0].getsockname()[1]
            log.warning("health: port %d is in use (another promo serve?); this process answers on "
                        "http://%s:%d/healthz instead (PROMO_HEALTH_PORT or --health-port choose one)",
                        self.health_port, host, port)
        port = self._health.sockets[0].getsockname()[1]
        self.health_address = (host, port)
        log.info("health: http://%s:%d/healthz", host, port)

    # --- run ---------------------------------------------------------------------------

    def request_stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread (tests)
                loop.add_signal_handler(sig, self.request_stop)
        self.dispatcher.reload_channels()
        if self.health_port:
            await self._start_health()
        # Leases of a process that died are resolved before anything new is claimed.
        await self.dispatcher.resolve_expired_leases()
        self.dispatcher.start()
        if self.db.engine.dialect.name == "postgresql":
            self.listener = DueListener(self.db.engine, loop, self.wake_now)
            self.listener.start()
        self.add_jobs()
        self.scheduler.start()
        supervisor = await self._start_children()
        dispatch_now = self.jobs["dispatch"]
        await dispatch_now.func(*dispatch_now.args(self))
        log.info("promo-scheduler %s as %s; Ctrl-C stops it",
                 "dispatch worker running" if self.dispatch_only else "running", self.dispatcher.worker)
        await self._stop.wait()
        log.info("stopping: finishing in-flight publishes")
        self.scheduler.shutdown(wait=False)
        if self.listener is not None:
            await asyncio.to_thread(self.listener.stop)
        if self._wake_task is not None:
            await asyncio.gather(self._wake_task, return_exceptions=True)
        if supervisor is not None and self.children is not None:
            await supervisor
            await self.children.stop()
        await self.dispatcher.drain()
        if self._health is not None:
            self._health.close()
            await self._health.wait_closed()
        with self.db.session() as session:
            session.execute(delete(Heartbeat).where(Heartbeat.worker == self.dispatcher.worker))
        log.info("stopped")


    # --- child processes: extra dispatch workers (PROMO_WORKERS), the web app (--web) -------------

    async def _start_children(self) -> asyncio.Task[None] | None:
        """Start them, and a task that restarts any that dies until the service stops."""
        worker = Child("dispatch worker", ("serve", "--dispatch-only", "--health-port", "0"),
                       stop_seconds=self.settings.publish_timeout * 4 + 10,
                       after_death="its leases expire and are resolved as after a crash")
        specs = [worker] * self.extra_workers + ([self.web] if self.web is not None else [])
        if not specs:
            return None
        self.children = Children(specs)
        await self.children.start()
        if self.extra_workers:
            log.info("started %d extra dispatch worker(s): pids %s", self.extra_workers,
                     ", ".join(str(p) for p in self.children.pids(worker.what)))
        if self.web is not None:
            log.info("web app process: pid %s", ", ".join(str(p) for p in self.children.pids(self.web.what)))
        return asyncio.create_task(self.children.watch(self._stop), name="children")
