"""What `promo jobs list` shows: the service's own job table, read without starting it.

The scheduler is built exactly as `promo serve` builds it (the jobs declared in
``scheduler/service.py``), so the list cannot drift from what the service runs.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from scheduler.config import Settings
from scheduler.models import utcnow
from scheduler.service import Service
from scheduler.storage.db import Database


def describe_jobs(settings: Settings, now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Every job `promo serve` would run, with its trigger and next run in local time."""
    # The database is not opened: the scheduler only needs its handle for the jobs' arguments.
    service = Service(settings, Database(settings.database_url, settings.db_busy_seconds))
    service.add_jobs()
    return job_rows(service.scheduler, settings.timezone, now)


def job_rows(scheduler: BaseScheduler, tz: ZoneInfo, now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """The scheduler's jobs (started or not) as rows: id, trigger, next_run, what."""
    now = (now or utcnow()).astimezone(tz)
    rows = []
    for job in scheduler.get_jobs():
        words = trigger_words(job.trigger)
        if hasattr(job, "next_run_time"):
            nxt = job.next_run_time
            if not scheduler.running:  # set when it was added: it runs as soon as the service starts
                words += ", and at start-up"
        else:  # added before the scheduler starts: this is the next run start gives it
            nxt = job.trigger.get_next_fire_time(None, now)
        rows.append({"id": job.id, "trigger": words,
                     "next_run": nxt.astimezone(tz).isoformat(timespec="seconds") if nxt else None,
                     "what": job.name})
    return rows


def trigger_words(trigger: BaseTrigger) -> str:
    """A trigger in words: "every 15m", "09:00 on mon,wed,fri"."""
    if isinstance(trigger, IntervalTrigger):
        return "every " + _duration(trigger.interval_length)
    if isinstance(trigger, CronTrigger):
        fields = {f.name: str(f) for f in trigger.fields}
        if fields["hour"].isdigit() and fields["minute"].isdigit():
            return f"{int(fields['hour']):02d}:{int(fields['minute']):02d} on {fields['day_of_week']}"
    if isinstance(trigger, OrTrigger):
        return " and ".join(trigger_words(t) for t in trigger.triggers)
    if isinstance(trigger, DateTrigger):
        return f"once at {trigger.run_date.isoformat(timespec='seconds')}"
    return str(trigger)


def _duration(seconds: float) -> str:
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"
