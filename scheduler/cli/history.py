"""`promo history` and `promo audit`: what was published, and who changed what."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any

from scheduler import errors
from scheduler.cli.output import (
    EXIT_OK,
    OUTCOMES,
    POST_STATUSES,
    App,
    UsageError,
    emit,
    known_channel,
    one_or_more_of,
    with_reason,
    write_json_rows,
)

#: Rows `promo history` shows in a table when no --limit is given.
DEFAULT_PAGE = 50
_TABLE = ("started_at", "post_id", "channel", "action", "outcome", "to_status", "http_status", "remote_url", "reason")


def cmd_history(app: App) -> int:
    """A table shows one page, newest first (``--limit``, default 50; ``--after ID`` for older
    rows) and how to see more. ``--format csv|json|jsonl`` without --limit/--after stream every
    matching row, oldest first, in constant memory; with them, the page, newest first."""
    from scheduler import history_read  # Core only: `promo history` starts without the ORM
    from scheduler.rows import HISTORY_FIELDS

    if app.args.cmd_history == "archive":
        return cmd_history_archive(app)
    app.require_schema()
    if app.args.limit is not None and app.args.limit < 1:
        raise UsageError(f"--limit {app.args.limit}: must be at least 1")
    try:
        f = history_read.HistoryFilter.parse(app.settings.timezone, channel=app.args.channel, status=app.args.status,
                                      since=app.args.since, until=app.args.until, all=app.args.all,
                                      post_id=app.args.post)
    except errors.ValidationError as exc:
        raise UsageError(str(exc)) from None
    fmt, tz = app.args.format, app.settings.timezone
    paged = fmt == "table" or app.args.limit is not None or app.args.after is not None
    with app.db.read_connection() as conn:
        known_channel(app, conn, app.args.channel)
        if not paged:
            rows = history_read.iter_history(conn, f, tz)
            if fmt == "csv":
                history_read.write_csv(rows, HISTORY_FIELDS, sys.stdout)
            elif fmt == "jsonl":
                history_read.write_jsonl(rows, HISTORY_FIELDS, sys.stdout)
            else:
                write_json_rows(rows, sys.stdout, pretty=False)  # a row a line: a whole history
            return EXIT_OK
        page = history_read.history_page(conn, f, tz, after=app.args.after, limit=app.args.limit or DEFAULT_PAGE)
    if fmt == "jsonl":
        history_read.write_jsonl(page.rows, HISTORY_FIELDS, sys.stdout)
    else:
        emit(with_reason(page.rows) if fmt == "table" else page.rows, fmt, HISTORY_FIELDS, _TABLE,
             {"reason": 50, "remote_url": 45})
    if page.next_after is not None:
        # On stderr, so a page piped into a file or a script stays clean.
        every = "`--format csv` for all" if fmt == "table" else "without --limit and --after for all"
        print(f"{len(page.rows)} shown, more there: `promo history {more_args(app)}--after {page.next_after}` "
              f"for older rows, {every}", file=sys.stderr if fmt != "table" else sys.stdout)
    return EXIT_OK


def more_args(app: App) -> str:
    """The filters typed, to repeat them in the hint for the next page."""
    parts = []
    for opt in ("channel", "status", "since", "until", "post", "limit"):
        value = getattr(app.args, opt)
        if value is not None:
            parts.append(f"--{opt} {shlex.quote(str(value))}")
    if app.args.all:
        parts.append("--all")
    if app.args.format != "table":
        parts.append(f"--format {app.args.format}")
    return "".join(p + " " for p in parts)


def cmd_history_archive(app: App) -> int:
    """`promo history archive --before DATE FILE`: rows older than DATE into a gzip CSV, then deleted."""
    from scheduler import views

    app.require_schema()
    path = Path(app.args.file)
    if not path.name.endswith(".csv.gz"):
        raise UsageError(f"{path}: the archive is a gzip CSV, name it ….csv.gz")
    try:
        before = views.day_bound(app.args.before, app.settings.timezone, end=False, what="--before")
    except errors.ValidationError as exc:
        raise UsageError(str(exc)) from None
    from jobs.history_archive import archive_turn

    with archive_turn(app.db, app.settings.history_archive_dir) as mine:
        if not mine:  # two archives at once would each copy the same rows
            raise errors.PromoError("another process is archiving history right now (the daily "
                                     "PROMO_HISTORY_KEEP_DAYS run or another `promo history archive`); "
                                     "run this again when it has finished")
        try:
            out = path.open("xb")  # never over an earlier archive
        except FileExistsError:
            raise UsageError(f"{path}: already exists; choose another name (an archive is never overwritten)") from None
        except OSError as exc:
            raise UsageError(f"{path}: cannot create it ({exc.strerror})") from None
        with out:
            n = views.archive_history(app.db, before, out, tz=app.settings.timezone)
    print(f"archived {n:,} history row(s) from before {app.args.before} into {path}; "
          f"deleted {n:,} from the database (rows of posts still waiting, publishing or in review stay)")
    return EXIT_OK


def cmd_audit(app: App) -> int:
    from scheduler import views

    app.require_schema()
    tz = app.settings.timezone
    try:
        since = views.day_bound(app.args.since, tz, end=False, what="--since") if app.args.since else None
        until = views.day_bound(app.args.until, tz, end=True, what="--until") if app.args.until else None
    except errors.ValidationError as exc:
        raise UsageError(str(exc)) from None
    with app.db.read_session() as session:
        rows = views.audit_rows(session, tz, since=since, until=until, actor=app.args.actor, entity=app.args.entity)
    if app.args.format != "json":
        rows = [{**r, "detail": views.detail_text(r["detail"])} for r in rows]
    emit(rows, app.args.format, views.AUDIT_FIELDS, ("at", "actor", "action", "entity", "entity_id", "detail"),
         {"detail": 70})
    return EXIT_OK


def add_history(sub: Any) -> None:
    hi = sub.add_parser("history", help="every publish attempt (and with --all every status change)",
                        description="A table shows the newest 50 rows and how to see older ones; "
                                    "--format csv/json/jsonl without --limit or --after give every row, oldest first.")
    hi.add_argument("--channel", help="one channel")
    hi.add_argument("--status", type=one_or_more_of(sorted(set(POST_STATUSES) | set(OUTCOMES))), metavar="S[,S…]",
                    help="outcome or resulting status, comma-separated (e.g. published,failed)")
    hi.add_argument("--since", metavar="D", help="from this date (YYYY-MM-DD, local)")
    hi.add_argument("--until", metavar="D", help="up to and including this date")
    hi.add_argument("--post", type=int, metavar="ID", help="one post")
    hi.add_argument("--all", action="store_true", help="include status changes, not only attempts")
    hi.add_argument("--limit", type=int, metavar="N",
                    help=f"one page of N rows, newest first (a table: default {DEFAULT_PAGE})")
    hi.add_argument("--after", type=int, metavar="ID", help="the page of rows older than row ID (from the hint)")
    hi.add_argument("--format", choices=("table", "csv", "json", "jsonl"), default="table",
                    help="output format (csv, json: a JSON array, jsonl: one object per line)")
    hi.set_defaults(func=cmd_history, cmd_history=None)
    ha = hi.add_subparsers(dest="cmd_history", metavar="ACTION").add_parser(
        "archive", help="move old rows into a gzip CSV file and delete them from the database")
    ha.add_argument("--before", required=True, metavar="D", help="rows that started before this date (YYYY-MM-DD, local)")
    ha.add_argument("file", help="the new archive, NAME.csv.gz (never overwritten)")
    ha.set_defaults(func=cmd_history)


def add_audit(sub: Any) -> None:
    au = sub.add_parser("audit", help="who changed what: imports, approvals, channels, users (oldest first)")
    au.add_argument("--since", metavar="D", help="from this date (YYYY-MM-DD, local)")
    au.add_argument("--until", metavar="D", help="up to and including this date")
    au.add_argument("--actor", metavar="U", help="one person (as recorded: --as, PROMO_USER or login name)")
    au.add_argument("--entity", choices=("channel", "event", "highlight", "post", "product", "umkm", "user"),
                    help="one kind of thing changed")
    au.add_argument("--format", choices=("table", "csv", "json"), default="table", help="output format")
    au.set_defaults(func=cmd_audit)
