"""`promo import` and `promo records list`: the records posts are made from."""

from __future__ import annotations

import csv
import itertools
import shlex
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from scheduler.cli.output import EXIT_FAILED, EXIT_OK, App, UsageError, emit


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


#: Records a table shows when no --limit is given.
RECORDS_PAGE = 100
#: The columns of a page's table (a page holds the import-file cells: what `promo import` reads back).
_PAGE_TABLE = {"umkm": ("id", "name", "owner", "category", "city", "district", "curated"),
               "products": ("id", "umkm_id", "name", "price_text", "curation", "active", "tags"),
               "events": ("id", "name", "venue", "starts_at", "ends_at", "status")}


def cmd_records_list(app: App) -> int:
    """A table shows the first 100 records by id and how to see more; ``--limit N``, ``--after ID``
    and ``--search Q`` page (keyset, by id) in any format; ``--limit 0``, and csv/json without
    --limit/--after/--search, give every record as before."""
    from scheduler.actions.records import LIST_COLUMNS, iter_records, list_records, search_records
    from scheduler.importer import COLUMNS

    app.require_schema()
    a = app.args
    if a.limit is not None and a.limit < 0:
        raise UsageError(f"--limit {a.limit}: 0 (all) or more")
    paged = a.limit != 0 and (a.format == "table" or a.limit is not None or a.after is not None or bool(a.search))
    if not paged and not a.search and a.after is None:
        if a.format != "table":  # every record: printed as it is read, never all held at once
            _stream(iter_records(app.ctx, app.who, a.kind), a.format, LIST_COLUMNS[a.kind])
            return EXIT_OK
        found = list_records(app.ctx, app.who, a.kind)
        emit(found.rows, a.format, list(found.rows[0]) if found.rows else found.columns, found.columns)
        return EXIT_OK
    columns = list(COLUMNS[a.kind])
    if not paged:  # --limit 0 with --search or --after: every match, a page at a time
        rows: list[dict[str, Any]] = []
        after = a.after
        while True:
            page = search_records(app.ctx, app.who, a.kind, a.search or "", after=after, limit=1000)
            rows += page.rows
            if page.next_after is None:
                break
            after = page.next_after
        emit(_for_table(rows) if a.format == "table" else rows, a.format, columns, _PAGE_TABLE[a.kind])
        return EXIT_OK
    page = search_records(app.ctx, app.who, a.kind, a.search or "", after=a.after, limit=a.limit or RECORDS_PAGE)
    emit(_for_table(page.rows) if a.format == "table" else page.rows, a.format, columns, _PAGE_TABLE[a.kind])
    if page.next_after is not None:
        again = [a.kind] + (["--search", shlex.quote(a.search)] if a.search else []) + \
            (["--limit", str(a.limit)] if a.limit else []) + (["--format", a.format] if a.format != "table" else [])
        print(f"{len(page.rows)} shown, more there: `promo records list {' '.join(again)} --after "
              f"{shlex.quote(page.next_after)}` for the next ones, `--limit 0` for all",
              file=sys.stdout if a.format == "table" else sys.stderr)
    return EXIT_OK


def _stream(rows: Iterator[dict[str, Any]], fmt: str, columns: Sequence[str]) -> None:
    """Rows as ``emit`` prints them (the same text), written as they come: JSON an array of
    objects indented by 2, CSV with a byte order mark, the first row's keys as its header."""
    import json

    out = sys.stdout
    first = next(rows, None)
    if fmt == "json":
        if first is None:
            out.write("[]\n")
            return
        out.write("[\n")
        for n, row in enumerate(itertools.chain([first], rows)):
            text = json.dumps(row, ensure_ascii=False, indent=2, default=str)
            out.write((",\n" if n else "") + "  " + text.replace("\n", "\n  "))
        out.write("\n]\n")
        return
    from scheduler.cli.output import human
    from scheduler.views import csv_cell

    header = list(first) if first is not None else list(columns)
    out.write("\ufeff")  # the byte order mark lets Excel read Indonesian text as UTF-8 (see README, "CSV")
    w = csv.writer(out)
    w.writerow(header)
    for row in itertools.chain([first] if first is not None else [], rows):
        w.writerow([csv_cell(human(row.get(k))) for k in header])


def _for_table(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Import-file cells as `records list` tables show them: yes/no, prices in rupiah, tags a, b."""
    from scheduler.composer.filters import rupiah

    out = []
    for cells in rows:
        r: dict[str, Any] = {**cells, **{c: cells[c] == "true" for c in ("curated", "active") if c in cells}}
        if "tags" in r:
            r["tags"] = [t for t in r["tags"].split("; ") if t]
        if r.get("price", "").isdigit():
            r["price_text"] = rupiah(int(r["price"]))
        out.append(r)
    return out


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
    rl.add_argument("--limit", type=int, metavar="N",
                    help=f"N records by id (a table: default {RECORDS_PAGE}); 0 = all")
    rl.add_argument("--after", metavar="ID", help="the records after this id (from the hint)")
    rl.add_argument("--search", metavar="Q", help="only records whose id, name or tags contain Q (any case)")
    rl.add_argument("--format", choices=("table", "csv", "json"), default="table", help="output format")
    rl.set_defaults(func=cmd_records_list)
