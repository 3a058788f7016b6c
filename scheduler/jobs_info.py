"""What `promo jobs list` shows: every recurring job and its next run in local time."""

from __future__ import annotations

import datetime as dt
from typing import Any

from apscheduler.triggers.interval import IntervalTrigger

from scheduler.config import Settings
from scheduler.models import utcnow


def describe_jobs(settings: Settings, now: dt.datetime | None = None) -> list[dict[str, Any]]:
    now = (now or utcnow()).astimezone(settings.timezone)
    tz = settings.timezone
    rows: list[dict[str, Any]] = []

    def add(job_id: str, trigger: Any, label: str, what: str) -> None:
        nxt = trigger.get_next_fire_time(None, now)
        rows.append({"id": job_id, "trigger": label,
                     "next_run": nxt.astimezone(tz).isoformat(timespec="seconds") if nxt else None, "what": what})

    add("dispatch", IntervalTrigger(seconds=settings.poll_seconds, timezone=tz, start_date=now),
        f"every {settings.poll_seconds:g}s + at each post's due time", "publish due posts")
    add("housekeeping", IntervalTrigger(seconds=max(1.0, settings.lease_seconds / 3), timezone=tz, start_date=now),
        f"every {max(1.0, settings.lease_seconds / 3):g}s", "renew leases; resolve leases of dead workers")
    # The jobs' own triggers, so this list cannot drift from what the service runs.
    from jobs.daily_highlight import describe_trigger, highlight_trigger
    from jobs.event_promotion import INTERVAL_MINUTES

    # next_run is the next highlight moment; the catch-up sweep in between is not shown.
    add("daily-highlight", highlight_trigger(settings, sweep=False), describe_trigger(settings),
        "create the day's UMKM highlight on " + (", ".join(settings.highlight_channels) or "(no channels set)"))
    add("event-promotion", IntervalTrigger(minutes=INTERVAL_MINUTES, timezone=tz, start_date=now),
        f"every {INTERVAL_MINUTES}m",
        "plan event announcement / reminder / day-of posts on "
        + (", ".join(settings.event_channels) or "(no channels set)"))
    return rows
