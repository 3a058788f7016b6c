"""Import UMKM, products and events from CSV or JSON.

The whole file is read and checked first; every bad row is reported with its line
number, column and reason. With any bad row nothing is written, unless the caller asks
to skip invalid rows. Re-importing the same file changes nothing; an edited row updates
its record (matched on the stable external ``id``).
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO, cast
from zoneinfo import ZoneInfo

from sqlalchemy import JSON, String, Text, bindparam, func, insert, select, type_coerce, update
from sqlalchemy import Table as SATable
from sqlalchemy import cast as cast_
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session
from sqlalchemy.types import NullType

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
#: The columns an import writes (what :func:`validate` gives, with products' umkm_id resolved).
_WRITTEN: dict[str, tuple[str, ...]] = {
    "umkm": ("external_id", "name", "owner", "category", "city", "district", "phone", "instagram", "website",
             "curated"),
    "products": ("external_id", "umkm_id", "name", "description", "price", "image", "image_alt", "url", "tags",
                 "curation", "active"),
    "events": ("external_id", "name", "description", "venue", "city", "starts_at", "ends_at", "url", "image",
               "image_alt", "tags", "status"),
}
#: The batched change hook: ``(session, kind, external ids, changed fields by external id,
#: database ids of the updated records by external id)``.
OnChanges = Callable[[Session, str, list[str], dict[str, set[str]], dict[str, int]], None]
#: Rows per INSERT/UPDATE statement.
BATCH = 1000


def import_file(session: Session, kind: str, path: Path, *, tz: ZoneInfo, actor: str,
                skip_invalid: bool = False,
                on_change: Callable[[Session, str, Any, set[str]], None] | None = None,
                max_description_chars: int = MAX_DESCRIPTION_CHARS,
                progress: Callable[[int, int], None] | None = None,
                on_changes: OnChanges | None = None,
                ) -> ImportResult:
    """Validate the whole file, then write it in the caller's transaction.

    Rows are written with multi-row statements, ``BATCH`` at a time; ``progress(done, total)``
    is called after each batch (the CLI draws a bar from it). One audit row records the
    import: the ids it created, and each changed record's fields before and after.
    ``on_change`` is called for every created or changed record after the writes, in file order;
    ``on_changes`` (the same, batched) once per ``BATCH`` of them with their external ids (in file
    order), their changed fields by external id (plain values, no record loaded for it) and the
    database ids of the updated ones by external id (a hook looks them up by primary or foreign
    key rather than by external id). A record the import created has all its fields there,
    ``external_id`` included (an update never has it), and no database id (it has no posts yet).

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
    plan = _plan(session, kind, good, umkm_ids)
    result.unchanged = plan.unchanged
    _write(session, MODEL[kind], plan, progress)
    result.created, result.updated = len(plan.creates), len(plan.updates)
    if plan.creates or plan.updates:  # one audit row per import, naming what it created and changed
        session.add(AuditEntry(actor=actor, action="import", entity=kind, entity_id=path.name[:100],
                               detail={"file": path.name, "created": [c["external_id"] for c in plan.creates],
                                       "updated": plan.updated_audit}))
    session.flush()
    if (on_change or on_changes) and plan.changes:
        _notify(session, kind, plan, on_change, on_changes)
    return result


@dataclass
class _Plan:
    """What an import will write: rows to insert, rows to update (changed columns only), which
    fields changed per external id, and the audit's before/after of each updated record."""

    creates: list[dict[str, Any]] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)
    changes: dict[str, set[str]] = field(default_factory=dict)
    record_ids: dict[str, int] = field(default_factory=dict)
    updated_audit: dict[str, dict[str, Any]] = field(default_factory=dict)
    unchanged: int = 0


