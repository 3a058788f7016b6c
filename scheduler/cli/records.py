"""`promo import` and `promo records list`: the records posts are made from."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from scheduler.cli.output import EXIT_FAILED, EXIT_OK, App, emit


def cmd_import(app: App) -> int:
    from scheduler.actions.records import import_records
    from scheduler.importer import terminal_progress

    app.require_schema()
    path = Path(app.args.file)
    result = import_records(app.ctx, app.who, app.args.kind, path, skip_invalid=app.args.skip_invalid,
                            on_changes=_records_changed_hook(app), progress=terminal_progress(app.args.kind))
    for p in result.skipped:
        print(f"skipped: {path}: {p}", file=sys.stderr)
    print(f"{app.args.kind}: {result.summary()}")
    return EXIT_FAILED if result.skipped and not (result.created or result.updated or result.unchanged) else EXIT_OK


def _records_changed_hook(app: App) -> Callable[..., None] | None:
    from jobs.event_promotion import records_changed_hook

    # Batched (once per 1,000 records): one highlight query per batch, not one per product.
    return records_changed_hook(app.settings, app.composer(), app.actor)


def cmd_records_list(app: App) -> int:
    from scheduler.actions.records import list_records

    app.require_schema()
    found = list_records(app.ctx, app.who, app.args.kind)
    emit(found.rows, app.args.format, list(found.rows[0]) if found.rows else found.columns, found.columns)
    return EXIT_OK


def add_import(sub: Any) -> None:
    imp = sub.add_parser("import", help="import UMKM, products or events from CSV or JSON")
    imp.add_argument("kind", choices=("umkm", "products", "events"), help="what the file holds")
    imp.add_argument("file", help=".csv (comma or semicolon) or .json")
    imp.add_argument("--skip-invalid", action="store_true", help="write the good rows even if some are bad")
    imp.set_defaults(func=cmd_import)


def add_records(sub: Any) -> None:
    rec = sub.add_parser("records", help="show stored records").add_subparsers(dest="rec_cmd", metavar="ACTION",
                                                                                required=True)
    rl = rec.add_parser("list", help="list umkm, products or events")
    rl.add_argument("kind", choices=("umkm", "products", "events"))
    rl.add_argument("--format", choices=("table", "csv", "json"), default="table", help="output format")
    rl.set_defaults(func=cmd_records_list)
