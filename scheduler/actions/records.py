"""Records: import a file (umkm, products, events; from a path or an upload), list, search and edit them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import String, cast, func, or_, select
from sqlalchemy.orm import Session

from scheduler.actions import Actor, Context, require
from scheduler.errors import ImportValidationError, NotFoundError, ValidationError
from scheduler.importer import COLUMNS, KINDS, MODEL, ImportResult, OnChanges, import_file, validate
from scheduler.models import AuditEntry, Event, Product, Umkm, utcnow

#: Called for each record an import creates or changes (the event-promotion job hooks in here).
OnChange = Callable[[Session, str, Any, set[str]], None]


def import_records(ctx: Context, actor: Actor, kind: str, path: Path, *, skip_invalid: bool = False,
                   on_change: OnChange | None = None,
                   progress: Callable[[int, int], None] | None = None,
                   on_changes: OnChanges | None = None) -> ImportResult:
    """Check the whole file, then write it in one transaction (with an audit row per change)."""
    require(actor, "records.import")
    with ctx.db.session() as session:
        return import_file(session, kind, path, tz=ctx.settings.timezone, actor=actor.name,
                           skip_invalid=skip_invalid, on_change=on_change, on_changes=on_changes,
                           max_description_chars=ctx.settings.max_description_chars, progress=progress)


@dataclass(frozen=True)
class Records:
    """Stored records of one kind: one dict per record with the kind's own fields, and the table's columns."""

    rows: list[dict[str, Any]]
    columns: tuple[str, ...]


#: The columns a table of :func:`list_records` shows, by kind.
LIST_COLUMNS = {"umkm": ("id", "name", "owner", "category", "city", "district", "curated"),
                "products": ("id", "umkm_id", "name", "price_text", "curation", "active", "tags"),
                "events": ("id", "name", "venue", "starts_at", "ends_at", "status")}


def list_records(ctx: Context, actor: Actor, kind: str) -> Records:
    """Every stored record of ``kind`` (umkm, products, events), times in the organisation's zone."""
    return Records(list(iter_records(ctx, actor, kind)), LIST_COLUMNS[kind])


def iter_records(ctx: Context, actor: Actor, kind: str, *, chunk: int = 1000) -> Iterator[dict[str, Any]]:
    """:func:`list_records`'s rows one at a time, read ``chunk`` rows at a time as plain columns (no
    record objects): `records list` prints 50,000 products as they come instead of holding them."""
    require(actor, "records.list")
    tz = ctx.settings.timezone

    def local(value: Any) -> str:
        return value.astimezone(tz).isoformat(timespec="seconds") if value is not None else ""

    stmt: Any
    if kind == "umkm":
        stmt = select(Umkm.external_id.label("id"), Umkm.name, Umkm.owner, Umkm.category, Umkm.city, Umkm.district,
                      Umkm.phone, Umkm.instagram, Umkm.website, Umkm.curated).order_by(Umkm.external_id)
    elif kind == "products":
        stmt = (select(Product.external_id.label("id"), Umkm.external_id.label("umkm_id"), Product.name,
                       Product.description, Product.price, Product.url, Product.image, Product.tags, Product.curation,
                       Product.active).join(Umkm, Product.umkm_id == Umkm.id).order_by(Product.external_id))
    else:
        stmt = select(Event.external_id.label("id"), Event.name, Event.venue, Event.city, Event.starts_at,
                      Event.ends_at, Event.url, Event.tags, Event.status, Event.description).order_by(Event.starts_at)
    with ctx.db.read_session() as session:
        for r in session.execute(stmt.execution_options(yield_per=chunk)).mappings():
            if kind == "products":
                yield {"id": r["id"], "umkm_id": r["umkm_id"], "name": r["name"], "description": r["description"],
                       "price": r["price"], "price_text": _rupiah(r["price"]), "url": r["url"], "image": r["image"],
                       "tags": r["tags"], "curation": r["curation"], "active": r["active"]}
            elif kind == "events":
                yield {**r, "starts_at": local(r["starts_at"]), "ends_at": local(r["ends_at"]) or None}
            else:
                yield dict(r)


