"""`promo db`, `serve`, `status`, `jobs`, `highlight`, `demo`, `templates`: running the service."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from scheduler.cli.output import EXIT_FAILED, EXIT_OK, App, UsageError, emit, now


def _revision(app: App) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with app.db.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def cmd_db_upgrade(app: App) -> int:
    url = app.db.engine.url
    name = url.database if url.get_backend_name() == "sqlite" and url.database else \
        url.render_as_string(hide_password=True)
    before = _revision(app)
    app.db.upgrade()
    after = _revision(app)
    if before is None:
        print(f"created the database {name} at revision {after}")
    elif before != after:
        print(f"upgraded the database {name} from revision {before} to {after}")
    else:
        print(f"the database {name} is already at revision {after} (the newest)")
    return EXIT_OK


def cmd_status(app: App) -> int:
    from scheduler.storage import post_read  # Core only: `promo status` starts without the ORM

    app.require_schema()
    with app.db.read_connection() as conn:
        out = post_read.status_report(conn, app.settings)
    if app.args.format == "json":
        print(json.dumps(out, indent=2))
    else:
        if not out["workers"]:
            print("service: not running (no dispatch heartbeat)")
        for w in out["workers"]:
            print(f"service {w['worker']}: last tick {w['last_tick']} ({w['seconds_since_tick']}s ago)"
                  + (" STALLED" if w["stalled"] else ""))
        print("posts: " + (", ".join(f"{k} {v}" for k, v in sorted(out["counts"].items())) or "none"))
    bad = any(w["stalled"] for w in out["workers"])
    return EXIT_FAILED if bad else EXIT_OK


def cmd_serve(app: App) -> int:
    from scheduler.logs import setup_logging
    from scheduler.process import run_async
    from scheduler.service import Service

    app.require_schema()
    app.db.check_schema()
    setup_logging(app.settings.log_level, app.settings.log_format)
    workers = app.args.workers if app.args.workers is not None else app.settings.workers
    if workers < 1:
        raise UsageError("--workers must be at least 1")
    web_app, sock = None, None
    if app.args.web and not app.args.dispatch_only:
        from scheduler import web

        # Bound here, so a taken port stops `promo serve` with its message; the web app runs in its
        # own process on it (web.process), never on this process's loop.
        sock = web.listen(app.settings, app.db, app.args.host, app.args.port)
        web_app = web.process(app.args.host, sock)
    try:
        service = Service(app.settings, app.db, health_port=app.args.health_port, workers=workers,
                          dispatch_only=app.args.dispatch_only, web=web_app)
        if app.args.dispatch_only:
            run_async(service.run())
            return EXIT_OK
        for cfg in app.settings.channels:
            if cfg.platform == "outbox":
                print(f"channel {cfg.name}: posts are appended to "
                      f"{Path(cfg.options.get('PATH') or 'outbox.jsonl').resolve()}", flush=True)
        print("history: promo history   ·   queue: promo post list   ·   health: promo status", flush=True)
        run_async(service.run())  # the web app's process logs its address once it serves
    finally:
        if sock is not None:
            sock.close()
    return EXIT_OK


def cmd_web(app: App) -> int:
    from scheduler import web
    from scheduler.logs import setup_logging

    app.require_schema()
    setup_logging(app.settings.log_level, app.settings.log_format)
    web.run_web(app.settings, app.args.host, app.args.port, listen_fd=app.args.listen_fd)
    return EXIT_OK


def cmd_demo(app: App) -> int:
    from scheduler.demo import load_demo

    if not app.db.is_current():
        app.db.upgrade()
    with app.db.session() as session:
        for line in load_demo(session, app.settings, app.composer(), actor=app.actor):
            print(line)
    return EXIT_OK


def cmd_templates_export(app: App) -> int:
    from scheduler.actions.templates import export

    dest = Path(app.args.dir)
    written = export(app.who, dest, force=app.args.force)
    for item in written:
        print(("replaced " if item.replaced else "wrote ") + str(item.path))
    print(f"{len(written)} template files in {dest.resolve()}; edit them and set "
          f"PROMO_TEMPLATES_DIR={dest.resolve()} to use them")
    return EXIT_OK


def cmd_jobs_list(app: App) -> int:
    from scheduler.jobs_info import describe_jobs

    rows = describe_jobs(app.settings)
    emit(rows, app.args.format, ["id", "trigger", "next_run", "what"], ["id", "trigger", "next_run", "what"],
         {"what": 70, "trigger": 40})
    return EXIT_OK


def cmd_highlight(app: App) -> int:
    from scheduler import highlight_views as views
    from scheduler.models import HighlightStatus

    app.require_schema()
    if app.args.action == "history":
        rows = views.highlight_history(app.db, app.local)
        if app.args.format == "json":
            print(json.dumps(rows, ensure_ascii=False, indent=2))
            return EXIT_OK
        emit(rows, "table", list(rows[0]) if rows else ["day"],
             ("day", "channel", "slot", "status", "product", "umkm", "post_id", "post_status", "reason"),
             {"reason": 60})
        for label, key, name in (("UMKM", "umkm", "umkm_name"), ("product", "product", "product_name")):
            print(f"\nFeatured per {label} ({app.settings.timezone.key}):")
            emit(views.featured_summary(rows, key, name), "table", [key, "name", "times", "last"])
        return EXIT_OK
    today = now().astimezone(app.settings.timezone).date()
    try:
        day = dt.date.fromisoformat(app.args.date) if app.args.date else today
    except ValueError:
        raise UsageError(f"--date {app.args.date!r} is not a date (YYYY-MM-DD)") from None
    out = views.highlight_preview(app.settings, app.db, app.composer(), day)
    if app.args.format == "json":
        print(json.dumps(out, ensure_ascii=False, indent=2))
        return EXIT_OK
    print(f"Daily highlight for {out['weekday']} {day.isoformat()} at {out['time']}")
    if not out["highlight_day"]:
        print("  (not a highlight day: see PROMO_HIGHLIGHT_DAYS)")
    if not app.settings.highlight_channels:
        print("  (no channels: set PROMO_HIGHLIGHT_CHANNELS)")
    print(f"  {out['eligible']}")
    for r in out["recorded"]:
        print(f"  already recorded on {r['channel']} slot {r['slot']}: {r['status']}"
              + (f" (post {r['post_id']})" if r["post_id"] else "")
              + (f": {r['reason']}" if r["reason"] and r["status"] != HighlightStatus.CREATED else ""))
    if not out["picks"]:
        print("  nothing eligible: no post would be created")
    for p in out["picks"]:
        print(f"\nSlot {p['slot']}: {p['product_name']} ({p['product']}) from {p['umkm_name']} ({p['umkm']})")
        for line in p["why"]:
            print(f"  - {line}")
    for post in out["posts"]:
        print(f"\n--- {post['channel']} ({post['platform']}), slot {post['slot']} ---")
        print(post["text"] if post["text"] is not None else f"(cannot compose: {post['error']})")
    return EXIT_OK


def add_db(sub: Any) -> None:
    db = sub.add_parser("db", help="database schema").add_subparsers(dest="db_cmd", metavar="ACTION", required=True)
    db.add_parser("upgrade", help="apply every migration").set_defaults(func=cmd_db_upgrade)


def add_highlight_and_jobs(sub: Any) -> None:
    hl = sub.add_parser("highlight", help="the daily UMKM highlight")
    hl_sub = hl.add_subparsers(dest="action", metavar="ACTION", required=True)
    hp = hl_sub.add_parser("preview", help="what would be picked for a day, and why (creates nothing)")
    hp.add_argument("--date", metavar="YYYY-MM-DD", help="the day (default: today)")
    hp.add_argument("--format", choices=("text", "json"), default="text", help="output format")
    hp.set_defaults(func=cmd_highlight)
    hh = hl_sub.add_parser("history", help="past highlights per product and UMKM")
    hh.add_argument("--format", choices=("table", "json"), default="table", help="output format")
    hh.set_defaults(func=cmd_highlight)

    jb = sub.add_parser("jobs", help="recurring jobs").add_subparsers(dest="jobs_cmd", metavar="ACTION", required=True)
    jl = jb.add_parser("list", help="every recurring job and its next run (local time)")
    jl.add_argument("--format", choices=("table", "json"), default="table", help="output format")
    jl.set_defaults(func=cmd_jobs_list)


def add_serve_and_status(sub: Any) -> None:
    sv = sub.add_parser("serve", help="run the scheduler in the foreground (Ctrl-C stops it)")
    sv.add_argument("--web", action="store_true",
                    help="also serve the staff web app and JSON API (see promo web to run it alone)")
    sv.add_argument("--host", default="127.0.0.1",
                    help="web app address (default 127.0.0.1; any other needs an admin with a password: "
                         "promo users add NAME --role admin)")
    sv.add_argument("--port", type=int, default=8080, help="web app port (default 8080)")
    sv.add_argument("--health-port", type=int, default=None, help="health endpoint port (default PROMO_HEALTH_PORT; 0 = off)")
    sv.add_argument("--workers", type=int, default=None,
                    help="dispatch processes (default PROMO_WORKERS): more use more cores in a burst")
    sv.add_argument("--dispatch-only", action="store_true",
                    help="run only the dispatcher, no jobs or health endpoint (what --workers starts)")
    sv.set_defaults(func=cmd_serve)

    wb = sub.add_parser("web", help="run only the staff web app and JSON API in the foreground (no publishing); "
                                    "several can share one PostgreSQL database behind a reverse proxy")
    wb.add_argument("--host", default="127.0.0.1",
                    help="address (default 127.0.0.1; any other needs an admin with a password: "
                         "promo users add NAME --role admin)")
    wb.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    wb.add_argument("--listen-fd", type=int, default=None, metavar="FD",
                    help="serve on this inherited, already listening socket instead of binding --host/--port "
                         "(what promo serve --web starts)")
    wb.set_defaults(func=cmd_web)

    st = sub.add_parser("status", help="is the service ticking, and how many posts are in each state")
    st.add_argument("--format", choices=("text", "json"), default="text", help="output format")
    st.set_defaults(func=cmd_status)


def add_demo_and_templates(sub: Any) -> None:
    sub.add_parser("demo", help="load demo data from the seed article and queue a few posts (once)").set_defaults(
        func=cmd_demo)

    tp = sub.add_parser("templates", help="the post templates").add_subparsers(dest="templates_cmd", metavar="ACTION",
                                                                             required=True)
    te = tp.add_parser("export", help="copy the shipped templates into DIR to edit (then set PROMO_TEMPLATES_DIR=DIR)")
    te.add_argument("dir", metavar="DIR", help="folder to write them to (created if missing)")
    te.add_argument("--force", action="store_true", help="overwrite template files that already exist in DIR")
    te.set_defaults(func=cmd_templates_export)
