"""Waking every dispatcher of a PostgreSQL database when a post becomes due (LISTEN/NOTIFY).

Any number of `promo serve` processes, on any number of machines, may share one PostgreSQL
database. A post queued "now" by another process (``promo post new --now``, an action of the
web app, a retry) must not wait for the next poll (PROMO_POLL_SECONDS), so:

* **Sending** (:func:`install_sender`): after every ORM flush that leaves a post waiting
  (``scheduled`` or ``retry_wait``) or a channel active, the session sends
  ``NOTIFY promo_due`` in the same transaction. PostgreSQL delivers it only when that
  transaction commits (never for a rolled-back one, savepoints included) and folds
  identical notifications of one transaction into one, so a bulk import costs one wake-up.
  Core statements bypass the ORM; code that makes posts due with them calls
  :func:`notify_due` itself.
* **Listening** (:class:`DueListener`): each service keeps one extra connection in
  ``LISTEN promo_due`` on a thread and calls its ``wake`` callback (the dispatch tick) on
  the event loop for each notification. After a lost connection it reconnects (backing off
  up to 30 s) and wakes once, since a notification sent meanwhile is gone. Polling stays as
  the fallback.

The wake-up carries no data: the woken dispatcher claims whatever is due, and arms its own
timer for posts due later. SQLite has no NOTIFY: one process polls and wakes itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.orm import Session, sessionmaker

from scheduler.models import Channel, ChannelStatus, Post, PostStatus

log = logging.getLogger("promo.wakeup")
#: The notification channel every dispatcher of the database listens on.
CHANNEL = "promo_due"
_WAITING = (PostStatus.SCHEDULED.value, PostStatus.RETRY_WAIT.value)
_NOTIFY = f"SELECT pg_notify('{CHANNEL}', '')"


def notify_due(conn: Any) -> None:
    """Send the wake-up in ``conn``'s transaction (delivered when it commits)."""
    conn.exec_driver_sql(_NOTIFY)


def _wakes(obj: object) -> bool:
    if isinstance(obj, Post):
        return obj.status in _WAITING
    if isinstance(obj, Channel):
        return obj.status == ChannelStatus.ACTIVE.value
    return False


def _after_flush(session: Session, _context: Any) -> None:
    # new/dirty still list what this flush wrote (SQLAlchemy resets them after this hook).
    if any(_wakes(obj) for obj in session.new) or any(_wakes(obj) for obj in session.dirty
                                                        if session.is_modified(obj, include_collections=False)):
        notify_due(session.connection())


def install_sender(sessions: sessionmaker[Session]) -> None:
    """Make every session of ``sessions`` (PostgreSQL) send the wake-up when it makes posts due."""
    event.listen(sessions, "after_flush", _after_flush)


class DueListener:
    """A thread holding ``LISTEN promo_due``; ``wake`` runs on ``loop`` for each notification."""

    def __init__(self, engine: Engine, loop: asyncio.AbstractEventLoop, wake: Callable[[], None], *,
                 max_backoff: float = 30.0):
        self.engine = engine
        self.loop = loop
        self.wake = wake
        self.max_backoff = max_backoff
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._conn: Any = None
        #: Set once the first LISTEN is in place (tests wait on it).
        self.listening = threading.Event()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="promo-listen", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _connect(self) -> Any:
        raw = self.engine.raw_connection()
        conn = raw.driver_connection
        raw.detach()  # ours for good: never handed back to the pool mid-LISTEN
        if conn is None:
            raise RuntimeError("no driver connection")
        conn.autocommit = True
        conn.execute(f"LISTEN {CHANNEL}")
        return conn

    def _run(self) -> None:
        backoff = 1.0
        lost = False
        while not self._stop.is_set():
            try:
                self._conn = self._connect()
                if not self.listening.is_set():
                    log.info("wake-ups: listening on %s (posts made due by other processes)", CHANNEL)
                self.listening.set()
                if lost:
                    log.warning("wake-ups: listening again on %s", CHANNEL)
                    self._fire()  # a notification sent while we were away is gone
                lost, backoff = False, 1.0
                while not self._stop.is_set():
                    for _ in self._conn.notifies(timeout=1.0):
                        self._fire()
            except Exception as exc:  # connection lost or the server restarting
                if self._stop.is_set():
                    break
                if not lost:
                    log.warning("wake-ups: lost the LISTEN connection (%s); polling every PROMO_POLL_SECONDS "
                                "until it is back", type(exc).__name__)
                lost = True
                self._close()
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self.max_backoff)
        self._close()

    def _fire(self) -> None:
        try:
            self.loop.call_soon_threadsafe(self.wake)
        except RuntimeError:  # the loop closed: the service is stopping
            self._stop.set()

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):  # already broken
                conn.close()
