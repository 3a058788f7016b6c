"""What every command shares: exit codes, the parser class, the App (settings and database), tables.

Imports nothing heavy at module level (no SQLAlchemy, APScheduler, httpx, Jinja2, Pillow):
`promo --help` and usage errors answer at once. Each command imports what it needs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TextIO

from scheduler import errors

if TYPE_CHECKING:
    from scheduler.actions import Actor, Context
    from scheduler.config import Settings
    from scheduler.storage.db import Database

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
#: What --status accepts; tests/integration/test_cli_output.py checks them against models and views.
POST_STATUSES = ("draft", "pending_approval", "scheduled", "publishing", "retry_wait", "published", "failed",
                 "needs_review", "cancelled", "expired")
#: An attempt's outcome (besides the status it led to), for `promo history --status`.
OUTCOMES = ("published", "duplicate", "rate_limited", "budget", "auth", "config", "rejected", "transient",
            "unknown", "absent", "lease_expired")
POST_FIELDS = ("id", "channel", "platform", "kind", "status", "scheduled_at", "published_at", "text", "remote_id",
               "remote_url", "attempts", "error")


class UsageError(Exception):
    pass


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"{self.prog}: usage error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


class App:
    """Settings and database, opened once per command; the operator acting (full rights)."""

    def __init__(self, args: argparse.Namespace):
        from scheduler.config import load_settings

        self.args = args
        self.settings: Settings = load_settings()
        self._db: Database | None = None
        self._ctx: Context | None = None
        self.actor: str = getattr(args, "as_user", None) or self.settings.user

    @property
    def db(self) -> Database:
        """Opened on first use: commands that need no database start without SQLAlchemy."""
        if self._db is None:
            from scheduler.storage.db import Database

            self._db = Database(self.settings.database_url, self.settings.db_busy_seconds)
        return self._db

    @property
    def ctx(self) -> Context:
        """What the actions work with (the same settings and database)."""
        if self._ctx is None:
            from scheduler.actions import Context

            self._ctx = Context(self.settings, self.db)
        return self._ctx

    @property
    def who(self) -> Actor:
        """The CLI acts as the operator: full rights, recorded under ``--as``/PROMO_USER/login name."""
        from scheduler.actions import Actor

        return Actor(self.actor, None)

    def require_schema(self) -> None:
        if not self.db.is_current():
            raise errors.ConfigError(f"the database {self.db.engine.url.render_as_string(hide_password=True)} "
                                     "has no tables yet: run `promo db upgrade`")

    def composer(self) -> Any:
        return self.ctx.composer()

    def local(self, value: dt.datetime | None) -> str:
        if value is None:
            return ""
        return value.astimezone(self.settings.timezone).isoformat(timespec="seconds")


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def human(value: Any) -> str:
    """A value as people read it: lists joined with commas, yes/no for booleans, "" for nothing."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(human(v) for v in value)
    return str(value)


def write_json_rows(rows: Iterable[dict[str, Any]], out: TextIO, *, pretty: bool = True) -> int:
    """Rows as one JSON array, written row by row (a list of 100,000 posts is never held as one
    string); returns the count. ``pretty``: the text ``json.dumps(rows, indent=2)`` gives; else a
    row a line (json's C encoder: 1.4x faster for a whole history's export)."""
    n = 0
    for r in rows:
        out.write(",\n" if n else "[\n")
        if pretty:  # one level deeper, as inside the array (a JSON text has no raw newline in its strings)
            out.write("  " + json.dumps(r, ensure_ascii=False, indent=2, default=str).replace("\n", "\n  "))
        else:
            out.write("  " + json.dumps(r, ensure_ascii=False, default=str))
        n += 1
    out.write("\n]\n" if n else "[]\n")
    return n


def emit(rows: Iterable[dict[str, Any]], fmt: str, columns: Sequence[str], table_columns: Sequence[str] | None = None,
         widths: dict[str, int] | None = None) -> None:
    """Rows as JSON, CSV (both streamed as they come) or a table (which needs them all for its widths)."""
    if fmt == "json":
        write_json_rows(rows, sys.stdout)
        return
    if fmt == "csv":
        from scheduler.history_read import write_csv

        # The byte order mark lets Excel read Indonesian text as UTF-8 (see README, "CSV").
        write_csv(({k: human(r.get(k)) for k in columns} for r in rows), columns, sys.stdout, bom=True)
        return
    rows = list(rows)
    cols = list(table_columns or columns)
    widths = widths or {}

    def cell(r: dict[str, Any], c: str) -> str:
        v = r.get(c)
        s = human(v).replace("\n", " ⏎ ")
        limit = widths.get(c, 40)
        return s if len(s) <= limit else s[: limit - 1] + "…"

    table = [[c.upper() for c in cols]] + [[cell(r, c) for c in cols] for r in rows]
    size = [max(len(row[i]) for row in table) for i in range(len(cols))]
    for row in table:
        print("  ".join(v.ljust(size[i]) for i, v in enumerate(row)).rstrip())
    if not rows:
        print("(none)")


def one_or_more_of(valid: Sequence[str]) -> Callable[[str], str]:
    """An argparse type for a comma-separated list of fixed words: a typo is a usage error naming the words."""
    def check(value: str) -> str:
        bad = [v for v in (x.strip() for x in value.split(",")) if v and v not in valid]
        if bad:
            raise argparse.ArgumentTypeError(f"{', '.join(repr(b) for b in bad)}: not one of {', '.join(valid)}")
        return value

    return check


def known_channel(app: App, session: Any, name: str | None) -> str | None:
    """``--channel NAME`` checked against the channels there are (configured or stored): a typo is a usage error."""
    if name is None:
        return None
    from sqlalchemy import select

    from scheduler.tables import channels

    known = {c.name for c in app.settings.channels} | set(session.scalars(select(channels.c.name)))
    wanted = name.strip().lower()
    if wanted not in known:
        raise UsageError(f"--channel {name!r}: no such channel; the channels are "
                         + (", ".join(sorted(known)) or "(none configured: see PROMO_CHANNELS)"))
    return wanted


def with_reason(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The table's one ``reason`` column: an attempt's error, or why the status changed."""
    return [{**r, "reason": r.get("error") or r.get("note")} for r in rows]


def usage_on_bad_input(fn: Callable[[], Any]) -> Any:
    """Run ``fn``; bad input it reports (a ValidationError) is a usage error (exit 2)."""
    try:
        return fn()
    except errors.ValidationError as exc:
        raise UsageError(str(exc)) from None
