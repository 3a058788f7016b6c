"""Records: import a file (umkm, products, events) and list what is stored."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from scheduler.actions import Actor, Context, require
from scheduler.importer import ImportResult, import_file
from scheduler.models import Event, Product, Umkm

#: Called for each record an import creates or changes (the event-promotion job hooks in here).
OnChange = Callable[[Session, str, Any, set[str]], None]


def import_records(ctx: Context, actor: Actor, kind: str, path: Path, *, skip_invalid: bool = False,
                   on_change: OnChange | None = None,
                   progress: Callable[[int, int], None] | None = None) -> ImportResult:
    """Check the whole file, then write it in one transaction (with an audit row per change)."""
    require(actor, "records.import")
    with ctx.db.session() as session:
        return import_file(session, kind, path, tz=ctx.settings.timezone, actor=actor.name,
                           skip_invalid=skip_invalid, on_change=on_change,
                           max_description_chars=ctx.settings.max_description_chars, progress=progress)


@dataclass(frozen=True)
class Records:
    """Stored records of one kind: one dict per record with the kind's own fields, and the table's columns."""

    rows: list[dict[str, Any]]
    columns: tuple[str, ...]


def list_records(ctx: Context, actor: Actor, kind: str) -> Records:
    """Every stored record of ``kind`` (umkm, products, events), times in the organisation's zone."""
    require(actor, "records.list")
    tz = ctx.settings.timezone

    def local(value: Any) -> str:
        return value.astimezone(tz).isoformat(timespec="seconds") if value is not None else ""

    rows: list[dict[str, Any]]
    with ctx.db.read_session() as session:
        if kind == "umkm":
            rows = [{"id": u.external_id, "name": u.name, "owner": u.owner, "category": u.category, "city": u.city,
                     "district": u.district, "phone": u.phone, "instagram": u.instagram, "website": u.website,
                     "curated": u.curated} for u in session.scalars(select(Umkm).order_by(Umkm.external_id))]
            return Records(rows, ("id", "name", "owner", "category", "city", "district", "curated"))
        if kind == "products":
            from scheduler.composer.filters import rupiah

            rows = [{"id": p.external_id, "umkm_id": p.umkm.external_id, "name": p.name, "description": p.description,
                     "price": p.price, "price_text": rupiah(p.price), "url": p.url, "image": p.image,
                     "tags": p.tags, "curation": p.curation, "active": p.active}
                    for p in session.scalars(select(Product).order_by(Product.external_id))]
            return Records(rows, ("id", "umkm_id", "name", "price_text", "curation", "active", "tags"))
        rows = [{"id": e.external_id, "name": e.name, "venue": e.venue, "city": e.city,
                 "starts_at": local(e.starts_at), "ends_at": local(e.ends_at) or None, "url": e.url,
                 "tags": e.tags, "status": e.status, "description": e.description}
                for e in session.scalars(select(Event).order_by(Event.starts_at))]
        return Records(rows, ("id", "name", "venue", "starts_at", "ends_at", "status"))
