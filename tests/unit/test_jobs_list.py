"""`promo jobs list` reads the job table of the scheduler `promo serve` builds (not a list of its
own): every job declared in scheduler/service.py appears with its trigger and next run."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import time_machine
from apscheduler.triggers.cron import CronTrigger

from scheduler import service
from scheduler.config import load_settings
from scheduler.jobs_info import describe_jobs
from scheduler.service import JobSpec

WITA = ZoneInfo("Asia/Makassar")
#: A Monday morning in Makassar.
NOW = dt.datetime(2027, 3, 1, 6, 0, tzinfo=WITA)


def rows_at(promo_env: Any, **settings: str) -> dict[str, dict[str, Any]]:
    env = promo_env(TIMEZONE="Asia/Makassar", HIGHLIGHT_CHANNELS="outbox", EVENT_CHANNELS="outbox", **settings)
    with time_machine.travel(NOW, tick=False):
        return {r["id"]: r for r in describe_jobs(load_settings(env))}


def test_every_declared_job_is_listed_with_its_trigger_and_next_run(promo_env) -> None:
    jobs = rows_at(promo_env, POLL_SECONDS="7", LEASE_SECONDS="90", HIGHLIGHT_TIME="10:30", HIGHLIGHT_DAYS="wed,fri")
    assert list(jobs) == ["dispatch", "housekeeping", "daily-highlight", "daily-highlight-sweep", "event-promotion",
                          "metrics"]
    assert jobs["metrics"]["trigger"] == "every 10m"
    assert jobs["metrics"]["what"] == "read likes, shares and views back at 1h, 1d, 7d, 30d after publishing"
    assert jobs["dispatch"]["trigger"] == "every 7s"
    assert jobs["dispatch"]["next_run"] == "2027-03-01T06:00:07+08:00"
    assert jobs["housekeeping"]["trigger"] == "every 30s"
    # The highlight's next run is its next moment (Wednesday 10:30), not the 15-minute sweep.
    assert jobs["daily-highlight"]["trigger"] == "10:30 on wed,fri"
    assert jobs["daily-highlight"]["next_run"] == "2027-03-03T10:30:00+08:00"
    assert jobs["daily-highlight"]["what"] == "create the day's UMKM highlight on outbox"
    # The sweep and event planning also run as soon as the service starts (catch-up).
    assert jobs["daily-highlight-sweep"]["trigger"] == jobs["event-promotion"]["trigger"] == "every 15m, and at start-up"
    assert jobs["daily-highlight-sweep"]["next_run"] == jobs["event-promotion"]["next_run"] == "2027-03-01T06:00:00+08:00"


def test_without_promo_metrics_no_counters_are_read(promo_env) -> None:
    assert "metrics" not in rows_at(promo_env, METRICS="false")
    assert rows_at(promo_env, METRICS_AT="2h,3d")["metrics"]["what"].startswith("read likes, shares and views back at 2h, 3d")


def test_with_approval_the_highlight_also_runs_at_its_creation_time(promo_env) -> None:
    jobs = rows_at(promo_env, HIGHLIGHT_TIME="01:00", HIGHLIGHT_DAYS="tue", REQUIRE_APPROVAL="true",
                   HIGHLIGHT_APPROVAL_LEAD="2h")
    # Created 2 hours early for approval: 23:00 the day before (Monday).
    assert jobs["daily-highlight"]["trigger"] == "23:00 on mon and 01:00 on tue"
    assert jobs["daily-highlight"]["next_run"] == "2027-03-01T23:00:00+08:00"


def test_a_job_added_to_the_declarations_is_listed_without_further_code(promo_env, monkeypatch) -> None:
    declared = service.declared_jobs

    def with_report(settings: Any) -> dict[str, JobSpec]:
        report = JobSpec("nightly-report", "mail the day's numbers", print, lambda s: (),
                         CronTrigger(hour=22, minute=15, timezone=settings.timezone), misfire_grace=60)
        return {**declared(settings), report.id: report}

    monkeypatch.setattr(service, "declared_jobs", with_report)
    jobs = rows_at(promo_env)
    assert jobs["nightly-report"] == {"id": "nightly-report", "trigger": "22:15 on *",
                                      "next_run": "2027-03-01T22:15:00+08:00", "what": "mail the day's numbers"}
