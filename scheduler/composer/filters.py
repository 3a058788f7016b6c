"""Template filters: rupiah, Indonesian long dates, times with the zone abbreviation, hashtags."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_time, get_timezone_name
from babel.numbers import format_currency, format_decimal

_WORD_BREAK = re.compile(r"[\s\-‐‑–—]+")
_NOT_IN_HASHTAG = re.compile(r"\W+")


def rupiah(value: int | float | str | None) -> str:
    """``1250000`` → ``Rp 1.250.000`` (whole rupiah, Indonesian grouping)."""
    if value is None or value == "":
        return ""
    return format_currency(value, "IDR", locale="id", format="¤ #,##0", currency_digits=False)


def number(value: int | float, language: str = "id") -> str:
    return format_decimal(value, locale=language)


def _local(value: dt.datetime | dt.date, tz: ZoneInfo) -> dt.datetime | dt.date:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.astimezone(tz)
    return value


def long_date(value: dt.datetime | dt.date, tz: ZoneInfo, language: str = "id") -> str:
    """``Rabu, 25 Oktober 2023`` (``Wednesday, 25 October 2023`` in English)."""
    local = _local(value, tz)
    day = local.date() if isinstance(local, dt.datetime) else local
    return format_date(day, "EEEE, d MMMM y", locale=language)


def short_date(value: dt.datetime | dt.date, tz: ZoneInfo, language: str = "id") -> str:
    """``25 Okt 2023``."""
    local = _local(value, tz)
    day = local.date() if isinstance(local, dt.datetime) else local
    return format_date(day, "d MMM y", locale=language)


def zone_abbreviation(value: dt.datetime, tz: ZoneInfo) -> str:
    """WIB / WITA / WIT for Indonesian zones (CLDR's Indonesian names), else the UTC offset."""
    local = _local(value, tz)
    assert isinstance(local, dt.datetime)
    name = get_timezone_name(local, "short", locale="id")
    return name if name.isalpha() else local.strftime("UTC%z")


def time_tz(value: dt.datetime, tz: ZoneInfo, language: str = "id") -> str:
    """``19.00 WITA`` (Indonesian style with a dot; ``19:00 WITA`` in English)."""
    local = _local(value, tz)
    assert isinstance(local, dt.datetime)
    pattern = "HH.mm" if language == "id" else "HH:mm"
    return f"{format_time(local, pattern, locale=language)} {zone_abbreviation(local, tz)}"


def date_range(start: dt.datetime, end: dt.datetime | None, tz: ZoneInfo, language: str = "id") -> str:
    """One day: ``Rabu, 25 Oktober 2023``; several: ``25 Okt – 29 Okt 2023``."""
    if end is None:
        return long_date(start, tz, language)
    s, e = _local(start, tz), _local(end, tz)
    assert isinstance(s, dt.datetime) and isinstance(e, dt.datetime)
    if s.date() == e.date():
        return long_date(s, tz, language)
    if s.year == e.year:
        return f"{format_date(s.date(), 'd MMM', locale=language)} – {format_date(e.date(), 'd MMM y', locale=language)}"
    return f"{short_date(s, tz, language)} – {short_date(e, tz, language)}"


def hashtag(tag: str) -> str:
    """One tag as a hashtag every platform links whole: ``kue-kue`` → ``#KueKue``.

    Platforms end a hashtag at a hyphen or space (X, Instagram, Facebook, Threads, LinkedIn,
    Telegram, Mastodon), so words joined by them are run together, each capitalised
    (CamelCase reads better, and screen readers say the words apart). A tag of one word keeps
    its case as written. Other characters that cannot be in a hashtag are dropped; ``""`` when
    nothing is left.
    """
    words = [w for w in _WORD_BREAK.split(str(tag).strip().lstrip("#")) if w]
    if len(words) > 1:
        words = [w[:1].upper() + w[1:] for w in words]
    text = _NOT_IN_HASHTAG.sub("", "".join(words))
    return f"#{text}" if text else ""


def hashtags(tags: Iterable[str] | str | None, limit: int | None = None) -> str:
    """``["UMKM", "#Balikpapan", "kue-kue"]`` → ``#UMKM #Balikpapan #KueKue``.

    No duplicates (platforms compare hashtags ignoring case), optional limit.
    """
    if not tags:
        return ""
    items = tags.split(";") if isinstance(tags, str) else list(tags)
    out: list[str] = []
    seen: set[str] = set()
    for t in items:
        tag = hashtag(t)
        if tag and tag.casefold() not in seen:
            seen.add(tag.casefold())
            out.append(tag)
    if limit is not None:
        out = out[:limit]
    return " ".join(out)
