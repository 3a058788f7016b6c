"""`promo report`: what worked, from the engagement counters read back from the platforms."""

from __future__ import annotations

import datetime as dt
from typing import Any

from scheduler import errors
from scheduler.cli.output import EXIT_OK, App, UsageError, emit

GROUPS = ("umkm", "product", "channel", "platform", "kind", "hour")  # scheduler.reports.GROUPS, without its imports
#: Days a report covers when --since is not given (scheduler.reports.DEFAULT_DAYS, as the web's Reports page).
DEFAULT_DAYS = 30


def cmd_report(app: App) -> int:
    from scheduler import reports, views

    app.require_schema()
    tz = app.settings.timezone
    today = dt.datetime.now(tz).date()
    try:
        since = views.day_bound(app.args.since or (today - dt.timedelta(days=DEFAULT_DAYS - 1)).isoformat(), tz,
                                end=False, what="--since")
        until = views.day_bound(app.args.until or today.isoformat(), tz, end=True, what="--until")
    except errors.ValidationError as exc:
        raise UsageError(str(exc)) from None
    if until <= since:
        raise UsageError(f"--until ({app.args.until}) is before --since ({app.args.since})")
    with app.db.read_session() as session:
        rows = reports.report(session, since=since, until=until, by=app.args.by, tz=tz)
    best = reports.best_hours(rows) if app.args.by == "hour" else []
    fields = (app.args.by, *reports.FIELDS[1:])
    out: list[dict[str, Any]] = [{app.args.by: r["group"], **{k: v for k, v in r.items() if k != "group"}}
                                 for r in rows]
    if app.args.format == "table":
        # A group with nothing measured says so instead of showing zeros; an hour without posts: "-".
        out = [{**r, "engagement": ("-" if not r["posts"] else "n/a") if r["engagement"] is None else r["engagement"]}
               for r in out]
    emit(out, app.args.format, fields,
         (app.args.by, "posts", "measured", "reach_views", "engagement", "engagement_per_post", "best_platform"))
    if app.args.format == "table" and best:
        # Every hour of the day is a row (in the day's order); the best ones are named here.
        print("best hours: " + ", ".join(f"{h}-{int(h[:2]) + 1:02d}:00" for h in best))
    return EXIT_OK


def add_report(sub: Any) -> None:
    re_ = sub.add_parser("report", help="what worked: posts, reach/views and engagement read back from the platforms")
    re_.add_argument("--since", metavar="D", help=f"posts published from this date (YYYY-MM-DD, local; default "
                                                  f"{DEFAULT_DAYS} days ago)")
    re_.add_argument("--until", metavar="D", help="up to and including this date (default today)")
    re_.add_argument("--by", choices=GROUPS, default="channel",
                     help="one row per umkm, product, channel, platform, kind or hour of publishing (local time)")
    re_.add_argument("--format", choices=("table", "csv", "json"), default="table", help="output format")
    re_.set_defaults(func=cmd_report)
