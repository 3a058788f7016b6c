"""The dashboard's request parameters, declared once per route as types.

Each route takes a frozen dataclass of its parameters; :func:`parse` fills it from the
request's path and query string, converting each field with the converter declared on it
(:func:`param`). What does not convert is a ValidationError naming the parameter (answered
400); a post id no post can have is a NotFoundError (404). Handlers take their parameters
from here only, so nothing a visitor typed reaches the database or a date calculation
unchecked (the raw query is only echoed, escaped, into a page's filter form). Parameters a
route does not declare are ignored (a browser form sends its empty fields too).

The web app (FastAPI) reads the same declarations for its OpenAPI description: each field
is a string query (or path) parameter there, described by its converter's docstring.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import unicodedata
from collections.abc import Callable
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from starlette.requests import Request

from scheduler.errors import NotFoundError, ValidationError
from scheduler.models import PostStatus
from scheduler.reports import GROUPS
from scheduler.values import parse_bool
from scheduler.views import HistoryFilter, day_bound

#: Largest id a database row can have (SQLite and PostgreSQL BIGINT: signed 64 bits).
MAX_ID = 2**63 - 1
#: Longest text parameter (a channel name, a list of states, a date).
MAX_TEXT = 200

Converter = Callable[[str, str, ZoneInfo], Any]
P = TypeVar("P")


def param(convert: Converter, *, path: bool = False, default: Any = None) -> Any:
    """A dataclass field read from the query string (or the path) through ``convert(name, raw, tz)``;
    an absent or empty query parameter takes ``default``."""
    return dataclasses.field(default=default, metadata={"convert": convert, "path": path})


def parse(request: Request, spec: type[P], tz: ZoneInfo) -> P:
    """``spec`` filled from ``request``; ValidationError (or NotFoundError) naming the parameter."""
    values: dict[str, Any] = {}
    for f in dataclasses.fields(spec):  # type: ignore[arg-type]
        convert: Converter = f.metadata["convert"]
        if f.metadata["path"]:
            values[f.name] = convert(f.name, str(request.path_params[f.name]), tz)
            continue
        given = request.query_params.getlist(f.name)
        if len(given) > 1:
            raise ValidationError(f"{f.name}: given {len(given)} times; give it once")
        if given and given[0].strip():
            values[f.name] = convert(f.name, given[0], tz)
    return spec(**values)


def shown(raw: str) -> str:
    """``raw`` quoted for an error message, cut short when a visitor sent a novel."""
    return repr(raw if len(raw) <= 40 else raw[:40] + "…")


# --- converters ------------------------------------------------------------------------------

def text(name: str, raw: str, tz: ZoneInfo) -> str:
    """Printable text of at most MAX_TEXT characters, trimmed."""
    if len(raw) > MAX_TEXT:
        raise ValidationError(f"{name} {shown(raw)}: longer than {MAX_TEXT} characters")
    # Control characters (NUL above all: PostgreSQL refuses it in text) and unpaired surrogates
    # (from percent-encoded bytes that are not UTF-8) are never part of a name, state or date.
    if any(unicodedata.category(c) in ("Cc", "Cs") for c in raw):
        raise ValidationError(f"{name} {shown(raw)}: contains a control character or bytes that are not UTF-8")
    return raw.strip()


def channel_name(name: str, raw: str, tz: ZoneInfo) -> str:
    """A channel name, as stored (lower case)."""
    return text(name, raw, tz).lower()


def words(name: str, raw: str, tz: ZoneInfo) -> tuple[str, ...]:
    """A comma-separated list (``failed,needs_review``)."""
    return tuple(w.strip() for w in text(name, raw, tz).split(",") if w.strip())


def post_states(name: str, raw: str, tz: ZoneInfo) -> tuple[str, ...]:
    """A comma-separated list of post states."""
    states = words(name, raw, tz)
    known = [s.value for s in PostStatus]
    bad = [s for s in states if s not in known]
    if bad:
        raise ValidationError(f"{name} {', '.join(bad)!r}: not a post state ({', '.join(known)})")
    return states


def post_id(name: str, raw: str, tz: ZoneInfo) -> int:
    """A post id: ASCII digits only (``int()`` would also read ``٣`` as 3), within a row id's range."""
    if not (raw.isascii() and raw.isdigit()):
        raise ValidationError(f"post id {shown(raw)}: not a number")
    value = int(raw)
    if not 1 <= value <= MAX_ID:
        raise NotFoundError(f"no post with id {shown(raw)[1:-1]}")
    return value


