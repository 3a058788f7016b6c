"""The running service: APScheduler 3.x wiring, health endpoint, signals.

Jobs (explicit ids, ``replace_existing=True``, coalescing, a misfire grace):

* ``dispatch``: every PROMO_POLL_SECONDS; publishes due posts and arms ``dispatch-wake``
  at the next due time, so a post goes out within a second of its time rather than at
  the next poll.
* ``housekeeping``: renews our leases and resolves leases whose owner died.
* ``daily-highlight`` and ``event-promotion``: create posts (never publish).

SIGTERM/SIGINT stop claiming, wait for in-flight publishes and write their results.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import errno
import json
import logging
import os
import signal
import sys
from collections.abc import Coroutine
from typing import Any, TypeVar

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import delete

from jobs.dispatch import dispatch
from jobs.housekeeping import housekeeping
from scheduler.alerts import Alerter
from scheduler.config import Settings
from scheduler.dispatch import Dispatcher
from scheduler.errors import ConfigError
from scheduler.models import Heartbeat, utcnow
from scheduler.redact import install_record_redaction, redact
from scheduler.storage import posts as post_store
from scheduler.storage.db import Database

log = logging.getLogger("promo.service")
T = TypeVar("T")


class JsonFormatter(logging.Formatter):
    """PROMO_LOG_FORMAT=json: one JSON object per line (time, level, logger, message, and the
    traceback if any), secrets masked, for log shippers."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname, "logger": record.name, "message": redact(record.getMessage())}
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:  # the redaction may already have rendered (and masked) it
            entry["exception"] = redact(record.exc_text)
        return json.dumps(entry, ensure_ascii=False)


def setup_logging(level: str, fmt: str = "text") -> None:
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter() if fmt == "json" else
                             logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    install_record_redaction()


