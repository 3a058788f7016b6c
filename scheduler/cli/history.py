"""`promo history` and `promo audit`: what was published, and who changed what."""

from __future__ import annotations

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
)


def cmd_history(app: App) -> int:
    from scheduler import views

    app.require_schema()
    try:
        f = views.HistoryFilter.parse(app.settings.timezone, channel=app.args.channel, status=app.args.status,
                                      since=app.args.since, until=app.args.until, all=app.args.all,
                                      post_id=app.args.post)
    except errors.ValidationError as exc:
        raise UsageError(str(exc)) from None
    with app.db.read_session() as session:
        known_channel(app, session, app.args.channel)
        rows = views.history_rows(session, f, app.settings.timezone)
    emit(with_reason(rows) if app.args.format == "table" else rows, app.args.format, views.HISTORY_FIELDS,
         ("started_at", "post_id", "channel", "action", "outcome", "to_status", "http_status", "remote_url", "reason"),
         {"reason": 50, "remote_url": 45})
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
    hi = sub.add_parser("history", help="every publish attempt (and with --all every status change)")
    hi.add_argument("--channel", help="one channel")
    hi.add_argument("--status", type=one_or_more_of(sorted(set(POST_STATUSES) | set(OUTCOMES))), metavar="S[,S…]",
                    help="outcome or resulting status, comma-separated (e.g. published,failed)")
    hi.add_argument("--since", metavar="D", help="from this date (YYYY-MM-DD, local)")
    hi.add_argument("--until", metavar="D", help="up to and including this date")
    hi.add_argument("--post", type=int, metavar="ID", help="one post")
    hi.add_argument("--all", action="store_true", help="include status changes, not only attempts")
    hi.add_argument("--format", choices=("table", "csv", "json"), default="table", help="output format")
    hi.set_defaults(func=cmd_history)


def add_audit(sub: Any) -> None:
    au = sub.add_parser("audit", help="who changed what: imports, approvals, channels, users (oldest first)")
    au.add_argument("--since", metavar="D", help="from this date (YYYY-MM-DD, local)")
    au.add_argument("--until", metavar="D", help="up to and including this date")
    au.add_argument("--actor", metavar="U", help="one person (as recorded: --as, PROMO_USER or login name)")
    au.add_argument("--entity", choices=("channel", "event", "highlight", "post", "product", "umkm", "user"),
                    help="one kind of thing changed")
    au.add_argument("--format", choices=("table", "csv", "json"), default="table", help="output format")
    au.set_defaults(func=cmd_audit)
