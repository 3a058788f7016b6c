"""Reading and checking import files: the file's table (CSV or JSON), its columns, and each
row's cells parsed into record fields, every problem with its line, column and reason.

:mod:`scheduler.importer` writes the rows this module accepts.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from scheduler import values
from scheduler.errors import RowProblem
from scheduler.import_table import Table

KINDS = ("umkm", "products", "events")
COLUMNS = {
    "umkm": ("id", "name", "owner", "category", "city", "district", "phone", "instagram", "website", "curated"),
    "products": ("id", "umkm_id", "name", "description", "price", "image", "url", "tags", "curation", "active",
                 "images", "image_alt"),
    "events": ("id", "name", "description", "venue", "city", "starts_at", "ends_at", "url", "image", "tags",
               "status", "images", "image_alt"),
}
REQUIRED = {"umkm": ("id", "name"), "products": ("id", "umkm_id", "name"), "events": ("id", "name", "starts_at")}
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
    "venue": 200, "phone": 50, "instagram": 100, "website": 2_000, "url": 2_000, "image": 500, "images": 500, "image_alt": 5_000,
    "tags": 2_000, "price": 50, "curation": 20, "curated": 20, "active": 20, "status": 20,
    "starts_at": 50, "ends_at": 50, "description": MAX_DESCRIPTION_CHARS,
}


def _text(v: Any) -> str:
    if v is None:
        return ""
    return str(v).strip()


def parse_bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    s = _text(v)
    if not s:
        return False
    try:
        return values.parse_bool(s)
    except ValueError:
        raise ValueError(f"{_show(v)} is not {values.BOOL_HINT}") from None


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
    elif isinstance(v, str) and (digits := v.strip()).isdigit() and digits.isascii():
        n = int(digits)  # the usual cell (25000): no regex
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
    """A cell's time: :func:`scheduler.values.parse_when` (the same forms as ``promo post new --at``)."""
    s = _text(v)
    if not s:
        raise ValueError("missing date")
    if len(s) > 60:
        raise ValueError(f"{_show(s)} is not a date like 2023-10-25 19:00 or ISO 8601")
    return values.parse_when(s, tz)


def parse_tags(v: Any) -> list[str]:
    """Tags from a list or a cell: words separated by ``;``, ``,`` or ``|``, with or without ``#``.

    A tag holds letters, digits and ``_``, and may join words with ``-`` (``kue-kue``,
    ``jalan-jalan``). It is kept as written; the ``hashtags`` template filter makes a hashtag
    of it (``#KueKue``).
    """
    items = [str(x) for x in v] if isinstance(v, list) else _TAG_SEPARATORS.split(_text(v))
    tags: list[str] = []
    for item in items:
        t = item.strip().lstrip("#").strip()
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


@dataclass
class _RowCheck:
    """One row being checked: its cells, the fields made of them so far, and its problems."""

    line: int
    row: dict[str, Any]
    out: dict[str, Any] = field(default_factory=dict)
    problems: list[RowProblem] = field(default_factory=list)
    #: Each cell as stripped text ("" when empty or absent), made once per row.
    texts: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.texts = {k: v.strip() if type(v) is str else _text(v) for k, v in self.row.items()}

    def bad(self, column: str, reason: str) -> None:
        self.problems.append(RowProblem(self.line, column, reason))

    def text(self, col: str) -> str:
        return self.texts.get(col, "")

    def cast(self, col: str, fn: Callable[[Any], Any], target: str | None = None) -> None:
        try:
            self.out[target or col] = fn(self.row.get(col))
        except ValueError as exc:
            self.bad(col, str(exc))


def _cut_oversized(r: _RowCheck, kind: str, limits: dict[str, int]) -> set[str]:
    """Over-long cells are reported by length alone and not parsed further (nor echoed)."""
    over = {c: len(v) for c, v in r.row.items() if type(v) is str and len(v) > limits.get(c, _UNLIMITED)}
    over.update({c: n for c, v in r.row.items()  # JSON: numbers, lists
                 if v is not None and type(v) is not str and (n := _size(v)) > limits.get(c, _UNLIMITED)})
    if not over:
        return set()
    r.row = dict(r.row)  # the file's row stays as it was read
    for col in [c for c in COLUMNS[kind] if c in over]:  # reported in the kind's column order
        setting = " (PROMO_MAX_DESCRIPTION_CHARS)" if col == "description" else ""
        r.bad(col, f"{over[col]:,} characters, over the limit of {limits[col]:,}{setting}")
        r.row[col] = None
        r.texts[col] = ""
    return set(over) & set(COLUMNS[kind])


_UNLIMITED = 2**63


def _size(value: Any) -> int:
    """A JSON cell's length in characters (a list's items together; 0 for a number)."""
    if isinstance(value, list):
        return sum(len(str(x)) for x in value)
    return len(value) if isinstance(value, str) else 0


