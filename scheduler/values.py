"""Plain values read from and written for people: yes/no words, times, durations.

One definition each, used by the settings, the importer, the adapters' channel options, the
CLI, the web app and the jobs' messages, so a word accepted in one place is accepted in all.
"""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

#: Words for yes and no, in English and Indonesian (compared lower-cased, trimmed).
TRUE_WORDS = frozenset({"1", "true", "yes", "y", "ya", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "n", "tidak", "off"})
BOOL_HINT = "true/false (also 1/0, yes/no, y/n, ya/tidak, on/off)"

#: A time people write: ``YYYY-MM-DD HH:MM[:SS]`` or ISO 8601 (``T`` between date and time, optional offset).
_WHEN = re.compile(r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}")


def parse_bool(raw: str) -> bool:
    """One of :data:`TRUE_WORDS` or :data:`FALSE_WORDS`; anything else is a ``ValueError``."""
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError(f"{raw!r} is not {BOOL_HINT}")


def is_true(raw: str | None, default: bool = False) -> bool:
    """An optional yes/no option: ``default`` when absent or empty, else one of the true words."""
    if raw is None or not raw.strip():
        return default
    return raw.strip().lower() in TRUE_WORDS


def parse_when(value: str, tz: dt.tzinfo) -> dt.datetime:
    """``YYYY-MM-DD HH:MM[:SS]`` in ``tz``, or ISO 8601 with an offset → UTC.

    Refused: a date without a time, ISO's basic form without dashes and colons
    (``20271201T0900``), anything that is not a real date and time."""
    s = value.strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", s):
        raise ValueError(f"{s!r} has no time (write e.g. {s} 09:00)")
    if not _WHEN.match(s):
        raise ValueError(f"{s!r} is not a date and time: write YYYY-MM-DD HH:MM (2027-12-01 09:00) "
                         "or ISO 8601 (2027-12-01T09:00+07:00)")
    try:
        when = dt.datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{s!r} is not a valid date and time") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=tz)
    return when.astimezone(dt.UTC)


def human_duration(delta: dt.timedelta) -> str:
    """A duration as people write it in settings: ``2d``, ``1.5h``, ``30m``, ``45s``."""
    seconds = int(delta.total_seconds())
    if seconds >= 86400 and seconds % 86400 == 0:
        return f"{seconds // 86400}d"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f}h".replace(".0h", "h")
    if seconds >= 60:
        return f"{seconds // 60}m"
    return f"{seconds}s"


def local_time(when: dt.datetime, tz: ZoneInfo) -> str:
    """A moment in the organisation's timezone, to the minute, with the zone's name."""
    return when.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")
