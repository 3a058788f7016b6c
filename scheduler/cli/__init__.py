"""The ``promo`` command. A contract people script against (see README.md).

Exit status: 0 success; 1 the command ran but something failed (a bad row, a post that
does not fit, bad configuration); 2 a usage error. Times typed by people are in the
organisation's timezone; output shows local time with its offset.

One module per command group (:mod:`.posts`, :mod:`.records`, :mod:`.channels`,
:mod:`.history`, :mod:`.users`, :mod:`.service`, :mod:`.media`) parses arguments, calls
:mod:`scheduler.actions` (every change a person makes) or a read model, and prints;
:mod:`.output` holds what they share. The CLI acts as the operator, with full rights.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from scheduler import errors
from scheduler.cli import channels, history, media, posts, records, report, service, users
from scheduler.cli.output import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    OUTCOMES,
    POST_FIELDS,
    POST_STATUSES,
    App,
    Parser,
    UsageError,
    emit,
    human,
)

# Building the parser imports nothing heavy (no SQLAlchemy, APScheduler, httpx, Jinja2, Pillow):
# `promo --help` and usage errors answer at once. Each command imports what it needs.
if TYPE_CHECKING:
    import argparse

    from sqlalchemy.exc import OperationalError

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_USAGE", "OUTCOMES", "POST_FIELDS", "POST_STATUSES", "App", "Parser",
           "UsageError", "build_parser", "emit", "human", "main"]


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="promo", description="Turn event and UMKM product records into scheduled social-media posts.")
    p.add_argument("--as", dest="as_user", metavar="USER",
                   help="who is acting, recorded in history and audit (default PROMO_USER, else your login name)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    service.add_db(sub)
    records.add_import(sub)
    records.add_records(sub)
    channels.add_channels(sub)
    posts.add_compose(sub)
    posts.add_post(sub)
    history.add_history(sub)
    service.add_highlight_and_jobs(sub)
    service.add_serve_and_status(sub)
    users.add_users(sub)
    history.add_audit(sub)
    report.add_report(sub)
    channels.add_secrets(sub)
    service.add_demo_and_templates(sub)
    media.add_media(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        app = App(args)
        code = int(args.func(app))
        sys.stdout.flush()  # here, so a closed pipe is caught below rather than at exit
        return code
    except BrokenPipeError:
        # `promo … | head` closed the pipe: stop quietly (Python's documented recipe: point
        # stdout at devnull so the interpreter's final flush does not fail again).
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAILED
    except UsageError as exc:
        print(f"promo: usage error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except errors.ConfigError as exc:
        print(f"promo: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except errors.PromoError as exc:
        print(f"promo: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        from sqlalchemy.exc import OperationalError

        if not isinstance(exc, OperationalError):
            raise
        print(f"promo: error: {_database_problem(exc)}", file=sys.stderr)
        return EXIT_FAILED


def _database_problem(exc: OperationalError) -> str:
    """The database's own words, without SQLAlchemy's SQL echo (or any URL with a password in it)."""
    reason = str(exc.orig).strip() or type(exc.orig).__name__
    if "database is locked" in reason:
        return ("the database is busy: another promo process has held its write lock for longer than "
                "PROMO_DB_BUSY_SECONDS, so this command's change was rolled back. If a service is hung, `promo status` shows it; "
                "try again once it has finished or been restarted")
    return f"database: {reason} (this command's change was rolled back)"