class Service:
    """One service process: scheduler + dispatcher + health endpoint."""

    def __init__(self, settings: Settings, db: Database, *, health_port: int | None = None,
                 workers: int = 1, dispatch_only: bool = False, web: tuple[str, int] | None = None):
        """``health_port`` (``--health-port``) overrides PROMO_HEALTH_PORT; either one makes a taken
        port an error, while the default port falls back to a free one."""
        self.settings = settings
        self.db = db
        #: Extra dispatch-only processes to start (PROMO_WORKERS - 1): a burst uses every core.
        self.extra_workers = max(0, workers - 1) if not dispatch_only else 0
        self.dispatch_only = dispatch_only
        self._children: list[asyncio.subprocess.Process] = []
        self.alerter = Alerter(db, settings.alert_channel, settings.alert_min_interval)
        self.dispatcher = Dispatcher(settings, db, alert=self.alerter)
        self.scheduler = AsyncIOScheduler(timezone=settings.timezone)
        self.health_port = settings.health_port if health_port is None else health_port
        #: Where the health endpoint answers once started (the fallback port included).
        self.health_address: tuple[str, int] | None = None
        self._health_setting = "--health-port" if health_port is not None else \
            "PROMO_HEALTH_PORT" if settings.health_port_explicit else None
        self._health: asyncio.base_events.Server | None = None
        #: (host, port) of the dashboard, or None (``promo serve --web``).
        self.web = web
        self._web: Any = None
        self._stop = asyncio.Event()
        self.started_at = utcnow()

    # --- jobs ------------------------------------------------------------------------

    def add_jobs(self) -> None:
        common = dict(replace_existing=True, coalesce=True, max_instances=1)
        self.scheduler.add_job(dispatch, "interval", args=[self], id="dispatch",
                               seconds=self.settings.poll_seconds, misfire_grace_time=30, **common)
        self.scheduler.add_job(housekeeping, "interval", args=[self], id="housekeeping",
                               seconds=max(1.0, self.settings.lease_seconds / 3), misfire_grace_time=60, **common)
        if self.dispatch_only:  # jobs that create posts run in the main process only
            return
        from jobs.daily_highlight import register as register_highlight
        from jobs.event_promotion import register as register_events

        register_highlight(self)
        register_events(self)

    def arm_wake(self) -> None:
        """Schedule ``dispatch-wake`` at the next due time (if it is in the future)."""
        now = utcnow()
        nxt = post_store.next_due(self.db.engine, now)
        if nxt is None or nxt <= now or (nxt - now).total_seconds() <= 0.001:
            return
        self.scheduler.add_job(dispatch, "date", args=[self], id="dispatch-wake", run_date=nxt,
                               replace_existing=True, misfire_grace_time=60, coalesce=True)

    def heartbeat(self) -> None:
        tick = self.dispatcher.last_tick or utcnow()
        with self.db.session() as session:
            row = session.get(Heartbeat, self.dispatcher.worker)
            if row is None:
                session.add(Heartbeat(worker=self.dispatcher.worker, started_at=self.started_at, last_tick=tick))
            else:
                row.last_tick = tick

    # --- health ------------------------------------------------------------------------

    def health(self) -> tuple[bool, dict[str, object]]:
        now = utcnow()
        last = self.dispatcher.last_tick
        age = (now - last).total_seconds() if last else None
        ok = age is not None and age <= self.settings.health_stall_seconds
        return ok, {
            "status": "ok" if ok else "stalled",
            "worker": self.dispatcher.worker,
            "last_tick": last.isoformat() if last else None,
            "seconds_since_tick": round(age, 3) if age is not None else None,
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
            try:
                loop.add_signal_handler(sig, self.request_stop)
            except (NotImplementedError, RuntimeError):  # not the main thread (tests)
                pass
        self.dispatcher.reload_channels()
        if self.health_port:
            await self._start_health()
        if self.web is not None:
            from scheduler import web

            host, port = self.web
            self._web = await web.start(self.settings, self.db, host, port)
            log.info("dashboard: http://%s:%d/", host if ":" not in host else f"[{host}]", port)
        # Leases of a process that died are resolved before anything new is claimed.
        await self.dispatcher.resolve_expired_leases()
        self.dispatcher.start()
        self.add_jobs()
        self.scheduler.start()
        supervisor = asyncio.create_task(self._supervise()) if self.extra_workers else None
        await dispatch(self)
        log.info("promo-scheduler %s as %s; Ctrl-C stops it",
                 "dispatch worker running" if self.dispatch_only else "running", self.dispatcher.worker)
        await self._stop.wait()
        log.info("stopping: finishing in-flight publishes")
        self.scheduler.shutdown(wait=False)
        if supervisor is not None:
            supervisor.cancel()
            await self._stop_children()
        await self.dispatcher.drain()
        if self._health is not None:
            self._health.close()
            await self._health.wait_closed()
        if self._web is not None:
            await self._web.cleanup()
        with self.db.session() as session:
            session.execute(delete(Heartbeat).where(Heartbeat.worker == self.dispatcher.worker))
        log.info("stopped")


    # --- extra dispatch processes (PROMO_WORKERS) -------------------------------------------

    async def _start_child(self) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "scheduler.cli", "serve", "--dispatch-only", "--health-port", "0",
            env=os.environ.copy(), stdin=asyncio.subprocess.DEVNULL, preexec_fn=_die_with_parent)

    async def _supervise(self) -> None:
        """Keep PROMO_WORKERS - 1 dispatch-only processes running; restart one that dies."""
        self._children = [await self._start_child() for _ in range(self.extra_workers)]
        log.info("started %d extra dispatch worker(s): pids %s", len(self._children),
                 ", ".join(str(c.pid) for c in self._children))
        while not self._stop.is_set():
            waits = {asyncio.ensure_future(c.wait()): i for i, c in enumerate(self._children)}
            done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            for fut in pending:
                fut.cancel()
            for fut in done:
                i = waits[fut]
                log.warning("dispatch worker pid %s exited with %s; starting another (its leases expire and "
                            "are resolved as after a crash)", self._children[i].pid, fut.result())
                await asyncio.sleep(1.0)
                self._children[i] = await self._start_child()

    async def _stop_children(self) -> None:
        for child in self._children:
            if child.returncode is None:
                child.send_signal(signal.SIGTERM)
        for child in self._children:
            try:
                await asyncio.wait_for(child.wait(), timeout=self.settings.publish_timeout * 4 + 10)
            except TimeoutError:
                child.kill()
                await child.wait()


def _die_with_parent() -> None:
    """In a dispatch worker: get SIGTERM when the main process dies, even by SIGKILL (Linux).

    Otherwise a killed main process would leave its worker running, and a restart would add
    another; the worker's in-flight leases are then resolved like any crash.
    """
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:  # not Linux: the worker must be stopped by hand
        pass


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run the service's event loop: uvloop where installed (less CPU per request), else asyncio's."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux and macOS
        return asyncio.run(coro)
    return uvloop.run(coro)

