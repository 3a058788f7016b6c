"""Time in the database: every timestamp is stored in UTC and handed back timezone-aware."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import DateTime, TypeDecorator


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Stores UTC; always hands back an aware datetime (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use an aware UTC datetime")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def local(value: dt.datetime | None, tz: ZoneInfo) -> str:
    """ISO 8601 in the organisation's timezone, with its offset; "" for no time."""
    if value is None:
        return ""
    return value.astimezone(tz).isoformat(timespec="seconds")


def seconds_since(then: dt.datetime, now: dt.datetime, places: int = 3) -> float:
    """Seconds from `then` to `now`, rounded *up* to `places` decimals: an age just past a
    threshold (1.0004 s after a 1 s limit) must not print as the threshold itself."""
    scale = 10.0 ** places
    return math.ceil((now - then).total_seconds() * scale) / scale
