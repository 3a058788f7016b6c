"""Import UMKM, products and events from CSV or JSON.

The whole file is read and checked first; every bad row is reported with its line
number, column and reason. With any bad row nothing is written, unless the caller asks
to skip invalid rows. Re-importing the same file changes nothing; an edited row updates
its record (matched on the stable external ``id``).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Table as SATable
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session

from scheduler.errors import ImportValidationError, RowProblem, ValidationError
from scheduler.models import AuditEntry, Event, Product, Umkm, utcnow

KINDS = ("umkm", "products", "events")
COLUMNS = {
    "umkm": ("id", "name", "owner", "category", "city", "district", "phone", "instagram", "website", "curated"),
    "products": ("id", "umkm_id", "name", "description", "price", "image", "url", "tags", "curation", "active"),
    "events": ("id", "name", "description", "venue", "city", "starts_at", "ends_at", "url", "image", "tags",
               "status"),
}
REQUIRED = {"umkm": ("id", "name"), "products": ("id", "umkm_id", "name"), "events": ("id", "name", "starts_at")}
_TRUE = {"true", "1", "ya", "yes", "y"}
_FALSE = {"false", "0", "tidak", "no", "n", ""}
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")
_URL = re.compile(r"^https?://[^\s]+$")
_TAG = re.compile(r"\w+(?:-\w+)*")
_TAG_SEPARATORS = re.compile(r"[;,|]")
MAX_TAG_CHARS = 50
MAX_TAGS = 30
#: Default for PROMO_MAX_DESCRIPTION_CHARS: a description is a paragraph or two, not a document.
MAX_DESCRIPTION_CHARS = 10_000
#: The longest value each column takes, in characters (description: the setting above).
FIELD_LIMITS = {
    "id": 100, "umkm_id": 100, "name": 200, "owner": 200, "category": 100, "city": 100, "district": 100,
    "venue": 200, "phone": 50, "instagram": 100, "website": 2_000, "url": 2_000, "image": 1_000,
    "tags": 2_000, "price": 50, "curation": 20, "curated": 20, "active": 20, "status": 20,
    "starts_at": 50, "ends_at": 50, "description": MAX_DESCRIPTION_CHARS,
}


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


@dataclass
class Table:
    """The rows of an import file, with what its header said."""

    rows: list[tuple[int, dict[str, Any]]]
    #: The columns in the file's order: a CSV's header, or every key any JSON object has.
    columns: list[str]
    #: The line of the CSV header (where column problems are reported); 1 for JSON.
    header_line: int = 1
    #: ``,`` or ``;`` for CSV, None for JSON.
    delimiter: str | None = None


_FIELD_LIMIT_LOCK = threading.Lock()


def _allow_fields_up_to(size: int) -> None:
    """Let the csv module read cells as large as the whole file (its default stops at 128 KiB).

    The file is in memory already, so a larger cell costs nothing more; its length is checked
    per column afterwards, with the line and column named. The limit is process-wide and only
    ever raised, so a concurrent import never sees it lowered under it.
    """
    with _FIELD_LIMIT_LOCK:
        if csv.field_size_limit() < size:
            csv.field_size_limit(min(size, 2**31 - 1))


def read_table(path: Path) -> Table:
    """The rows of a CSV (comma or semicolon, BOM or not) or JSON file, with line numbers."""
    if path.is_dir():
        raise ValidationError(f"{path}: is a folder, not a file (give the .csv or .json file in it)")
    if not path.is_file():
        raise ValidationError(f"{path}: no such file")
    raw = path.read_bytes()
    try:
        content = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValidationError(f"{path}: not UTF-8 (byte {exc.start}); save the file as UTF-8") from None
    if path.suffix.lower() == ".json":
        return _json_table(path, content)
    if path.suffix.lower() not in (".csv", ".txt"):
        raise ValidationError(f"{path}: unknown file type {path.suffix!r} (use .csv or .json)")
    first = content.splitlines()[0] if content.strip() else ""
    delimiter = ";" if first.count(";") > first.count(",") else ","
    _allow_fields_up_to(len(content) + 1)
    reader = csv.reader(io.StringIO(content, newline=""), delimiter=delimiter)
    header: list[str] | None = None
    header_line = 1
    rows: list[tuple[int, dict[str, Any]]] = []
    end = 0  # physical line the previous record ended on
    records = iter(reader)
    while True:
        try:
            values = next(records)
        except StopIteration:
            break
        except csv.Error as exc:  # a malformed file the csv module gives up on
            raise ValidationError(f"{path}: line {reader.line_num}: cannot read the CSV ({exc})") from None
        # A record starts on the line after the previous one ended; reader.line_num is
        # where it ends, which differs when a quoted cell spans several lines.
        start, end = end + 1, reader.line_num
        if not any(v.strip() for v in values):
            continue
        if header is None:
            header = [v.strip().lower() for v in values]
            header_line = start
            continue
        row: dict[str, Any] = dict(zip(header, values, strict=False))
        for col in header[len(values):]:
            row[col] = None
        if len(values) > len(header):
            row["__extra__"] = values[len(header):]
        rows.append((start, row))
    if header is None:
        raise ValidationError(f"{path}: the file is empty")
    return Table(rows, header, header_line, delimiter)


def read_rows(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """(line number, row) pairs of a CSV or JSON file (see :func:`read_table`)."""
    return read_table(path).rows


def _json_table(path: Path, content: str) -> Table:
    try:
        data = json.loads(content)
    except json.JSONDecodeError as exc:
        raise ValidationError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    if isinstance(data, dict):
        data = next((v for v in data.values() if isinstance(v, list)), None)
    if not isinstance(data, list):
        raise ValidationError(f"{path}: expected a JSON array of objects")
    # Line numbers for JSON: the line where each top-level object starts.
    starts = _object_lines(content)
    out = []
    columns: dict[str, None] = {}  # every key any object has, in first-seen order
    for i, item in enumerate(data):
        line = starts[i] if i < len(starts) else i + 1
        if not isinstance(item, dict):
            out.append((line, {"__invalid__": f"item {i + 1} is not an object"}))
        else:
            row = {str(k).strip().lower(): v for k, v in item.items()}
            columns.update(dict.fromkeys(row))
            out.append((line, row))
    return Table(out, list(columns), starts[0] if starts else 1, None)


def _object_lines(content: str) -> list[int]:
    """The line each object of the file's array of records starts on.

    The array is the top-level one, or (for ``{"products": [...]}``) the first array
    directly inside the top-level object, as :func:`_json_rows` picks it.
    """
    lines: list[int] = []
    depth, in_str, esc, line = 0, False, False, 1
    array_depth: int | None = None
    for ch in content:
        if ch == "\n":
            line += 1
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
            continue
        if ch == '"':
            in_str = True
        elif ch in "[{":
            depth += 1
            if ch == "[" and array_depth is None and depth <= 2:
                array_depth = depth
            elif ch == "{" and array_depth is not None and depth == array_depth + 1:
                lines.append(line)
        elif ch in "]}":
            if ch == "]" and depth == array_depth:
                break
            depth -= 1
    return lines


def _text(v: Any) -> str:
    if v is None:
        return ""
    return str(v).strip()


def parse_bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    s = _text(v).lower()
    if s in _TRUE:
        return True
    if s in _FALSE:
        return False
    raise ValueError(f"{_show(v)} is not true/false (also 1/0, ya/tidak)")


def parse_price(v: Any) -> int | None:
    if v is None or _text(v) == "":
        return None
    if isinstance(v, bool):
        raise ValueError("not a price")
    if isinstance(v, int):
        n = v
    elif isinstance(v, float):
        if not v.is_integer():
            raise ValueError(f"{_show(v)} is not a whole number of rupiah")
        n = int(v)
    else:
        s = _text(v).replace("Rp", "").replace("rp", "").replace(" ", "")
        # Indonesian thousands separators: 25.000 or 25,000 (whole rupiah only)
        if re.fullmatch(r"\d{1,3}([.,]\d{3})+", s):
            s = re.sub(r"[.,]", "", s)
        if not re.fullmatch(r"\d+", s):
            raise ValueError(f"{_show(_text(v))} is not a price in whole rupiah (e.g. 25000)")
        n = int(s)
    if n < 0:
        raise ValueError("price cannot be negative")
    if n > 10**13:
        raise ValueError("price is implausibly large")
    return n


def parse_when(v: Any, tz: ZoneInfo) -> dt.datetime:
    """``YYYY-MM-DD HH:MM[:SS]`` in the organisation's timezone, or ISO 8601 with an offset → UTC."""
    s = _text(v)
    if not s:
        raise ValueError("missing date")
    try:
        when = dt.datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{_show(s)} is not a date like 2023-10-25 19:00 or ISO 8601") from None
    if when.tzinfo is None:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", s):
            raise ValueError(f"{_show(s)} has no time (write e.g. {s} 09:00)")
        when = when.replace(tzinfo=tz)
    return when.astimezone(dt.UTC)


