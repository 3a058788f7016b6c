"""The metrics job: read engagement counters that came due (scheduler/metrics.py does the work)."""

from __future__ import annotations

from scheduler.config import Settings
from scheduler.metrics import collect
from scheduler.storage.db import Database


async def collect_metrics(settings: Settings, db: Database) -> None:
    """One collection run; never touches a post's status or claim."""
    await collect(settings, db)
