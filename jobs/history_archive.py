"""History archiving (PROMO_HISTORY_KEEP_DAYS): once a day, history rows older than N days go
into a gzip CSV in PROMO_HISTORY_ARCHIVE_DIR and are deleted from the database (rows of posts
still waiting, publishing or in review stay; see :func:`scheduler.views.archive_history`).

Every host's service runs the job at 03:00; one process of the cluster archives at a time
(:func:`archive_turn`), so the rows land in one file, each once: the others find the lock taken
and leave it, and a later run finds nothing old left."""

from __future__ import annotations

import datetime as dt
import fcntl
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO
from zoneinfo import ZoneInfo

from sqlalchemy import text

from scheduler.models import utcnow
from scheduler.storage.db import Database
from scheduler.views import archive_history

log = logging.getLogger("promo.history_archive")
#: pg_try_advisory_lock key held while archiving ("hist" in ASCII).
LOCK_KEY = 0x68697374
#: On SQLite (one host) the turn is the lock of a file beside the database: ``promo.db.archiving``.
LOCK_SUFFIX = ".archiving"


@contextmanager
def archive_turn(db: Database, folder: Path) -> Iterator[bool]:
    """True while this process holds the cluster's archiving turn, False when another process
    has it (the caller then does nothing). PostgreSQL: a session advisory lock on a connection
    held for the run (released on return, or by the server when the process dies); SQLite: an
    exclusive ``flock`` of the file beside the database (released likewise), so every process
    using that database shares it whatever its working folder (an in-memory database: one in
    ``folder``)."""
    if db.engine.dialect.name == "postgresql":
        with db.engine.connect() as conn:
            got = bool(conn.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": LOCK_KEY}))
            conn.commit()
            try:
                yield got
            finally:
                if got:
                    conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": LOCK_KEY})
                    conn.commit()
        return
    database = db.engine.url.database
    if database and database != ":memory:" and not database.startswith("file:"):
        lock_path = Path(database + LOCK_SUFFIX)
    else:
        folder.mkdir(parents=True, exist_ok=True)
        lock_path = folder / LOCK_SUFFIX
    with lock_path.open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def archive_file(folder: Path, day: dt.date) -> tuple[Path, BinaryIO]:
    """A new file named by the day (history-2027-03-01.csv.gz; -2, -3 … for a later run the
    same day), created exclusively: an earlier archive is never overwritten."""
    folder.mkdir(parents=True, exist_ok=True)
    n = 1
    while True:
        path = folder / (f"history-{day.isoformat()}.csv.gz" if n == 1 else f"history-{day.isoformat()}-{n}.csv.gz")
        try:
            return path, path.open("xb")
        except FileExistsError:
            n += 1


def archive_old_history(db: Database, tz: ZoneInfo, keep_days: int, folder: Path,
                        now: dt.datetime | None = None) -> tuple[Path | None, int]:
    """Archive the rows that started before local midnight ``keep_days`` days ago. Returns the
    file written and the count; no rows → no file (None, 0)."""
    today = (now or utcnow()).astimezone(tz).date()
    before = dt.datetime.combine(today - dt.timedelta(days=keep_days), dt.time(), tzinfo=tz).astimezone(dt.UTC)
    path, out = archive_file(folder, today)
    try:
        with out:
            n = archive_history(db, before, out, tz=tz)
    except BaseException:
        if path.stat().st_size == 0:
            path.unlink(missing_ok=True)
        raise
    if n == 0:
        path.unlink()
        log.debug("history archive: no rows from before %s", before.astimezone(tz).date())
        return None, 0
    log.info("history archive: %d row(s) from before %s moved into %s", n, before.astimezone(tz).date(), path)
    return path, n


def history_archive_job(db: Database, tz: ZoneInfo, keep_days: int, folder: Path) -> tuple[Path | None, int]:
    """The scheduled job (daily, with PROMO_HISTORY_KEEP_DAYS set): archives when no other
    process of the cluster is archiving, else leaves it to that one ((None, 0))."""
    with archive_turn(db, folder) as mine:
        if not mine:
            log.info("history archive: another process of the cluster is archiving; left to it")
            return None, 0
        return archive_old_history(db, tz, keep_days, folder)