def parse_tags(v: Any) -> list[str]:
    """Tags from a list or a cell: words separated by ``;``, ``,`` or ``|``, with or without ``#``.

    A tag holds letters, digits and ``_``, and may join words with ``-`` (``kue-kue``,
    ``jalan-jalan``). It is kept as written; the ``hashtags`` template filter makes a hashtag
    of it (``#KueKue``).
    """
    items = [str(x) for x in v] if isinstance(v, list) else _TAG_SEPARATORS.split(_text(v))
    tags: list[str] = []
    for t in items:
        t = t.strip().lstrip("#").strip()
        if not t:
            continue
        if len(t) > MAX_TAG_CHARS:
            raise ValueError(f"tag {_show(t)} is longer than {MAX_TAG_CHARS} characters")
        if not _TAG.fullmatch(t):
            if re.fullmatch(r"[\w-]+(?:\s+[\w-]+)+", t):
                raise ValueError(f"tag {_show(t)} has a space: join the words ({''.join(t.split())}) or use a "
                                 f"hyphen ({'-'.join(t.split())}); separate tags with ; , or |")
            raise ValueError(f"tag {_show(t)} may only hold letters, digits, _ and - (between letters or digits)")
        if t not in tags:
            tags.append(t)
    if len(tags) > MAX_TAGS:
        raise ValueError(f"{len(tags)} tags, more than {MAX_TAGS}")
    return tags