def _rupiah(price: int | None) -> str:
    """:func:`scheduler.composer.filters.rupiah` (``Rp 25.000``), without Babel for a whole
    non-negative number: a list of 50,000 products spent most of its time there."""
    if isinstance(price, int) and price >= 0:
        return f"Rp {price:,}".replace(",", ".")
    from scheduler.composer.filters import rupiah

    return rupiah(price)


#: The suffixes an uploaded file may have (what :func:`scheduler.importer.read_table` reads).
UPLOAD_SUFFIXES = (".csv", ".json", ".txt")
#: The largest upload, in bytes.
MAX_UPLOAD_BYTES = 20 * 1024 * 1024


def import_upload(ctx: Context, actor: Actor, kind: str, filename: str, content: bytes, *,
                  skip_invalid: bool = False, on_change: OnChange | None = None,
                  on_changes: OnChanges | None = None) -> ImportResult:
    """An uploaded file (the web app, the API): checked and written exactly like `promo import`.

    The bytes go to a private temporary file named like the upload (so problems name the
    file people know), then :func:`import_records`: nothing is written while a row is bad,
    unless ``skip_invalid``.
    """
    import tempfile

    require(actor, "records.import")
    name = Path(filename or "").name or "upload"
    if Path(name).suffix.lower() not in UPLOAD_SUFFIXES:
        raise ValidationError(f"{name}: unknown file type (use .csv or .json)")
    if len(content) > MAX_UPLOAD_BYTES:
        raise ValidationError(f"{name}: {len(content):,} bytes, over the limit of {MAX_UPLOAD_BYTES:,}")
    with tempfile.TemporaryDirectory(prefix="promo-upload-") as folder:
        path = Path(folder) / name
        path.write_bytes(content)
        return import_records(ctx, actor, kind, path, skip_invalid=skip_invalid, on_change=on_change,
                              on_changes=on_changes)


def _model(kind: str) -> type[Any]:
    if kind not in KINDS:
        raise ValidationError(f"unknown record kind {kind!r} (umkm, products or events)")
    return MODEL[kind]


def _local_time(value: dt.datetime | None, tz: Any) -> str:
    """As an import file writes it (seconds only when there are some, so a saved form changes nothing)."""
    if value is None:
        return ""
    local = value.astimezone(tz)
    return local.strftime("%Y-%m-%d %H:%M:%S" if local.second or local.microsecond else "%Y-%m-%d %H:%M")


def record_fields(record: Any, kind: str, tz: Any) -> dict[str, str]:
    """A stored record as the cells of an import file (what the edit form shows and sends back)."""
    out: dict[str, str] = {}
    for col in COLUMNS[kind]:
        if col == "id":
            value: Any = record.external_id
        elif col == "umkm_id":
            value = record.umkm.external_id
        elif col in ("starts_at", "ends_at"):
            value = _local_time(getattr(record, col), tz)
        elif col == "images":  # stored with the cover in ``image`` (paths separated by ;)
            value = None
        else:
            value = getattr(record, col)
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, list):
            value = "; ".join(str(v) for v in value)
        out[col] = "" if value is None else str(value)
    return out


@dataclass(frozen=True)
class RecordPage:
    """One page of a record list: its rows (import-file cells plus ``name``), and the cursor of the next."""

    rows: list[dict[str, str]]
    next_after: str | None


