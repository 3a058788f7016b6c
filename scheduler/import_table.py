"""Reading an import file into a :class:`Table`: CSV (its delimiter sniffed) or JSON (a list
of objects), each row with the line it starts on, so a problem can name it.

:mod:`scheduler.import_rows` checks the rows; :mod:`scheduler.importer` writes them.
"""

from __future__ import annotations

import csv
import io
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scheduler.errors import ValidationError


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
