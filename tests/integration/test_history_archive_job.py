"""PROMO_HISTORY_KEEP_DAYS: a daily job moves history older than N days into a gzip CSV named by
the day in PROMO_HISTORY_ARCHIVE_DIR; only old rows go, a second run the same day writes a new
file instead of overwriting the first; unset, no such job."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
from pathlib import Path
from zoneinfo import ZoneInfo

import time_machine
from sqlalchemy import select

from jobs.history_archive import archive_turn, history_archive_job
from scheduler.config import load_settings
from scheduler.jobs_info import describe_jobs
from scheduler.models import HistoryEntry
from scheduler.storage.db import Database
from tests.integration.test_history_scale import seed

WITA = ZoneInfo("Asia/Makassar")


def started(db: Database) -> list[dt.datetime]:
    with db.read_session() as s:
        return [t.replace(tzinfo=dt.UTC) if t.tzinfo is None else t
                for t in s.scalars(select(HistoryEntry.started_at).order_by(HistoryEntry.id))]


def archived(path: Path) -> list[dict[str, str]]:
    with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def test_the_job_archives_only_rows_older_than_keep_days_and_never_clobbers(any_db: Database, tmp_path: Path) -> None:
    seed(any_db, 3 * 24 * 60)  # one a minute, 2027-01-01 08:00 → 2027-01-04 08:00 Makassar time
    folder = tmp_path / "archive"
    cutoff = dt.datetime(2027, 1, 3, tzinfo=WITA)  # on 2027-01-05, keeping 2 days: before 2027-01-03 00:00
    old = sum(t < cutoff for t in started(any_db))
    with time_machine.travel(dt.datetime(2027, 1, 5, 3, 0, tzinfo=WITA), tick=False):
        path, n = history_archive_job(any_db, WITA, 2, folder)
    assert path == folder / "history-2027-01-05.csv.gz" and n == old > 0
    rows = archived(path)
    assert len(rows) == old and all(dt.datetime.fromisoformat(r["started_at"]) < cutoff for r in rows)
    left = started(any_db)
    assert len(left) == 3 * 24 * 60 - old and min(left) >= cutoff
    first = path.read_bytes()
    # Again the same day (a restart): nothing older is left, the first file stays as it was.
    with time_machine.travel(dt.datetime(2027, 1, 5, 9, 0, tzinfo=WITA), tick=False):
        assert history_archive_job(any_db, WITA, 2, folder) == (None, 0)
    assert path.read_bytes() == first and sorted(p.name for p in folder.iterdir()) == ["history-2027-01-05.csv.gz"]
    # The same day with a shorter keep: a second file, the first untouched.
    with time_machine.travel(dt.datetime(2027, 1, 5, 10, 0, tzinfo=WITA), tick=False):
        path2, n2 = history_archive_job(any_db, WITA, 1, folder)
    assert path2 == folder / "history-2027-01-05-2.csv.gz" and n2 == len(archived(path2)) == 24 * 60
    assert path.read_bytes() == first


def test_one_process_of_the_cluster_archives_at_a_time(any_db: Database, tmp_path: Path) -> None:
    """Every host's service runs the job at 03:00: while one process holds the archiving turn,
    another's run leaves the rows to it (two at once would each copy the same rows into their own
    file); once the turn is free the next run archives them all, once."""
    seed(any_db, 600)  # 2027-01-01 08:00 onwards, all older than the cutoff below
    folder = tmp_path / "archive"
    other = Database(any_db.url)  # another host's service: its own engine and connections
    try:
        with time_machine.travel(dt.datetime(2027, 1, 5, 3, 0, tzinfo=WITA), tick=False):
            with archive_turn(any_db, folder) as mine:
                assert mine
                assert history_archive_job(other, WITA, 2, folder) == (None, 0)
                assert len(started(any_db)) == 600 and not list(folder.glob("*.csv.gz"))
            path, n = history_archive_job(other, WITA, 2, folder)
    finally:
        other.dispose()
    assert path is not None and n == 600
    rows = archived(path)
    assert len({r["id"] for r in rows}) == len(rows) == 600 and started(any_db) == []


def test_the_job_is_declared_only_with_keep_days(promo_env, tmp_path: Path) -> None:
    with time_machine.travel(dt.datetime(2027, 3, 1, 6, 0, tzinfo=WITA), tick=False):
        assert "history-archive" not in {r["id"] for r in describe_jobs(load_settings(promo_env()))}
        jobs = {r["id"]: r for r in describe_jobs(load_settings(promo_env(HISTORY_KEEP_DAYS="90",
                                                                          HISTORY_ARCHIVE_DIR=str(tmp_path / "a"))))}
    job = jobs["history-archive"]
    assert job["what"] == f"archive history older than 90 days into {tmp_path / 'a'}"
    assert job["next_run"] == "2027-03-02T03:00:00+08:00"


def test_keep_days_must_be_a_whole_number_of_days(promo_env) -> None:
    import pytest

    from scheduler.errors import ConfigError

    with pytest.raises(ConfigError, match="PROMO_HISTORY_KEEP_DAYS"):
        load_settings(promo_env(HISTORY_KEEP_DAYS="0"))
    assert load_settings(promo_env()).history_keep_days is None