def _url(v: Any) -> str | None:
    s = _text(v)
    if not s:
        return None
    if not _URL.match(s):
        raise ValueError(f"{_show(s)} is not an http(s) URL")
    return s


def _show(value: Any) -> str:
    """A value quoted for a message, cut short: an error never echoes a whole huge cell."""
    s = value if isinstance(value, str) else str(value)
    return repr(s) if len(s) <= 60 else repr(s[:57]) + "…"


_A_FILE = {"umkm": "a UMKM file", "products": "a products file", "events": "an events file"}


def _kind_hint(kind: str, columns: list[str], path: str) -> str:
    """Which other kind of file these columns look like, as advice; "" when none fits better."""
    present = set(columns)
    own = len(present & set(COLUMNS[kind]))
    best = max((k for k in KINDS if k != kind), key=lambda k: len(present & set(COLUMNS[k])))
    if len(present & set(COLUMNS[best])) > own and set(REQUIRED[best]) <= present:
        return f"these columns look like {_A_FILE[best]}: try `promo import {best} {path}`"
    return ""


def check_columns(kind: str, table: Table, path: str = "FILE") -> list[RowProblem]:
    """Problems with the file's columns, each said once (not once per row)."""
    problems: list[RowProblem] = []
    line = table.header_line
    named = [c for c in table.columns if c]
    unknown = [c for c in named if c not in COLUMNS[kind]]
    if unknown:
        hint = _kind_hint(kind, named, path)
        several = len(unknown) > 1
        reason = (f"unknown column{'s' if several else ''}; "
                  + (hint or f"{_A_FILE[kind]} has the columns {', '.join(COLUMNS[kind])}"))
        problems.append(RowProblem(line, ", ".join(unknown), reason))
    if not unknown or not _kind_hint(kind, named, path):
        for col in REQUIRED[kind]:
            if col not in table.columns:
                problems.append(RowProblem(line, col, f"the file has no column {col}"))
    return problems


