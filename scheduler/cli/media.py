"""`promo media prune [--dry-run]`: delete the image files no post needs any more (what the
daily housekeeping does; see :mod:`scheduler.mediaprune`)."""

from __future__ import annotations

from typing import Any

from scheduler.cli.output import EXIT_OK, App


def cmd_media_prune(app: App) -> int:
    from scheduler.actions.media import prune_media

    app.require_schema()
    done = prune_media(app.ctx, app.who, dry_run=app.args.dry_run)
    if app.args.dry_run:
        for name in done.removed:
            print(f"would delete {app.settings.media_dir / name}")
    print(f"media {app.settings.media_dir}: {done.describe()} (PROMO_MEDIA_KEEP_DAYS={app.settings.media_keep_days})")
    return EXIT_OK


def add_media(sub: Any) -> None:
    md = sub.add_parser("media", help="the image files in PROMO_MEDIA_DIR")
    md_sub = md.add_subparsers(dest="media_cmd", metavar="ACTION", required=True)
    pr = md_sub.add_parser("prune", help="delete the images no post needs any more: those of posts done "
                                         "PROMO_MEDIA_KEEP_DAYS ago, uploads unused for a day (housekeeping "
                                         "does it daily)")
    pr.add_argument("--dry-run", action="store_true", help="only list what would be deleted")
    pr.set_defaults(func=cmd_media_prune)