def _plan(session: Session, kind: str, good: list[tuple[int, dict[str, Any]]], umkm_ids: dict[str, int]) -> _Plan:
    table_ = cast(SATable, MODEL[kind].__table__)
    written = _WRITTEN[kind]
    at = {c: n for n, c in enumerate(written, start=1)}  # a stored row is (id, *written)
    existing = {r[1]: tuple(r) for r in session.execute(select(table_.c.id, *(table_.c[c] for c in written)))}
    plan = _Plan()
    for _line, fields in good:
        if kind == "products":
            fields["umkm_id"] = umkm_ids[fields.pop("umkm_external_id")]
        old = existing.get(fields["external_id"])
        if old is None:
            plan.creates.append(fields)
            plan.changes[fields["external_id"]] = set(fields)
            continue
        if tuple(fields.get(c) for c in written) == old[1:]:  # the usual re-imported row: one comparison
            plan.unchanged += 1
            continue
        changed = {k for k, v in fields.items() if old[at[k]] != v}
        if not changed:
            plan.unchanged += 1
            continue
        plan.updates.append({"id": old[0], **{k: fields[k] for k in changed}})
        plan.changes[fields["external_id"]] = changed
        plan.record_ids[fields["external_id"]] = old[0]
        plan.updated_audit[fields["external_id"]] = {
            "before": {k: _jsonable(old[at[k]]) for k in sorted(changed)},
            "after": {k: _jsonable(fields[k]) for k in sorted(changed)}}
    return plan


def _write(session: Session, model: type[Record], plan: _Plan, progress: Callable[[int, int], None] | None) -> None:
    """INSERTs, then UPDATEs per set of changed columns, BATCH rows a statement: multi-row INSERTs
    and executemany UPDATEs on SQLite; on PostgreSQL one statement per batch over arrays, one per
    column (``INSERT … SELECT unnest(…)``, ``UPDATE … FROM (SELECT unnest(…))``)."""
    table_ = cast(SATable, model.__table__)
    total = len(plan.creates) + len(plan.updates)
    done = 0
    if progress:
        progress(0, total)
    stamp = _import_time(session, table_)
    batches: list[tuple[Any, Any, int]] = []  # (statement, parameters, rows)
    arrays = session.get_bind().dialect.name == "postgresql"  # one statement per batch, an array per column

    def as_arrays(rows: list[dict[str, Any]], cols: list[str]) -> dict[str, list[Any]]:
        return {f"a_{k}": [json.dumps(r[k]) for r in rows] if isinstance(table_.c[k].type, JSON)
                else [r[k] for r in rows] for k in cols}

    for i in range(0, len(plan.creates), BATCH):
        rows = plan.creates[i:i + BATCH]
        if arrays and all(r.keys() == rows[0].keys() for r in rows):
            cols = list(rows[0])
            add = insert(table_).from_select([*cols, "created_at", "updated_at"], select(
                *_unnested(table_, cols), stamp, stamp))
            batches.append((add, as_arrays(rows, cols), len(rows)))
        else:
            batches.append((insert(table_).values(created_at=stamp, updated_at=stamp), rows, len(rows)))
    by_keys: dict[frozenset[str], list[dict[str, Any]]] = {}
    for u in plan.updates:
        by_keys.setdefault(frozenset(u), []).append(u)
    for group in by_keys.values():
        cols = [k for k in group[0] if k != "id"]
        if arrays:
            statement = _update_from_arrays(table_, cols, stamp)
            for i in range(0, len(group), BATCH):
                rows = group[i:i + BATCH]
                batches.append((statement, as_arrays(rows, ["id", *cols]), len(rows)))
            continue
        statement = (update(table_).where(table_.c.id == bindparam("b_id"))
                     .values({**{c: bindparam(f"b_{c}") for c in cols}, "updated_at": stamp}))
        for i in range(0, len(group), BATCH):
            rows = [{f"b_{k}": v for k, v in row.items()} for row in group[i:i + BATCH]]
            batches.append((statement, rows, len(rows)))
    for statement, parameters, n in batches:
        session.execute(statement, parameters)
        done += n
        if progress:
            progress(done, total)