def flag(name: str, raw: str, tz: ZoneInfo) -> bool:
    """A checkbox: 1/0, or any of the yes/no words (:data:`scheduler.values.TRUE_WORDS`)."""
    try:
        return parse_bool(raw)
    except ValueError:
        raise ValidationError(f"{name} {shown(raw)}: write 1 or 0") from None


def day(end: bool) -> Converter:
    """A day (``YYYY-MM-DD``, the whole day in the organisation's timezone) or a time, as UTC."""

    def convert(name: str, raw: str, tz: ZoneInfo) -> dt.datetime:
        return day_bound(text(name, raw, tz), tz, end=end, what=name)

    return convert


def local_day(name: str, raw: str, tz: ZoneInfo) -> dt.date:
    """A day, YYYY-MM-DD (in the organisation's timezone)."""
    value = text(name, raw, tz)
    try:
        if len(value) != 10:
            raise ValueError(value)
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ValidationError(f"{name} {shown(raw)}: not a date (YYYY-MM-DD)") from None


def month(name: str, raw: str, tz: ZoneInfo) -> dt.date:
    """A month, YYYY-MM (in the organisation's timezone)."""
    value = text(name, raw, tz)
    try:
        digits = value[:4] + value[5:]
        if len(value) != 7 or value[4] != "-" or not (digits.isascii() and digits.isdigit()):
            raise ValueError(value)
        if not 1 < int(value[:4]) < 9999:  # a month whose bounds in UTC a date can hold
            raise ValidationError(f"{name} {shown(raw)}: out of range")
        return dt.date(int(value[:4]), int(value[5:]), 1)
    except ValueError:
        raise ValidationError(f"{name} {shown(raw)}: not a month (YYYY-MM)") from None


def choice(*allowed: str) -> Converter:
    def convert(name: str, raw: str, tz: ZoneInfo) -> str:
        value = text(name, raw, tz).lower()
        if value not in allowed:
            raise ValidationError(f"{name} {shown(raw)}: one of {', '.join(allowed)}")
        return value

    return convert


# --- the parameters of each route ------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class NoParams:
    """A page that takes no parameters."""


@dataclasses.dataclass(frozen=True)
class PostRef:
    """``/posts/{id}``"""

    id: int = param(post_id, path=True)


@dataclasses.dataclass(frozen=True)
class PostQuery:
    """``/posts?status=failed,expired&channel=kota``"""

    status: tuple[str, ...] = param(post_states, default=())
    channel: str | None = param(channel_name)


@dataclasses.dataclass(frozen=True)
class HistoryQuery:
    """``/history?channel=kota&status=failed&since=2027-01-01&until=2027-01-31&all=1``"""

    channel: str | None = param(channel_name)
    #: outcomes or resulting states
    status: tuple[str, ...] = param(words, default=())
    since: dt.datetime | None = param(day(end=False))
    until: dt.datetime | None = param(day(end=True))
    all: bool = param(flag, default=False)

    def filter(self) -> HistoryFilter:
        return HistoryFilter(channel=self.channel, statuses=self.status, since=self.since, until=self.until,
                             all=self.all)


@dataclasses.dataclass(frozen=True)
class HistoryExport(HistoryQuery):
    """``/api/history``: the same filters, as JSON or (``format=csv``) CSV."""

    format: str = param(choice("json", "csv"), default="json")


@dataclasses.dataclass(frozen=True)
class ReportQuery:
    """``/reports?since=2027-03-01&until=2027-03-31&by=umkm``: posts published from ``since`` to
    ``until`` (local days, both included; by default the last 30 days), one row per ``by``."""

    since: dt.date | None = param(local_day)
    until: dt.date | None = param(local_day)
    by: str = param(choice(*GROUPS), default="umkm")


@dataclasses.dataclass(frozen=True)
class MonthQuery:
    """``/reports/monthly?month=2027-03``: one local calendar month (by default this one);
    ``format=csv`` downloads it."""

    month: dt.date | None = param(month)
    format: str = param(choice("html", "csv"), default="html")


@dataclasses.dataclass(frozen=True)
class MonthApi:
    """``/api/v1/reports/monthly?month=2027-03``: JSON, or ``format=csv``."""

    month: dt.date | None = param(month)
    format: str = param(choice("json", "csv"), default="json")