def _check_id(r: _RowCheck, seen_ids: dict[str, int]) -> None:
    ext = r.text("id")
    if ext:
        if not _ID.match(ext):
            r.bad("id", f"{_show(ext)} is not a valid id (letters, digits, . _ : -)")
        elif ext in seen_ids:
            r.bad("id", f"duplicate id {ext!r} (also on line {seen_ids[ext]})")
        else:
            seen_ids[ext] = r.line
    r.out["external_id"] = ext


def _umkm_fields(r: _RowCheck) -> None:
    for col in ("owner", "category", "city", "district", "phone", "instagram"):
        r.out[col] = r.text(col) or None
    r.cast("website", _url)
    r.cast("curated", parse_bool)


def _images(r: _RowCheck) -> str | None:
    """``image`` and/or ``images`` (several separated by ``;``; the first is the cover), stored
    together in the record's image field, ``;``-separated."""
    if not (r.text("image") or r.text("images") or r.text("image_alt")):
        r.out["image_alt"] = None
        return None
    paths = [p.strip() for p in [r.text("image"), *r.text("images").split(";")] if p.strip()]
    joined = ";".join(dict.fromkeys(paths))
    if len(joined) > FIELD_LIMITS["images"]:
        r.bad("images", f"{len(joined):,} characters of image paths, over {FIELD_LIMITS['images']:,}")
    alts = [a.strip() for a in r.text("image_alt").split(";")] if r.text("image_alt") else []
    if len(alts) > max(len(paths), 1):
        r.bad("image_alt", f"{len(alts)} alt texts for {len(paths)} images (separate them with ; in image order)")
    r.out["image_alt"] = ";".join(alts) or None
    return joined or None


def _product_fields(r: _RowCheck, known_umkm: set[str]) -> None:
    umkm = r.text("umkm_id")
    if umkm and umkm not in known_umkm:
        r.bad("umkm_id", f"unknown umkm_id {_show(umkm)} (import the UMKM first)")
    r.out["umkm_external_id"] = umkm
    r.out["description"] = r.text("description") or None
    r.cast("price", parse_price)
    r.out["image"] = _images(r)
    r.cast("url", _url)
    r.cast("tags", parse_tags)
    curation = r.text("curation").lower() or "pending"
    if curation not in ("approved", "pending", "rejected"):
        r.bad("curation", f"{_show(curation)} is not approved, pending or rejected")
    r.out["curation"] = curation
    if "active" in r.row:
        r.cast("active", lambda v: True if _text(v) == "" else parse_bool(v))
    else:
        r.out["active"] = True


def _event_fields(r: _RowCheck, tz: ZoneInfo) -> None:
    for col in ("description", "venue", "city"):
        r.out[col] = r.text(col) or None
    if r.text("starts_at"):
        r.cast("starts_at", lambda v: parse_when(v, tz))
    r.out["ends_at"] = None
    if r.text("ends_at"):
        r.cast("ends_at", lambda v: parse_when(v, tz))
    if r.out.get("starts_at") and r.out.get("ends_at") and r.out["ends_at"] < r.out["starts_at"]:
        r.bad("ends_at", "ends before it starts")
    r.cast("url", _url)
    r.out["image"] = _images(r)
    r.cast("tags", parse_tags)
    status = r.text("status").lower() or "scheduled"
    if status not in ("scheduled", "cancelled"):
        r.bad("status", f"{_show(status)} is not scheduled or cancelled")
    r.out["status"] = status


def validate(kind: str, rows: list[tuple[int, dict[str, Any]]], *, tz: ZoneInfo,
             known_umkm: set[str], max_description_chars: int = MAX_DESCRIPTION_CHARS,
             delimiter: str | None = None) -> tuple[list[tuple[int, dict[str, Any]]], list[RowProblem]]:
    """Check and cast every row: (good rows as field dicts, problems)."""
    good: list[tuple[int, dict[str, Any]]] = []
    problems: list[RowProblem] = []
    seen_ids: dict[str, int] = {}
    limits = {**FIELD_LIMITS, "description": max_description_chars}
    for line, cells in rows:
        r = _RowCheck(line, cells)
        if "__invalid__" in cells:
            r.bad("-", cells["__invalid__"])
            problems.extend(r.problems)
            continue
        if "__extra__" in cells:
            hint = ""
            if delimiter == ";" and "tags" in COLUMNS[kind]:
                hint = "; in a ;-separated file, separate tags with , or | (or quote the cell)"
            r.bad("-", f"more values than columns ({len(cells['__extra__'])} extra){hint}")
        oversized = _cut_oversized(r, kind, limits)
        for col in REQUIRED[kind]:
            if col not in oversized and not r.text(col):
                r.bad(col, f"missing {col}")
        _check_id(r, seen_ids)
        r.out["name"] = r.text("name")
        if kind == "umkm":
            _umkm_fields(r)
        elif kind == "products":
            _product_fields(r, known_umkm)
        else:
            _event_fields(r, tz)
        if r.problems:
            problems.extend(r.problems)
        else:
            good.append((line, r.out))
    return good, problems