def _update_from_arrays(table_: SATable, cols: list[str], stamp: Any) -> Any:
    """PostgreSQL: one UPDATE for a batch, its rows given as one array per column, ``UPDATE … SET
    c = v.c FROM (SELECT unnest(:a_id) AS id, unnest(:a_c) AS c …) AS v WHERE id = v.id``: the
    server plans and runs one statement instead of 1,000 (the executemany, even pipelined).
    """
    rows = select(*_unnested(table_, ["id", *cols])).subquery("v")
    return (update(table_).where(table_.c.id == rows.c.id)
            .values({**{c: rows.c[c] for c in cols}, "updated_at": stamp}))


def _unnested(table_: SATable, cols: list[str]) -> list[Any]:
    """``unnest(:a_col) AS col`` per column, side by side (PostgreSQL zips them into rows)."""
    out = []
    for name in cols:
        type_ = table_.c[name].type
        if isinstance(type_, JSON):  # a list in a list would be a 2-D array: sent as JSON text
            out.append(cast_(func.unnest(cast_(bindparam(f"a_{name}", type_=ARRAY(Text)), ARRAY(Text))), type_)
                       .label(name))
            continue
        # strings as text[], not varchar(n)[]: an explicit cast to varchar(n) would cut a long value
        # where the assignment to the column refuses it (as the INSERT and the SQLite UPDATE do)
        array = ARRAY(Text if isinstance(type_, String) else type_)
        out.append(func.unnest(cast_(bindparam(f"a_{name}", type_=array), array)).label(name))
    return out


def _import_time(session: Session, table_: SATable) -> Any:
    """The import's time for every row it writes (created_at, updated_at), converted for the
    database driver once rather than once per row (a tenth of a big import's time)."""
    process = table_.c.updated_at.type.bind_processor(session.get_bind().dialect)
    now = utcnow()
    return type_coerce(bindparam("import_now", process(now) if process else now), NullType())


def _notify(session: Session, kind: str, plan: _Plan, on_change: Callable[[Session, str, Any, set[str]], None] | None,
            on_changes: OnChanges | None) -> None:
    """The change hooks, in file order: ``on_changes`` once per BATCH with the external ids and the
    updated records' database ids (no record is loaded for it: the hook loads what it needs, often
    nothing); ``on_change`` per record."""
    changes, record_ids = plan.changes, plan.record_ids
    ext_ids = list(changes)
    for i in range(0, len(ext_ids), BATCH):
        chunk_ids = ext_ids[i:i + BATCH]
        if on_changes:
            on_changes(session, kind, chunk_ids, {e: changes[e] for e in chunk_ids},
                       {e: record_ids[e] for e in chunk_ids if e in record_ids})
        if on_change:
            model = MODEL[kind]
            records = cast("Iterable[Record]", session.scalars(select(model).where(
                cast(Any, model).external_id.in_(chunk_ids))))
            order = {e: n for n, e in enumerate(chunk_ids)}
            for record in sorted(records, key=lambda r: order[r.external_id]):
                on_change(session, kind, record, changes[record.external_id])


def terminal_progress(kind: str, stream: TextIO | None = None) -> Callable[[int, int], None] | None:
    """A progress bar for :func:`import_file` on a terminal (tqdm, on stderr); None when
    stderr is not a terminal, so logs and pipes get no bar."""
    stream = stream or sys.stderr
    if not stream.isatty():
        return None
    from tqdm import tqdm

    bar: list[Any] = []

    def update(done: int, total: int) -> None:
        if not bar:
            bar.append(tqdm(total=total, desc=f"import {kind}", unit="row", file=stream, leave=False,
                            mininterval=0))  # one redraw per batch of BATCH rows
        bar[0].update(done - bar[0].n)
        if done >= total:
            bar[0].close()

    return update


def _jsonable(v: Any) -> Any:
    if isinstance(v, dt.datetime):
        return v.isoformat()
    return v
