"""How each PROMO_* setting's text becomes its value: the casts the declarations in
:mod:`scheduler.settings_table` name. Each raises ``ValueError`` (or :class:`SettingProblems`)
saying what is wrong, never naming the value of a secret."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
from collections.abc import Callable
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from scheduler.values import parse_bool

PREFIX = "PROMO_"
WEEKDAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$", re.I)


def parse_duration(value: str) -> dt.timedelta:
    """``90``/``90s``, ``15m``, ``6h``, ``2d`` → timedelta. ValueError on anything else."""
    m = _DURATION.match(value or "")
    if not m:
        raise ValueError(f"{value!r} is not a duration like 90s, 15m, 6h or 2d")
    n, unit = float(m.group(1)), (m.group(2) or "s").lower()
    return dt.timedelta(seconds=n * {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit])


def parse_clock(value: str) -> dt.time:
    """``HH:MM`` (24 h) → time. ValueError otherwise."""
    m = re.fullmatch(r"\s*(\d{1,2})[:.](\d{2})\s*", value or "")
    if not m or int(m.group(1)) > 23 or int(m.group(2)) > 59:
        raise ValueError(f"{value!r} is not a time like 09:00")
    return dt.time(int(m.group(1)), int(m.group(2)))


def parse_slots(value: str) -> tuple[dt.time, ...]:
    return tuple(sorted({parse_clock(v) for v in value.split(",") if v.strip()}))


def default_templates_dir() -> Path:
    """./templates when the current folder has one (a checkout, or a copy staff edit), else the
    templates that ship with promo (in the installed package, or this checkout), so `promo`
    works from any folder."""
    from scheduler.shipped import templates_dir

    here = Path("templates")
    return here if here.is_dir() else templates_dir()


def _login_name() -> str:
    """Who runs the command, for history and audit rows when neither --as nor PROMO_USER says."""
    import getpass

    try:
        return getpass.getuser()  # LOGNAME, USER, LNAME, USERNAME, then the password database
    except (OSError, KeyError):
        return f"uid-{os.getuid()}" if hasattr(os, "getuid") else "system"


class SettingProblems(ValueError):
    """More than one problem with one value (each one is reported)."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


def _text(value: str) -> str:
    return value


def _networks(value: str) -> tuple[str, ...]:
    """Comma-separated addresses or networks (``10.0.0.0/8``), each checked."""
    items = tuple(p.strip() for p in value.split(",") if p.strip())
    bad = []
    for item in items:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            bad.append(f"{item!r} is not an address or network")
    if bad:
        raise SettingProblems(bad)
    return items


def _optional(value: str) -> str | None:
    return value or None


def _bool(value: str) -> bool:
    return False if not value.strip() else parse_bool(value)


def _number(minimum: float, integer: bool = False) -> Callable[[str], float]:
    def cast(value: str) -> float:
        try:
            number = int(value) if integer else float(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a {'whole ' if integer else ''}number") from None
        if number < minimum:
            raise ValueError(f"must be at least {minimum}")
        return number
    cast.__name__ = f"{'whole ' if integer else ''}number >= {minimum}"
    return cast


def _zone(value: str) -> ZoneInfo:
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown timezone {value!r} (use an IANA name like Asia/Makassar)") from None


def _choice(*allowed: str, upper: bool = False) -> Callable[[str], str]:
    def cast(value: str) -> str:
        value = value.upper() if upper else value.lower()
        if value not in allowed:
            raise ValueError(f"{value!r} is not {', '.join(allowed[:-1])} or {allowed[-1]}")
        return value
    return cast


def _language(value: str) -> str:
    value = value.lower()
    if value not in ("id", "en"):
        raise ValueError(f"{value!r} is not supported (id or en)")
    return value


def _database_url(value: str) -> str:
    if "://" not in value:
        raise ValueError("not a database URL (e.g. sqlite:///promo.db)")
    return value


def _graph_version(value: str) -> str | None:
    if value and not re.fullmatch(r"v\d+\.\d+", value):
        raise ValueError(f"{value!r} is not a Graph API version like v21.0")
    return value or None


def _public_url(value: str) -> str | None:
    if value and not value.startswith(("http://", "https://")):
        raise ValueError("must start with http:// or https://")
    return value.rstrip("/") or None


def _templates_dir(value: str) -> Path:
    return Path(value) if value else default_templates_dir()


def _user(value: str) -> str:
    return value or _login_name()


def _names(value: str) -> tuple[str, ...]:
    return tuple(v.strip().lower() for v in value.split(",") if v.strip())


def _channel_name(value: str) -> str | None:
    return value.lower() or None


def _weekdays(value: str) -> tuple[int, ...]:
    days: set[int] = set()
    bad: list[str] = []
    for d in (x.strip() for x in value.upper().split(",") if x.strip()):
        if d[:3] in WEEKDAYS:
            days.add(WEEKDAYS.index(d[:3]))
        else:
            bad.append(f"{d!r} is not a weekday (mon … sun)")
    if bad:
        raise SettingProblems(bad)
    return tuple(sorted(days))


def parse_budget(value: str) -> tuple[tuple[int, dt.timedelta], ...]:
    """``50/24h`` or ``100/15m,1000/24h`` → ((count, window), …); ``none`` → () (no budget)."""
    if value.strip().lower() in ("none", "off"):
        return ()
    out: list[tuple[int, dt.timedelta]] = []
    for part in (p.strip() for p in value.split(",") if p.strip()):
        count, _, window = part.partition("/")
        try:
            limit, span = int(count), parse_duration(window)
        except ValueError:
            limit, span = 0, dt.timedelta(0)
        if limit < 1 or span <= dt.timedelta(0):
            raise ValueError(f"{part!r} is not a budget like 50/24h or 100/15m,1000/24h (or none)")
        out.append((limit, span))
    if not out:
        raise ValueError("empty (give a budget like 50/24h, or none)")
    return tuple(out)
