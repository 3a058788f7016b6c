"""Import UMKM, products and events from CSV or JSON.

The whole file is read and checked first; every bad row is reported with its line
number, column and reason. With any bad row nothing is written, unless the caller asks
to skip invalid rows. Re-importing the same file changes nothing; an edited row updates
its record (matched on the stable external ``id``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from scheduler.errors import ImportValidationError, RowProblem, ValidationError
from scheduler.import_rows import (
    COLUMNS,
    KINDS,
    MAX_DESCRIPTION_CHARS,
    REQUIRED,
    check_columns,
    parse_bool,
    parse_price,
    parse_tags,
    parse_when,
    validate,
)
from scheduler.import_table import Table, read_rows, read_table
from scheduler.models import AuditEntry, Event, Product, Umkm, utcnow

#: Reading and checking live in :mod:`scheduler.import_rows`; their names are offered here too.
__all__ = ["COLUMNS", "KINDS", "MAX_DESCRIPTION_CHARS", "MODEL", "REQUIRED", "ImportResult", "Table", "check_columns",
           "import_file", "parse_bool", "parse_price", "parse_tags", "parse_when", "read_rows", "read_table", "validate"]


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: list[RowProblem] = field(default_factory=list)

    def summary(self) -> str:
        s = f"{self.created} created, {self.updated} updated, {self.unchanged} unchanged"
        if self.skipped:
            s += f", {len({p.line for p in self.skipped})} invalid row(s) skipped"
        return s


# The three record classes; each has external_id and updated_at (Base alone has neither),
# so MODEL is annotated with them rather than inferred as type[Base].
Record = Umkm | Product | Event
MODEL: dict[str, type[Record]] = {"umkm": Umkm, "products": Product, "events": Event}


def import_file(session: Session, kind: str, path: Path, *, tz: ZoneInfo, actor: str,
                skip_invalid: bool = False,
                on_change: Callable[[Session, str, Any, set[str]], None] | None = None,
                max_description_chars: int = MAX_DESCRIPTION_CHARS) -> ImportResult:
    """Validate the whole file, then write it in the caller's transaction.

    A problem with the file's columns (one missing, unknown ones) is fatal even with
    ``skip_invalid``: it is the file that is wrong, not some of its rows.
    """
    if kind not in KINDS:
        raise ValidationError(f"unknown record kind {kind!r} (umkm, products or events)")
    table = read_table(path)
    column_problems = check_columns(kind, table, str(path))
    if column_problems:
        raise ImportValidationError(str(path), column_problems)
    umkm_ids = {u: i for u, i in session.execute(select(Umkm.external_id, Umkm.id))}
    good, problems = validate(kind, table.rows, tz=tz, known_umkm=set(umkm_ids),
                              max_description_chars=max_description_chars, delimiter=table.delimiter)
    if problems and not skip_invalid:
        raise ImportValidationError(str(path), problems)
    result = ImportResult(skipped=problems)
    model = MODEL[kind]
    # select() over a union of classes is typed as Base; the rows are instances of ``model``.
    records = cast("Iterable[Record]", session.scalars(select(model)))
    existing = {r.external_id: r for r in records}
    now = utcnow()
    for _line, fields in good:
        if kind == "products":
            fields["umkm_id"] = umkm_ids[fields.pop("umkm_external_id")]
        record = existing.get(fields["external_id"])
        if record is None:
            record = model(**fields, created_at=now, updated_at=now)
            session.add(record)
            session.flush()
            result.created += 1
            session.add(AuditEntry(actor=actor, action="import.create", entity=kind,
                                   entity_id=fields["external_id"], detail={"file": path.name}))
            if on_change:
                on_change(session, kind, record, set(fields))
            continue
        changed = {k for k, v in fields.items() if getattr(record, k) != v}
        if not changed:
            result.unchanged += 1
            continue
        before = {k: _jsonable(getattr(record, k)) for k in changed}
        for k in changed:
            setattr(record, k, fields[k])
        record.updated_at = now
        result.updated += 1
        session.add(AuditEntry(actor=actor, action="import.update", entity=kind, entity_id=fields["external_id"],
                               detail={"file": path.name, "before": before,
                                       "after": {k: _jsonable(fields[k]) for k in changed}}))
        session.flush()
        if on_change:
            on_change(session, kind, record, changed)
    return result


def _jsonable(v: Any) -> Any:
    if isinstance(v, dt.datetime):
        return v.isoformat()
    return v
