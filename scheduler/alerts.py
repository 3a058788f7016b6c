"""Alerts to staff: a short post on PROMO_ALERT_CHANNEL when something needs a person.

Alerts are ordinary posts of kind ``alert`` (so they go through the dispatcher and the
history like any other), rate-limited to one per PROMO_ALERT_MIN_INTERVAL across all
processes (the alert channel's ``last_alert_at``); alerts held back meanwhile are
counted into the next one. An alert post that fails never raises another alert.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

from sqlalchemy import update

from scheduler.models import Channel, PostKind, PostStatus, utcnow
from scheduler.storage import channels as channel_store
from scheduler.storage import posts as post_store
from scheduler.storage.db import Database

log = logging.getLogger("promo.alerts")
MAX_ALERT_CHARS = 280


class Alerter:
    def __init__(self, db: Database, channel: str | None, min_interval: dt.timedelta,
                 clock: Callable[[], dt.datetime] = utcnow):
        self.db = db
        self.channel = channel
        self.min_interval = min_interval
        self.clock = clock
        self.held_back = 0
        self.sent: list[str] = []

    def __call__(self, message: str) -> None:
        log.warning("ALERT: %s", message)
        if not self.channel:
            return
        now = self.clock()
        with self.db.session() as session:
            row = channel_store.get_channel(session, self.channel)
            # One atomic update decides, so two processes cannot both send within the interval.
            res = session.execute(
                update(Channel).where(Channel.id == row.id)
                .where((Channel.last_alert_at.is_(None)) | (Channel.last_alert_at <= now - self.min_interval))
                .values(last_alert_at=now)
            )
            if res.rowcount == 0:  # type: ignore[attr-defined]
                self.held_back += 1
                return
            text = message
            if self.held_back:
                text += f" (+{self.held_back} more alert(s) held back since the last one)"
                self.held_back = 0
            if len(text) > MAX_ALERT_CHARS:
                text = text[: MAX_ALERT_CHARS - 1] + "…"
            post_store.create_post(session, channel=row, kind=PostKind.ALERT, text=f"[promo-scheduler] {text}",
                                   status=PostStatus.SCHEDULED, scheduled_at=now, actor="alerts",
                                   reason="alert")
            self.sent.append(text)