def validate(kind: str, rows: list[tuple[int, dict[str, Any]]], *, tz: ZoneInfo,
             known_umkm: set[str], max_description_chars: int = MAX_DESCRIPTION_CHARS,
             delimiter: str | None = None) -> tuple[list[tuple[int, dict[str, Any]]], list[RowProblem]]:
    """Check and cast every row: (good rows as field dicts, problems)."""
    good: list[tuple[int, dict[str, Any]]] = []
    problems: list[RowProblem] = []
    seen_ids: dict[str, int] = {}
    limits = {**FIELD_LIMITS, "description": max_description_chars}
    for line, row in rows:
        row_problems: list[RowProblem] = []

        def bad(column: str, reason: str, _line: int = line, _p: list[RowProblem] = row_problems) -> None:
            _p.append(RowProblem(_line, column, reason))

        if "__invalid__" in row:
            bad("-", row["__invalid__"])
            problems.extend(row_problems)
            continue
        if "__extra__" in row:
            hint = ""
            if delimiter == ";" and "tags" in COLUMNS[kind]:
                hint = "; in a ;-separated file, separate tags with , or | (or quote the cell)"
            bad("-", f"more values than columns ({len(row['__extra__'])} extra){hint}")
        # Over-long cells are reported by length alone and not parsed further (nor echoed).
        row = dict(row)
        oversized: set[str] = set()
        for col in COLUMNS[kind]:
            value = row.get(col)
            size = (sum(len(str(x)) for x in value) if isinstance(value, list)
                    else len(value) if isinstance(value, str) else 0)
            if size > limits[col]:
                setting = " (PROMO_MAX_DESCRIPTION_CHARS)" if col == "description" else ""
                bad(col, f"{size:,} characters, over the limit of {limits[col]:,}{setting}")
                oversized.add(col)
                row[col] = None
        for col in REQUIRED[kind]:
            if col not in oversized and not _text(row.get(col)):
                bad(col, f"missing {col}")
        out: dict[str, Any] = {}
        ext = _text(row.get("id"))
        if ext:
            if not _ID.match(ext):
                bad("id", f"{_show(ext)} is not a valid id (letters, digits, . _ : -)")
            elif ext in seen_ids:
                bad("id", f"duplicate id {ext!r} (also on line {seen_ids[ext]})")
            else:
                seen_ids[ext] = line
        out["external_id"] = ext
        out["name"] = _text(row.get("name"))

        def cast(col: str, fn: Callable[[Any], Any], target: str | None = None,
                 _out: dict[str, Any] = out, _row: dict[str, Any] = row) -> None:
            try:
                _out[target or col] = fn(_row.get(col))
            except ValueError as exc:
                bad(col, str(exc))

        if kind == "umkm":
            for col in ("owner", "category", "city", "district", "phone", "instagram"):
                out[col] = _text(row.get(col)) or None
            cast("website", _url)
            cast("curated", parse_bool)
        elif kind == "products":
            umkm = _text(row.get("umkm_id"))
            if umkm and umkm not in known_umkm:
                bad("umkm_id", f"unknown umkm_id {_show(umkm)} (import the UMKM first)")
            out["umkm_external_id"] = umkm
            out["description"] = _text(row.get("description")) or None
            cast("price", parse_price)
            out["image"] = _text(row.get("image")) or None
            cast("url", _url)
            cast("tags", parse_tags)
            curation = _text(row.get("curation")).lower() or "pending"
            if curation not in ("approved", "pending", "rejected"):
                bad("curation", f"{_show(curation)} is not approved, pending or rejected")
            out["curation"] = curation
            if "active" in row:
                cast("active", lambda v: True if _text(v) == "" else parse_bool(v))
            else:
                out["active"] = True
        else:
            out["description"] = _text(row.get("description")) or None
            out["venue"] = _text(row.get("venue")) or None
            out["city"] = _text(row.get("city")) or None
            if _text(row.get("starts_at")):
                cast("starts_at", lambda v: parse_when(v, tz))
            ends = _text(row.get("ends_at"))
            out["ends_at"] = None
            if ends:
                cast("ends_at", lambda v: parse_when(v, tz))
            if out.get("starts_at") and out.get("ends_at") and out["ends_at"] < out["starts_at"]:
                bad("ends_at", "ends before it starts")
            cast("url", _url)
            out["image"] = _text(row.get("image")) or None
            cast("tags", parse_tags)
            status = _text(row.get("status")).lower() or "scheduled"
            if status not in ("scheduled", "cancelled"):
                bad("status", f"{_show(status)} is not scheduled or cancelled")
            out["status"] = status
        if row_problems:
            problems.extend(row_problems)
        else:
            good.append((line, out))
    return good, problems


# The three record classes; each has external_id and updated_at (Base alone has neither),
# so MODEL is annotated with them rather than inferred as type[Base].
Record = Umkm | Product | Event
MODEL: dict[str, type[Record]] = {"umkm": Umkm, "products": Product, "events": Event}
#: The columns an import writes (what :func:`validate` gives, with products' umkm_id resolved).
_WRITTEN: dict[str, tuple[str, ...]] = {
    "umkm": ("external_id", "name", "owner", "category", "city", "district", "phone", "instagram", "website",
             "curated"),
    "products": ("external_id", "umkm_id", "name", "description", "price", "image", "url", "tags", "curation",
                 "active"),
    "events": ("external_id", "name", "description", "venue", "city", "starts_at", "ends_at", "url", "image",
               "tags", "status"),
}
#: Rows per INSERT/UPDATE statement.
BATCH = 1000