def search_records(ctx: Context, actor: Actor, kind: str, q: str = "", *, after: str | None = None,
                   limit: int = 50) -> RecordPage:
    """Records of ``kind`` whose id, name or tags contain ``q`` (any case), by id, ``limit`` at a
    time after the id ``after`` (keyset: as fast on the last page as on the first)."""
    require(actor, "records.list")
    model = _model(kind)
    tz = ctx.settings.timezone
    stmt = select(model).order_by(model.external_id).limit(limit + 1)
    if after:
        stmt = stmt.where(model.external_id > after)
    q = q.strip()
    if q:
        like = "%" + q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        conditions = [func.lower(model.external_id).like(like, escape="\\"),
                      func.lower(model.name).like(like, escape="\\")]
        if hasattr(model, "tags"):
            conditions.append(func.lower(cast(model.tags, String)).like(like, escape="\\"))
        stmt = stmt.where(or_(*conditions))
    with ctx.db.read_session() as session:
        found = list(session.scalars(stmt))
        rows = [record_fields(r, kind, tz) for r in found[:limit]]
    return RecordPage(rows, rows[-1]["id"] if len(found) > limit else None)


def get_record(ctx: Context, actor: Actor, kind: str, external_id: str) -> dict[str, str]:
    """One record as import-file cells; NotFoundError naming the id."""
    require(actor, "records.list")
    model = _model(kind)
    with ctx.db.read_session() as session:
        record = session.scalar(select(model).where(model.external_id == external_id))
        if record is None:
            raise NotFoundError(f"no {kind} record with id {external_id!r}")
        return record_fields(record, kind, ctx.settings.timezone)


@dataclass(frozen=True)
class RecordSaved:
    """An edited record: its cells now, and which fields changed (empty: nothing to save)."""

    fields: dict[str, str]
    changed: tuple[str, ...]


def update_record(ctx: Context, actor: Actor, kind: str, external_id: str, cells: dict[str, str], *,
                  on_change: OnChange | None = None) -> RecordSaved:
    """Change one record: ``cells`` (columns of its import file; those absent keep their value)
    are checked by the importer's own row validation, as if the record's row were imported with
    them; any problem is an :class:`~scheduler.errors.ImportValidationError` (line 1 = the form)
    and nothing is written. The change gets an audit row with the fields before and after."""
    require(actor, "records.edit")
    model = _model(kind)
    tz = ctx.settings.timezone
    unknown = sorted(set(cells) - set(COLUMNS[kind]))
    if unknown:
        raise ValidationError(f"{kind}: unknown field(s) {', '.join(unknown)} ({', '.join(COLUMNS[kind])})")
    if "id" in cells and cells["id"].strip() != external_id:
        raise ValidationError(f"the id of a record cannot change ({external_id!r}); import a new record instead")
    with ctx.db.session() as session:
        record = session.scalar(select(model).where(model.external_id == external_id).with_for_update())
        if record is None:
            raise NotFoundError(f"no {kind} record with id {external_id!r}")
        row: dict[str, Any] = {**record_fields(record, kind, tz), **cells, "id": external_id}
        umkm_ids = {u: i for u, i in session.execute(select(Umkm.external_id, Umkm.id))}
        good, problems = validate(kind, [(1, row)], tz=tz, known_umkm=set(umkm_ids),
                                  max_description_chars=ctx.settings.max_description_chars)
        if problems:
            raise ImportValidationError(f"{kind} {external_id}", problems)
        fields = good[0][1]
        if kind == "products":
            fields["umkm_id"] = umkm_ids[fields.pop("umkm_external_id")]
        changed = {k for k, v in fields.items() if getattr(record, k) != v}
        if changed:
            before = {k: _jsonable(getattr(record, k)) for k in sorted(changed)}
            for k in changed:
                setattr(record, k, fields[k])
            record.updated_at = utcnow()
            session.add(AuditEntry(actor=actor.name, action="record.update", entity=kind, entity_id=external_id,
                                   detail={"before": before, "after": {k: _jsonable(fields[k]) for k in sorted(changed)}}))
            session.flush()
            if on_change:
                on_change(session, kind, record, changed)
        return RecordSaved(record_fields(record, kind, tz), tuple(sorted(changed)))


def _jsonable(v: Any) -> Any:
    return v.isoformat() if isinstance(v, dt.datetime) else v