def import_file(session: Session, kind: str, path: Path, *, tz: ZoneInfo, actor: str,
                skip_invalid: bool = False,
                on_change: Callable[[Session, str, Any, set[str]], None] | None = None,
                max_description_chars: int = MAX_DESCRIPTION_CHARS,
                progress: Callable[[int, int], None] | None = None,
                on_changes: Callable[[Session, str, list[Any], dict[str, set[str]]], None] | None = None,
                ) -> ImportResult:
    """Validate the whole file, then write it in the caller's transaction.

    Rows are written with multi-row statements, ``BATCH`` at a time; ``progress(done, total)``
    is called after each batch (the CLI draws a bar from it). One audit row records the
    import: the ids it created, and each changed record's fields before and after.
    ``on_change`` is called for every created or changed record after the writes, in file order;
    ``on_changes`` (the same, batched) once per ``BATCH`` of them, with their changed fields by id.

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
    table_ = cast(SATable, model.__table__)
    fields_of = [c for c in _WRITTEN[kind]]
    existing = {r.external_id: r for r in session.execute(select(table_.c.id, *(table_.c[c] for c in fields_of)))}
    now = utcnow()
    creates: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    changes: dict[str, set[str]] = {}
    updated_audit: dict[str, dict[str, Any]] = {}
    for _line, fields in good:
        if kind == "products":
            fields["umkm_id"] = umkm_ids[fields.pop("umkm_external_id")]
        old = existing.get(fields["external_id"])
        if old is None:
            creates.append({**fields, "created_at": now, "updated_at": now})
            changes[fields["external_id"]] = set(fields)
            continue
        changed = {k for k, v in fields.items() if getattr(old, k) != v}
        if not changed:
            result.unchanged += 1
            continue
        updates.append({"id": old.id, **{k: fields[k] for k in changed}, "updated_at": now})
        changes[fields["external_id"]] = changed
        updated_audit[fields["external_id"]] = {
            "before": {k: _jsonable(getattr(old, k)) for k in sorted(changed)},
            "after": {k: _jsonable(fields[k]) for k in sorted(changed)}}
    total = len(creates) + len(updates)
    done = 0
    if progress:
        progress(0, total)
    for i in range(0, len(creates), BATCH):  # multi-row INSERTs
        chunk = creates[i:i + BATCH]
        session.execute(insert(table_), chunk)
        done += len(chunk)
        if progress:
            progress(done, total)
    by_keys: dict[frozenset[str], list[dict[str, Any]]] = {}
    for u in updates:  # one executemany per set of changed columns
        by_keys.setdefault(frozenset(u), []).append(u)
    for group in by_keys.values():
        for i in range(0, len(group), BATCH):
            chunk = group[i:i + BATCH]
            cols = [k for k in chunk[0] if k != "id"]
            session.execute(update(table_).where(table_.c.id == bindparam("b_id"))
                            .values({c: bindparam(f"b_{c}") for c in cols}),
                            [{f"b_{k}": v for k, v in row.items()} for row in chunk])
            done += len(chunk)
            if progress:
                progress(done, total)
    result.created, result.updated = len(creates), len(updates)
    if creates or updates:  # one audit row per import, naming what it created and changed
        session.add(AuditEntry(actor=actor, action="import", entity=kind, entity_id=path.name[:100],
                               detail={"file": path.name, "created": [c["external_id"] for c in creates],
                                       "updated": updated_audit}))
    session.flush()
    if (on_change or on_changes) and changes:
        ext_ids = list(changes)
        for i in range(0, len(ext_ids), BATCH):
            chunk_ids = ext_ids[i:i + BATCH]
            records = cast("Iterable[Record]", session.scalars(select(model).where(
                cast(Any, model).external_id.in_(chunk_ids))))
            order = {e: n for n, e in enumerate(chunk_ids)}
            ordered = sorted(records, key=lambda r: order[r.external_id])
            if on_changes:
                on_changes(session, kind, ordered, {e: changes[e] for e in chunk_ids})
            if on_change:
                for record in ordered:
                    on_change(session, kind, record, changes[record.external_id])
    return result


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
